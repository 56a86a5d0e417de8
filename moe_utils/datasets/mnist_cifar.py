"""MNIST + CIFAR-10 as one 20-class, 32×32 grayscale dataset, preprocessed once and cached."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import MoeError, check_choice
from ..io import paths
from ..io.atomic import atomic_path, remove_stale_temporaries
from ..io.checksums import sha256_of
from .image_archives import LUMA_FORMULA, read_image_folder_archive, to_gray_square

IMAGE_SIZE = 32
MNIST_ARCHIVE = "mnist-png.tar.gz"
CIFAR_ARCHIVE = "cifar10-jpg.tar.gz"
SOURCES = ("auto", "mirror", "download")
CACHE_VERSION = 2  # 2: records each archive's file name, checksum and class folders
# sha256 of the offline mirror's archives (../shared/datasets/README.md): data that is source 004's MNIST and CIFAR-10.
KNOWN_ARCHIVES = {
    "mnist": "71f1eb5061c707c2a9cf1466f55c778abf2b116477ac3a642affbf999cd98a5c",
    "cifar": "d877bdec11f54282b92da36e9f045bd305d663b1223e3822baff39ca9ff6690a",
}
DISPLAY_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR", "cifar": "CIFAR"}  # archive stem -> the name tables use
MNIST_CLASSES = [str(d) for d in range(10)]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CLASS_NAMES = [f"mnist:{c}" for c in MNIST_CLASSES] + [f"cifar:{c}" for c in CIFAR_CLASSES]
PREPROCESSING = {
    "size": IMAGE_SIZE,
    "resample": "bilinear (PIL Image.Resampling.BILINEAR; only MNIST 28→32 is resized)",
    "grayscale": LUMA_FORMULA,
    "labels": "0-9 MNIST digits, 10-19 CIFAR-10 classes (airplane=10 … truck=19)",
}


@dataclass
class Split:
    """One split of the combined dataset, as CPU tensors."""

    images: torch.Tensor  # [n, 32, 32] uint8
    labels: torch.Tensor  # [n] int64 in 0..19
    is_mnist: torch.Tensor  # [n] bool

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor) -> Split:
        """The rows at ``index``."""
        return Split(self.images[index], self.labels[index], self.is_mnist[index])

    def flat(self, device: torch.device | str = "cpu") -> Split:
        """The split with images flattened to [n, 1024] and moved to ``device``."""
        return Split(self.images.reshape(len(self), -1).to(device), self.labels.to(device), self.is_mnist.to(device))


def random_share(split: Split, share: float, generator: torch.Generator) -> Split:
    """A random ``share`` of ``split``'s images (drawn from ``generator``); the split itself, untouched, when share is 1."""
    if share >= 1:
        return split
    return split.subset(torch.randperm(len(split), generator=generator)[: round(len(split) * share)])


@dataclass
class MnistCifar:
    """The combined dataset: train and test splits plus where they came from."""

    train: Split
    test: Split
    source: str
    cache_path: Path
    info: dict = field(default_factory=dict)
    class_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))
    dataset_names: tuple[str, str] = ("MNIST", "CIFAR")  # labels 0-9 come from the first, 10-19 from the second

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
        verdict = "source 004's MNIST + CIFAR-10" if self.is_source_data else "NOT the known MNIST/CIFAR-10 archives"
        return f"source {self.source}: {files} ({verdict}; datasets {' + '.join(self.dataset_names)})"


def _combine(mnist: tuple[np.ndarray, np.ndarray], cifar: tuple[np.ndarray, np.ndarray]) -> Split:
    images = np.concatenate([mnist[0], cifar[0]])
    labels = np.concatenate([mnist[1], cifar[1] + 10])
    is_mnist = np.concatenate([np.ones(len(mnist[1]), bool), np.zeros(len(cifar[1]), bool)])
    return Split(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)), torch.from_numpy(is_mnist))


def mirror_archives(mirror: Path) -> dict[str, Path]:
    """The MNIST and CIFAR archives inside a mirror folder; a one-line error if either is missing."""
    if not mirror.is_dir():
        raise MoeError(
            f"MOE_DATA_MIRROR={mirror} is not a folder; point it at a folder holding {MNIST_ARCHIVE} and {CIFAR_ARCHIVE}"
        )
    archives = {"mnist": mirror / MNIST_ARCHIVE, "cifar": mirror / CIFAR_ARCHIVE}
    missing = [p.name for p in archives.values() if not p.is_file()]
    if missing:
        raise MoeError(
            f"MOE_DATA_MIRROR={mirror} lacks {', '.join(missing)}; it must hold {MNIST_ARCHIVE} and {CIFAR_ARCHIVE}"
        )
    return archives


