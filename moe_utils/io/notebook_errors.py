"""In a notebook kernel, show the project's own errors (``MoeError``) as one line instead of an IPython traceback."""

from __future__ import annotations


def one_line_errors() -> bool:
    """Install the one-line display of MoeError in the running IPython kernel (once); False outside IPython.

    The cell still fails (papermill and "Run all" stop there); only the display changes: ``error: <message>``.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    from ..errors import MoeError

    def show(shell, etype, value, tb, tb_offset=None):
        stb = [f"error: {value}"]
        shell._showtraceback(etype, value, stb)
        return stb

    shell.set_custom_exc((MoeError,), show)
    return True
