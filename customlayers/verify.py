"""``customlayers verify``: the whole equivalence battery, as a report.

Runs every generic property (:mod:`customlayers.testing.battery`) for each
selected layer pair under a Hypothesis profile, prints one line per property
as it finishes, then one row per (pair, check, dtype, mode): examples,
worst absolute and relative error, worst ULP distance, the share of the
tolerance used, and the verdict (``bit-exact``, ``pass``, ``expected``,
``ok`` or ``FAIL``). Each failure is printed once, with its minimal example
and how to replay it.

Pairs: customlayers' own (``--cases Dense ReLU``), any
:class:`~customlayers.testing.LayerCase` named as ``--case
pkg.module:NAME`` or ``--case path/to/file.py:NAME``, and the cases that
installed packages register under the entry-point group
``customlayers.cases``.

Exit status: 0 when everything passed, 1 when a check failed (or, with
``--strict-known-differences``, a known difference was stale), 2 for a
usage error (an unknown case, policy or mode included).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import time
import warnings

ENTRY_POINT_GROUP = "customlayers.cases"


class UsageError(Exception):
    """A bad command line: exit status 2."""


def main(args) -> int:
    """Run ``customlayers verify`` for parsed ``args``; the exit status."""
    from customlayers import shards
    try:
        if args.merge:
            return merge_main(args)
        shard = shards.parse_shard(args.shard) if args.shard else None
        if getattr(args, "workers", 1) > 1:
            from customlayers.verify_workers import run_workers
            select_cases(list(args.cases or []) + list(args.case or []))
            return run_workers(args)
        return run(profile=args.profile, json_path=args.json,
                   cases=list(args.cases or []) + list(args.case or []),
                   policies=args.dtypes, modes=args.modes,
                   junit_path=args.junit, artifacts=args.artifacts,
                   strict_known_differences=args.strict_known_differences,
                   shard=shard)
    except (UsageError, shards.ShardError) as exc:
        print(f"customlayers verify: error: {exc}", file=sys.stderr)
        return 2


def merge_main(args) -> int:
    """``customlayers verify --merge A.json B.json ...``: one report from
    the shares' reports (nothing is run)."""
    from customlayers import shards
    ran = [a for a, v in (("--shard", args.shard), ("--case", args.case),
                          ("--cases", args.cases), ("--dtypes", args.dtypes),
                          ("--modes", args.modes))
           if v] + (["--workers"] if args.workers > 1 else [])
    if ran:
        raise UsageError(f"--merge runs nothing; {', '.join(ran)} "
                         "cannot go with it")
    docs = [shards.load_report(p) for p in args.merge]
    doc = shards.merge(docs, names=args.merge)
    print(f"customlayers verify: merged {len(docs)} reports "
          f"({', '.join(map(str, doc['merged_from']))}); profile "
          f"{doc['profile']}, keras {doc['keras']}, backend {doc['backend']}")
    return finish(doc, json_path=args.json, junit_path=args.junit,
                  strict_known_differences=args.strict_known_differences)


# -- finding cases ------------------------------------------------------------

def _cases_in(value, where):
    from customlayers.testing.declarations import LayerCase
    if isinstance(value, LayerCase):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, LayerCase) for v in value):
        return list(value)
    raise UsageError(f"{where} is {type(value).__name__}, not a LayerCase "
                     "(or a list/dict of them)")


def load_case_spec(spec: str) -> list:
    """The case(s) named by ``pkg.module:NAME`` or ``file.py:NAME``."""
    module_part, sep, attr = spec.rpartition(":")
    if not sep or not module_part or not attr:
        raise UsageError(f"--case {spec!r}: expected MODULE:NAME, e.g. "
                         "my_pkg.cases:MY_CASE or examples/my_layer.py:CASE")
    try:
        if module_part.endswith(".py"):
            path = os.path.abspath(module_part)
            if not os.path.isfile(path):
                raise UsageError(f"--case {spec!r}: no file {path}")
            name = "_customlayers_case_" + os.path.basename(path)[:-3]
            spec_obj = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec_obj)
            sys.modules[name] = module
            spec_obj.loader.exec_module(module)
        else:
            module = importlib.import_module(module_part)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's module
        raise UsageError(f"--case {spec!r}: cannot import {module_part}: "
                         f"{type(exc).__name__}: {exc}") from exc
    value = module
    for part in attr.split("."):
        if not hasattr(value, part):
            raise UsageError(f"--case {spec!r}: {module_part} has no "
                             f"attribute {attr!r}")
        value = getattr(value, part)
    return _cases_in(value, f"--case {spec!r}")


