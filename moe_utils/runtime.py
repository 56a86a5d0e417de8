"""Device and profile resolution, and explicit random generators."""
from __future__ import annotations

import torch

from .errors import check_choice

PROFILES = ("full", "quick")
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> torch.device:
    """Map ``"auto"`` to cuda when available, else cpu; validate explicit names."""
    check_choice("DEVICE", device, DEVICES)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def check_profile(profile: str) -> str:
    """Validate a PROFILE value (``"full"`` or ``"quick"``)."""
    return check_choice("PROFILE", profile, PROFILES)


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch Generator seeded with ``seed`` on ``device``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator
