"""Role: the one place that touches pytest-benchmark's internals.

The benchmarks time custom/builtin/bare *interleaved* in one test and record
them as three entries of the test's group, which pytest-benchmark's public
API (``benchmark(fn)``, ``benchmark.pedantic``) cannot do. This module uses,
and checks for, exactly these non-public pieces of its ``BenchmarkFixture``:

* ``_add_stats``: appends one entry (a ``pytest_benchmark.stats.Metadata``)
  to the session, so that the table, ``--benchmark-save`` and
  ``pytest-benchmark compare`` see it;
* ``_mode``: marks the fixture as used, or pytest-benchmark warns that the
  test never called it.

Checked with pytest-benchmark 5.3.1; pyproject's ``test`` extra pins the range
(``>=4.0,<6``) in which both have existed. A layout without them fails with
an error naming the installed version.
"""

from __future__ import annotations

import types

__all__ = ["add_interleaved_entry", "mark_used", "SUPPORTED_RANGE"]

SUPPORTED_RANGE = ">=4.0,<6"


def _require(benchmark, attr):
    if not hasattr(benchmark, attr):
        import pytest_benchmark
        raise RuntimeError(
            f"pytest-benchmark {pytest_benchmark.__version__}: its benchmark fixture has "
            f"no {attr!r}; benchmarks/bench_pytest_benchmark.py supports "
            f"pytest-benchmark{SUPPORTED_RANGE}")


def add_interleaved_entry(benchmark, name, group, per_call, calls_per_round,
                          extra_info, params):
    """Record one impl of an interleaved group as a pytest-benchmark entry.

    Args:
        benchmark: the test's ``benchmark`` fixture.
        name: the impl (``custom``, ``builtin``, ``bare``).
        group: the group name shared by the impls.
        per_call: seconds per call, one value per round.
        calls_per_round: calls timed in each round.
        extra_info: stored with the entry.
        params: the test's params plus ``impl``.
    """
    from pytest_benchmark.stats import Metadata

    _require(benchmark, "_add_stats")
    param = benchmark.param or ""
    shim = types.SimpleNamespace(
        name=f"{name}[{param}]", fullname=f"{benchmark.fullname}::{name}",
        group=group, param=param, params=params, extra_info=extra_info,
        cprofile_stats=None, has_error=False)
    meta = Metadata(shim, iterations=calls_per_round, options={
        "disable_gc": True, "timer": "perf_counter",
        "min_rounds": len(per_call), "max_time": None, "min_time": None,
        "warmup": True, "interleaved": True})
    for t in per_call:
        meta.stats.update(t)
    benchmark._add_stats(meta)


def mark_used(benchmark, how: str) -> None:
    """Tell pytest-benchmark the fixture was used (``how`` shows in its errors)."""
    _require(benchmark, "_mode")
    benchmark._mode = how
