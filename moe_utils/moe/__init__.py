"""The one MoE stack of notebooks 04-07: router (RouterConfig), MoE feed-forward layer, transformer block, training loop."""
