#!/usr/bin/env python3
"""Print the tox matrix table: environment x passed, skipped, failed, wall.

Reads the JUnit files the tox envs write (``.tox/junit-ENV.xml``) and the
durations tox prints in its summary (``ENV: OK (123.4=setup[...]+cmd[...]
seconds)``), from the log given as the first argument. Exit status 1 if any
environment failed, errored, had no tests, or has no JUnit file.

    python .ci/matrix_table.py tox.log [ENV ...]
"""

from __future__ import annotations

import os
import pathlib
import re
import sys
import xml.etree.ElementTree as ET

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: Where the envs' JUnit files are (tox's work dir); overridable for tests.
JUNIT_DIR = pathlib.Path(os.environ.get("MATRIX_JUNIT_DIR", ROOT / ".tox"))
# tox's end-of-run summary: "  tf212: OK (231.50=setup[10.2]+cmd[221.3]
# seconds)"; and its per-env line in run-parallel: "tf212: OK ✔ in 3 minutes
# 51.19 seconds". The summary wins where both are present.
SUMMARY = re.compile(r"^\s*(?P<env>[\w.-]+): (?P<status>OK|FAIL|SKIP)\b.*?"
                     r"\((?P<total>[\d.]+)(?:=setup\[(?P<setup>[\d.]+)\]"
                     r"\+cmd\[(?P<cmd>[\d.]+)\])?\s*seconds\)")
PER_ENV = re.compile(r"^\s*(?P<env>[\w.-]+): (?P<status>OK|FAIL|SKIP)\b\D*"
                     r"in (?:(?P<min>\d+) minutes? )?(?P<sec>[\d.]+) seconds")


def _counts(path: pathlib.Path) -> dict:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    out = dict(tests=0, skipped=0, failures=0, errors=0, time=0.0)
    for suite in suites:
        for key in ("tests", "skipped", "failures", "errors"):
            out[key] += int(suite.get(key, 0))
        out["time"] += float(suite.get("time", 0.0))
    out["passed"] = out["tests"] - out["skipped"] - out["failures"] \
        - out["errors"]
    return out


def main(argv: list[str]) -> int:
    log = pathlib.Path(argv[0]) if argv else None
    durations = {}
    if log and log.is_file():
        for line in log.read_text(errors="replace").splitlines():
            m = SUMMARY.match(line)
            if m:
                durations[m["env"]] = (m["status"], float(m["total"]))
                continue
            m = PER_ENV.match(line)
            if m and m["env"] not in durations:
                durations[m["env"]] = (m["status"], 60 * float(m["min"] or 0)
                                       + float(m["sec"]))
    envs = argv[1:] or sorted(durations) or sorted(
        p.stem[len("junit-"):] for p in JUNIT_DIR.glob("junit-*.xml"))
    rows, bad = [], []
    for env in envs:
        junit = JUNIT_DIR / f"junit-{env}.xml"
        tox_status, seconds = durations.get(env, ("?", None))
        wall = f"{seconds / 60:.1f} min" if seconds is not None else "?"
        if not junit.is_file():
            rows.append((env, "-", "-", "-", "-", "-", wall, tox_status))
            bad.append(f"{env}: no JUnit file {junit}")
            continue
        c = _counts(junit)
        rows.append((env, c["passed"], c["skipped"], c["failures"],
                     c["errors"], f"{c['time'] / 60:.1f} min", wall,
                     tox_status))
        if c["failures"] or c["errors"] or c["tests"] == 0 \
                or tox_status not in ("OK", "?"):
            bad.append(f"{env}: {c['failures']} failed, {c['errors']} "
                       f"errors, {c['tests']} tests, tox {tox_status}")
    head = ("env", "passed", "skipped", "failed", "errors", "pytest time",
            "wall (install+tests)", "tox")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(map(str, row)) + " |")
    for line in bad:
        print("PROBLEM:", line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
