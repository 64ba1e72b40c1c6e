#!/usr/bin/env python3
"""Print the tox matrix table: environment x passed, skipped, failed, wall.

Reads tox's own report of the run (``tox run-parallel --result-json FILE``:
per env ``testenvs.ENV.result`` with ``success``, ``exit_code`` and
``duration``) and the JUnit files the envs write (``.tox/junit-ENV.xml``).
Exit status 1 if any environment failed, errored, had no tests, has no JUnit
file, or if the result file is missing or not tox's format.

    python .ci/matrix_table.py RESULT.json [ENV ...]
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import xml.etree.ElementTree as ET

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load_table_formatter():
    """``customlayers._table.format_table``, loaded from its file: the
    package's ``__init__`` imports Keras and TensorFlow (4-5 s here), which a
    table of tox results does not need, and the package need not be
    installed where tox runs."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "customlayers_table", ROOT / "customlayers" / "_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.format_table


format_table = _load_table_formatter()

#: Where the envs' JUnit files are (tox's work dir); overridable for tests.
JUNIT_DIR = pathlib.Path(os.environ.get("MATRIX_JUNIT_DIR", ROOT / ".tox"))
HEADER = ("env", "passed", "skipped", "failed", "errors", "pytest time",
          "wall (install+tests)", "tox")


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


def read_results(path: pathlib.Path) -> dict:
    """``{env: (status, seconds)}`` from tox's ``--result-json`` file;
    status is ``OK``, ``FAIL`` or ``SKIP``.

    Raises:
        ValueError: the file is not JSON or has no ``testenvs`` mapping.
    """
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable tox result file ({e}); expected "
                         "the JSON that `tox --result-json FILE` writes") from None
    envs = report.get("testenvs") if isinstance(report, dict) else None
    if not isinstance(envs, dict):
        raise ValueError(f"{path}: no 'testenvs' mapping; expected the JSON that "
                         "`tox --result-json FILE` writes")
    out = {}
    for env, journal in envs.items():
        result = journal.get("result") if isinstance(journal, dict) else None
        if not isinstance(result, dict):  # e.g. the .pkg env: built, never run
            continue
        status = ("SKIP" if result.get("skipped") else
                  "OK" if result.get("success") else "FAIL")
        out[env] = (status, float(result.get("duration", float("nan"))))
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: matrix_table.py RESULT.json [ENV ...]", file=sys.stderr)
        return 2
    try:
        results = read_results(pathlib.Path(argv[0]))
    except ValueError as e:
        print(f"PROBLEM: {e}")
        return 1
    envs = argv[1:] or sorted(results)
    rows, bad = [], []
    for env in envs:
        junit = JUNIT_DIR / f"junit-{env}.xml"
        tox_status, seconds = results.get(env, ("?", None))
        wall = f"{seconds / 60:.1f} min" if seconds is not None else "?"
        if not junit.is_file():
            rows.append((env, "-", "-", "-", "-", "-", wall, tox_status))
            bad.append(f"{env}: no JUnit file {junit}")
            continue
        c = _counts(junit)
        rows.append((env, str(c["passed"]), str(c["skipped"]), str(c["failures"]),
                     str(c["errors"]), f"{c['time'] / 60:.1f} min", wall,
                     tox_status))
        if c["failures"] or c["errors"] or c["tests"] == 0 \
                or tox_status not in ("OK", "?"):
            bad.append(f"{env}: {c['failures']} failed, {c['errors']} "
                       f"errors, {c['tests']} tests, tox {tox_status}")
    print(format_table(HEADER, rows, style="markdown"))
    for line in bad:
        print("PROBLEM:", line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
