"""The committed notebooks as a reader sees them (HTML via nbconvert): no machine paths, finished progress, alt text."""

from __future__ import annotations

import re

import pytest

from moe_utils.io import paths
from moe_utils.pipeline import list_notebooks

NO_ALT = "No description has been provided for this image"  # nbconvert's stand-in when an image has no alt text


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    """Every committed notebook exported to HTML."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter()
    return {p.name: exporter.from_filename(str(p))[0] for p in list_notebooks()}


def outputs_only(html: str) -> str:
    """The HTML of the output areas (code and Markdown cells are the source, not what ran)."""
    return " ".join(re.findall(r'<div class="[^"]*jp-OutputArea-output[^"]*"[^>]*>.*?</div>', html, flags=re.S))


def test_no_absolute_paths_of_the_machine_that_ran_them(rendered):
    for name, html in rendered.items():
        shown = outputs_only(html)
        assert str(paths.REPO_ROOT) not in shown and "PosixPath(" not in shown, name
        assert not re.search(r"(?<![\w.])/(?:tmp|home|root|work|Users)/", shown), name


def saved_texts(notebook) -> str:
    """Every text a notebook's outputs carry: streams and text/plain fallbacks (a widget's saved state is one)."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(t if isinstance(t, str) else "".join(t) for t in texts)


def test_no_progress_bar_frozen_unfinished(rendered):
    for notebook in list_notebooks():
        shown = outputs_only(rendered[notebook.name]) + saved_texts(notebook)
        bars = re.findall(r"(\d+)%\|", shown)
        assert all(b == "100" for b in bars), (notebook.name, bars)
        assert "application/vnd.jupyter.widget-view+json" not in notebook.read_text(), (
            notebook.name
        )  # a live widget saved


def test_every_image_has_alternative_text(rendered):
    for name, html in rendered.items():
        images = re.findall(r"<img\b[^>]*>", html)
        assert images, f"{name} shows no figure"  # every notebook draws at least one
        for tag in images:
            assert 'alt="' in tag and NO_ALT not in tag, (name, tag[:120])
