"""Training on real MNIST: customlayers.MyModel against its keras.layers twin.

What is checked here (all on the real data from ``customlayers.datasets``;
skipped, with the loader's message, only when no source can provide MNIST):

* Trajectory equivalence. Both models start from identical weights and
  train with Adam on the same batches in the same order; every per-batch
  loss and every final weight must match. On TensorFlow our Dense and ReLU
  run the same kernels as the built-ins, so the match is asserted to be
  **bit-exact** (and, first, within the harness's float32 tolerance, so that
  a failure says which of the two broke). Modes: TF graph (5 epochs, batch
  32), XLA (1 epoch, batch 128) and eager ``fit`` (1 full epoch, batch 256:
  eager costs per step, so fewer, larger steps).
* Negative control: a twin with one perturbed weight is caught.
* The recorded per-step loss is the loss of that batch.
* Accuracy: the tutorial's 784-64-10 model reaches >= 97% test accuracy
  after 5 epochs at batch 32 (seed 0; 3 epochs gives about 96.97%).

The other training files: test_training_saving.py (reload in a fresh
process), test_training_mirrored.py (MirroredStrategy), test_train_command.py
(``customlayers train``); their shared helpers are in training_helpers.py,
the fixtures in conftest.py. All four take about 2.5 minutes on the 2-core
development machine, most of it the shared 5-epoch ``graph_run``.
"""

from __future__ import annotations

import numpy as np
import pytest

from customlayers import training
from customlayers.testing.numerics import compare_arrays
from tests.integration.training_helpers import (F32, GRAPH_RUN_MODE, SEED,
                                                assert_same_trajectory)

pytestmark = pytest.mark.slow


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
