"""Role: the ratio statistics of paired rounds and the gate rule."""

from __future__ import annotations

import math
import statistics


def ratio_stats(ref_times, custom_times):
    """Throughput ratio custom/ref from paired rounds.

    Returns ``median`` (of the per-round ratios ref_i / custom_i), ``q1``,
    ``q3``, ``min``, ``max``, ``n``, ``ci_hi`` (upper end of the ~95% notch
    interval of the median: median + 1.58 * IQR / sqrt(n)) and ``of_medians``
    (median(ref) / median(custom)).
    """
    rs = [r / c for r, c in zip(ref_times, custom_times) if c > 0]
    if not rs:
        return None
    med = statistics.median(rs)
    # "inclusive": linear interpolation between order statistics, position
    # (n - 1) * q (numpy's default); one value is its own quartiles.
    q1, _, q3 = (statistics.quantiles(rs, n=4, method="inclusive")
                 if len(rs) > 1 else (rs[0],) * 3)
    n = len(rs)
    return {
        "median": med, "q1": q1, "q3": q3, "min": min(rs), "max": max(rs),
        "n": n, "ci_hi": med + 1.58 * (q3 - q1) / math.sqrt(n),
        "ci_lo": med - 1.58 * (q3 - q1) / math.sqrt(n),
        "of_medians": statistics.median(ref_times) / statistics.median(custom_times),
    }


def gate_verdict(stats, gate):
    """'pass', 'noise' (below the gate but within measured noise) or 'FAIL'.

    FAIL only when every estimate is below the gate: the median of the paired
    per-round ratios, the ratio of the two medians, and the upper end of the
    ~95% interval of the paired median (``ci_hi``).
    """
    if stats is None or gate is None:
        return ""
    if min(stats["median"], stats["of_medians"]) >= gate:
        return "pass"
    if max(stats["ci_hi"], stats["of_medians"]) >= gate:
        return "noise"
    return "FAIL"
