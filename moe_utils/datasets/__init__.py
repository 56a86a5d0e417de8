"""Data: MNIST + CIFAR-10 (Experiment 1, notebook 04), the three text domains (05), the cognitive task families (06, 07)."""
