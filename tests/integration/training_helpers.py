"""Helpers of the MNIST training tests (test_training_*.py,
test_train_command.py) and the distribution tests (test_distribution_*.py):
the seed and tolerance they share, running Python in fresh processes (one,
or several at once), the trajectory comparison of a custom run against its
built-in twin, and the comparison of two runs saved as ``.npz`` arrays. The
fixtures (``mnist``, ``graph_run``) are in conftest.py, session-scoped so
that the files share one 5-epoch run."""

from __future__ import annotations

import fcntl
import os
import pathlib
import subprocess
import sys
import tempfile
import time

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


def subprocess_env(extra=None):
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.update(extra or {})
    return env


def start_python(script: str, *args, env=None) -> subprocess.Popen:
    """``python -c script args...`` in the background, with ``env`` added
    to :func:`subprocess_env`; its output goes to temporary files (a pipe
    nobody reads could fill up and stall it). Collect it with
    :func:`wait_all`."""
    outputs = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)], stdout=outputs[0],
        stderr=outputs[1], text=True, env=subprocess_env(env), cwd=str(REPO))
    proc.outputs = outputs
    return proc


def _completed(proc):
    texts = []
    for f in proc.outputs:
        f.seek(0)
        texts.append(f.read())
        f.close()
    return subprocess.CompletedProcess(proc.args, proc.returncode, *texts)


def wait_all(procs, *, timeout=300):
    """Wait for processes from :func:`start_python`; returns their
    CompletedProcess. As soon as one fails, or at ``timeout`` seconds, the
    others are killed (a worker whose peer died would wait for it forever)
    and the assertion shows every process's status, stdout and stderr."""
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs) and \
            all(p.poll() in (None, 0) for p in procs) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    done = [_completed(p) for p in procs]
    assert all(c.returncode == 0 for c in done), "\n".join(
        f"subprocess {i} of {len(done)} failed with status {c.returncode}"
        f"{' (killed: timed out, or a peer failed)' * (c.returncode < 0)}"
        f"\n--- stdout ---\n{c.stdout[-4000:]}\n--- stderr ---\n"
        f"{c.stderr[-4000:]}" for i, c in enumerate(done))
    return done


def run_python(script: str, *args, timeout=300, env=None):
    return wait_all([start_python(script, *args, env=env)],
                    timeout=timeout)[0]


def once_per_run(tmp_path_factory, name: str, produce) -> pathlib.Path:
    """``produce(folder)`` once per pytest run, even under pytest-xdist
    (where every worker has its own module and session fixtures): the first
    caller runs it under a file lock, later ones wait and reuse the folder.
    A ``produce`` that raised is tried again by the next caller."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # this run's folder, shared by its workers
    folder = base / name
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "DONE").exists():
            folder.mkdir(exist_ok=True)
            produce(folder)
            (folder / "DONE").write_text("")
    return folder


def compare_runs(arrays, custom: str, reference: str, *, tolerance):
    """Compare every array ``<custom>/<name>`` in ``arrays`` (an ``.npz``)
    with ``<reference>/<name>``; ``tolerance=None`` is bit for bit. Returns
    ``(comparisons, problems)``: the Comparison of each name both runs
    have, and one line (``Comparison.describe()``) per failed comparison
    or name that only one run has (a weight missing or renamed)."""
    def names(run):
        return {k[len(run) + 1:] for k in arrays if k.startswith(run + "/")}
    mine, theirs = names(custom), names(reference)
    assert mine or theirs, f"no arrays for {custom!r} or {reference!r}"
    problems = [f"{reference} has {n!r}, {custom} has not"
                for n in sorted(theirs - mine)]
    problems += [f"{custom} has {n!r}, {reference} has not"
                 for n in sorted(mine - theirs)]
    comps = [compare_arrays(f"{custom} vs {reference}: {n}",
                            arrays[f"{custom}/{n}"],
                            arrays[f"{reference}/{n}"], tolerance=tolerance)
             for n in sorted(mine & theirs)]
    return comps, problems + [c.describe() for c in comps if not c.passed]


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
