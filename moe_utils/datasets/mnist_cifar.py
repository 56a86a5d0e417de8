"""Two image datasets (MNIST + CIFAR-10 by default) as one 32×32 grayscale dataset, preprocessed once and cached.

The first dataset's classes take labels 0…n₁-1, the second's n₁…n₁+n₂-1. Which mirror archives fill the two slots is
named by ``$MOE_DATASETS`` or the mirror's ``moe-datasets.txt`` (default: ``mnist-png.tar.gz,cifar10-jpg.tar.gz``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import MoeError, check_choice
from ..io import paths
from ..io.atomic import atomic_path, remove_stale_temporaries
from ..io.cache_check import damage, record, set_aside
from ..io.checksums import sha256_of
from .image_archives import LUMA_FORMULA, read_image_folder_archive, to_gray_square

IMAGE_SIZE = 32
MNIST_ARCHIVE = "mnist-png.tar.gz"
CIFAR_ARCHIVE = "cifar10-jpg.tar.gz"
DEFAULT_ARCHIVES = (MNIST_ARCHIVE, CIFAR_ARCHIVE)
DATASETS_ENV = "MOE_DATASETS"  # "first.tar.gz,second.tar.gz": the mirror archives that fill the two slots
MANIFEST = "moe-datasets.txt"  # the same, as one line in a file inside the mirror (the variable wins)
SLOTS = ("first", "second")
SOURCES = ("auto", "mirror", "download")
CACHE_VERSION = 3  # 3: slots "first"/"second", any class counts; 2: records each archive's name, checksum, classes
# sha256 of the offline mirror's archives (../shared/datasets/README.md): data that is source 004's MNIST and CIFAR-10.
KNOWN_ARCHIVES = {
    "first": "71f1eb5061c707c2a9cf1466f55c778abf2b116477ac3a642affbf999cd98a5c",
    "second": "d877bdec11f54282b92da36e9f045bd305d663b1223e3822baff39ca9ff6690a",
}
DISPLAY_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR", "cifar": "CIFAR"}  # archive stem -> the name tables use
MNIST_CLASSES = [str(d) for d in range(10)]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CLASS_NAMES = [f"mnist:{c}" for c in MNIST_CLASSES] + [f"cifar:{c}" for c in CIFAR_CLASSES]
PREPROCESSING = {
    "size": IMAGE_SIZE,
    "resample": "bilinear (PIL Image.Resampling.BILINEAR; only MNIST 28→32 is resized)",
    "grayscale": LUMA_FORMULA,
    "labels": "the first dataset's classes, then the second's (MNIST + CIFAR-10: digits 0-9, airplane=10 … truck=19)",
}


@dataclass
class Split:
    """One split of the combined dataset, as CPU tensors."""

    images: torch.Tensor  # [n, 32, 32] uint8
    labels: torch.Tensor  # [n] int64 in 0..classes-1
    is_first: torch.Tensor  # [n] bool: the image comes from the first dataset (MNIST by default)
    n_classes: int = 20  # classes of both datasets (the label space, whichever rows this split holds)
    n_first: int = 10  # classes of the first dataset: labels 0 … n_first - 1
    dataset_names: tuple[str, str] = ("MNIST", "CIFAR")

    def __len__(self) -> int:
        return len(self.labels)

    def _with(self, images: torch.Tensor, labels: torch.Tensor, is_first: torch.Tensor) -> Split:
        return Split(images, labels, is_first, self.n_classes, self.n_first, self.dataset_names)

    def subset(self, index: torch.Tensor) -> Split:
        """The rows at ``index``."""
        return self._with(self.images[index], self.labels[index], self.is_first[index])

    def flat(self, device: torch.device | str = "cpu") -> Split:
        """The split with images flattened to [n, 1024] and moved to ``device``."""
        return self._with(
            self.images.reshape(len(self), -1).to(device), self.labels.to(device), self.is_first.to(device)
        )


def random_share(split: Split, share: float, generator: torch.Generator) -> Split:
    """A random ``share`` of ``split``'s images (drawn from ``generator``), plus the first image of the same random order
    of each class the share missed (a small dataset keeps every class); the split itself, untouched, when share is 1."""
    if share >= 1:
        return split
    order = torch.randperm(len(split), generator=generator)  # [n]
    taken = order[: round(len(split) * share)]
    labels = split.labels[order.to(split.labels.device)].cpu()  # [n], in the random order
    missed = sorted(set(labels.tolist()) - set(split.labels[taken.to(split.labels.device)].cpu().tolist()))
    extra = [order[int((labels == c).nonzero()[0])] for c in missed]  # each missed class's first image in that order
    return split.subset(torch.cat([taken, torch.stack(extra)]) if extra else taken)


@dataclass
class MnistCifar:
    """The combined dataset: train and test splits plus where they came from."""

    train: Split
    test: Split
    source: str
    cache_path: Path
    info: dict = field(default_factory=dict)
    class_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))
    dataset_names: tuple[str, str] = ("MNIST", "CIFAR")  # the first slot's labels come first
    n_first: int = 10  # classes of the first dataset: labels 0 … n_first - 1

    @property
    def n_classes(self) -> int:
        """Classes of both datasets together."""
        return len(self.class_names)

    @property
    def is_source_data(self) -> bool:
        """True when the images are source 004's MNIST and CIFAR-10 (torchvision's, or the known mirror archives)."""
        if self.source == "download":
            return True
        archives = self.info.get("archives", {})
        return all(archives.get(k, {}).get("sha256") == digest for k, digest in KNOWN_ARCHIVES.items())

    def describe(self) -> str:
        """One line: the source and, for archives, each file's name and checksum."""
        archives = self.info.get("archives", {})
        files = (
            ", ".join(f"{a['file']} sha256 {a['sha256'][:12]}…" for a in archives.values()) or "torchvision downloads"
        )
        verdict = "source 004's MNIST + CIFAR-10; " if self.is_source_data else ""
        counts = f"{len(self.train):,} train / {len(self.test):,} test images, {self.n_classes} classes"
        return f"source {self.source}: {files} ({verdict}datasets {' + '.join(self.dataset_names)}; {counts})"