def installed_cases() -> dict:
    """Cases registered by installed packages (``customlayers.cases``)."""
    from importlib.metadata import entry_points
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            value = ep.load()
        except Exception as exc:  # noqa: BLE001 - name the culprit
            raise UsageError(f"entry point {ep.name} = {ep.value} "
                             f"({ENTRY_POINT_GROUP}) failed to load: "
                             f"{type(exc).__name__}: {exc}") from exc
        for case in _cases_in(value, f"entry point {ep.value}"):
            found[case.name] = case
    return found


def select_cases(cases=None) -> list:
    """``cases``: names, ``MODULE:NAME`` specs or LayerCase objects; none
    means every declared and installed case."""
    from customlayers.testing.cases import CASES
    from customlayers.testing.declarations import LayerCase
    known = {**CASES, **installed_cases()}
    if not cases:
        return list(known.values())
    out = []
    for c in cases:
        if isinstance(c, LayerCase):
            out.append(c)
        elif isinstance(c, str) and ":" in c:
            out += load_case_spec(c)
        elif c in known:
            out.append(known[c])
        else:
            raise UsageError(f"unknown layer pair {c!r}; declared: "
                             f"{sorted(known)} (or pass --case MODULE:NAME)")
    return out


# -- running --------------------------------------------------------------------

@contextlib.contextmanager
def _quiet():
    """Silence what is about Keras and TensorFlow, not the user's layer:
    the legacy-HDF5 notice, softmax over a size-1 axis (a drawn Dense with
    one unit), TensorFlow's retracing warnings."""
    import logging
    with warnings.catch_warnings():
        for pattern in ("You are saving your model as an HDF5 file",
                        ".*softmax over axis -1 of a tensor of shape",
                        ".*HDF5.*legacy", ".*is deprecated"):
            warnings.filterwarnings("ignore", message=pattern)
        loggers = [logging.getLogger(n) for n in ("tensorflow", "absl")]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def run(profile="ci", json_path=None, cases=None, policies=None, modes=None,
        out=sys.stdout, junit_path=None, artifacts=None,
        strict_known_differences=False, shard=None) -> int:
    """Run the battery; print progress and the table; return the exit code.

    ``cases``: names, ``MODULE:NAME`` specs or LayerCase objects (default:
    every declared and installed case). Nothing global is changed: the
    declarations are read, and results go to a recorder of this run.
    Raises :class:`UsageError` for unknown cases, policies or modes.
    """
    import hypothesis

    from customlayers._keras import BACKEND, KERAS_VERSION
    from customlayers.testing import report as rpt
    from customlayers.testing.backends import MODES
    from customlayers.testing.battery import items, run_item
    from customlayers.testing.profiles import PROFILES, load_profile
    from customlayers.shards import split
    from customlayers.testing.strategies import POLICIES

    if profile not in PROFILES:
        raise UsageError(f"unknown profile {profile!r}; expected one of "
                         f"{sorted(PROFILES)}")
    bad = sorted(set(policies or ()) - set(POLICIES))
    if bad:
        raise UsageError(f"unknown dtype policies {bad}; expected some of "
                         f"{list(POLICIES)}")
    bad = sorted(set(modes or ()) - set(MODES))
    if bad:
        raise UsageError(f"unknown modes {bad}; expected some of "
                         f"{list(MODES)}")
    selected = select_cases(cases)
    active = load_profile(profile)
    battery = split([i for c in selected for i in items(c, policies, modes)],
                    shard)
    rec = rpt.Recorder()
    seed_note = ("derandomized: fixed seed" if PROFILES[profile].get(
        "derandomize") else "random seed; failures print a reproduce blob")
    print(f"customlayers verify: profile {profile} (max_examples="
          f"{active.max_examples}, {seed_note}); keras {KERAS_VERSION}, "
          f"backend {BACKEND}, hypothesis {hypothesis.__version__}; pairs "
          f"{[c.name for c in selected]}"
          f"{f'; share {shard} ({len(battery)} properties)' if shard else ''}",
          file=out, flush=True)
    results = []
    t0 = time.time()
    with _quiet():
        for i, item in enumerate(battery, 1):
            before = sum(rec.examples.values())
            status, secs, message = run_item(item, rec,
                                             artifacts_dir=artifacts)
            n = sum(rec.examples.values()) - before
            head = f"[{i:>3}/{len(battery)}] {item.label:<48}"
            tail = (f"skipped: {message}" if status == "skipped" else
                    f"{status} ({n} examples, {secs:.1f}s)")
            print(f"{head} {tail}", file=out, flush=True)
            results.append((item.label, item.case.name, status, secs,
                            message))
    elapsed = time.time() - t0
    meta = dict(profile=profile, backend=BACKEND, keras=KERAS_VERSION,
                seconds=elapsed, pairs=[c.name for c in selected],
                shard=str(shard) if shard else None)
    doc = rpt.to_json(rec, **meta)
    doc["properties"] = [dict(label=r[0], case=r[1], status=r[2],
                              seconds=r[3], message=r[4]) for r in results]
    return finish(doc, out=out, json_path=json_path, junit_path=junit_path,
                  strict_known_differences=strict_known_differences)


