"""``%load_ext moe_utils.io.magics`` gives the cell magic ``%%only_if EXPR``: run the cell only when EXPR is true.

Notebooks 04-07 mark the cells that train and analyse their own model with ``%%only_if own``, and those for an
external model (``MODEL`` a hub id or folder) with ``%%only_if not own``; a skipped cell prints one line saying so.
"""
from __future__ import annotations


def load_ipython_extension(ipython) -> None:
    """Register ``%%only_if`` in ``ipython`` (called by ``%load_ext``)."""
    from IPython.core.magic import register_cell_magic

    @register_cell_magic
    def only_if(line: str, cell: str):
        """Run the cell when the expression on the magic line is true; errors inside it fail the cell as usual."""
        if ipython.ev(line):
            ipython.run_cell(cell).raise_error()
        else:
            print(f"(skipped: {line.strip()} is false)")