def _combine(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray], n_first: int) -> Split:
    images = np.concatenate([first[0], second[0]])
    labels = np.concatenate([first[1], second[1] + n_first])
    is_first = np.concatenate([np.ones(len(first[1]), bool), np.zeros(len(second[1]), bool)])
    return Split(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)), torch.from_numpy(is_first))


def chosen_archive_names(mirror: Path) -> tuple[tuple[str, str], str]:
    """The archive file names of the two slots and who chose them (``$MOE_DATASETS``, the manifest, or the default)."""
    if os.environ.get(DATASETS_ENV):
        text, origin = os.environ[DATASETS_ENV], f"{DATASETS_ENV}={os.environ[DATASETS_ENV]!r}"
    elif (mirror / MANIFEST).is_file():
        lines = [ln.strip() for ln in (mirror / MANIFEST).read_text().splitlines()]
        text, origin = next((ln for ln in lines if ln and not ln.startswith("#")), ""), str(mirror / MANIFEST)
    else:
        return DEFAULT_ARCHIVES, "the default"
    names = tuple(n.strip() for n in text.split(","))
    if len(names) != 2 or not all(names) or any("/" in n or n in (".", "..") for n in names) or names[0] == names[1]:
        raise MoeError(
            f"{origin} is not allowed; name two different archive files of the mirror, comma-separated, "
            f"e.g. {DATASETS_ENV}={MNIST_ARCHIVE},{CIFAR_ARCHIVE}"
        )
    return names, origin


def mirror_archives(mirror: Path) -> dict[str, Path]:
    """The two chosen archives inside a mirror folder, by slot; a one-line error if the folder or a file is missing."""
    names, origin = chosen_archive_names(mirror) if mirror.is_dir() else (DEFAULT_ARCHIVES, "the default")
    if not mirror.is_dir():
        raise MoeError(f"MOE_DATA_MIRROR={mirror} is not a folder; point it at a folder holding {' and '.join(names)}")
    archives = dict(zip(SLOTS, (mirror / n for n in names)))
    missing = [p.name for p in archives.values() if not p.is_file()]
    if missing:
        present = ", ".join(sorted(p.name for p in mirror.glob("*.tar.gz"))) or "no .tar.gz files"
        raise MoeError(
            f"MOE_DATA_MIRROR={mirror} lacks {', '.join(missing)} (archives chosen by {origin}; the mirror has "
            f"{present}); set {DATASETS_ENV}=first.tar.gz,second.tar.gz or write them in {MANIFEST} there"
        )
    return archives


