"""Throughput benchmarks: custom layers vs Keras built-ins vs bare ops.

Not part of the default test run (``testpaths = ["tests"]``); name the folder::

    python -m pytest benchmarks --benchmark-autosave --ratio-gate=0.95

Each pytest test is one *group* (layer x shape x dtype x pass x mode, or the
``model.fit`` epoch). Inside it the three implementations (``custom``,
``builtin``, ``bare``) are timed **interleaved**: round r runs every impl once,
in an order that rotates each round, so slow drift of a shared machine hits all
three alike. The three results go into pytest-benchmark's session as three
entries of that group (names ``custom[...]``, ``builtin[...]``, ``bare[...]``),
so the usual table, ``--benchmark-save``/``--benchmark-autosave``/
``--benchmark-storage`` and ``pytest-benchmark compare`` all work on them. Stats
are seconds per call; a round runs ``k`` calls (``extra_info.calls_per_round``,
the same for the three impls of a group) and then waits for the device.

Ratio table and gate
--------------------
For each group the per-round throughput ratio ``rho_i = t_builtin_i /
t_custom_i`` is computed from the paired (same-round) timings; likewise against
``bare``. The table printed at the end shows per group the median of rho, its
interquartile range (q1-q3), and ``ci_hi = median + 1.58 * IQR / sqrt(n)``, the
upper end of the ~95% notch interval of that median (the boxplot notch), plus
the ratio of the two medians.

``--ratio-gate=G`` (e.g. 0.95) judges every group that has a built-in:

* ``pass``  -- median rho >= G and median(t_builtin)/median(t_custom) >= G;
* ``noise`` -- below G on one of those, but within measured noise: ci_hi >= G
  or the ratio of medians >= G. Reported, not failed;
* ``FAIL``  -- all three below G: custom is slower than G x built-in beyond
  the noise this run measured.

Any ``FAIL`` sets the exit status to 1 (in ``pytest_sessionfinish``) even when
every test passed. Only custom/builtin is gated; custom/bare is shown for
information (bare has no Keras overhead at all).

Options: ``--ratio-gate``, ``--ratio-table=FILE`` (also write the table as
Markdown), ``--bench-rounds``, ``--bench-warmup``, ``--bench-round-time``
(seconds one round of ``k`` calls aims at), ``--bench-all-shapes`` (also the
GPU-only shape and dtype on CPU), ``--bench-torch-compile`` (torch ``compiled``
mode via ``torch.compile``), ``--bench-fit-rounds``.
Markers: ``gate`` (the short CPU subset for CI: ``-m gate``).
"""

from __future__ import annotations

import os
import sys
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import bench_env  # noqa: E402
import bench_report  # noqa: E402
import bench_stats  # noqa: E402
from bench_matrix import BACKEND  # noqa: E402
from bench_pytest_benchmark import add_interleaved_entry, mark_used  # noqa: E402
from bench_timing import Settings, measure_interleaved  # noqa: E402

_STATE = {"load_start": None, "rows": [], "failed": [], "gate": None}


