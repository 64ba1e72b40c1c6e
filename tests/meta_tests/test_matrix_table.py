"""The matrix table (.ci/matrix_table.py) fails the run when it should.

It is the CI gate over the tox matrix: a failed test, an error, an env that
ran no tests (pytest's exit code 5) or an env with no results must each give
exit status 1; a clean matrix gives 0 and the table.
"""

import os
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / ".ci" / \
    "matrix_table.py"

TOX_LOG = """\
  tf212: OK (312.45=setup[12.30]+cmd[300.15] seconds)
  jax: {jax_status} (95.00=setup[3.00]+cmd[92.00] seconds)
"""


def _junit(path, tests, skipped=0, failures=0, errors=0):
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites>'
        f'<testsuite name="pytest" tests="{tests}" skipped="{skipped}" '
        f'failures="{failures}" errors="{errors}" time="61.5">'
        '</testsuite></testsuites>')


def _run(tmp_path, jax_status="OK", **jax_counts):
    _junit(tmp_path / "junit-tf212.xml", tests=100, skipped=3)
    _junit(tmp_path / "junit-jax.xml", **jax_counts)
    log = tmp_path / "tox.log"
    log.write_text(TOX_LOG.format(jax_status=jax_status))
    env = dict(os.environ, MATRIX_JUNIT_DIR=str(tmp_path))
    return subprocess.run([sys.executable, str(SCRIPT), str(log)],
                          capture_output=True, text=True, env=env)


def test_clean_matrix_passes_and_prints_the_table(tmp_path):
    proc = _run(tmp_path, tests=80, skipped=12)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| tf212 | 97 | 3 | 0 | 0 | 1.0 min | 5.2 min | OK |" \
        in proc.stdout, proc.stdout
    assert "| jax | 68 | 12 | 0 | 0 |" in proc.stdout, proc.stdout


@pytest.mark.parametrize("counts, status", [
    (dict(tests=80, failures=1), "OK"),
    (dict(tests=80, errors=2), "OK"),
    (dict(tests=0), "OK"),           # pytest exit code 5: no tests ran
    (dict(tests=80), "FAIL"),        # tox says the env failed
])
def test_a_bad_env_fails_the_matrix(tmp_path, counts, status):
    proc = _run(tmp_path, jax_status=status, **counts)
    assert proc.returncode == 1, proc.stdout
    assert "PROBLEM: jax" in proc.stdout, proc.stdout


def test_an_env_without_results_fails_the_matrix(tmp_path):
    _junit(tmp_path / "junit-tf212.xml", tests=100)
    log = tmp_path / "tox.log"
    log.write_text(TOX_LOG.format(jax_status="OK"))
    env = dict(os.environ, MATRIX_JUNIT_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, str(SCRIPT), str(log)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 1, proc.stdout
    assert "PROBLEM: jax: no JUnit file" in proc.stdout, proc.stdout


def test_per_env_lines_of_run_parallel_are_read(tmp_path):
    _junit(tmp_path / "junit-tf212.xml", tests=10)
    log = tmp_path / "tox.log"
    log.write_text("tf212: OK \u2714 in 3 minutes 51.19 seconds\n")
    env = dict(os.environ, MATRIX_JUNIT_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, str(SCRIPT), str(log)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout
    assert "| tf212 | 10 | 0 | 0 | 0 | 1.0 min | 3.9 min | OK |" \
        in proc.stdout, proc.stdout
