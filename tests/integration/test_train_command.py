"""``customlayers train`` on real MNIST: a small smoke run (table, PNG,
summary), without matplotlib, and through the installed console script."""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys

import pytest

from customlayers import cli
from customlayers import training
from tests.integration.training_helpers import SEED, subprocess_env

pytestmark = pytest.mark.slow


_SMOKE_ARGS = ["--epochs", "2", "--batch-size", "64", "--seed", str(SEED),
               "--limit", "640", "--no-progress"]


def _check_smoke_output(text: str, out_dir: pathlib.Path):
    for cell in ("model", "final loss", "test acc", "wall s", "examples/s",
                 "max step loss diff", "custom (MyModel)",
                 "builtin (keras.layers twin)", "0 (bit-exact)"):
        assert cell in text, f"{cell!r} missing from the output:\n{text}"
    png = out_dir / training.PLOT_FILENAME
    assert png.is_file(), f"no {png}"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000
    summary = json.loads((out_dir / training.SUMMARY_FILENAME).read_text())
    assert summary["config"]["n_train"] == 640
    assert summary["config"]["steps_per_epoch"] == 10
    assert set(summary["runs"]) == {"custom", "builtin"}
    assert summary["runs"]["custom"]["steps"] == 20


def test_train_command_smoke(mnist, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="customlayers train")
    cli.add_train_arguments(parser)
    args = parser.parse_args(_SMOKE_ARGS + ["--out-dir", str(tmp_path)])
    assert args.builtin is True and args.jit_compile is False
    assert parser.parse_args(["--jit-compile"]).jit_compile is True
    assert parser.parse_args(["--jit-compile", "auto"]).jit_compile == "auto"
    assert parser.parse_args(["--no-builtin"]).builtin is False
    assert cli.run_train(args) == 0
    _check_smoke_output(capsys.readouterr().out, tmp_path)


def test_train_command_without_matplotlib(mnist, tmp_path, capsys,
                                          monkeypatch):
    """matplotlib is the optional ``plot`` extra: without it the run still
    succeeds, writes summary.json and says how to get the plot."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    parser = argparse.ArgumentParser(prog="customlayers train")
    cli.add_train_arguments(parser)
    args = parser.parse_args(_SMOKE_ARGS + ["--out-dir", str(tmp_path)])
    assert cli.run_train(args) == 0
    out = capsys.readouterr().out
    assert "loss_curves.png not written: matplotlib is not installed" in out
    assert "pip install 'customlayers[plot]'" in out
    assert not (tmp_path / training.PLOT_FILENAME).exists()
    summary = json.loads((tmp_path / training.SUMMARY_FILENAME).read_text())
    assert summary["runs"]["custom"]["steps"] == 20


def test_customlayers_train_console_script(mnist, tmp_path):
    script = pathlib.Path(sys.executable).parent / "customlayers"
    if not script.exists():
        pytest.skip(f"console script {script} not installed "
                    "(pip install -e .)")
    proc = subprocess.run(
        [str(script), "train", *_SMOKE_ARGS, "--out-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=subprocess_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _check_smoke_output(proc.stdout, tmp_path)
    # TensorFlow's C++ start-up lines (absl, cudart) are not shown
    assert "absl::InitializeLog" not in proc.stderr, proc.stderr[-3000:]
