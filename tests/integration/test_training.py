"""Training on real MNIST: customlayers.MyModel against its keras.layers twin.

What is checked (all on the real data from ``customlayers.datasets``; skipped,
with the loader's message, only when no source can provide MNIST):

* Trajectory equivalence. Both models start from identical weights and
  train with Adam on the same batches in the same order; every per-batch
  loss and every final weight must match. On TensorFlow our Dense and ReLU
  run the same kernels as the built-ins, so the match is asserted to be
  **bit-exact** (and, first, within the harness's float32 tolerance, so that
  a failure says which of the two broke). Modes: TF graph (5 epochs, batch
  32), XLA (1 epoch, batch 128) and eager ``fit`` (1 full epoch, batch 256:
  eager costs per step, so fewer, larger steps).
* Accuracy: the tutorial's 784-64-10 model reaches >= 97% test accuracy
  after 5 epochs at batch 32 (seed 0; 3 epochs gives about 96.97%).
* Saving: the trained models saved as ``.keras`` and loaded in a fresh
  process predict exactly (bit for bit) what they predicted before.
* Scale-out: ``tf.distribute.MirroredStrategy`` over two logical CPUs, in a
  subprocess (logical devices must be configured before TF initialises).
* ``customlayers train``: a small smoke run (table, PNG, summary).
* Negative control: a twin with one perturbed weight is caught.

The whole file takes about 2.5 minutes on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from customlayers import cli
from customlayers import training
from customlayers._keras import BACKEND, keras
from customlayers.testing.numerics import compare_arrays
from customlayers.testing.saving import (SAVE_FORMATS, save_format_unsupported,
                                        save_model, save_path)
from customlayers.testing.tolerances import tolerance_for

pytestmark = pytest.mark.slow

F32 = tolerance_for("float32")
SEED = 0
REPO = pathlib.Path(__file__).resolve().parents[2]
needs_tf = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason=f"needs the TensorFlow backend (running {BACKEND})")


def _subprocess_env():
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def _run_python(script: str, *args, timeout=300):
    proc = subprocess.run([sys.executable, "-c", script, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env=_subprocess_env(), cwd=str(REPO))
    assert proc.returncode == 0, (
        f"subprocess failed with status {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout[-4000:]}\n"
        f"--- stderr ---\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def mnist(mnist_unavailable):
    from customlayers.datasets import DataIntegrityError, \
        MNISTUnavailableError
    try:
        return training.prepare_mnist()
    except (MNISTUnavailableError, DataIntegrityError) as err:
        mnist_unavailable(err)


#: JAX has no graph mode short of ``jax.jit``: there ``jit_compile=False``
#: makes ``fit`` run op by op (the 5-epoch run took most of the JAX env's
#: 26 minutes), so the tutorial's run uses ``jit_compile=True`` on JAX.
#: TensorFlow runs it as a tf.function graph, torch eagerly.
GRAPH_RUN_JIT = BACKEND == "jax"
GRAPH_RUN_MODE = "graph+XLA" if GRAPH_RUN_JIT else "graph"


@pytest.fixture(scope="module")
def graph_run(mnist, tmp_path_factory):
    """The tutorial's run: 5 epochs, batch 32, both models; TF graph (jit
    on JAX, see GRAPH_RUN_JIT)."""
    return training.train_side_by_side(
        epochs=5, batch_size=32, seed=SEED,
        out_dir=tmp_path_factory.mktemp("graph_run"),
        jit_compile=GRAPH_RUN_JIT, progress=False, data=mnist)


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


# --------------------------------------------------------------------------
# Trajectory equivalence, per execution mode
# --------------------------------------------------------------------------

def test_trajectory_graph_5_epochs_bit_exact(graph_run):
    assert graph_run.config["n_train"] == 60000
    assert graph_run.config["mode"] == GRAPH_RUN_MODE
    assert_same_trajectory(graph_run)


def test_trajectory_xla_full_epoch_bit_exact(mnist):
    result = training.train_side_by_side(
        epochs=1, batch_size=128, seed=SEED, jit_compile=True,
        progress=False, data=mnist)
    assert result.config["mode"] == "graph+XLA"
    assert result.config["n_train"] == 60000
    assert_same_trajectory(result)


def test_trajectory_eager_fit_full_epoch_bit_exact(mnist):
    # A full epoch of eager fit, at batch 256 (235 steps) to bound its cost.
    result = training.train_side_by_side(
        epochs=1, batch_size=256, seed=SEED, run_eagerly=True,
        progress=False, data=mnist)
    assert result.config["mode"] == "eager"
    assert result.config["n_train"] == 60000
    assert_same_trajectory(result)


def test_trajectory_check_catches_a_perturbed_twin(mnist):
    """Negative control: one weight of the twin moved by 1e-3 (a centre
    pixel, so it matters) must fail the trajectory comparison."""
    def perturb(twin):
        weights = twin.get_weights()
        weights[0][14 * 28 + 14, 5] += 1e-3
        twin.set_weights(weights)

    result = training.train_side_by_side(
        epochs=1, batch_size=32, seed=SEED, limit=3200, progress=False,
        data=mnist, modify_twin=perturb)
    assert result.initial_weights_identical is False
    assert not compare_arrays("loss", result.custom.step_losses,
                              result.builtin.step_losses,
                              tolerance=F32).passed
    with pytest.raises(AssertionError):
        assert_same_trajectory(result)


# --------------------------------------------------------------------------
# The recorded per-step loss is the loss of that batch
# --------------------------------------------------------------------------

def test_step_loss_is_the_batch_loss(graph_run, mnist):
    (x, y), _ = mnist
    cfg = graph_run.config
    bs, spe, n = cfg["batch_size"], cfg["steps_per_epoch"], cfg["n_train"]
    run = graph_run.custom
    # 1. The first recorded loss is the cross-entropy of the first batch
    # under the initial weights (computed here in float64).
    first = training.epoch_permutations(n, cfg["epochs"], SEED)[0][:bs]
    w1, b1, w2, b2 = (w.astype(np.float64) for w in run.initial_weights)
    logits = np.maximum(x[first] @ w1 + b1, 0) @ w2 + b2
    logits -= logits.max(axis=1, keepdims=True)
    expected = np.mean(np.log(np.exp(logits).sum(axis=1))
                       - logits[np.arange(bs), y[first]])
    np.testing.assert_allclose(run.step_losses[0], expected, rtol=1e-5)
    sizes = np.diff(np.r_[0:n:bs, n]).astype(np.float64)
    for e in range(cfg["epochs"]):
        steps = run.step_losses[e * spe:(e + 1) * spe].astype(np.float64)
        means = run.running_means[e * spe:(e + 1) * spe].astype(np.float64)
        # 2. Weighted by batch size, the steps average to Keras's epoch
        # mean. rtol 1e-4: Keras accumulates 1875 float32 terms.
        np.testing.assert_allclose(np.sum(steps * sizes) / n,
                                   run.epoch_mean_losses[e], rtol=1e-4)
        # 3. Undoing Keras's running mean gives the same per-batch losses,
        # up to the float32 cancellation that is why we do not do that
        # (|error| <= u * mean * n / batch ~ 1e-4 here).
        totals = means * np.cumsum(sizes)
        derived = np.diff(np.r_[0.0, totals]) / sizes
        np.testing.assert_allclose(derived, steps, atol=2e-3)
        # ...and the running mean itself is something else.
        assert np.max(np.abs(means - steps)) > 0.1


# --------------------------------------------------------------------------
# Accuracy
# --------------------------------------------------------------------------

def test_tutorial_model_reaches_97_percent(graph_run):
    cfg = graph_run.config
    assert (cfg["epochs"], cfg["batch_size"]) == (5, 32)
    accs = {k: r.test_accuracy for k, r in graph_run.runs.items()}
    print(f"\ntest accuracy after {cfg['epochs']} epochs at batch "
          f"{cfg['batch_size']}, seed {cfg['seed']}: {accs}")
    assert cfg["n_test"] == 10000
    for name, acc in accs.items():
        assert acc >= 0.97, f"{name}: test accuracy {acc:.4f} < 0.97"


# --------------------------------------------------------------------------
# Saving and loading in a fresh process
# --------------------------------------------------------------------------

_LOAD_AND_PREDICT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import customlayers  # registers MyModel, Dense, ReLU for loading
    from customlayers._keras import keras
    from customlayers.testing.convert import to_numpy
    from customlayers.testing.saving import load_model
    x = np.load(sys.argv[1])
    fmt = sys.argv[3]
    out = {}
    for i, path in enumerate(sys.argv[4:]):
        model = load_model(path, fmt)
        if isinstance(model, keras.Model):
            pred = model.predict(x, batch_size=1000, verbose=0)
            kinds = [type(model).__module__ + "." + type(model).__name__]
            kinds += [type(layer).__module__ + "." + type(layer).__name__
                      for layer in getattr(model, "layers", [])]
        else:  # a Keras 3 SavedModel export: a serving function
            pred = np.concatenate([to_numpy(model(x[j:j + 1000]))
                                   for j in range(0, len(x), 1000)])
            kinds = ["serving function"]
        np.save(f"{sys.argv[2]}_{i}.npy", pred)
        out[path] = kinds
    print(json.dumps(out))
""")