def _cache_path(source: str, identity: dict) -> Path:
    key = hashlib.sha256(
        json.dumps({"v": CACHE_VERSION, "source": source, **PREPROCESSING, **identity}, sort_keys=True).encode()
    ).hexdigest()[:16]
    return paths.PROCESSED_DIR / f"images_{source}_{key}.pt"


def check_layout(archive: Path, splits: dict, classes: list[str]) -> None:
    """One-line MoeError unless the archive has train/ and test/ and every class folder has images in both."""
    for name in ("train", "test"):
        if name not in splits:
            raise MoeError(
                f"archive {archive} has no '{name}/' folder; expected train/ and test/ (it has {sorted(splits)})"
            )
        present = set(np.unique(splits[name].labels).tolist())
        empty = [c for i, c in enumerate(classes) if i not in present]
        if empty:
            raise MoeError(f"archive {archive}: class folder(s) {', '.join(empty)} have no images in {name}/")
    if len(classes) < 2:
        raise MoeError(f"archive {archive} has {len(classes)} class folder; a dataset needs at least 2 classes")


def _build_from_mirror(archives: dict[str, Path]) -> tuple[tuple[Split, Split], dict[str, list[str]]]:
    read = {slot: read_image_folder_archive(archives[slot], IMAGE_SIZE) for slot in SLOTS}
    for slot, (splits, classes) in read.items():
        check_layout(archives[slot], splits, classes)
    (first, first_classes), (second, _) = read["first"], read["second"]
    splits = tuple(
        _combine((first[s].images, first[s].labels), (second[s].images, second[s].labels), len(first_classes))
        for s in ("train", "test")
    )
    return splits, {slot: classes for slot, (_, classes) in read.items()}


def dataset_key(archive_name: str) -> str:
    """``mnist-png.tar.gz`` -> ``mnist``: the archive's stem without its image-format suffix."""
    stem = archive_name.split(".")[0]
    for suffix in ("-png", "-jpg", "-jpeg"):
        stem = stem.removesuffix(suffix)
    return stem


def slug(name: str) -> str:
    """A dataset's name as it appears in column names: ``"Fashion-MNIST"`` -> ``"fashion_mnist"``."""
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_") or "dataset"


def class_label(folder: str) -> str:
    """A class folder's name without a leading sort number: ``0_tshirt`` -> ``tshirt``, ``7`` -> ``7``."""
    head, sep, tail = folder.partition("_")
    return tail if sep and head.isdigit() and tail else folder


def parse_dataset_names(text: str) -> tuple[str, str] | None:
    """``"auto"`` -> None (names from the archives); ``"Fashion-MNIST, CIFAR"`` -> the two names."""
    if text == "auto":
        return None
    names = tuple(n.strip() for n in str(text).split(","))
    if len(names) != 2 or not all(names):
        raise MoeError(
            f'DATASET_NAMES={text!r} is not allowed; write "auto" or two comma-separated names, e.g. "Fashion-MNIST, CIFAR"'
        )
    return names


def names_from_info(info: dict, dataset_names: tuple[str, str] | None) -> tuple[tuple[str, str], list[str]]:
    """(dataset names, class names) for a cache's info; ``dataset_names`` overrides the archives' stems."""
    archives = info.get("archives")
    if not archives:  # torchvision downloads: source 004's datasets
        names = dataset_names or ("MNIST", "CIFAR")
        folders = {"first": MNIST_CLASSES, "second": CIFAR_CLASSES}
    else:
        stems = [dataset_key(archives[k]["file"]) for k in SLOTS]
        names = dataset_names or tuple(DISPLAY_NAMES.get(s, s) for s in stems)
        folders = {k: archives[k]["classes"] for k in SLOTS}
    if names[0].lower() == names[1].lower():
        raise MoeError(f"the two datasets are both named {names[0]!r}; set DATASET_NAMES to two different names")
    classes = [f"{names[i].lower()}:{class_label(c)}" for i, k in enumerate(SLOTS) for c in folders[k]]
    return names, classes


