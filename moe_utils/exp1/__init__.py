"""Experiment 1 (source 004, notebooks 02-03): linear experts, gates, the tensor-batch training loop and its analyses."""
