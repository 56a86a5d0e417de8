"""External models: the analyses of notebooks 04-07 on Hugging Face causal LMs (optional extra ``[hf]``)."""
