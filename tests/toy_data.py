"""Tiny learnable stand-in for the MNIST+CIFAR split, shared by the training and gate-analysis tests."""

from __future__ import annotations

import torch

from moe_utils.datasets.mnist_cifar import Split


def toy_split(n: int, seed: int) -> Split:
    """Two 'datasets': bright images (MNIST-like, labels 0-9) and dark ones (labels 10-19), label in a pixel block."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 20, (n,), generator=g)
    images = torch.randint(0, 20, (n, 1024), generator=g, dtype=torch.int64)
    images[labels < 10] += 100
    for k in range(8):
        images[torch.arange(n), 100 + labels * 40 + k] = 255
    return Split(images.to(torch.uint8), labels, labels < 10)
