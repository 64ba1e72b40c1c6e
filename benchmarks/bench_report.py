"""Role: the ratio table printed at the end of a benchmark run (and written
by ``--ratio-table``), through :func:`customlayers._table.format_table`."""

from __future__ import annotations

import statistics

from customlayers._table import format_table

__all__ = ["ratio_table"]

HEADER = ("group", "custom", "builtin", "bare", "custom/builtin median",
          "IQR (ci_hi, of medians)", "custom/bare median",
          "IQR (ci_hi, of medians)", "gate")


def _fmt_t(s):
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} us"


def _fmt_r(st):
    if not st:
        return "-", "-"
    return (f"{st['median']:.3f}",
            f"{st['q1']:.2f}-{st['q3']:.2f} (ci_hi {st['ci_hi']:.2f}, "
            f"of medians {st['of_medians']:.3f})")


def ratio_table(rows) -> str:
    """Markdown table, one row per ``(group, per_call, ratios, verdict)``."""
    out = []
    for group, per, ratios, verdict in rows:
        med = {k: statistics.median_high(v) for k, v in per.items()}
        times = [_fmt_t(med[k]) if k in med else "-" for k in ("custom", "builtin", "bare")]
        out.append((group, *times, *_fmt_r(ratios.get("builtin")),
                    *_fmt_r(ratios.get("bare")), verdict or "-"))
    return format_table(HEADER, out, align="lrrrrlrll", style="markdown")
