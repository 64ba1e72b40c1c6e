"""Train the tutorial's model and its built-in twin side by side on MNIST.

The modules, one role each:

- :mod:`.trainer`: :func:`train_side_by_side` (builds, trains, compares);
- :mod:`.metrics`: what is recorded during ``fit`` (:class:`BatchLoss`, the
  loss of the current batch only, and the callbacks);
- :mod:`.results`: :class:`ModelRun` and :class:`TrainResult`;
- :mod:`.report`: the results table and the loss-curve PNG (matplotlib is
  optional: ``pip install customlayers[plot]``);
- :mod:`.data`: :func:`prepare_mnist` and the shared batch order.

The ``customlayers train`` command (its options and :func:`run_train`) lives
in :mod:`customlayers.cli`. Importing this package imports Keras.
"""

from customlayers.training.data import epoch_permutations, prepare_mnist
from customlayers.training.metrics import BatchLoss, ProgressCallback, StepLossRecorder
from customlayers.training.report import PlotUnavailableError, format_results_table, plot_losses
from customlayers.training.results import PLOT_FILENAME, SUMMARY_FILENAME, ModelRun, TrainResult
from customlayers.training.trainer import train_side_by_side

__all__ = [
    "BatchLoss",
    "StepLossRecorder",
    "ProgressCallback",
    "ModelRun",
    "TrainResult",
    "prepare_mnist",
    "epoch_permutations",
    "train_side_by_side",
    "format_results_table",
    "plot_losses",
    "PlotUnavailableError",
    "PLOT_FILENAME",
    "SUMMARY_FILENAME",
]
