"""Harness throughput: equivalence examples per second, per mode and pair.

Not a timed test (issue 14, item 6): a script that runs the equivalence
property of customlayers' own pairs (``DENSE``, ``RELU``) the way the
property suite does (derandomized, the ``ci`` profile's settings) for a
fixed number of examples per dtype policy and mode, and prints examples per
second, mean input elements per example and the rank mix::

    python benchmarks/bench_equivalence.py                 # every mode
    python benchmarks/bench_equivalence.py --modes compiled --examples 20
    python benchmarks/bench_equivalence.py --json out.json

Wall time and the process's CPU time (all threads) are both reported: on a
loaded shared machine examples per CPU-second is the steadier measure. The
time includes everything an example costs (drawing, building both
layers, tracing or compiling, comparing); the first example of each
(pair, policy, mode) is included, as in the suite. Run it before and after
a change back to back on the same machine, and report the load average it
prints (a shared machine's timings are noisy).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _run(case, policy, mode, n, recorder):
    from hypothesis import settings

    from customlayers.testing import properties
    from customlayers.testing.properties import _base, equivalence

    shapes = []
    check = equivalence.check_equivalence

    def counting(case_, policy_, mode_, kwargs, x, *args, **kw):
        shapes.append((tuple(x.shape),
                       json.dumps(kwargs, sort_keys=True, default=repr)))
        return check(case_, policy_, mode_, kwargs, x, *args, **kw)

    key = f"equivalence/{mode}"
    old_weight = _base.WEIGHTS[key]
    settings.register_profile("bench", settings.get_profile("ci"),
                              max_examples=n)
    from customlayers.testing.profiles import _ACTIVE
    old_profile = _ACTIVE["name"]
    _ACTIVE["name"] = "bench"
    _base.WEIGHTS[key] = 1.0
    equivalence.check_equivalence = counting
    try:
        prop = properties.equivalence_property(case, policy, mode, recorder)
        t, cpu = time.perf_counter(), time.process_time()
        prop()
        seconds = time.perf_counter() - t
        cpu_seconds = time.process_time() - cpu
    finally:
        equivalence.check_equivalence = check
        _base.WEIGHTS[key] = old_weight
        _ACTIVE["name"] = old_profile
    return seconds, cpu_seconds, shapes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", nargs="*", default=["Dense", "ReLU"])
    parser.add_argument("--modes", nargs="*", default=None)
    parser.add_argument("--policies", nargs="*", default=None,
                        help="default: every policy the suite sweeps")
    parser.add_argument("--examples", type=int, default=None,
                        help="examples per (pair, policy, mode); default: "
                             "eager 20, graph 20, compiled 8")
    parser.add_argument("--json", default=None, help="also write results")
    parser.add_argument("--no-reuse", action="store_true",
                        help="every example builds a fresh pair "
                             "(LayerCase(reuse_layers=False)): the same "
                             "draws as the default, for an A/B of "
                             "customlayers.testing.pairs")
    args = parser.parse_args(argv)

    from customlayers.testing.profiles import register_profiles
    register_profiles()
    from customlayers._keras import KERAS_VERSION
    from customlayers.testing.backends import BACKEND, supported_modes
    from customlayers.testing.cases import CASES
    from customlayers.testing.report import Recorder
    from customlayers.testing.strategies import POLICIES

    default_n = {"eager": 20, "graph": 20, "compiled": 8}
    support = supported_modes()
    modes = [m for m in (args.modes or list(default_n)) if not support[m]]
    policies = args.policies or list(POLICIES)
    print(f"# {platform.node()} {platform.machine()} cpus={os.cpu_count()} "
          f"python {platform.python_version()} keras {KERAS_VERSION} "
          f"backend {BACKEND}", flush=True)
    print(f"# load average at start: {os.getloadavg()}", flush=True)
    rows = []
    recorder = Recorder()
    for name in args.pairs:
        case = CASES[name]
        if args.no_reuse:
            case = dataclasses.replace(case, reuse_layers=False)
        for mode in modes:
            n = args.examples or default_n[mode]
            total_s, total_cpu, all_shapes = 0.0, 0.0, []
            for policy in policies:
                s, cpu, shapes = _run(case, policy, mode, n, recorder)
                total_s += s
                total_cpu += cpu
                all_shapes += shapes
            signatures = len(set(all_shapes))
            all_shapes = [sh for sh, _ in all_shapes]
            sizes = [int(__import__("numpy").prod(sh)) for sh in all_shapes]
            ranks = collections.Counter(len(sh) for sh in all_shapes)
            row = dict(pair=name, mode=mode, reuse=not args.no_reuse,
                       examples=len(all_shapes),
                       # distinct (constructor arguments, input shape)
                       signatures=signatures,
                       seconds=round(total_s, 2),
                       examples_per_s=round(len(all_shapes) / total_s, 2),
                       cpu_seconds=round(total_cpu, 2),
                       examples_per_cpu_s=round(len(all_shapes) / total_cpu,
                                                2),
                       mean_elements=round(sum(sizes) / max(1, len(sizes)),
                                           1),
                       ranks=dict(sorted(ranks.items())))
            rows.append(row)
            print(f"{name:6s} {mode:9s} {row['examples']:4d} ex "
                  f"({signatures:3d} sig) "
                  f"{row['seconds']:7.2f} s  {row['examples_per_s']:6.2f} "
                  f"ex/s  cpu {row['cpu_seconds']:7.2f} s "
                  f"{row['examples_per_cpu_s']:6.2f} ex/cpu-s  mean elements {row['mean_elements']:7.1f}  "
                  f"ranks {row['ranks']}", flush=True)
    print(f"# load average at end: {os.getloadavg()}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(keras=KERAS_VERSION, backend=BACKEND,
                           policies=policies, rows=rows,
                           load=os.getloadavg()), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
