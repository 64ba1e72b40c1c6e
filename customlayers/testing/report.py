"""What a run measured, and the reports made from it.

:class:`Recorder` collects, per (pair, check, policy, mode), the worst
errors over every example (:class:`CheckStats`), the failures (one
:class:`Failure` each, with its minimal example and replay), the known
differences' ledger and the example counts. ``verify``, the pytest plugin
and :func:`~customlayers.testing.run_equivalence_test` each make their own
recorder: nothing here is global except :data:`PROCESS`, the default that
pytest's summary line reads.

Verdicts, per row:

- ``bit-exact``: every example agreed bit for bit;
- ``pass``: within the row's tolerance (``tol used`` <= 1);
- ``expected``: passed only thanks to a declared known difference;
- ``ok``: a check of facts, not numbers (errors shown as ``n/a``);
- ``FAIL``.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
from xml.etree import ElementTree as ET

from customlayers.testing.expectations import Ledger


@dataclasses.dataclass
class CheckStats:
    """What one check measured over all examples of a property."""

    examples: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: float = 0.0
    tol_used: float = 0.0
    bit_exact: bool = True
    failed: bool = False
    numeric: bool = True
    expected: set = dataclasses.field(default_factory=set)

    def add(self, comparison) -> None:
        self.examples += 1
        self.numeric &= comparison.numeric
        self.failed |= not comparison.passed
        self.expected.update(comparison.expected)
        if comparison.numeric:
            self.max_abs = max(self.max_abs, comparison.max_abs)
            self.max_rel = max(self.max_rel, comparison.max_rel)
            self.max_ulp = max(self.max_ulp, comparison.max_ulp)
            self.tol_used = max(self.tol_used, comparison.tol_used)
            self.bit_exact &= comparison.bit_exact

    @property
    def verdict(self) -> str:
        if self.failed:
            return "FAIL"
        if not self.numeric:
            return "ok"
        if self.expected:
            return "expected"
        return "bit-exact" if self.bit_exact else "pass"


@dataclasses.dataclass
class Failure:
    """One failing property: what failed, the minimal example, the replay."""

    property: str
    case: str
    error: str
    counterexample: str = ""
    checks: tuple = ()

    def text(self) -> str:
        """The failure, printed once: the message, then the example."""
        parts = [f"FAILED {self.property}", self.error.rstrip()]
        if self.counterexample and self.counterexample not in self.error:
            parts.append(self.counterexample.rstrip())
        return "\n".join(parts)


class Recorder:
    """Collects :class:`CheckStats`, failures, skips and the ledger."""

    def __init__(self):
        self.stats = collections.defaultdict(CheckStats)
        self.failures: list[Failure] = []
        self.skipped: list[dict] = []
        self.examples = collections.Counter()
        self.ledger = Ledger()
        self.passed_properties = 0

    def record(self, case, policy, mode, comparisons, kind) -> None:
        """Record one example of property ``kind``."""
        self.examples[kind] += 1
        if self is not PROCESS:
            PROCESS.examples[kind] += 1
        for c in comparisons:
            self.stats[(case, c.check, policy, mode)].add(c)

    def rows(self) -> list[dict]:
        rows = []
        for (case, check, policy, mode), st in sorted(self.stats.items()):
            rows.append(dict(
                pair=case, check=check, dtype=policy, mode=mode,
                examples=st.examples,
                max_abs=st.max_abs if st.numeric else None,
                max_rel=st.max_rel if st.numeric else None,
                max_ulp=st.max_ulp if st.numeric else None,
                tol_used=st.tol_used if st.numeric else None,
                result=st.verdict, expected=sorted(st.expected)))
        return rows


#: The process-wide tally that pytest's summary line reads.
PROCESS = Recorder()


def fmt_number(v) -> str:
    if v is None:
        return "n/a"
    if v == 0:
        return "0"
    if v == math.inf:
        return "inf"
    return f"{v:.3g}"


TABLE_HEADER = ("pair", "check", "dtype", "mode", "examples", "worst abs",
                "worst rel", "worst ULP", "tol used", "result")


def table_rows(rows) -> list[tuple]:
    return [(r["pair"], r["check"], r["dtype"], r["mode"], str(r["examples"]),
             fmt_number(r["max_abs"]), fmt_number(r["max_rel"]),
             fmt_number(r["max_ulp"]), fmt_number(r["tol_used"]),
             r["result"]) for r in rows]


def format_table(header, rows) -> str:
    """A plain fixed-width table (customlayers' one table formatter)."""
    from customlayers._table import format_table as fmt
    return fmt(tuple(header), [tuple(str(c) for c in r) for r in rows])


def to_json(recorder: Recorder, **meta) -> dict:
    return {**meta, "examples": sum(recorder.examples.values()),
            "examples_by_property": dict(recorder.examples),
            "rows": recorder.rows(),
            "failures": [dataclasses.asdict(f) for f in recorder.failures],
            "skipped": recorder.skipped,
            "known_differences": [
                {"label": label, "why": d.why,
                 "applied": recorder.ledger.applied[label],
                 "needed": recorder.ledger.needed[label]}
                for label, d in sorted(recorder.ledger.declared.items())],
            "stale_known_differences": [
                d.label for d in recorder.ledger.stale()]}


def write_json(path, recorder: Recorder, **meta) -> None:
    with open(path, "w") as fh:
        json.dump(to_json(recorder, **meta), fh, indent=2, default=str)


def write_junit(path, results, *, name="customlayers verify",
                seconds=0.0) -> None:
    """JUnit XML: one testcase per property. ``results`` holds
    ``(label, case, status, seconds, message)`` with status ``ok``,
    ``FAIL`` or ``skipped``."""
    suite = ET.Element("testsuite", name=name, tests=str(len(results)),
                       failures=str(sum(r[2] == "FAIL" for r in results)),
                       skipped=str(sum(r[2] == "skipped" for r in results)),
                       time=f"{seconds:.3f}")
    for label, case, status, secs, message in results:
        tc = ET.SubElement(suite, "testcase", classname=f"customlayers.{case}",
                           name=label, time=f"{secs:.3f}")
        if status == "FAIL":
            ET.SubElement(tc, "failure", message=message.splitlines()[0]
                          if message else "failed").text = message
        elif status == "skipped":
            ET.SubElement(tc, "skipped", message=message)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