def pytest_addoption(parser):
    g = parser.getgroup("customlayers benchmarks")
    g.addoption("--ratio-gate", type=float, default=None, metavar="G",
                help="fail the run when custom throughput < G x builtin in "
                     "any group beyond measured noise (see benchmarks/conftest.py)")
    g.addoption("--ratio-table", default=None, metavar="FILE",
                help="also write the ratio table as Markdown to FILE")
    g.addoption("--bench-rounds", type=int, default=21,
                help="timed rounds per impl and group (default 21)")
    g.addoption("--bench-warmup", type=int, default=3,
                help="untimed calls per impl after the compile call (default 3)")
    g.addoption("--bench-round-time", type=float, default=0.02,
                help="seconds one round of k calls aims at (default 0.02)")
    g.addoption("--bench-all-shapes", action="store_true",
                help="also run the GPU-only shape/dtype on a CPU")
    g.addoption("--bench-torch-compile", action="store_true",
                help="torch backend: add the 'compiled' mode (torch.compile)")
    g.addoption("--bench-fit-rounds", type=int, default=7,
                help="timed rounds of the model.fit epoch benchmark (default "
                     "7: at 3 the CPU ratio swung 0.84-1.05 between runs)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "gate: the short CPU subset run by CI (-m gate)")
    _STATE["load_start"] = _loadavg()
    _STATE["gate"] = config.getoption("--ratio-gate", default=None)


def pytest_collection_modifyitems(session, config, items):
    # The model.fit epochs last: on a budgeted run they are the first to go.
    items.sort(key=lambda it: "test_fit.py" in it.nodeid)


def _loadavg():
    try:
        return os.getloadavg()
    except OSError:
        return None


@pytest.fixture(scope="session")
def bench_settings(request):
    c = request.config
    return Settings(
        rounds=c.getoption("--bench-rounds"),
        warmup=c.getoption("--bench-warmup"),
        round_time=c.getoption("--bench-round-time"),
    )


def pytest_report_header(config):
    v = bench_env.backend_versions()
    return [f"customlayers benchmarks: keras {v['keras']} on {BACKEND} "
            f"({v.get('tensorflow') or v.get('jax') or v.get('torch')}); "
            f"device {bench_env.device_description()}; load average at start "
            f"{_STATE['load_start']}"]


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["customlayers_bench"] = dict(
        bench_env.backend_versions(),
        device=bench_env.device_description(),
        gpus=bench_env.gpu_names(),
        loadavg_at_start=_STATE["load_start"],
        cpu_count=os.cpu_count(),
    )


# ---------------------------------------------------------------------------
# Recording interleaved results as pytest-benchmark entries
# ---------------------------------------------------------------------------


def record_group(benchmark, group, timings, info, gate=None):
    """Turn one group's interleaved timings into pytest-benchmark entries.

    ``timings.per_call[impl]`` lists seconds per call for each round.
    Returns the custom entry's extra_info (with the ratio statistics).
    """
    per = timings.per_call
    ratios = {}
    if "custom" in per:
        for ref in ("builtin", "bare"):
            if ref in per:
                ratios[ref] = bench_stats.ratio_stats(per[ref], per["custom"])
    verdict = bench_stats.gate_verdict(ratios.get("builtin"), gate)
    custom_extra = None
    for impl, data in per.items():
        extra = dict(info, impl=impl, group=group,
                     calls_per_round=timings.calls_per_round,
                     backend=BACKEND)
        med = statistics.median_high(data)
        if info.get("batch"):
            extra["samples_per_s_median"] = info["batch"] / med
        if info.get("flops"):
            extra["tflops_median"] = info["flops"] / med / 1e12
        if impl == "custom":
            for ref, st in ratios.items():
                extra[f"ratio_vs_{ref}"] = st
            extra["gate"] = gate
            extra["gate_verdict"] = verdict
            custom_extra = extra
        add_interleaved_entry(benchmark, impl, group, data,
                              timings.calls_per_round, extra,
                              dict(benchmark.params or {}, impl=impl))
    mark_used(benchmark, "interleaved custom/builtin/bare rounds")
    benchmark.extra_info.update(custom_extra or {})
    _STATE["rows"].append((group, per, ratios, verdict))
    return custom_extra


@pytest.fixture
def run_group(benchmark, bench_settings, request):
    """``run_group(group, steps, sync, info)``: measure and record one group."""
    gate = request.config.getoption("--ratio-gate")

    def run(group, steps, sync, info, settings=None):
        s = settings or bench_settings
        if benchmark.disabled:  # --benchmark-disable: smoke-run each step once
            for step in steps.values():
                sync(step())
            mark_used(benchmark, "disabled smoke run")
            return None
        timings = measure_interleaved(steps, sync, s)
        return record_group(benchmark, group, timings, info, gate)
    return run


# ---------------------------------------------------------------------------
# Session end: ratio table and the gate
# ---------------------------------------------------------------------------


def pytest_sessionfinish(session, exitstatus):
    rows = _STATE["rows"]
    gate = _STATE["gate"]
    _STATE["failed"] = [r[0] for r in rows if r[3] == "FAIL"]
    _STATE["load_end"] = _loadavg()
    path = session.config.getoption("--ratio-table", default=None)
    if path and rows:
        with open(path, "w") as f:
            f.write(f"<!-- {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; backend "
                    f"{BACKEND}; {bench_env.device_description()}; "
                    f"loadavg start {_STATE['load_start']} end "
                    f"{_STATE['load_end']}; gate {gate} -->\n")
            f.write(bench_report.ratio_table(rows) + "\n")
    if gate is not None and _STATE["failed"] and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    rows = _STATE["rows"]
    if not rows:
        return
    gate = _STATE["gate"]
    tr = terminalreporter
    tr.section(f"customlayers throughput ratios ({BACKEND}, "
               f"{bench_env.device_description()})")
    tr.write_line("ratio = throughput(custom) / throughput(ref) from paired "
                  "interleaved rounds; >1 means custom is faster")
    for line in bench_report.ratio_table(rows).splitlines():
        tr.write_line(line)
    tr.write_line(f"load average: start {_STATE['load_start']}, end "
                  f"{_STATE.get('load_end')}")
    if gate is None:
        tr.write_line("no --ratio-gate given: table only")
        return
    noise = [r[0] for r in rows if r[3] == "noise"]
    if noise:
        tr.write_line(f"ratio gate {gate}: below the gate within measured "
                      f"noise (not failed): {len(noise)} group(s)", yellow=True)
    if _STATE["failed"]:
        tr.write_line(f"RATIO GATE FAILED ({gate}): custom slower than "
                      f"{gate} x builtin beyond noise in "
                      f"{len(_STATE['failed'])} group(s):", red=True, bold=True)
        for g in _STATE["failed"]:
            tr.write_line(f"  {g}", red=True)
    else:
        tr.write_line(f"ratio gate {gate}: passed", green=True)