def _cache_path(source: str, identity: dict) -> Path:
    key = hashlib.sha256(
        json.dumps({"v": CACHE_VERSION, "source": source, **PREPROCESSING, **identity}, sort_keys=True).encode()
    ).hexdigest()[:16]
    return paths.PROCESSED_DIR / f"mnist_cifar_{source}_{key}.pt"


def _split_arrays(splits: dict, name: str, archive: Path) -> tuple[np.ndarray, np.ndarray]:
    if name not in splits:
        raise MoeError(f"archive {archive} has no '{name}/' folder; expected train/ and test/")
    return splits[name].images, splits[name].labels


def _build_from_mirror(archives: dict[str, Path]) -> tuple[tuple[Split, Split], dict[str, list[str]]]:
    mnist, mnist_classes = read_image_folder_archive(archives["mnist"], IMAGE_SIZE)
    cifar, cifar_classes = read_image_folder_archive(archives["cifar"], IMAGE_SIZE)
    for archive, classes in ((archives["mnist"], mnist_classes), (archives["cifar"], cifar_classes)):
        if len(classes) != 10:
            raise MoeError(f"archive {archive} has {len(classes)} class folders; expected 10")
    splits = tuple(
        _combine(_split_arrays(mnist, s, archives["mnist"]), _split_arrays(cifar, s, archives["cifar"]))
        for s in ("train", "test")
    )
    return splits, {"mnist": mnist_classes, "cifar": cifar_classes}


def dataset_key(archive_name: str) -> str:
    """``mnist-png.tar.gz`` -> ``mnist``: the archive's stem without its image-format suffix."""
    stem = archive_name.split(".")[0]
    for suffix in ("-png", "-jpg", "-jpeg"):
        stem = stem.removesuffix(suffix)
    return stem


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
    """(dataset names, 20 class names) for a cache's info; ``dataset_names`` overrides the archives' stems."""
    archives = info.get("archives")
    if not archives:  # torchvision downloads: source 004's datasets
        names = dataset_names or ("MNIST", "CIFAR")
        folders = {"mnist": MNIST_CLASSES, "cifar": CIFAR_CLASSES}
    else:
        stems = [dataset_key(archives[k]["file"]) for k in ("mnist", "cifar")]
        names = dataset_names or tuple(DISPLAY_NAMES.get(s, s) for s in stems)
        folders = {k: archives[k]["classes"] for k in ("mnist", "cifar")}
    classes = [f"{names[i].lower()}:{class_label(c)}" for i, k in enumerate(("mnist", "cifar")) for c in folders[k]]
    return names, classes


def _no_data_message(reason: str) -> str:
    return (
        f"no MNIST/CIFAR-10 data ({reason}); either set MOE_DATA_MIRROR to a folder holding "
        f"{MNIST_ARCHIVE} and {CIFAR_ARCHIVE}, or connect to the internet so torchvision can download into {paths.RAW_DIR}"
    )


def _build_from_download() -> tuple[Split, Split]:
    from PIL import Image
    from torchvision import datasets

    raw = paths.RAW_DIR
    result = []
    for train in (True, False):
        try:
            mnist = datasets.MNIST(raw, train=train, download=True)
            cifar = datasets.CIFAR10(raw, train=train, download=True)
        except Exception as exc:  # torchvision raises URLError/RuntimeError/OSError when offline
            raise MoeError(_no_data_message(f"download failed: {' '.join(str(exc).split())}")) from None
        mnist_images = np.stack([to_gray_square(Image.fromarray(img.numpy(), "L"), IMAGE_SIZE) for img in mnist.data])
        cifar_images = np.stack([to_gray_square(Image.fromarray(img, "RGB"), IMAGE_SIZE) for img in cifar.data])
        result.append(_combine((mnist_images, mnist.targets.numpy()), (cifar_images, np.asarray(cifar.targets))))
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


def existing_cache() -> Path | None:
    """The one cache whose data is still where it came from (lets ``"auto"`` work offline after a first build).

    None when there is none; a one-line MoeError when several qualify, since recency says nothing about identity.
    """
    caches = [c for c in sorted(paths.PROCESSED_DIR.glob("mnist_cifar_*.pt")) if cache_still_matches(c)]
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
    if cache.exists() and not rebuild:
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
            "train": {"images": train.images, "labels": train.labels, "is_mnist": train.is_mnist},
            "test": {"images": test.images, "labels": test.labels, "is_mnist": test.is_mnist},
            "info": json.dumps(
                {"v": CACHE_VERSION, "source": source, "origin": origin, "preprocessing": PREPROCESSING, **identity}
            ),
        }
        with atomic_path(cache) as tmp:
            torch.save(payload, tmp)
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
    data = MnistCifar(
        train=Split(**payload["train"]),
        test=Split(**payload["test"]),
        source=source,
        cache_path=cache,
        info=info,
        class_names=classes,
        dataset_names=names,
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
