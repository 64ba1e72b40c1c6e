"""Role: the one text-table formatter of the project (train's results, the
benchmarks' ratio table, ``.ci/matrix_table.py``).

    >>> print(format_table(("env", "passed"), [("tf212", "10")]))
    env    passed
    -----  ------
    tf212      10
    >>> print(format_table(("env", "passed"), [("tf212", "10")], style="markdown"))
    | env | passed |
    |:---|---:|
    | tf212 | 10 |
"""

from __future__ import annotations

from typing import Optional, Sequence

__all__ = ["format_table"]

_STYLES = ("plain", "markdown")


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]],
                 align: Optional[str] = None, style: str = "plain") -> str:
    """Format a table of strings.

    Args:
        header: the column names.
        rows: one sequence of cell strings per row, as long as ``header``.
        align: one character per column, ``"l"`` or ``"r"``; default: the first
            column left, the others right.
        style: ``"plain"`` (columns padded, two spaces apart, a dashed rule
            under the header) or ``"markdown"`` (a GitHub table, unpadded).

    Returns:
        The table, lines joined with ``"\\n"``, no trailing newline.

    Raises:
        ValueError: a row or ``align`` of the wrong length, an unknown
            alignment character or style, or a cell that is not a string.
    """
    n = len(header)
    if style not in _STYLES:
        raise ValueError(f"style must be one of {_STYLES}; got {style!r}")
    if align is None:
        align = "l" + "r" * (n - 1)
    if len(align) != n or set(align) - {"l", "r"}:
        raise ValueError(f"align must be {n} characters, each 'l' or 'r'; got {align!r}")
    rows = [tuple(r) for r in rows]
    for i, row in enumerate(rows):
        if len(row) != n:
            raise ValueError(f"row {i} has {len(row)} cells; the header has {n}: {row!r}")
        bad = [c for c in row if not isinstance(c, str)]
        if bad:
            raise ValueError(f"row {i}: cells must be strings; got {bad[0]!r}")
    if style == "markdown":
        rule = "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|"
        return "\n".join(["| " + " | ".join(header) + " |", rule]
                         + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w)
                         for c, w, a in zip(cells, widths, align)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])]
                     + [line(r) for r in rows])
