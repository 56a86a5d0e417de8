"""Overlapping text in a figure: titles, axis labels, tick labels and legends that cover one another."""

from __future__ import annotations

import matplotlib.pyplot as plt


def _drawn_ticks(ax, axis, name: str, renderer) -> list:
    """The tick labels of ``axis`` that are drawn: visible, non-empty and inside the axes' span."""
    span = ax.get_window_extent(renderer)
    low, high = (span.x0, span.x1) if name == "x" else (span.y0, span.y1)
    kept = []
    for tick in axis.get_ticklabels():
        if not (tick.get_visible() and tick.get_text()):
            continue
        box = tick.get_window_extent(renderer)
        centre = (box.x0 + box.x1) / 2 if name == "x" else (box.y0 + box.y1) / 2
        if low - 1 <= centre <= high + 1:
            kept.append(tick)
    return kept


def _texts(fig: plt.Figure, renderer) -> list[tuple[str, object, object]]:
    """(what, artist, group) for every piece of text a reader must read; tick labels of one axis share a group."""
    found = []
    if getattr(fig, "_suptitle", None) is not None and fig._suptitle.get_text():
        found.append(("suptitle", fig._suptitle, None))
    for legend in fig.legends:
        found.append(("figure legend", legend, None))
    for i, ax in enumerate(fig.axes):
        for title in (ax.title, ax._left_title, ax._right_title):
            if title.get_text():
                found.append((f"axes {i + 1} title", title, None))
        for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            if axis.label.get_text() and axis.label.get_visible():
                found.append((f"axes {i + 1} {name} label", axis.label, None))
            ticks = _drawn_ticks(ax, axis, name, renderer)
            found += [(f"axes {i + 1} {name} tick {t.get_text()!r}", t, (i, name)) for t in ticks]
        if ax.get_legend() is not None:
            found.append((f"axes {i + 1} legend", ax.get_legend(), None))
    return found


def _shape(artist, renderer) -> tuple:
    """(axis-aligned box, centre, unrotated width, unrotated height, rotation in radians) of a text or legend."""
    import math

    box = artist.get_window_extent(renderer)
    centre = ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)
    angle = artist.get_rotation() % 180 if hasattr(artist, "get_rotation") else 0.0
    if angle % 90 == 0:
        return box, centre, box.width, box.height, 0.0
    artist.set_rotation(0)
    flat = artist.get_window_extent(renderer)
    artist.set_rotation(angle)
    return box, centre, flat.width, flat.height, math.radians(angle)


def _overlap(a: tuple, b: tuple, tolerance: float) -> bool:
    """Whether two texts' boxes overlap: rotated rectangles when both are turned by the same angle (rotated tick
    labels), else their axis-aligned boxes."""
    import math

    (box_a, centre_a, w_a, h_a, angle_a), (box_b, centre_b, w_b, h_b, angle_b) = a, b
    if angle_a and abs(angle_a - angle_b) < 1e-6:
        dx, dy = centre_b[0] - centre_a[0], centre_b[1] - centre_a[1]
        along = abs(dx * math.cos(angle_a) + dy * math.sin(angle_a))
        across = abs(-dx * math.sin(angle_a) + dy * math.cos(angle_a))
        return along < (w_a + w_b) / 2 - tolerance and across < (h_a + h_b) / 2 - tolerance
    width = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
    height = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
    return width > tolerance and height > tolerance


def overlapping_text(fig: plt.Figure, tolerance: float = 1.0) -> list[str]:
    """Pairs of texts whose boxes overlap by more than ``tolerance`` pixels, e.g. ["axes 1 title / axes 2 title"].
    Tick labels are compared within their axis (run-together labels) and with everything else."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    shapes = [(what, _shape(artist, renderer), group) for what, artist, group in _texts(fig, renderer)]
    clashes = []
    for a in range(len(shapes)):
        for b in range(a + 1, len(shapes)):
            (name_a, shape_a, group_a), (name_b, shape_b, group_b) = shapes[a], shapes[b]
            if group_a is not None and group_b is not None and group_a != group_b:
                continue  # tick labels of different axes sit apart by construction
            if _overlap(shape_a, shape_b, tolerance):
                clashes.append(f"{name_a} / {name_b}")
    return clashes
