"""Deliberately broken variants of customlayers.LayerNormalization: each
must be caught by the generic properties (``test_normalization_bugs.py``).
"""

from customlayers import LayerNormalization
from customlayers import layer_normalization as _ln
from customlayers._keras import ops


class UnbiasedVarianceLN(LayerNormalization):
    """Divides the squared deviations by n - 1 (Bessel's correction), where
    layer normalization uses the biased variance (divides by n)."""

    @staticmethod
    def _moments(x, axis):
        mean, variance = LayerNormalization._moments(x, axis)
        n = 1
        for a in axis:
            n *= x.shape[a]
        return mean, variance * (n / max(n - 1, 1))


class EpsilonOutsideSqrtLN(LayerNormalization):
    """``1 / (sqrt(var) + eps)`` instead of ``1 / sqrt(var + eps)``."""

    def _inverse_std(self, variance):
        return 1.0 / (ops.sqrt(variance) + self.epsilon)


class SwappedGammaBetaLN(LayerNormalization):
    """Scales by ``beta`` and shifts by ``gamma`` (same shapes, so nothing
    fails to build or run)."""

    def build(self, input_shape):
        super().build(input_shape)
        if self.gamma is not None and self.beta is not None:
            # Each name still on its own variable (config and saving see
            # nothing); the arithmetic uses the other one.
            self.gamma, self.beta = self.beta, self.gamma


class LastAxisOnlyLN(LayerNormalization):
    """Reduces over the last listed axis only, for a list ``axis`` (the
    weights still span every listed axis)."""

    @staticmethod
    def _moments(x, axis):
        return LayerNormalization._moments(x, axis[-1:])


class Float16StatisticsLN(LayerNormalization):
    """Autocasts: normalizes in the compute dtype (float16 under
    ``mixed_float16``) instead of float32, so the squares overflow float16
    (the built-in computes half-precision inputs in float32)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.autocast = True

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        mean = ops.mean(x, axis=self.axis, keepdims=True)
        variance = ops.mean(ops.square(x - mean), axis=self.axis,
                            keepdims=True)
        y = (x - mean) * ops.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            y = y * ops.cast(self._reshaped(self.gamma, x), x.dtype)
        if self.beta is not None:
            y = y + ops.cast(self._reshaped(self.beta, x), x.dtype)
        return y

    def _reshaped(self, v, x):
        shape = [1] * len(x.shape)
        for a in self.axis:
            shape[a] = x.shape[a]
        return ops.reshape(v, shape)


class AlwaysReshapesLN(LayerNormalization):
    """Reshapes gamma and beta to the input's rank wherever the weights'
    rank differs, skipping the reshape only in TensorFlow's eager mode on
    the last axis -- the condition 7fdcf1f shipped (fixed in b153432). The
    built-in does not reshape for ``axis=1`` on a rank-2 input, so a layer
    built on ``(None, 8, 1)`` and called on ``(10, 1)`` broadcasts its
    ``(8,)`` weights and returns ``(10, 8)``; this one raises "cannot
    reshape". TensorFlow's eager mode is the one place it happens to be
    right, which is why only the JAX tox env saw it: the traced
    ``lazy_build`` items are there to catch it on TensorFlow too."""

    @staticmethod
    def _reshapes_weights(axis, ndims):
        return not (_ln._eager() and [a % ndims for a in axis] == [ndims - 1])
