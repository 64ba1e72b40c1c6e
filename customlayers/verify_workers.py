"""Role: ``customlayers verify --workers N``: the battery in ``N`` parallel
processes, one merged report.

Each worker is a fresh ``customlayers verify`` process (no fork of a process
that already holds TensorFlow or XLA state) running one deterministic share
(:func:`customlayers.shards.worker_shards`) with its own JSON
report; their progress lines are relayed as they come, prefixed with the
worker's share, and their reports are merged into one table, one JSON and
one JUnit file. Together the workers run exactly the items a single process
would (``--shard i/n`` included), in the same profile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from customlayers import shards


def _worker_argv(args, shard, json_path) -> list:
    argv = [sys.executable, "-m", "customlayers_cli", "verify",
            "--profile", args.profile, "--shard", str(shard),
            "--json", json_path]
    for spec in args.case or []:
        argv += ["--case", spec]
    for flag, values in (("--cases", args.cases), ("--dtypes", args.dtypes),
                         ("--modes", args.modes)):
        if values:
            argv += [flag, *values]
    if args.artifacts:
        argv += ["--artifacts", args.artifacts]
    return argv


def _relay(proc, prefix, out, lock, tail):
    """Copy the worker's progress lines (``[ k/n] ...``) to ``out`` as they
    come; keep the rest (its table) for an error report."""
    for line in proc.stdout:
        tail.append(line)
        if line.startswith("[") or line.startswith("customlayers verify:"):
            with lock:
                print(f"{prefix} {line}", end="", file=out, flush=True)


def run_workers(args, out=sys.stdout) -> int:
    """Run the battery in ``args.workers`` processes; the exit code."""
    from customlayers import verify
    shard = shards.parse_shard(args.shard) if args.shard else None
    plan = shards.worker_shards(shard, args.workers)
    print(f"customlayers verify: {args.workers} workers, shares "
          f"{', '.join(map(str, plan))}"
          f"{f' (together share {shard})' if shard else ''}",
          file=out, flush=True)
    lock = threading.Lock()
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="customlayers-verify-") as tmp:
        runs = []
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for k, s in enumerate(plan, 1):
            path = os.path.join(tmp, f"share-{k}.json")
            proc = subprocess.Popen(
                _worker_argv(args, s, path), stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, env=env)
            tail: list = []
            t = threading.Thread(target=_relay, args=(
                proc, f"w{k}", out, lock, tail), daemon=True)
            t.start()
            runs.append((s, path, proc, t, tail))
        docs, names, broken = [], [], []
        for s, path, proc, t, tail in runs:
            rc = proc.wait()
            t.join()
            if rc not in (0, 1) or not os.path.exists(path):
                broken.append((s, rc, "".join(tail[-40:])))
                continue
            with open(path) as fh:
                docs.append(json.load(fh))
            names.append(f"worker share {s}")
    for s, rc, text in broken:
        print(f"\nworker share {s} exited {rc} without a report; its last "
              f"output:\n{text}", file=out)
    if broken:
        return 2 if all(rc == 2 for _, rc, _ in broken) else 1
    doc = shards.merge(docs, names, expect=plan)
    doc["seconds"] = time.time() - t0
    doc["workers"] = args.workers
    if shard:
        # The workers' shares, merged, are share ``shard`` of the battery.
        doc["shard"] = str(shard)
        doc.pop("merged_from", None)
    return verify.finish(doc, out=out, json_path=args.json,
                         junit_path=args.junit,
                         strict_known_differences=args.strict_known_differences)
