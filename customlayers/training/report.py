"""Role: report a side-by-side run: the results table (through
:func:`customlayers._table.format_table`) and the PNG of both loss curves.

matplotlib is optional (the ``plot`` extra); without it :func:`plot_losses`
raises :class:`PlotUnavailableError`, naming the extra.
"""

from __future__ import annotations

import pathlib

import numpy as np

from customlayers._table import format_table
from customlayers.training.results import CUSTOM, TrainResult

__all__ = ["format_results_table", "plot_losses", "PlotUnavailableError"]


class PlotUnavailableError(ImportError):
    """The plot cannot be drawn: matplotlib is missing."""


def _fmt_diff(value, bit_exact) -> str:
    if value is None:
        return "-"
    return "0 (bit-exact)" if bit_exact else f"{value:.3g}"


def format_results_table(result: TrainResult) -> str:
    """The results table, one row per model, plus a comparison line."""
    cfg = result.config
    header = ("model", "final loss", "test loss", "test acc", "wall s",
              "examples/s", "max step loss diff")
    rows = []
    for name, run in result.runs.items():
        rows.append((
            f"{name} ({'MyModel' if name == CUSTOM else 'keras.layers twin'})",
            f"{run.final_loss:.4f}", f"{run.test_loss:.4f}",
            f"{100 * run.test_accuracy:.2f}%", f"{run.wall_time_s:.2f}",
            f"{run.examples_per_s:,.0f}",
            _fmt_diff(result.max_step_loss_diff, result.losses_bit_exact),
        ))
    out = [f"Training: {cfg['epochs']} epoch(s) x {cfg['n_train']} examples, "
           f"batch {cfg['batch_size']}, seed {cfg['seed']}, {cfg['mode']}"
           + (f", {cfg['strategy']} x{cfg['replicas']}"
              if cfg["strategy"] else ""),
           format_table(header, rows)]
    if result.max_weight_diff is not None:
        out.append(
            "final weights: max |custom - builtin| = "
            + _fmt_diff(result.max_weight_diff, result.weights_bit_exact)
            + f"; initial weights identical: "
            f"{result.initial_weights_identical}")
    out.append("final loss = Keras's mean training loss over the last epoch; "
               "step loss diff = max over all "
               f"{len(result.custom.step_losses)} batches")
    return "\n".join(out)


def plot_losses(result: TrainResult, path) -> pathlib.Path:
    """Write a two-panel PNG: per-batch loss of both models (log scale) and
    their difference, with epoch boundaries marked.

    Raises:
        PlotUnavailableError: matplotlib is not installed (it comes with the
            ``plot`` extra: ``pip install customlayers[plot]``).
    """
    try:
        import matplotlib
    except ImportError as err:
        raise PlotUnavailableError(
            f"{path} not written: matplotlib is not installed ({err}); "
            "pip install 'customlayers[plot]' to get the plot") from None
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    path = pathlib.Path(path)
    cfg, v = result.config, result.versions
    c = result.custom
    b = result.builtin
    steps = np.arange(1, len(c.step_losses) + 1)
    spe = cfg["steps_per_epoch"]

    fig = Figure(figsize=(10, 7.5 if b is not None else 4.5),
                 layout="constrained")
    axes = fig.subplots(2 if b is not None else 1, 1, sharex=True,
                        squeeze=False)[:, 0]
    ax = axes[0]
    window = max(1, min(spe // 10, len(steps) // 5))
    for run, color, ls in ((c, "tab:blue", "-"), (b, "tab:orange", "--")):
        if run is None:
            continue
        ax.plot(steps, run.step_losses, color=color, lw=0.5, alpha=0.25)
        if window > 1:
            smooth = np.convolve(run.step_losses.astype(np.float64),
                                 np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1:], smooth, color=color, lw=1.8, ls=ls,
                    label=f"{run.label}, mean of {window} batches")
        else:
            ax.plot(steps, run.step_losses, color=color, lw=1.8, ls=ls,
                    label=run.label)
    ax.set_yscale("log")
    ax.set_ylabel("training loss per batch (log scale)\nthin: each batch")
    ax.grid(True, which="both", alpha=0.3)
    for e in range(1, cfg["epochs"]):
        for a in axes:
            a.axvline(e * spe + 0.5, color="gray", lw=0.8, ls=":")
    ax.legend(loc="upper right")
    if b is not None:
        diff = c.step_losses.astype(np.float64) - b.step_losses
        ax2 = axes[1]
        ax2.axhline(0.0, color="black", lw=0.6, zorder=1)
        ax2.plot(steps, diff, color="tab:red", lw=1.0, zorder=2,
                 label="custom - built-in, every batch")
        ax2.set_ylabel("loss difference (custom - built-in)")
        ax2.grid(True, alpha=0.3)
        if result.losses_bit_exact:
            note = (f"all {len(diff)} per-batch losses are bit-identical "
                    "(difference exactly 0)")
        else:
            note = (f"max |difference| = {result.max_step_loss_diff:.3g}; "
                    f"final weights max |diff| = "
                    f"{result.max_weight_diff:.3g}")
        ax2.text(0.01, 0.95, note, transform=ax2.transAxes, va="top",
                 fontsize=9, bbox=dict(facecolor="white", alpha=0.8,
                                       edgecolor="none"))
        ax2.legend(loc="upper right")
    axes[-1].set_xlabel(f"training step (batch of {cfg['batch_size']}); "
                        "dotted lines: epoch boundaries")
    acc = ", ".join(f"{r.name} test acc {100 * r.test_accuracy:.2f}%"
                    for r in result.runs.values())
    backend = (f"TF {v['tensorflow']}" if "tensorflow" in v
               else v["backend"])
    fig.suptitle(
        f"customlayers {v['customlayers']} vs keras.layers: MNIST, Adam, "
        f"{cfg['epochs']} epoch(s), batch {cfg['batch_size']}, "
        f"seed {cfg['seed']}, {cfg['mode']}"
        + (f", {cfg['strategy']} x{cfg['replicas']}" if cfg["strategy"]
           else "")
        + f"\nKeras {v['keras']}, {backend}, numpy {v['numpy']}, "
        f"Python {v['python']}; {acc}", fontsize=10)
    fig.savefig(path, dpi=110)
    return path
