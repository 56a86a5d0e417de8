"""Wikipedia (en): WikiText-2's tokenized validation + test files, one document per article."""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

from ...errors import MoeError
from ...io import paths
from ...io.atomic import atomic_path
from .text import DomainText

WIKITEXT_FILES = ("valid.txt", "test.txt")
WIKITEXT_URL = "https://raw.githubusercontent.com/pytorch/examples/main/word_language_model/data/wikitext-2/{name}"
WIKITEXT_SHA256 = {
    "valid.txt": "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8",
    "test.txt": "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0",
}


def _wikitext_articles(text: str) -> list[str]:
    """Split WikiText lines into articles at `` = Title = `` lines, dropping heading and empty lines."""
    articles, current = [], []
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("=") and stripped.endswith("="):
            if stripped.startswith("= ") and not stripped.startswith("= ="):  # top-level title
                if current:
                    articles.append("".join(current))
                current = []
            continue
        current.append(line if line.endswith("\n") else line + "\n")
    if current:
        articles.append("".join(current))
    return articles


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wikitext_help(reason: str) -> str:
    return (
        f"no WikiText-2 data ({reason}); either set {paths.MIRROR_ENV} to a folder holding "
        f"wikitext-2/{' and wikitext-2/'.join(WIKITEXT_FILES)}, or connect to the internet so they can be "
        f"downloaded into {paths.RAW_DIR / 'wikitext-2'}"
    )


def _download_wikitext(folder: Path) -> None:
    for name in WIKITEXT_FILES:
        target = folder / name
        if target.is_file() and _sha256(target) == WIKITEXT_SHA256[name]:
            continue
        url = WIKITEXT_URL.format(name=name)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                payload = response.read()
        except Exception as exc:  # URLError, timeouts, HTTP errors
            raise MoeError(_wikitext_help(f"download of {url} failed: {' '.join(str(exc).split())}")) from None
        if hashlib.sha256(payload).hexdigest() != WIKITEXT_SHA256[name]:
            raise MoeError(_wikitext_help(f"download of {url} has an unexpected sha256"))
        with atomic_path(target) as tmp:
            tmp.write_bytes(payload)


def _wikitext_folder() -> tuple[Path, str]:
    mirror = paths.mirror_dir()
    if mirror is not None:
        folder = mirror / "wikitext-2"
        missing = [n for n in WIKITEXT_FILES if not (folder / n).is_file()]
        if missing:
            lacking = ", ".join(f"wikitext-2/{n}" for n in missing)
            raise MoeError(_wikitext_help(f"{paths.MIRROR_ENV}={mirror} lacks {lacking}"))
        return folder, "mirror"
    folder = paths.RAW_DIR / "wikitext-2"
    _download_wikitext(folder)
    return folder, "download"


def load_wikipedia() -> DomainText:
    """WikiText-2 articles from the mirror (or downloaded once), with the files' checksums."""
    folder, source = _wikitext_folder()
    documents, files = [], {}
    for name in WIKITEXT_FILES:
        path = folder / name
        articles = _wikitext_articles(path.read_text(encoding="utf-8"))
        documents.extend(articles)
        digest = _sha256(path)
        files[name] = {
            "path": str(path),
            "sha256": digest,
            "matches_reference_sha256": digest == WIKITEXT_SHA256[name],
            "articles": len(articles),
        }
    info = {"source": source, "dataset": "WikiText-2 (tokenized release), valid+test", "files": files}
    return DomainText("wikipedia", documents, info)
