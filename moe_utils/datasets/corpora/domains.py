"""The three domains together: seeded per-domain documents and equal-budget train / held-out byte streams."""

from __future__ import annotations

import math

from ...errors import MoeError, check_choice, check_positive
from .dm_math import generate_dm_mathematics
from .stdlib_code import load_github
from .text import DomainCorpus, DomainText, limit_chars, permutation, uint8_tensor
from .wikipedia import load_wikipedia

DOMAINS = ("wikipedia", "github", "dm_mathematics")


def load_domain_texts(domain: str, *, seed: int, max_chars: int | None = None) -> DomainText:
    """Documents of one domain in a seeded random order, at most ``max_chars`` characters (last document cut).

    ``dm_mathematics`` is generated from ``seed`` (enough for ``max_chars``, default
    ``DM_DEFAULT_MAX_CHARS``); the other domains are fixed texts that ``seed`` only reorders.
    """
    check_choice("domain", domain, DOMAINS)
    if domain == "wikipedia":
        text = load_wikipedia()
    elif domain == "github":
        text = load_github()
    else:
        text = generate_dm_mathematics(seed, max_chars=max_chars)
    available = text.n_chars
    documents = limit_chars(text.documents, max_chars, seed)
    info = {**text.info, "available_documents": len(text.documents), "available_chars": available, "seed": seed}
    return DomainText(domain, documents, info)


def _fill(encoded: list[bytes], order, budget: int, doc_bytes: int | None = None) -> tuple[bytes, int, list[int]]:
    """Concatenate documents drawn from the iterator ``order`` until ``budget`` bytes; cut the last one.

    ``doc_bytes`` caps each document (its first bytes), so a budget holds more documents. Returns the bytes, the
    number of documents and each document's length in the result.
    """
    parts, total = [], 0
    while total < budget:
        index = next(order, None)
        if index is None:
            break
        parts.append(encoded[index] if doc_bytes is None else encoded[index][:doc_bytes])
        total += len(parts[-1])
    lengths = [len(p) for p in parts]
    if total > budget:
        lengths[-1] -= total - budget
    return b"".join(parts)[:budget], len(parts), lengths


def build_domain_corpus(
    domains: tuple[str, ...] | list[str] = DOMAINS,
    tokens_per_domain: int = 1_000_000,
    held_out_tokens_per_domain: int = 100_000,
    seed: int = 0,
    held_out_doc_bytes: int | None = None,
) -> DomainCorpus:
    """Per-domain train and held-out byte streams with the same train token budget for every domain.

    Documents are shuffled (seeded); held-out documents are taken first, then train documents, so the
    two share no document. ``held_out_doc_bytes`` keeps only the first bytes of each held-out document, so the
    held-out budget spans more documents; ``held_out_doc_ids`` gives each held-out byte's document (for
    bootstraps over documents). Raises a one-line MoeError if a domain has too little text.
    """
    import pandas as pd
    import torch

    check_positive("tokens_per_domain", tokens_per_domain)
    if held_out_doc_bytes is not None:
        check_positive("held_out_doc_bytes", held_out_doc_bytes)
    held = held_out_tokens_per_domain
    if isinstance(held, bool) or not isinstance(held, int) or held < 0:
        raise MoeError(f"held_out_tokens_per_domain={held!r} is not allowed; it must be an integer >= 0")
    if len(set(domains)) != len(domains) or not domains:
        raise MoeError(f"domains={list(domains)!r} must be a non-empty list without repeats")
    for domain in domains:
        check_choice("domain", domain, DOMAINS)
    need = tokens_per_domain + held_out_tokens_per_domain
    train, held_out, rows, infos, doc_ids = {}, {}, [], {}, {}
    for domain in domains:
        # UTF-8 has at least one byte per character, so `need` characters give at least `need` bytes;
        # DM documents are short, so 2% plus a little covers the cut at the held-out boundary.
        max_chars = math.ceil(need * 1.02) + 4096 if domain == "dm_mathematics" else None
        text = load_domain_texts(domain, seed=seed, max_chars=max_chars)
        encoded = [d.encode("utf-8") for d in text.documents]
        order = iter(permutation(len(encoded), seed, 2).tolist())
        held_bytes, n_held, held_lengths = _fill(encoded, order, held_out_tokens_per_domain, held_out_doc_bytes)
        train_bytes, n_train, _ = _fill(encoded, order, tokens_per_domain)
        if len(train_bytes) < tokens_per_domain:
            available = sum(len(e) for e in encoded)
            raise MoeError(
                f"domain {domain!r} has {available:,} bytes in {len(encoded):,} documents, too few for "
                f"{held_out_tokens_per_domain:,} held-out + {tokens_per_domain:,} train tokens; lower the budgets"
            )
        train[domain] = uint8_tensor(train_bytes)
        held_out[domain] = uint8_tensor(held_bytes)
        doc_ids[domain] = torch.repeat_interleave(
            torch.arange(len(held_lengths)), torch.tensor(held_lengths, dtype=torch.long)
        )
        infos[domain] = text.info
        rows.append(
            {
                "domain": domain,
                "source": text.info.get("source"),
                "train_tokens": len(train_bytes),
                "held_out_tokens": len(held_bytes),
                "train_documents": n_train,
                "held_out_documents": n_held,
                "available_documents": len(encoded),
                "available_bytes": sum(len(e) for e in encoded),
                "dm_examples_per_module": text.info.get("examples_per_module"),
                "dm_modules_used": ",".join(text.info.get("modules_used", [])) or None,
                "dm_modules_failed": ",".join(text.info.get("modules_failed", {})) or None,
            }
        )
    return DomainCorpus(train, held_out, pd.DataFrame(rows), infos, doc_ids)
