"""Role: the result types of a side-by-side run (:class:`ModelRun`,
:class:`TrainResult`) and the comparisons that fill them. No Keras here."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Optional

import numpy as np

__all__ = ["ModelRun", "TrainResult", "CUSTOM", "BUILTIN", "LABELS",
           "PLOT_FILENAME", "SUMMARY_FILENAME", "bit_equal", "max_abs_diff"]

PLOT_FILENAME = "loss_curves.png"
SUMMARY_FILENAME = "summary.json"
CUSTOM = "custom"
BUILTIN = "builtin"
LABELS = {CUSTOM: "customlayers.MyModel (hand-written Dense/ReLU)",
          BUILTIN: "built-in twin (keras.layers.Dense/ReLU)"}


@dataclasses.dataclass
class ModelRun:
    """What one model did. ``step_losses`` has one float32 value per batch."""

    name: str
    label: str
    step_losses: np.ndarray
    running_means: np.ndarray
    epoch_mean_losses: list
    epoch_times_s: list
    wall_time_s: float
    examples_per_s: float
    test_loss: float
    test_accuracy: float
    weights: list
    initial_weights: list
    model: Any = dataclasses.field(repr=False, default=None)

    @property
    def final_loss(self) -> float:
        """Keras's mean training loss over the last epoch."""
        return self.epoch_mean_losses[-1]


@dataclasses.dataclass
class TrainResult:
    """The outcome of :func:`train_side_by_side`.

    ``runs`` maps ``"custom"`` (and ``"builtin"`` unless ``builtin=False``)
    to a :class:`ModelRun`. The comparison fields are ``None`` without the
    twin: ``max_step_loss_diff`` is ``max |loss_custom - loss_builtin|`` over
    all batches, ``max_weight_diff`` the largest absolute difference of any
    final weight, and the ``*_bit_exact`` flags say whether the arrays are
    identical bit for bit.
    """

    config: dict
    versions: dict
    runs: dict
    initial_weights_identical: Optional[bool]
    max_step_loss_diff: Optional[float]
    max_weight_diff: Optional[float]
    losses_bit_exact: Optional[bool]
    weights_bit_exact: Optional[bool]
    plot_path: Optional[pathlib.Path] = None
    summary_path: Optional[pathlib.Path] = None
    #: Why no PNG was written (matplotlib missing), else ``None``.
    plot_unavailable: Optional[str] = None
    table: str = ""

    @property
    def custom(self) -> ModelRun:
        return self.runs[CUSTOM]

    @property
    def builtin(self) -> Optional[ModelRun]:
        return self.runs.get(BUILTIN)

    def summary(self) -> dict:
        """JSON-ready numbers (no arrays, no models)."""
        runs = {}
        for name, run in self.runs.items():
            runs[name] = {
                "label": run.label,
                "final_loss": run.final_loss,
                "epoch_mean_losses": run.epoch_mean_losses,
                "test_loss": run.test_loss,
                "test_accuracy": run.test_accuracy,
                "wall_time_s": run.wall_time_s,
                "epoch_times_s": run.epoch_times_s,
                "examples_per_s": run.examples_per_s,
                "steps": int(len(run.step_losses)),
            }
        return {
            "config": self.config,
            "versions": self.versions,
            "runs": runs,
            "initial_weights_identical": self.initial_weights_identical,
            "max_step_loss_diff": self.max_step_loss_diff,
            "max_weight_diff": self.max_weight_diff,
            "losses_bit_exact": self.losses_bit_exact,
            "weights_bit_exact": self.weights_bit_exact,
        }


def bit_equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and \
        a.tobytes() == b.tobytes()


def max_abs_diff(xs, ys) -> float:
    return max((float(np.max(np.abs(np.asarray(x, np.float64)
                                   - np.asarray(y, np.float64)),
                             initial=0.0))
                for x, y in zip(xs, ys)), default=0.0)


