"""Byte-level tokens, document containers and seeded document handling shared by the three domains."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ...errors import MoeError, check_positive, check_range

if TYPE_CHECKING:  # torch and pandas are imported where used, so the DM generation child starts quickly
    import pandas as pd
    import torch

BYTE_VOCAB_SIZE = 256  # UTF-8 bytes


@dataclass
class DomainText:
    """The documents of one domain plus a record of where they came from."""

    name: str
    documents: list[str]
    info: dict = field(default_factory=dict)

    @property
    def n_chars(self) -> int:
        """Total number of characters over all documents."""
        return sum(len(d) for d in self.documents)


@dataclass
class DomainCorpus:
    """Per-domain train and held-out byte streams (uint8 tensors) and a record of their sources."""

    train: dict[str, torch.Tensor]
    held_out: dict[str, torch.Tensor]
    record: pd.DataFrame
    info: dict[str, dict] = field(default_factory=dict)
    held_out_doc_ids: dict[str, torch.Tensor] = field(
        default_factory=dict
    )  # [held-out bytes] document index of each byte


def uint8_tensor(data: bytes) -> torch.Tensor:
    """``data`` as a 1-D uint8 tensor (empty for no bytes)."""
    import torch

    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)


def encode_bytes(text: str) -> torch.Tensor:
    """UTF-8 bytes of ``text`` as a 1-D int64 tensor with values in 0..255."""
    return uint8_tensor(text.encode("utf-8")).long()


def decode_bytes(tokens: torch.Tensor) -> str:
    """Inverse of :func:`encode_bytes` (invalid UTF-8 is replaced, e.g. at a cut multi-byte char)."""
    import torch

    return bytes(tokens.to(torch.uint8).tolist()).decode("utf-8", errors="replace")


def sample_lm_batch(
    tokens: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of a 1-D token stream: int64 ``(inputs, targets)`` of shape [B, S], targets shifted by one."""
    import torch

    check_positive("batch_size", batch_size)
    check_positive("seq_len", seq_len)
    if tokens.dim() != 1 or len(tokens) < seq_len + 1:
        shape = tuple(tokens.shape)
        raise MoeError(f"need a 1-D token stream of at least seq_len+1={seq_len + 1} tokens; got shape {shape}")
    starts = torch.randint(0, len(tokens) - seq_len, (batch_size,), generator=generator)
    index = starts.to(tokens.device)[:, None] + torch.arange(seq_len + 1, device=tokens.device)
    window = tokens[index].long()
    return window[:, :-1], window[:, 1:]


def permutation(n: int, seed: int, purpose: int) -> np.ndarray:
    """A seeded permutation of range(n); ``purpose`` separates the streams of different uses of one seed."""
    return np.random.default_rng([seed, purpose]).permutation(n)


def limit_chars(documents: list[str], max_chars: int | None, seed: int) -> list[str]:
    """Documents in a seeded random order; with ``max_chars``, whole ones until the total is reached, the last cut."""
    ordered = [documents[i] for i in permutation(len(documents), seed, 0)]
    if max_chars is None:
        return ordered
    check_positive("max_chars", max_chars)
    kept, total = [], 0
    for doc in ordered:
        if total >= max_chars:
            break
        kept.append(doc[: max_chars - total])
        total += len(kept[-1])
    return kept


def split_documents(documents: list[str], held_out_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Deterministic document-level ``(train, held_out)`` split; both lists come in a seeded random order."""
    check_range("held_out_fraction", held_out_fraction, 0.0, 1.0)
    order = permutation(len(documents), seed, 1)
    n_held = int(round(held_out_fraction * len(documents)))
    held = [documents[i] for i in order[:n_held]]
    train = [documents[i] for i in order[n_held:]]
    return train, held
