"""``customlayers verify --shard`` / ``--workers`` / ``--merge`` and pytest's
``--cl-shard``: the shares of a battery, run apart and merged, give the
whole run's table; a merge that is missing a share fails, naming it."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

#: Shares, workers and merges are customlayers' own bookkeeping, the same
#: on every Keras: the Keras 2 edges of .ci/run skip them (test_cli runs
#: verify there).
pytestmark = pytest.mark.keras_independent

REPO = pathlib.Path(__file__).resolve().parents[2]
#: A small battery: ReLU, float32, eager (12 properties, about 10 s).
SMALL = ("--cases", "ReLU", "--dtypes", "float32", "--modes", "eager")


def _run(*args, cwd=REPO, timeout=600):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
        TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=str(cwd))


def _verify(*args):
    return _run("-m", "customlayers", "verify", *args)


def _table(path):
    doc = json.loads(pathlib.Path(path).read_text())
    return doc, [(r["check"], r["dtype"], r["mode"], r["examples"],
                  r["max_abs"], r["max_ulp"], r["result"])
                 for r in doc["rows"]]


def test_shares_merged_and_workers_give_the_whole_run(tmp_path):
    whole = _verify(*SMALL, "--json", str(tmp_path / "whole.json"))
    assert whole.returncode == 0, whole.stdout + whole.stderr
    for i in (1, 2):
        share = _verify(*SMALL, "--shard", f"{i}/2", "--json",
                        str(tmp_path / f"s{i}.json"))
        assert share.returncode == 0, share.stdout + share.stderr
        assert f"share {i}/2 (6 properties)" in share.stdout
    merged = _verify("--merge", str(tmp_path / "s1.json"),
                     str(tmp_path / "s2.json"), "--json",
                     str(tmp_path / "merged.json"), "--junit",
                     str(tmp_path / "merged.xml"))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "(shares 1/2, 2/2 merged)" in merged.stdout
    workers = _verify(*SMALL, "--workers", "2", "--json",
                      str(tmp_path / "workers.json"))
    assert workers.returncode == 0, workers.stdout + workers.stderr
    assert "w1 [  1/6]" in workers.stdout and "w2 [  1/6]" in workers.stdout
    whole_doc, expected = _table(tmp_path / "whole.json")
    for name in ("merged.json", "workers.json"):
        doc, rows = _table(tmp_path / name)
        assert rows == expected, name
        assert doc["examples"] == whole_doc["examples"]
        assert sorted(p["label"] for p in doc["properties"]) == sorted(
            p["label"] for p in whole_doc["properties"])
    assert (tmp_path / "merged.xml").read_text().count("<testcase") == 12


def test_merge_fails_on_a_missing_share_and_bad_files(tmp_path):
    s1 = tmp_path / "s1.json"
    share = _verify(*SMALL, "--modes", "eager", "--shard", "1/3", "--json",
                    str(s1))
    assert share.returncode == 0, share.stdout + share.stderr
    missing = _verify("--merge", str(s1))
    assert missing.returncode == 2
    assert "shares missing: 2/3, 3/3" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{truncated")
    corrupt = _verify("--merge", str(s1), str(bad))
    assert corrupt.returncode == 2 and f"{bad}: not JSON" in corrupt.stderr
    mixed = _verify("--merge", str(s1), "--shard", "1/2")
    assert mixed.returncode == 2
    assert "--merge runs nothing; --shard cannot go with it" in mixed.stderr
    badspec = _verify(*SMALL, "--shard", "0/2")
    assert badspec.returncode == 2 and "'0/2'" in badspec.stderr


def test_pytest_cl_shard_splits_the_collected_tests(tmp_path):
    (tmp_path / "test_many.py").write_text(textwrap.dedent("""
        import pytest
        @pytest.mark.parametrize("k", range(7))
        def test_k(k):
            print("RAN", k)
    """))
    ran = []
    for i in (1, 2, 3):
        proc = _run("-m", "pytest", "-q",
                    "-p", "no:cacheprovider", "-rA", "--cl-shard", f"{i}/3",
                    "test_many.py", cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        ran.append(sorted(int(line.split("[")[1].split("]")[0])
                          for line in proc.stdout.splitlines()
                          if line.startswith("PASSED")))
    assert ran == [[0, 3, 6], [1, 4], [2, 5]]
    bad = _run("-m", "pytest", "--cl-shard",
               "4/3", "test_many.py", cwd=tmp_path)
    assert bad.returncode == 4 and "'4/3'" in bad.stderr


@pytest.mark.parametrize("option", [("--cl-shard", "4/3"),
                                    ("--cl-policies", "float33"),
                                    ("--cl-modes", "jit")],
                         ids=lambda o: o[0])
def test_a_bad_option_is_a_usage_error_under_xdist_too(tmp_path, option):
    """Checked where pytest starts (pytest_configure), not during
    collection: under ``-n 2`` that error was raised in each worker and
    came back as an internal error, exit code 3 (found by the py312 tox
    env run with PYTEST_ADDOPTS="-n 2", 2026-12-07)."""
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    proc = _run("-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
                *option, "test_one.py", cwd=tmp_path)
    assert proc.returncode == 4, (proc.returncode, proc.stdout[-2000:],
                                  proc.stderr[-2000:])
    assert option[1] in proc.stderr, proc.stderr[-2000:]
