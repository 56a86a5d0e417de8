"""``python -m moe_utils.datasets``: build (or find) the MNIST + CIFAR-10 tensor cache; see ``mnist_cifar.main``."""

from .mnist_cifar import main

if __name__ == "__main__":
    raise SystemExit(main())
