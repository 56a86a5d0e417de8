"""Read image-folder archives (``<split>/<class>/<name>.<ext>`` inside a .tar.gz) into uint8 arrays."""

from __future__ import annotations

import io
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import MoeError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
# Upsampling filter for images whose side differs from the target (MNIST 28 -> 32).
RESAMPLE_FILTER = Image.Resampling.BILINEAR
# PIL's convert("L") applies the ITU-R 601-2 luma transform: L = 299/1000 R + 587/1000 G + 114/1000 B.
LUMA_FORMULA = "L = 0.299 R + 0.587 G + 0.114 B (ITU-R 601-2, PIL convert('L'))"


@dataclass
class ArchiveSplit:
    """Images of one split of an image-folder archive."""

    images: np.ndarray  # [n, size, size] uint8
    labels: np.ndarray  # [n] int64, index into class_names
    names: list[str]  # file stems, in the order of ``images``


def to_gray_square(image: Image.Image, size: int) -> np.ndarray:
    """Convert a PIL image to 8-bit grayscale and resize it to ``size``×``size`` (bilinear)."""
    gray = image.convert("L")
    if gray.size != (size, size):
        gray = gray.resize((size, size), RESAMPLE_FILTER)
    return np.asarray(gray, dtype=np.uint8)


def _sort_key(stem: str) -> tuple[int, int, str]:
    """Numbers first, in numeric order, then names; a numeric prefix sorts as a number ("2_dot" before "10_plus")."""
    digits = len(stem) - len(stem.lstrip("0123456789"))
    return (0, int(stem[:digits]), stem[digits:]) if digits else (1, 0, stem)


def read_image_folder_archive(path: str | Path, size: int = 32) -> tuple[dict[str, ArchiveSplit], list[str]]:
    """Decode every image of a ``<split>/<class>/<file>`` tar.gz archive to grayscale ``size``×``size``.

    Returns the splits by name and the sorted class names (class folders sort into label order).
    Images inside one split are ordered by (class, numeric file name).
    """
    path = Path(path)
    if not path.is_file():
        raise MoeError(f"archive {path} does not exist")
    found: dict[str, dict[str, list[tuple[str, np.ndarray]]]] = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                parts = PurePosixPath(member.name).parts
                if (
                    not member.isfile()
                    or len(parts) < 3
                    or PurePosixPath(member.name).suffix.lower() not in IMAGE_SUFFIXES
                ):
                    continue
                split, cls, stem = parts[-3], parts[-2], PurePosixPath(parts[-1]).stem
                data = archive.extractfile(member).read()
                try:
                    with Image.open(io.BytesIO(data)) as image:
                        pixels = to_gray_square(image, size)
                except (OSError, UnidentifiedImageError, ValueError) as exc:
                    raise MoeError(
                        f"archive {path} is corrupt or unreadable: image {member.name} cannot be decoded "
                        f"({type(exc).__name__})"
                    ) from None
                found.setdefault(split, {}).setdefault(cls, []).append((stem, pixels))
    except (tarfile.TarError, OSError, EOFError, zlib.error, UnidentifiedImageError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise MoeError(f"archive {path} is corrupt or unreadable: {reason}") from None
    if not found:
        raise MoeError(f"archive {path} holds no images in the <split>/<class>/<file> layout")
    class_names = sorted({cls for classes in found.values() for cls in classes}, key=_sort_key)
    label_of = {cls: i for i, cls in enumerate(class_names)}
    splits = {}
    for split, classes in found.items():
        rows = [(label_of[cls], _sort_key(stem), stem, px) for cls, items in classes.items() for stem, px in items]
        rows.sort(key=lambda r: (r[0], r[1]))
        splits[split] = ArchiveSplit(
            images=np.stack([r[3] for r in rows]),
            labels=np.array([r[0] for r in rows], dtype=np.int64),
            names=[r[2] for r in rows],
        )
    return splits, class_names
