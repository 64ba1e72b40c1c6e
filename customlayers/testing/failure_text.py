"""How a failed :func:`~customlayers.testing.equivalence.assert_equivalent`
explains itself: the failing checks' worst elements, both layers' configs,
and the arrays needed to replay the example (small ones inline, every one
in an ``.npz`` file whose path is printed)."""

from __future__ import annotations

import numpy as np

from customlayers._keras import BACKEND, KERAS_VERSION
from customlayers.testing import artifacts

#: Arrays with at most this many elements in all are printed inline in a
#: failure message; larger ones are saved to an ``.npz`` file it names.
INLINE_LIMIT = 96


def _config(layer) -> dict:
    try:
        return layer.get_config()
    except Exception as exc:  # a user's layer may not implement it
        return {"<get_config failed>": repr(exc)}


def _replay_blob(arrays: dict, directory=None) -> str:
    """Small arrays inline; every array in an ``.npz`` whose path is named."""
    total = sum(int(np.asarray(a).size) for a in arrays.values())
    lines = []
    if total <= INLINE_LIMIT:
        with np.printoptions(floatmode="unique"):
            lines += [
                f"  {k} = np.array("
                f"{np.asarray(v).astype(np.float64).tolist()!r}, "
                f"dtype='{np.asarray(v).dtype.name}')"
                for k, v in arrays.items()]
    path = artifacts.save_arrays(arrays, directory)
    lines.append(f"  arrays saved to {path}; load with "
                 "customlayers.testing.artifacts.load_arrays(path)")
    return "\n".join(lines)


def failure_message(report, custom, reference, replay: dict, tolerance,
                    artifacts_dir=None) -> str:
    """The text of a failed ``report`` (an ``EquivalenceReport``):
    ``tolerance`` is ``f(check) -> Tolerance or None`` (bit-exact), ``replay``
    the arrays of the example (input, upstream, weights)."""
    head = (f"{report.custom} is not equivalent to {report.reference}: "
            f"{len(report.failures())} of {len(report.comparisons)} checks "
            f"failed\n  dtype policy={report.policy} mode={report.mode} "
            f"input shape={report.input_shape} backend={BACKEND} "
            f"keras={KERAS_VERSION}")
    out_tol = tolerance("output") if callable(tolerance) else tolerance
    tol = ("bit-exact (declared exact: same kernels expected)"
           if out_tol is None else
           f"rtol={out_tol.rtol:g} atol={out_tol.atol:g}")
    parts = [head, f"  comparison: {tol}"]
    if report.training is not None:
        parts.append(f"  called with training={report.training}")
    if report.weights_seed is not None:
        parts.append(f"  weights: random normal * 0.5 from seed "
                     f"{report.weights_seed}")
    parts += [c.describe() for c in report.failures()]
    parts.append(f"  custom config: {_config(custom)}")
    parts.append(f"  reference config: {_config(reference)}")
    parts.append("  to replay: build both layers from these configs, set the "
                 "custom weights to `weights`, copy them to the reference, "
                 "and differentiate sum(layer(x) * upstream):")
    parts.append(_replay_blob(replay, artifacts_dir))
    return "\n".join(parts)
