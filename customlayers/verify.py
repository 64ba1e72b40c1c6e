"""``customlayers verify``: the whole equivalence battery, as a report.

Runs every generic property for every declared layer pair under a chosen
Hypothesis profile, shows progress while it runs, then prints one row per
(layer pair, check, dtype, mode): examples run, worst absolute and relative
error, worst ULP distance, and the verdict (``bit-exact``, ``pass`` or
``FAIL``). Every failure is followed by its minimal counterexample. The exit
status is 1 if anything failed; ``--json FILE`` writes the same results for
machines.
"""

from __future__ import annotations

import json
import sys
import time
import traceback


def _properties(cases, policies, modes):
    """(label, case name, builder) for every property the battery runs."""
    from customlayers import _compat
    from customlayers.testing import properties as props
    from customlayers.testing.backends import supported_modes

    support = supported_modes()
    for name, case in cases.items():
        for policy in policies:
            for mode in modes:
                if support.get(mode):
                    yield (f"equivalence {name} {policy} {mode}", name,
                           None, support[mode])
                    continue
                yield (f"equivalence {name} {policy} {mode}", name,
                       lambda rec, c=case, p=policy, m=mode:
                       props.equivalence_property(c, p, m, rec), None)
            yield (f"lazy build {name} {policy}", name,
                   lambda rec, c=case, p=policy:
                   props.lazy_build_property(c, p, rec), None)
        for policy in ("float32", "mixed_float16"):
            yield (f"config {name} {policy}", name,
                   lambda rec, c=case, p=policy:
                   props.config_property(c, p, rec), None)
        for fmt in _compat.SAVE_FORMATS:
            for policy in ("float32", "mixed_bfloat16"):
                yield (f"{fmt} round trip {name} {policy}", name,
                       lambda rec, c=case, p=policy, f=fmt:
                       props.saving_property(c, p, rec, fmt=f),
                       case.save_unsupported(fmt))
        yield (f"numeric gradient {name} float64", name,
               lambda rec, c=case: props.numeric_gradient_property(c, rec),
               None)
        yield (f"validation {name}", name,
               lambda rec, c=case: props.validation_property(c, rec), None)


def add_arguments(v) -> None:
    """The ``verify`` subcommand's options (the CLI only dispatches)."""
    v.add_argument("--profile", default="ci",
                   choices=["ci", "dev", "thorough"],
                   help="Hypothesis profile (default: ci)")
    v.add_argument("--json", metavar="FILE", help="also write results here")
    v.add_argument("--cases", nargs="+", metavar="PAIR",
                   help="only these layer pairs (default: all declared)")
    v.add_argument("--dtypes", nargs="+", metavar="POLICY",
                   help="only these dtype policies")
    v.add_argument("--modes", nargs="+", metavar="MODE",
                   choices=["eager", "graph", "compiled"],
                   help="only these execution modes")


def main(args) -> int:
    """Run ``customlayers verify`` for parsed ``args``; the exit status."""
    from customlayers.testing.strategies import POLICIES
    bad = sorted(set(args.dtypes or ()) - set(POLICIES))
    if bad:
        print(f"unknown dtype policies {bad}; expected some of "
              f"{list(POLICIES)}", file=sys.stderr)
        return 2
    return run(profile=args.profile, json_path=args.json, cases=args.cases,
               policies=args.dtypes, modes=args.modes)


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if v == float("inf"):
        return "inf"
    return f"{v:.3g}"


