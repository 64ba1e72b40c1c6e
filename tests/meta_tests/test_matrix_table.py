"""The matrix table (.ci/matrix_table.py) fails the run when it should.

It is the CI gate over the tox matrix: a failed test, an error, an env that
ran no tests (pytest's exit code 5), an env tox reports as failed, an env
with no results, or a missing or foreign result file must each give exit
status 1; a clean matrix gives 0 and the table. The result file is in the
format ``tox run-parallel --result-json FILE`` writes (tox 4.67: per env
``testenvs.ENV.result`` = success, exit_code, duration, skipped).
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

#: The table is plain Python over tox's files: the Keras 2 edges skip it.
pytestmark = pytest.mark.keras_independent

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / ".ci" / \
    "matrix_table.py"


def _junit(path, tests, skipped=0, failures=0, errors=0):
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites>'
        f'<testsuite name="pytest" tests="{tests}" skipped="{skipped}" '
        f'failures="{failures}" errors="{errors}" time="61.5">'
        '</testsuite></testsuites>')


def _env_result(success=True, exit_code=0, duration=100.0, skipped=False):
    return {"python": {}, "installed_packages": [], "setup": [], "test": [],
            "result": {"success": success, "exit_code": exit_code,
                       "duration": duration, "skipped": skipped}}


def _result_json(path, **envs):
    path.write_text(json.dumps({
        "reportversion": "1", "toxversion": "4.67.15", "platform": "linux",
        "host": "ci", "testenvs": dict(envs, **{".pkg": {"setup": []}})}))
    return path


def _table(tmp_path, result, *envs):
    env = dict(os.environ, MATRIX_JUNIT_DIR=str(tmp_path))
    return subprocess.run([sys.executable, str(SCRIPT), str(result), *envs],
                          capture_output=True, text=True, env=env)


def _run(tmp_path, jax_result=None, **jax_counts):
    _junit(tmp_path / "junit-tf212.xml", tests=100, skipped=3)
    _junit(tmp_path / "junit-jax.xml", **jax_counts)
    result = _result_json(tmp_path / "result.json",
                          tf212=_env_result(duration=312.45),
                          jax=jax_result or _env_result(duration=95.0))
    return _table(tmp_path, result)


def test_clean_matrix_passes_and_prints_the_table(tmp_path):
    proc = _run(tmp_path, tests=80, skipped=12)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| tf212 | 97 | 3 | 0 | 0 | 1.0 min | 5.2 min | OK |" \
        in proc.stdout, proc.stdout
    assert "| jax | 68 | 12 | 0 | 0 | 1.0 min | 1.6 min | OK |" \
        in proc.stdout, proc.stdout
    assert ".pkg" not in proc.stdout  # tox's packaging env is not a row
    assert "PROBLEM" not in proc.stdout


@pytest.mark.parametrize("counts, jax_result", [
    (dict(tests=80, failures=1), None),
    (dict(tests=80, errors=2), None),
    (dict(tests=0), None),           # pytest exit code 5: no tests ran
    (dict(tests=80), _env_result(success=False, exit_code=1)),  # tox: failed
    (dict(tests=80), _env_result(success=False, skipped=True)),  # tox: skipped
], ids=["failure", "error", "no-tests", "tox-failed", "tox-skipped"])
def test_a_bad_env_fails_the_matrix(tmp_path, counts, jax_result):
    proc = _run(tmp_path, jax_result=jax_result, **counts)
    assert proc.returncode == 1, proc.stdout
    assert "PROBLEM: jax" in proc.stdout, proc.stdout


def test_an_env_without_results_fails_the_matrix(tmp_path):
    _junit(tmp_path / "junit-tf212.xml", tests=100)
    result = _result_json(tmp_path / "result.json", tf212=_env_result(),
                          jax=_env_result())
    proc = _table(tmp_path, result)
    assert proc.returncode == 1, proc.stdout
    assert "PROBLEM: jax: no JUnit file" in proc.stdout, proc.stdout


def test_a_named_env_tox_never_ran_is_shown_and_judged_by_junit(tmp_path):
    _junit(tmp_path / "junit-tf212.xml", tests=10)
    result = _result_json(tmp_path / "result.json")  # no env ran
    proc = _table(tmp_path, result, "tf212", "torch")
    assert proc.returncode == 1, proc.stdout
    assert "| tf212 | 10 | 0 | 0 | 0 | 1.0 min | ? | ? |" in proc.stdout
    assert "PROBLEM: torch: no JUnit file" in proc.stdout


@pytest.mark.parametrize("content, match", [
    (None, "not a readable tox result file"),
    ("tf212: OK (312.45 seconds)\n", "not a readable tox result file"),
    ('{"envs": {}}', "no 'testenvs' mapping"),
], ids=["missing", "a-log-not-json", "foreign-json"])
def test_a_missing_or_foreign_result_file_fails(tmp_path, content, match):
    _junit(tmp_path / "junit-tf212.xml", tests=10)
    result = tmp_path / "result.json"
    if content is not None:
        result.write_text(content)
    proc = _table(tmp_path, result)
    assert proc.returncode == 1, proc.stdout
    assert f"PROBLEM: {result}: {match}" in proc.stdout, proc.stdout
    assert "tox --result-json FILE" in proc.stdout


def test_a_real_tox_result_file_is_read(tmp_path):
    """The format as tox 4.67.15 wrote it for two envs (one failed)."""
    real = {"reportversion": "1", "toxversion": "4.67.15", "platform": "linux",
            "host": "h", "testenvs": {
                "a": {"python": {}, "installed_packages": [], "test": [], "setup": [],
                      "result": {"success": True, "exit_code": 0,
                                 "duration": 1.1011805169999889, "skipped": False}},
                "b": {"python": {}, "installed_packages": [], "test": [], "setup": [],
                      "result": {"success": False, "exit_code": 3,
                                 "duration": 1.2032629369999768, "skipped": False}}}}
    (tmp_path / "result.json").write_text(json.dumps(real))
    _junit(tmp_path / "junit-a.xml", tests=5)
    _junit(tmp_path / "junit-b.xml", tests=5)
    proc = _table(tmp_path, tmp_path / "result.json")
    assert proc.returncode == 1
    assert "| a | 5 | 0 | 0 | 0 | 1.0 min | 0.0 min | OK |" in proc.stdout
    assert "PROBLEM: b: 0 failed, 0 errors, 5 tests, tox FAIL" in proc.stdout