def _no_data_message(reason: str) -> str:
    return (
        f"no image data ({reason}); either set MOE_DATA_MIRROR to a folder holding "
        f"{MNIST_ARCHIVE} and {CIFAR_ARCHIVE} (or the archives named by {DATASETS_ENV}), "
        f"or connect to the internet so torchvision can download into {paths.RAW_DIR}"
    )


def remove_new_entries(folder: Path, before: set[Path] | None) -> None:
    """Remove what appeared in ``folder`` since ``before`` (its entries then; None: the folder did not exist)."""
    import shutil

    if not folder.is_dir():
        return
    if before is None:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for entry in set(folder.iterdir()) - before:
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _build_from_download() -> tuple[Split, Split]:
    from PIL import Image
    from torchvision import datasets

    raw = paths.RAW_DIR
    before = set(raw.iterdir()) if raw.is_dir() else None  # what a failed download must not leave behind
    result = []
    for train in (True, False):
        try:
            mnist = datasets.MNIST(raw, train=train, download=True)
            cifar = datasets.CIFAR10(raw, train=train, download=True)
        except Exception as exc:  # torchvision raises URLError/RuntimeError/OSError when offline
            remove_new_entries(raw, before)
            raise MoeError(_no_data_message(f"download failed: {' '.join(str(exc).split())}")) from None
        mnist_images = np.stack([to_gray_square(Image.fromarray(img.numpy(), "L"), IMAGE_SIZE) for img in mnist.data])
        cifar_images = np.stack([to_gray_square(Image.fromarray(img, "RGB"), IMAGE_SIZE) for img in cifar.data])
        result.append(
            _combine(
                (mnist_images, mnist.targets.numpy()), (cifar_images, np.asarray(cifar.targets)), len(MNIST_CLASSES)
            )
        )
    return tuple(result)


def resolve_source(source: str) -> str:
    """Turn ``"auto"`` into ``"mirror"`` when MOE_DATA_MIRROR is set, else ``"download"``."""
    check_choice("DATA_SOURCE", source, SOURCES)
    if source == "auto":
        return "mirror" if paths.mirror_dir() is not None else "download"
    return source


def cache_still_matches(cache: Path) -> bool:
    """Whether a cache's recorded archives still exist where they were and have the recorded checksums."""
    try:
        info = json.loads(torch.load(cache, weights_only=True, mmap=True)["info"])  # mmap: the images are not read
    except Exception:  # unreadable or from an older version: not a candidate
        return False
    if info.get("v") != CACHE_VERSION:
        return False
    if info["source"] == "download":
        return True
    return all(
        Path(info["origin"][k]).is_file() and sha256_of(Path(info["origin"][k])) == a["sha256"]
        for k, a in info["archives"].items()
    )


def usable(cache: Path) -> bool:
    """Whether ``cache`` matches its size/checksum record; a damaged one is moved aside with one line (then False)."""
    reason = damage(cache)
    if reason is not None:
        set_aside(cache, reason)
    return reason is None


def existing_cache() -> Path | None:
    """The one cache whose data is still where it came from (lets ``"auto"`` work offline after a first build).

    None when there is none; a one-line MoeError when several qualify, since recency says nothing about identity.
    """
    caches = [c for c in sorted(paths.PROCESSED_DIR.glob("images_*.pt")) if usable(c) and cache_still_matches(c)]
    if len(caches) > 1:
        raise MoeError(
            f"MOE_DATA_MIRROR is not set and {len(caches)} data caches qualify ({', '.join(c.name for c in caches)}); "
            "set MOE_DATA_MIRROR to the folder of the archives you mean, or DATA_SOURCE='download'"
        )
    return caches[0] if caches else None