def run(profile="ci", json_path=None, cases=None, policies=None, modes=None,
        out=sys.stdout) -> int:
    """Run the battery; print progress and the table; return the exit code."""
    import hypothesis

    from customlayers._compat import BACKEND, KERAS_VERSION
    from customlayers.testing import properties as props
    from customlayers.testing.backends import MODES
    from customlayers.testing.cases import CASES
    from customlayers.testing.profiles import PROFILES, load_profile
    from customlayers.testing.strategies import POLICIES

    active = load_profile(profile)
    selected = {k: v for k, v in CASES.items() if not cases or k in cases}
    if cases and len(selected) != len(set(cases)):
        unknown = sorted(set(cases) - set(CASES))
        raise SystemExit(f"unknown layer pair(s) {unknown}; declared: "
                         f"{sorted(CASES)}")
    policies = policies or POLICIES
    modes = modes or MODES
    items = list(_properties(selected, policies, modes))
    rec = props.Recorder()
    failures, skipped = [], []
    seed_note = ("derandomized: fixed seed" if PROFILES[profile].get(
        "derandomize") else "random seed; failures print a reproduce blob")
    print(f"customlayers verify: profile {profile} (max_examples="
          f"{active.max_examples}, {seed_note}); keras {KERAS_VERSION}, "
          f"backend {BACKEND}, hypothesis {hypothesis.__version__}",
          file=out)
    t0 = time.time()
    for i, (label, case_name, build, skip_reason) in enumerate(items, 1):
        head = f"[{i:>3}/{len(items)}] {label:<48}"
        if skip_reason:
            skipped.append({"property": label, "reason": skip_reason})
            print(f"{head} skipped: {skip_reason}", file=out, flush=True)
            continue
        print(f"{head} ...", end="", file=out, flush=True)
        before = sum(props.EXAMPLES_RUN.values())
        t = time.time()
        try:
            build(rec)()
            status = "ok"
        except BaseException as exc:  # noqa: BLE001 - report, don't crash
            if isinstance(exc, KeyboardInterrupt):
                raise
            status = "FAIL"
            notes = "\n".join(getattr(exc, "__notes__", []))
            text = "".join(traceback.format_exception_only(type(exc), exc))
            failures.append({"property": label, "case": case_name,
                             "error": text.strip(), "counterexample": notes})
        n = sum(props.EXAMPLES_RUN.values()) - before
        print(f"\r{head} {status} ({n} examples, {time.time() - t:.1f}s)",
              file=out, flush=True)
    elapsed = time.time() - t0

    rows = []
    for (case, check, policy, mode), st in sorted(rec.stats.items()):
        verdict = "FAIL" if st.failed else (
            "bit-exact" if st.bit_exact else "pass")
        rows.append(dict(pair=case, check=check, dtype=policy, mode=mode,
                         examples=st.examples, max_abs=st.max_abs,
                         max_rel=st.max_rel, max_ulp=st.max_ulp,
                         result=verdict))
    # A property that failed on its first example recorded nothing: add it.
    for f in failures:
        rows.append(dict(pair=f["case"], check=f["property"], dtype="-",
                         mode="-", examples=0, max_abs=float("inf"),
                         max_rel=float("inf"), max_ulp=float("inf"),
                         result="FAIL"))
    header = ("pair", "check", "dtype", "mode", "examples", "worst abs",
              "worst rel", "worst ULP", "result")
    table = [header] + [
        (r["pair"], r["check"], r["dtype"], r["mode"], str(r["examples"]),
         _fmt(r["max_abs"]), _fmt(r["max_rel"]), _fmt(r["max_ulp"]),
         r["result"]) for r in rows]
    widths = [max(len(row[j]) for row in table) for j in range(len(header))]
    print("", file=out)
    for j, row in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)), file=out)
        if j == 0:
            print("  ".join("-" * w for w in widths), file=out)
    total = sum(props.EXAMPLES_RUN.values())
    notes = [(name, d) for name, c in selected.items()
             for d in c.known_differences]
    if notes:
        print("\nDeclared known differences (relaxed only where they apply; "
              "a 'pass' above instead of 'bit-exact' is one of these):",
              file=out)
        for name, d in notes:
            print(f"- {name}, {d.what}: {d.why}", file=out)
    for f in failures:
        print(f"\nFAILED {f['property']}\n{f['error']}\n{f['counterexample']}",
              file=out)
    print(f"\n{len(items) - len(failures) - len(skipped)} passed, "
          f"{len(failures)} failed, {len(skipped)} skipped; {total} "
          f"examples in {elapsed:.0f}s", file=out)
    if json_path:
        with open(json_path, "w") as fh:
            json.dump({"profile": profile, "backend": BACKEND,
                       "keras": KERAS_VERSION, "seconds": elapsed,
                       "examples": total, "rows": rows,
                       "known_differences": [
                           {"pair": n, "what": d.what, "why": d.why}
                           for n, d in notes],
                       "failures": failures, "skipped": skipped}, fh,
                      indent=2, default=str)
        print(f"results written to {json_path}", file=out)
    return 1 if failures else 0
