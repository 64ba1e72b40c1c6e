"""Role: train the tutorial's model and its built-in twin side by side.

:func:`train_side_by_side` builds :class:`customlayers.MyModel` (hand-written
``Dense``/``ReLU``) and its :meth:`~customlayers.MyModel.builtin_twin`
(``keras.layers.Dense``/``ReLU``) from *identical* initial weights, trains
both with Adam on the same batches in the same order, and compares them step
by step: the loss of every batch (recorded as :mod:`.metrics` explains), the
final weights, test accuracy, wall time and throughput. It writes a PNG of
both loss curves and their difference (:mod:`.report`), and prints a table.

Batch order: each epoch's order is a permutation drawn with
``numpy.random.default_rng(seed)``; the permuted arrays are fitted with
``shuffle=False``, one ``fit`` call per model per epoch, alternating the
models (custom first) so that both see the same machine load.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import sys
import time
from typing import Callable, Optional

import numpy as np

from customlayers._keras import BACKEND, KERAS_VERSION, keras
from customlayers.training.data import epoch_permutations, prepare_mnist
from customlayers.training.metrics import BatchLoss, ProgressCallback, StepLossRecorder
from customlayers.training.report import PlotUnavailableError, format_results_table, plot_losses
from customlayers.training.results import (
    BUILTIN, CUSTOM, LABELS, PLOT_FILENAME, SUMMARY_FILENAME, ModelRun, TrainResult,
    bit_equal, max_abs_diff,
)

__all__ = ["train_side_by_side"]


def _versions() -> dict:
    import customlayers

    versions = {"customlayers": customlayers.__version__,
                "keras": KERAS_VERSION,
                "backend": BACKEND,
                "numpy": np.__version__,
                "python": sys.version.split()[0]}
    if BACKEND == "tensorflow":
        import tensorflow as tf
        versions["tensorflow"] = tf.__version__
    return versions


def _mode_name(jit_compile, run_eagerly) -> str:
    if run_eagerly:
        return "eager"
    if jit_compile == "auto":
        return "jit_compile=auto"
    return "graph+XLA" if jit_compile else "graph"


def _evaluate(model, x, y, batch_size=1000):
    logits = np.asarray(model.predict(x, batch_size=batch_size, verbose=0),
                        np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=1))
    loss = float(np.mean(log_z - shifted[np.arange(len(y)), y]))
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y))
    return loss, accuracy


def train_side_by_side(
    epochs: int = 3,
    batch_size: int = 32,
    seed: int = 0,
    out_dir=None,
    jit_compile=False,
    builtin: bool = True,
    progress: bool = True,
    limit: Optional[int] = None,
    *,
    run_eagerly: bool = False,
    learning_rate: float = 1e-3,
    hidden_units: int = 64,
    strategy=None,
    data=None,
    modify_twin: Optional[Callable] = None,
    print_table: bool = True,
) -> TrainResult:
    """Train ``MyModel`` and its built-in twin identically and compare them.

    Both models start from the same weights (the twin is a copy), use their
    own ``Adam(learning_rate)`` and ``SparseCategoricalCrossentropy(
    from_logits=True)``, and see the same batches in the same order (see the
    module docstring).

    Args:
        epochs: Number of passes over the training set.
        batch_size: Global batch size.
        seed: Seeds the initial weights (``keras.utils.set_random_seed``) and
            the batch order.
        out_dir: Where to write ``summary.json`` and ``loss_curves.png``;
            ``None`` writes nothing. Without matplotlib (``pip install
            customlayers[plot]``) the PNG is skipped and
            ``result.plot_unavailable`` says why.
        jit_compile: ``False`` (TF graph), ``True`` (XLA) or ``"auto"``;
            passed to ``compile``.
        builtin: Also train the built-in twin (otherwise only ``MyModel``).
        progress: One line per model/epoch, then a progress bar on a terminal
            or about ten plain lines per epoch elsewhere (``customlayers._progress``).
        limit: Train on the first ``limit`` examples only (smoke tests).
        run_eagerly: Compile with ``run_eagerly=True`` (``fit`` runs eagerly).
        learning_rate: Adam's learning rate.
        hidden_units: Width of the hidden layer (the tutorial's 64).
        strategy: A ``tf.distribute`` strategy to build and train under.
        data: Pre-loaded ``prepare_mnist()`` output, to skip loading.
        modify_twin: Called with the twin right after its weights are copied
            (tests use it to plant a difference).
        print_table: Print the results table when done.

    Returns:
        A :class:`TrainResult`. Its models (``result.runs[...].model``) are
        left compiled as in the tutorial (their trained Adam, with its state,
        and the loss) without the recording metric, so they save to
        ``.keras`` and load back with just ``import customlayers.model``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1; received {epochs!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; received {batch_size!r}")
    if jit_compile not in (True, False, "auto"):
        raise ValueError("jit_compile must be True, False or 'auto'; "
                         f"received {jit_compile!r}")
    from customlayers.model import MyModel

    if data is None:
        data = prepare_mnist(limit)
    (x_train, y_train), (x_test, y_test) = data
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    n = len(x_train)
    orders = epoch_permutations(n, epochs, seed)

    def scope():
        return strategy.scope() if strategy is not None else contextlib.nullcontext()

    with scope():
        keras.utils.set_random_seed(seed)
        custom = MyModel(num_classes=10, hidden_units=hidden_units)
        # Build by calling: ``MyModel.build((None, 784))`` only marks the
        # model built (it has no build() of its own), leaving the Dense
        # layers without weights, so builtin_twin() would copy nothing.
        custom(x_train[:1])
        if len(custom.get_weights()) != 4:
            raise RuntimeError("MyModel did not build its weights")
        models = {CUSTOM: custom}
        if builtin:
            twin = custom.builtin_twin()
            if len(twin.get_weights()) != 4:
                raise RuntimeError("builtin_twin() has no weights")
            if modify_twin is not None:
                modify_twin(twin)
            models[BUILTIN] = twin
        for model in models.values():
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                loss=keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True),
                metrics=[BatchLoss()],
                jit_compile=jit_compile,
                run_eagerly=run_eagerly,
            )

    initial = {k: [np.array(w) for w in m.get_weights()]
               for k, m in models.items()}
    recorders = {k: StepLossRecorder() for k in models}
    times = {k: [] for k in models}
    for epoch, order in enumerate(orders):
        xe, ye = x_train[order], y_train[order]
        for name, model in models.items():
            callbacks = [recorders[name]]
            if progress:
                print(f"[{name}] {LABELS[name]}: epoch {epoch + 1}/{epochs}",
                      flush=True)
                callbacks.append(ProgressCallback(
                    f"[{name}] epoch {epoch + 1}/{epochs}: batch", -(-n // batch_size)))
            start = time.perf_counter()
            model.fit(xe, ye, batch_size=batch_size, epochs=1, shuffle=False,
                      verbose=0, callbacks=callbacks)
            times[name].append(time.perf_counter() - start)
        del xe, ye

    runs = {}
    for name, model in models.items():
        # Recompile as the tutorial does, keeping the trained optimizer (and
        # its state) but dropping BatchLoss, so that the saved model loads
        # with a plain ``import customlayers.model``.
        with scope():
            model.compile(optimizer=model.optimizer, loss=model.loss,
                          jit_compile=jit_compile, run_eagerly=run_eagerly)
        test_loss, test_acc = _evaluate(model, x_test, y_test)
        wall = float(sum(times[name]))
        rec = recorders[name]
        runs[name] = ModelRun(
            name=name, label=LABELS[name],
            step_losses=np.asarray(rec.step_losses, np.float32),
            running_means=np.asarray(rec.running_means, np.float32),
            epoch_mean_losses=rec.epoch_mean_losses,
            epoch_times_s=times[name], wall_time_s=wall,
            examples_per_s=n * epochs / wall if wall > 0 else float("inf"),
            test_loss=test_loss, test_accuracy=test_acc,
            weights=[np.array(w) for w in model.get_weights()],
            initial_weights=initial[name], model=model)

    n_replicas = getattr(strategy, "num_replicas_in_sync", 1)
    config = {"epochs": epochs, "batch_size": batch_size, "seed": seed,
              "jit_compile": jit_compile, "run_eagerly": run_eagerly,
              "mode": _mode_name(jit_compile, run_eagerly),
              "learning_rate": learning_rate, "hidden_units": hidden_units,
              "limit": limit, "n_train": n, "n_test": int(len(x_test)),
              "steps_per_epoch": -(-n // batch_size),
              "strategy": type(strategy).__name__ if strategy else None,
              "replicas": n_replicas}
    if builtin:
        c, b = runs[CUSTOM], runs[BUILTIN]
        result = TrainResult(
            config=config, versions=_versions(), runs=runs,
            initial_weights_identical=all(
                bit_equal(x, y) for x, y in zip(c.initial_weights,
                                                 b.initial_weights)),
            max_step_loss_diff=max_abs_diff([c.step_losses],
                                             [b.step_losses]),
            max_weight_diff=max_abs_diff(c.weights, b.weights),
            losses_bit_exact=bit_equal(c.step_losses, b.step_losses),
            weights_bit_exact=all(bit_equal(x, y)
                                  for x, y in zip(c.weights, b.weights)))
    else:
        result = TrainResult(config=config, versions=_versions(), runs=runs,
                             initial_weights_identical=None,
                             max_step_loss_diff=None, max_weight_diff=None,
                             losses_bit_exact=None, weights_bit_exact=None)
    result.table = format_results_table(result)
    if out_dir is not None:
        out = pathlib.Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        result.summary_path = out / SUMMARY_FILENAME
        result.summary_path.write_text(
            json.dumps(result.summary(), indent=2) + "\n")
        try:
            result.plot_path = plot_losses(result, out / PLOT_FILENAME)
        except PlotUnavailableError as err:
            result.plot_unavailable = str(err)
    if print_table:
        print(result.table, flush=True)
    return result


