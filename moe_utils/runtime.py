"""Device and profile resolution, and explicit random generators."""
from __future__ import annotations

import torch

from .errors import MoeError, check_choice

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


def profile_sizes(profile: str, quick: dict, **full) -> dict:
    """The run's sizes: ``full`` as given for PROFILE "full"; for "quick" each capped at the ``quick`` table's value."""
    check_profile(profile)
    unknown = sorted(set(quick) - set(full))
    if unknown:
        raise MoeError(f"quick sizes {unknown} have no full-profile value")
    return dict(full) if profile == "full" else {k: min(v, quick[k]) if k in quick else v for k, v in full.items()}
