"""Helpers of the MNIST training tests (test_training_*.py,
test_train_command.py): the seed and tolerance they share, running Python in
a fresh process, and the trajectory comparison of a custom run against its
built-in twin. The fixtures (``mnist``, ``graph_run``) are in conftest.py,
session-scoped so that the files share one 5-epoch run."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from customlayers._keras import BACKEND
from customlayers.testing.numerics import compare_arrays
from customlayers.testing.tolerances import tolerance_for

F32 = tolerance_for("float32")
SEED = 0
REPO = pathlib.Path(__file__).resolve().parents[2]
needs_tf = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason=f"needs the TensorFlow backend (running {BACKEND})")

#: JAX has no graph mode short of ``jax.jit``: there ``jit_compile=False``
#: makes ``fit`` run op by op (the 5-epoch run took most of the JAX env's
#: 26 minutes), so the tutorial's run uses ``jit_compile=True`` on JAX.
#: TensorFlow runs it as a tf.function graph, torch eagerly.
GRAPH_RUN_JIT = BACKEND == "jax"
GRAPH_RUN_MODE = "graph+XLA" if GRAPH_RUN_JIT else "graph"


def subprocess_env():
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def run_python(script: str, *args, timeout=300):
    proc = subprocess.run([sys.executable, "-c", script, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env=subprocess_env(), cwd=str(REPO))
    assert proc.returncode == 0, (
        f"subprocess failed with status {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout[-4000:]}\n"
        f"--- stderr ---\n{proc.stderr[-4000:]}")
    return proc


def assert_same_trajectory(result, *, bit_exact: bool = True):
    """Custom vs twin: identical start, full length, per-step losses and
    final weights within float32 tolerance and (if asked) bit-exact."""
    cfg = result.config
    c, b = result.custom, result.builtin
    assert result.initial_weights_identical, \
        "the twin did not start from MyModel's initial weights"
    n_steps = cfg["epochs"] * cfg["steps_per_epoch"]
    assert len(c.step_losses) == len(b.step_losses) == n_steps
    assert np.all(np.isfinite(c.step_losses))
    # The weights did move: a trajectory check on a frozen model is empty.
    assert max(np.max(np.abs(w - w0)) for w, w0 in
               zip(c.weights, c.initial_weights)) > 1e-2
    comps = [compare_arrays("per-step loss", c.step_losses, b.step_losses,
                            tolerance=F32)]
    names = ["dense_1.kernel", "dense_1.bias", "dense_2.kernel",
             "dense_2.bias"]
    comps += [compare_arrays(f"final {n}", wc, wb, tolerance=F32)
              for n, wc, wb in zip(names, c.weights, b.weights)]
    bad = [x.describe() for x in comps if not x.passed]
    assert not bad, (f"{cfg['mode']}: outside the float32 tolerance "
                     f"(rtol=atol={F32.rtol:g}):\n" + "\n".join(bad))
    if bit_exact:
        not_exact = [x.describe() for x in (
            compare_arrays(x.check, a, r, tolerance=None) for x, a, r in zip(
                comps, [c.step_losses, *c.weights],
                [b.step_losses, *b.weights])) if not x.passed]
        assert not not_exact, (
            f"{cfg['mode']}: within tolerance but not bit-exact, although "
            "our layers run the built-ins' kernels:\n" + "\n".join(not_exact))
        assert result.losses_bit_exact and result.weights_bit_exact
        assert result.max_step_loss_diff == 0.0
        assert result.max_weight_diff == 0.0
    print(f"\n{cfg['mode']}: {n_steps} steps, max step loss diff "
          f"{result.max_step_loss_diff:.3g}, max weight diff "
          f"{result.max_weight_diff:.3g}, bit-exact losses "
          f"{result.losses_bit_exact}, weights {result.weights_bit_exact}")