_CUSTOM_KINDS = ["customlayers.dense.Dense", "customlayers.relu.ReLU",
                 "customlayers.dense.Dense"]


@pytest.mark.parametrize("fmt", SAVE_FORMATS)
def test_saved_models_reload_in_a_fresh_process(graph_run, mnist, tmp_path,
                                                fmt):
    """The trained models, saved in ``fmt`` and loaded in a new process,
    predict bit for bit what they predicted before: MyModel, a Sequential
    of our trained layers (HDF5 holds no subclassed model) and the twin."""
    _, (x_test, _) = mnist
    custom = graph_run.custom.model
    models = {
        "MyModel": custom,
        "Sequential of customlayers": keras.Sequential(
            [keras.Input((784,)), custom.dense_1, custom.relu,
             custom.dense_2]),
        "builtin twin": graph_run.builtin.model,
    }
    reasons = {name: save_format_unsupported(fmt, model=m)
               for name, m in models.items()}
    print(f"\n{fmt}: " + ", ".join(
        f"{n}: {'saved' if r is None else 'not saved (' + r + ')'}"
        for n, r in reasons.items()))
    models = {n: m for n, m in models.items() if reasons[n] is None}
    if "Sequential of customlayers" not in models:
        pytest.skip(f"{fmt}: {reasons['Sequential of customlayers']}")
    paths, before = [], []
    for i, (name, model) in enumerate(models.items()):
        path = save_path(str(tmp_path / str(i)), fmt)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        save_model(model, path, fmt)
        paths.append(path)
        before.append(model.predict(x_test, batch_size=1000, verbose=0))
    np.save(tmp_path / "x_test.npy", x_test)
    proc = _run_python(_LOAD_AND_PREDICT, tmp_path / "x_test.npy",
                       tmp_path / "pred", fmt, *paths)
    kinds = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, path in zip(models, paths):
        if kinds[path] == ["serving function"] or name == "builtin twin":
            continue
        want = (["customlayers.model.MyModel"] if name == "MyModel" else
                [kinds[path][0]]) + _CUSTOM_KINDS
        assert kinds[path] == want, f"{name} reloaded as {kinds[path]}"
    for i, (name, ref) in enumerate(zip(models, before)):
        after = np.load(tmp_path / f"pred_{i}.npy")
        comp = compare_arrays(f"{name}: predictions after the {fmt} reload",
                              after, ref, tolerance=None)
        assert comp.passed, comp.describe()
    # The custom model and the twin also predict the same, bit for bit.
    assert compare_arrays("custom vs twin", before[0], before[-1],
                          tolerance=None).passed


