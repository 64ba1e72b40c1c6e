"""Role: what the trainer records during ``fit``. :class:`BatchLoss` (a
metric holding the loss of the current batch only), :class:`StepLossRecorder`
and :class:`ProgressCallback`.

Keras 3 reports the *running mean over the epoch* as ``logs["loss"]`` in
``on_train_batch_end``. Undoing that mean (``m_n * W_n - m_(n-1) * W_(n-1)``)
cancels catastrophically in float32, so it is not done. Instead both models
are compiled with :class:`BatchLoss`: inside the same ``train_step`` it takes
the logits the loss was computed from (before the weight update) and stores
the sum of the per-example cross-entropies and the example count, overwriting
the previous batch. ``result()`` is their quotient, i.e. exactly the
``sum_over_batch_size`` loss of that batch. The variables are on-read
``sum``-aggregated, so under ``tf.distribute`` the replicas' partial sums and
counts add up to the loss of the global batch. :class:`StepLossRecorder`
reads it in ``on_train_batch_end``.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from customlayers._keras import (add_sum_variable, keras, ops,
                                 register_serializable)
from customlayers._progress import Progress

__all__ = ["BatchLoss", "StepLossRecorder", "ProgressCallback"]


@register_serializable()
class BatchLoss(keras.metrics.Metric):
    """The loss of the *current* batch only (not the epoch's running mean).

    ``update_state`` overwrites two on-read, ``sum``-aggregated variables
    with the sum of this batch's per-example losses and its example count;
    ``result()`` is their quotient, the ``sum_over_batch_size`` loss of the
    batch (global batch under ``tf.distribute``).

    Args:
        loss_fn: Per-example loss ``loss_fn(y_true, y_pred) -> (batch,)``;
            defaults to sparse categorical cross-entropy from logits.
        name: Metric name, also its key in the ``logs``.
    """

    def __init__(self, loss_fn: Optional[Callable] = None,
                 name: str = "step_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.loss_fn = loss_fn or (
            lambda y, logits: keras.losses.sparse_categorical_crossentropy(
                y, logits, from_logits=True))
        self.batch_sum = add_sum_variable(self, "sum")
        self.batch_count = add_sum_variable(self, "count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("BatchLoss does not support sample weights")
        per_example = ops.cast(self.loss_fn(y_true, y_pred), self.dtype)
        self.batch_sum.assign(ops.sum(per_example))
        self.batch_count.assign(
            ops.cast(ops.shape(per_example)[0], self.dtype))

    def result(self):
        return ops.divide_no_nan(self.batch_sum, self.batch_count)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class StepLossRecorder(keras.callbacks.Callback):
    """Collects ``logs[key]`` after every training batch and Keras's own
    epoch-mean ``logs["loss"]`` after every epoch."""

    def __init__(self, key: str = "step_loss"):
        super().__init__()
        self.key = key
        self.step_losses: list[float] = []
        self.epoch_mean_losses: list[float] = []
        self.running_means: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        self.step_losses.append(float(np.asarray(logs[self.key])))
        self.running_means.append(float(np.asarray(logs["loss"])))

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_mean_losses.append(float(np.asarray((logs or {})["loss"])))




class ProgressCallback(keras.callbacks.Callback):
    """Shows one epoch of ``fit`` through :class:`customlayers._progress.Progress`
    (a bar on a terminal, about ten plain lines in a log) with the batch loss."""

    def __init__(self, label: str, steps: int, key: str = "step_loss"):
        super().__init__()
        self.progress = Progress(steps, label)
        self.key = key

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get(self.key)
        self.progress.update(1, "" if loss is None else f"batch loss {float(np.asarray(loss)):.4f}")
