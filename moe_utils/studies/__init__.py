"""The transformer studies of notebooks 04-07, each with its plots beside it: routing stability, expert load, head
importance, layer activation."""