# --------------------------------------------------------------------------
# MirroredStrategy over two logical CPUs
# --------------------------------------------------------------------------

_MIRRORED = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    from customlayers.training import prepare_mnist, train_side_by_side
    data = prepare_mnist()
    strategy = tf.distribute.MirroredStrategy(devices)
    kw = dict(epochs=1, batch_size=128, seed=int(sys.argv[2]),
              progress=False, data=data)
    t0 = time.perf_counter()
    runs = {"mirrored": train_side_by_side(strategy=strategy, **kw)}
    t1 = time.perf_counter()
    runs["single"] = train_side_by_side(**kw)
    t2 = time.perf_counter()
    arrays = {}
    for where, result in runs.items():
        for name, run in result.runs.items():
            arrays[f"{where}/{name}/loss"] = run.step_losses
            for i, w in enumerate(run.weights):
                arrays[f"{where}/{name}/w{i}"] = w
            for i, w in enumerate(run.initial_weights):
                arrays[f"{where}/{name}/init{i}"] = w
    np.savez(sys.argv[1], **arrays)
    print(json.dumps({
        "devices": devices, "replicas": strategy.num_replicas_in_sync,
        "strategy": runs["mirrored"].config["strategy"],
        "seconds": {"mirrored": t1 - t0, "single": t2 - t1},
        "accuracy": {w: {k: r.test_accuracy for k, r in res.runs.items()}
                     for w, res in runs.items()},
        "mirrored_custom_vs_builtin_bit_exact":
            bool(runs["mirrored"].losses_bit_exact
                 and runs["mirrored"].weights_bit_exact)}))
