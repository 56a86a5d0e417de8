"""Explorers: ipywidgets controls that redraw a view in JupyterLab, one static default view everywhere else.

A view is a plain function of its choices that returns a matplotlib figure (tested without widgets). Under the
papermill pipeline (``$MOE_FIGURES_DIR`` set), with ``$MOE_STATIC_EXPLORERS=1`` or without ipywidgets, the explorer
shows the default view as an image with alternative text, so nbconvert HTML and code-hosting sites show a figure, not
"Widget Javascript not detected".
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable

import matplotlib.pyplot as plt

from ..errors import MoeError
from . import paths
from .figures import show_png

STATIC_ENV = "MOE_STATIC_EXPLORERS"


def figure_png(fig: plt.Figure, dpi: int = 100) -> bytes:
    """A figure's PNG bytes (the figure is closed)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def live() -> bool:
    """Whether controls can run here: an IPython kernel outside the pipeline, with ipywidgets installed."""
    if os.environ.get(paths.FIGURES_ENV) or os.environ.get(STATIC_ENV) == "1":
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def check_choices(controls: dict[str, list | str], choices: dict) -> None:
    """Every choice is one of its control's options, or a string for a text box (one line naming the control and
    the options otherwise)."""
    for name, value in choices.items():
        if name not in controls:
            raise MoeError(f"{name!r} is not a control of this explorer; its controls: {', '.join(controls)}")
        if isinstance(controls[name], str):
            if not isinstance(value, str):
                raise MoeError(f"{name}={value!r} is not allowed; it must be a text (a str)")
        elif value not in controls[name]:
            raise MoeError(f"{name}={value!r} is not allowed; allowed: {', '.join(map(repr, controls[name]))}")


def default_choices(controls: dict[str, list | str], defaults: dict) -> dict:
    """Each control's default: ``defaults[name]``, else a text box's text or a dropdown's first option."""
    return {
        name: defaults.get(name, options if isinstance(options, str) else options[0])
        for name, options in controls.items()
    }


def control_widget(name: str, options: list | str, value):
    """A dropdown for a list of options; a text box (redrawn on Enter or leaving it) for a default text."""
    import ipywidgets as widgets

    if isinstance(options, str):
        layout = widgets.Layout(width="60%")
        return widgets.Text(value=value, description=name, continuous_update=False, layout=layout)
    return widgets.Dropdown(options=options, value=value, description=name)


def explore(
    view: Callable[..., plt.Figure],
    controls: dict[str, list | str],
    alt: Callable[[dict], str],
    clears: dict[str, str] | None = None,
    **defaults,
):
    """Controls that redraw ``view(**choices)``: per entry of ``controls`` (name -> options), a dropdown of a list of
    options (the first, or ``defaults[name]``, is the default) or a text box for a str (the default text). Shows
    the controls when live, else the default view as a static image. ``clears`` empties a text box when another
    control changes (08: a new prompt clears the previous prompt's answer), in the same redraw."""
    choices = default_choices(controls, defaults)
    check_choices(controls, choices)
    if not live():
        note = " Static view of the default choices; open the notebook in JupyterLab for the controls."
        show_png(figure_png(view(**choices)), alt(choices) + note)
        return None
    import ipywidgets as widgets
    from IPython.display import display

    boxes = {name: control_widget(name, options, choices[name]) for name, options in controls.items()}
    out = widgets.Output()

    cleared_by = {boxes[source]: boxes[target] for source, target in (clears or {}).items()}
    busy = [False]  # set while a cleared box changes, so that change does not redraw a second time

    def redraw(change=None):
        if busy[0]:
            return
        target = cleared_by.get(change["owner"]) if change else None
        if target is not None and target.value:
            busy[0] = True
            try:
                target.value = ""
            finally:
                busy[0] = False
        picked = {name: box.value for name, box in boxes.items()}
        png = figure_png(view(**picked))
        with out:
            out.clear_output(wait=True)
            show_png(png, alt(picked))

    for box in boxes.values():
        box.observe(redraw, names="value")
    rows = [widgets.HBox([b for b in boxes.values() if not isinstance(b, widgets.Text)])]
    rows += [b for b in boxes.values() if isinstance(b, widgets.Text)]
    panel = widgets.VBox([*rows, out])
    display(panel)
    redraw()
    return None  # shown once: returning the panel would display it a second time as the cell's value