def finish(doc, *, out=sys.stdout, json_path=None, junit_path=None,
           strict_known_differences=False) -> int:
    """Print the table, the known differences, the failures and the summary
    of one report (a run's, or shares merged); write its JSON and JUnit;
    return the exit code."""
    from customlayers.testing import report as rpt
    print("", file=out)
    print(rpt.format_table(rpt.TABLE_HEADER, rpt.table_rows(doc["rows"])),
          file=out)
    known = doc.get("known_differences", [])
    if known:
        print("\nDeclared known differences ('expected' above is one of "
              "these):", file=out)
        for d in known:
            print(f"- {d['label']}: needed in {d['needed']} of "
                  f"{d['applied']} comparisons it applied to."
                  f"\n  Why: {d['why']}", file=out)
    stale = doc.get("stale_known_differences", [])
    for label in stale:
        print(f"\nSTALE known difference {label}: it relaxed nothing in "
              f"this run{'' if strict_known_differences else ' (fails under --strict-known-differences)'}",
              file=out)
    for f in doc.get("failures", []):
        print(f"\n{rpt.Failure(**{**f, 'checks': tuple(f.get('checks', ()))}).text()}",
              file=out)
    props = doc["properties"]
    n_fail = sum(p["status"] == "FAIL" for p in props)
    n_skip = sum(p["status"] == "skipped" for p in props)
    where = (f" (shares {', '.join(map(str, doc['merged_from']))} merged)"
             if doc.get("merged_from") else
             f" (share {doc['shard']})" if doc.get("shard") else "")
    print(f"\n{len(props) - n_fail - n_skip} passed, {n_fail} failed, "
          f"{n_skip} skipped; {doc['examples']} examples in "
          f"{doc.get('seconds', 0.0):.0f}s{where}", file=out)
    if json_path:
        import json
        with open(json_path, "w") as fh:
            json.dump(doc, fh, indent=2, default=str)
        print(f"results written to {json_path}", file=out)
    if junit_path:
        rpt.write_junit(junit_path, [
            (p["label"], p["case"], p["status"], p["seconds"], p["message"])
            for p in props], seconds=doc.get("seconds", 0.0))
        print(f"JUnit XML written to {junit_path}", file=out)
    if n_fail or (strict_known_differences and stale):
        return 1
    return 0