""")


@needs_tf
def test_mirrored_strategy_two_logical_cpus(mnist, tmp_path):
    """Under MirroredStrategy (2 replicas, 64 examples each) the custom model
    and its twin follow the same trajectory bit for bit, and both match
    single-device training within the float32 row of TOLERANCES.

    Not bit-exact against one device, as expected: Keras divides each
    replica's loss by the number of replicas and the all-reduce adds the two
    half-batch gradients, a different summation order and rounding from one
    128-example reduction. Those last-ULP differences (about 3 ULP in the
    loss, ~5e-7 absolute in the weights after 469 Adam steps) are what the
    float32 tolerance (rtol=atol=2e-5, sized for reordered sums) is for.
    """
    out = tmp_path / "mirrored.npz"
    proc = _run_python(_MIRRORED, out, SEED)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["replicas"] == 2 and len(info["devices"]) == 2, info
    assert info["strategy"] == "MirroredStrategy"
    a = np.load(out)
    keys = ["loss", "w0", "w1", "w2", "w3"]
    for k in ["init0", "init1", "init2", "init3"]:
        for name in ("custom", "builtin"):
            assert np.array_equal(a[f"mirrored/{name}/{k}"],
                                  a[f"single/custom/{k}"])
    lines = []
    for k in keys:
        comp = compare_arrays(f"mirrored custom vs builtin {k}",
                              a[f"mirrored/custom/{k}"],
                              a[f"mirrored/builtin/{k}"], tolerance=None)
        assert comp.passed, comp.describe()
        for name in ("custom", "builtin"):
            comp = compare_arrays(f"{name} mirrored vs single {k}",
                                  a[f"mirrored/{name}/{k}"],
                                  a[f"single/{name}/{k}"], tolerance=F32)
            assert comp.passed, comp.describe()
            lines.append(f"{comp.check}: max abs {comp.max_abs:.3g}, "
                         f"max ULP {comp.max_ulp:g}, bit-exact "
                         f"{comp.bit_exact}")
    assert len(a["mirrored/custom/loss"]) == 469
    print("\n" + json.dumps(info) + "\n" + "\n".join(lines))


# --------------------------------------------------------------------------
# customlayers train
# --------------------------------------------------------------------------

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
        capture_output=True, text=True, timeout=300, env=_subprocess_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _check_smoke_output(proc.stdout, tmp_path)
    # TensorFlow's C++ start-up lines (absl, cudart) are not shown
    assert "absl::InitializeLog" not in proc.stderr, proc.stderr[-3000:]
