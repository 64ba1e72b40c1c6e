"""A hand-written drop-in for ``keras.layers.ReLU``."""

from __future__ import annotations

import numbers

import numpy as np

from customlayers import _keras, backend
from customlayers._keras import keras, ops


def _check_non_negative(name: str, value, allow_none: bool) -> None:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()  # Keras 2 configs carry float32 0-d arrays
    if value is None:
        if allow_none:
            return
        raise ValueError(
            f"`{name}` of a ReLU layer cannot be None; expected a float >= 0. "
            f"Received: {name}=None"
        )
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"`{name}` of a ReLU layer must be a real number >= 0"
            f"{' or None' if allow_none else ''}. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    if not value >= 0.0:  # also rejects NaN
        raise ValueError(
            f"`{name}` of a ReLU layer cannot be a negative value (or NaN); "
            f"expected a float >= 0. Received: {name}={value!r}"
        )


@_keras.register_serializable()
class ReLU(keras.layers.Layer):
    """Rectified Linear Unit, written from elementwise comparisons and selects
    (plain ``max(x, 0)`` on the backend's fused relu kernels, see below).

    A drop-in for ``keras.layers.ReLU``: same arguments, same validation, and
    the same outputs *and gradients* everywhere::

        f(x) = max_value                          if x >= max_value
        f(x) = x                                  if threshold <= x < max_value
        f(x) = negative_slope * (x - threshold)   otherwise

    The kinks follow the built-in exactly, because that is what a drop-in
    promises:

    - the gradient at ``x == 0`` (or at ``x == threshold``) is **0**, not the
      1 that the tutorial's ``tf.math.maximum(x, 0)`` gives;
    - at ``x == max_value`` the gradient is 1, **except** when
      ``max_value == 6`` and ``threshold == 0``, where Keras takes a relu6 fast
      path whose gradient is 0 there. We reproduce that quirk on purpose;
    - ``-0.0`` keeps its sign and ``NaN`` propagates where the built-in's does.

    Speed: plain ``max(x, 0)`` -- the default configuration, the relu step
    before the clip when ``max_value`` is not 6, and the negative part when
    ``negative_slope`` comes with a threshold or ``max_value`` (as in the
    built-in) -- runs on the backend's fused relu kernels where there are
    some (TensorFlow ``Relu``/``ReluGrad``, ATen ``relu``/
    ``threshold_backward``): the elementary ops (a maximum, then a
    comparison and a select for the gradient) cost an extra kernel and, on
    torch, a Python autograd node. ``tests/property/test_kernels.py`` checks
    the fused kernels against the elementary formula, values and gradients,
    in every mode (its allowances for TensorFlow's ``g * mask`` and CUDA's
    sign of zero are written there). relu6, the threshold, the leaky slope
    and the clip are elementary ops with hand-written gradients. On JAX the
    formula itself is jitted. ``benchmarks/RESULTS.md`` has the numbers.

    Args:
        max_value: Float >= 0, the largest value returned. ``None`` means
            unlimited. Defaults to ``None``.
        negative_slope: Float >= 0, the slope below the threshold.
            Defaults to ``0.0``.
        threshold: Float >= 0, the value below which the output is damped.
            Defaults to ``0.0``.
        **kwargs: Base layer keyword arguments, such as ``name`` and
            ``dtype``.

    Example:

    >>> layer = ReLU(max_value=10, negative_slope=0.5)
    >>> layer(np.array([-10.0, -5.0, 0.0, 5.0, 10.0]))  # doctest: +SKIP
    [-5. , -2.5,  0. ,  5. , 10.]
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0,
                 **kwargs):
        super().__init__(**kwargs)
        _check_non_negative("max_value", max_value, allow_none=True)
        _check_non_negative("negative_slope", negative_slope, allow_none=False)
        _check_non_negative("threshold", threshold, allow_none=False)
        self.max_value = _keras.relu_argument(max_value)
        self.negative_slope = _keras.relu_argument(negative_slope)
        self.threshold = _keras.relu_argument(threshold)
        self.supports_masking = True
        self.built = True  # no weights: nothing to build

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_value": self.max_value,
                "negative_slope": self.negative_slope,
                "threshold": self.threshold,
            }
        )
        return config

    def call(self, inputs):
        x = ops.convert_to_tensor(inputs)
        slope, max_value, threshold = (
            self.negative_slope, self.max_value, self.threshold)
        if slope != 0.0:
            if max_value is None and threshold == 0:
                return backend.leaky_relu_kernel(x, slope)
            # The part below the threshold, computed from the unclipped x.
            negative_part = backend.relu_kernel(-x + threshold) if threshold \
                else backend.relu_kernel(-x)
        clip = max_value is not None
        if threshold != 0:
            x = backend.threshold_kernel(x, threshold)
        elif max_value == 6:
            # The built-in takes its relu6 fast path here (gradient 0 at 6).
            x = backend.relu6_kernel(x)
            clip = False
        else:
            x = backend.relu_kernel(x)
        if clip:
            x = backend.clip_kernel(x, 0.0, max_value)
        if slope != 0.0:
            # ``-=`` as the built-in writes it: in place on torch, so an
            # integer input fails there exactly as the built-in does
            # (a float result cannot be written into an integer tensor);
            # a new tensor on TensorFlow and JAX.
            x -= slope * negative_part
        return x

    def compute_output_shape(self, input_shape):
        return input_shape
