"""Forward passes and gradients through the active backend's own autodiff.

This is the only backend-specific part of the harness. For one layer, one
input ``x`` and one upstream gradient ``g`` (same shape as the output) it
returns the output, the vector-Jacobian product with respect to ``x`` and
with respect to every trainable weight, as NumPy arrays:

- TensorFlow: ``tf.GradientTape``; modes ``eager``, ``graph``
  (``tf.function``) and ``compiled`` (``tf.function(jit_compile=True)``, XLA).
- JAX and PyTorch: not wired yet (the tox-matrix issue adds them); asking for
  them raises a clear error.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from customlayers._compat import BACKEND

MODES = ("eager", "graph", "compiled")


@dataclasses.dataclass
class ForwardBackward:
    """What one pass produced, as NumPy arrays."""

    output: np.ndarray
    input_grad: np.ndarray
    weight_grads: list
    weight_names: list
    losses: list


def supported_modes(backend: str = BACKEND) -> dict:
    """Mode name -> ``None`` if supported, else the reason it is not."""
    if backend == "tensorflow":
        return {m: None for m in MODES}
    reason = (f"the {backend} backend is not wired into the harness yet "
              "(tox-matrix issue); only TensorFlow runs the equivalence "
              "checks in this release")
    return {m: reason for m in MODES}


def _weight_name(v) -> str:
    return getattr(v, "path", None) or v.name


def _to_numpy(t) -> np.ndarray:
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)


def forward_backward(layer, x: np.ndarray, upstream: np.ndarray | None,
                     mode: str = "eager") -> ForwardBackward:
    """Run ``layer`` on ``x`` and differentiate ``sum(output * upstream)``.

    Args:
        layer: A built Keras layer.
        x: The input array.
        upstream: The cotangent of the output (its shape and dtype), or
            ``None`` for forward only.
        mode: One of :data:`MODES`.
    """
    reason = supported_modes().get(mode, f"unknown mode {mode!r}; expected "
                                         f"one of {MODES}")
    if reason:
        raise NotImplementedError(f"mode {mode!r}: {reason}")
    return _tf_forward_backward(layer, x, upstream, mode)


def _tf_forward_backward(layer, x, upstream, mode):
    import tensorflow as tf

    weights = list(layer.trainable_weights)

    def fn(x, g):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        if g is None:
            return y, []
        grads = tape.gradient(
            y, [x] + weights, output_gradients=g,
            unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return y, grads

    if mode == "graph":
        fn = tf.function(fn, autograph=False)
    elif mode == "compiled":
        fn = tf.function(fn, autograph=False, jit_compile=True)
    xt = tf.constant(x)
    gt = None if upstream is None else tf.constant(upstream)
    y, grads = fn(xt, gt)
    # Losses made inside a tf.function are graph tensors: read them eagerly.
    losses = ([float(_to_numpy(v)) for v in layer.losses]
              if mode == "eager" else [])
    return ForwardBackward(
        output=_to_numpy(y),
        input_grad=_to_numpy(grads[0]) if grads else None,
        weight_grads=[_to_numpy(g) for g in grads[1:]],
        weight_names=[_weight_name(w) for w in weights],
        losses=losses,
    )