def load_mnist_cifar(
    source: str = "auto", *, rebuild: bool = False, verbose: bool = True, dataset_names: str = "auto"
) -> MnistCifar:
    """Load the combined dataset from its cache, building the cache (atomically) on first use.

    ``source``: ``"mirror"`` reads the archives in ``$MOE_DATA_MIRROR``; ``"download"`` uses torchvision
    downloads in ``data/raw``; ``"auto"`` picks the mirror when the variable is set, else an existing cache,
    else a download. ``dataset_names`` (``"auto"`` or ``"A, B"``) names the two datasets in tables and class names.
    """
    names = parse_dataset_names(dataset_names)
    requested, source = source, resolve_source(source)
    remove_stale_temporaries(paths.PROCESSED_DIR)
    if requested == "auto" and source == "download" and not rebuild and (cache := existing_cache()) is not None:
        started = time.perf_counter()
        payload = torch.load(cache, weights_only=True)
        info = json.loads(payload["info"])
        return _from_payload(payload, info["source"], cache, time.perf_counter() - started, False, verbose, names)
    if source == "mirror":
        mirror = paths.mirror_dir()
        if mirror is None:
            raise MoeError(_no_data_message("DATA_SOURCE='mirror' but MOE_DATA_MIRROR is not set"))
        archives = mirror_archives(mirror)
        identity = {"archives": {name: {"file": p.name, "sha256": sha256_of(p)} for name, p in archives.items()}}
        origin = {name: str(p) for name, p in archives.items()}
    else:
        identity, origin = {}, {"torchvision": str(paths.RAW_DIR)}
    cache = _cache_path(source, identity)
    started = time.perf_counter()
    if cache.exists() and not rebuild and usable(cache):
        payload = torch.load(cache, weights_only=True)
        built = False
    else:
        if source == "mirror":
            (train, test), folders = _build_from_mirror(archives)
            for key, classes in folders.items():
                identity["archives"][key]["classes"] = classes
        else:
            train, test = _build_from_download()
        payload = {
            "train": {"images": train.images, "labels": train.labels, "is_first": train.is_first},
            "test": {"images": test.images, "labels": test.labels, "is_first": test.is_first},
            "info": json.dumps(
                {"v": CACHE_VERSION, "source": source, "origin": origin, "preprocessing": PREPROCESSING, **identity}
            ),
        }
        with atomic_path(cache) as tmp:
            torch.save(payload, tmp)
        record(cache)
        built = True
    return _from_payload(payload, source, cache, time.perf_counter() - started, built, verbose, names)


def _from_payload(
    payload: dict,
    source: str,
    cache: Path,
    seconds: float,
    built: bool,
    verbose: bool,
    dataset_names: tuple[str, str] | None,
) -> MnistCifar:
    info = {**json.loads(payload["info"]), "seconds": seconds, "built": built}
    names, classes = names_from_info(info, dataset_names)
    n_first = len(info["archives"]["first"]["classes"]) if info.get("archives") else len(MNIST_CLASSES)
    identity = {"n_classes": len(classes), "n_first": n_first, "dataset_names": names}
    data = MnistCifar(
        train=Split(**payload["train"], **identity),
        test=Split(**payload["test"], **identity),
        source=source,
        cache_path=cache,
        info=info,
        class_names=classes,
        dataset_names=names,
        n_first=n_first,
    )
    if verbose:
        print(f"{'built' if built else 'loaded'} {cache.name} in {seconds:.2f} s; {data.describe()}")
    return data


def main(argv: list[str] | None = None) -> int:
    """Command line: build (or check) the processed dataset cache."""
    parser = argparse.ArgumentParser(description="Prepare the MNIST+CIFAR-10 tensor cache.")
    parser.add_argument("--source", default="auto", help="auto | mirror | download")
    parser.add_argument("--rebuild", action="store_true", help="rebuild even if a cache exists")
    args = parser.parse_args(argv)
    try:
        data = load_mnist_cifar(args.source, rebuild=args.rebuild)
    except MoeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shown = (
        data.cache_path.relative_to(paths.REPO_ROOT)
        if data.cache_path.is_relative_to(paths.REPO_ROOT)
        else data.cache_path
    )
    print(f"train {len(data.train):,} images, test {len(data.test):,} images -> {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
