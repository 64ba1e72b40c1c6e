"""Deliberately broken variants of the layers: each must be caught.

Every class here is the real layer with one plausible bug planted. The
meta-tests run the *same* generic properties that the real layers pass and
assert that each bug makes them fail.
"""

from customlayers import Dense, ReLU
from customlayers._keras import keras, ops


class TutorialReLU(ReLU):
    """The tutorial's ReLU: ``tf.math.maximum(x, 0)``. Its gradient at
    x == 0 is 1 on TensorFlow; the built-in's is 0."""

    def call(self, inputs):
        return ops.maximum(inputs, ops.zeros_like(inputs))


class NaNSwallowingReLU(ReLU):
    """``where(x > 0, x, 0)``: maps NaN to 0 instead of propagating it."""

    def call(self, inputs):
        return ops.where(ops.greater(inputs, 0), inputs,
                         ops.zeros_like(inputs))


class InclusiveThresholdReLU(ReLU):
    """A wrong kink: ``x >= threshold`` passes x through at the threshold,
    where the built-in returns 0."""

    def call(self, inputs):
        if not self.threshold:
            return super().call(inputs)
        x = inputs
        t = ops.cast(self.threshold, x.dtype)
        out = ops.where(ops.greater_equal(x, t), x, ops.zeros_like(x))
        if self.max_value is not None:
            out = ops.minimum(out, ops.cast(self.max_value, x.dtype))
        if self.negative_slope:
            out = out - self.negative_slope * ops.relu(-x + self.threshold)
        return out


class NoRelu6QuirkReLU(ReLU):
    """Ignores Keras's relu6 fast path: at x == max_value == 6 its gradient
    is 1 (generic clip) where the built-in's is 0."""

    def call(self, inputs):
        if self.max_value == 6 and not self.threshold:
            x = ops.relu(inputs)
            x = ops.maximum(ops.minimum(x, ops.cast(6.0, x.dtype)),
                            ops.cast(0.0, x.dtype))
            if self.negative_slope:
                x = x - self.negative_slope * ops.relu(-inputs)
            return x
        return super().call(inputs)


class DroppedBiasDense(Dense):
    """Forgets to add the bias."""

    def call(self, inputs):
        x = ops.matmul(inputs, self.kernel)
        return self.activation(x) if self.activation else x


class StoppedKernelGradientDense(Dense):
    """The kernel gets no gradient (a stray ``stop_gradient``)."""

    def call(self, inputs):
        x = ops.matmul(inputs, ops.stop_gradient(self.kernel))
        if self.bias is not None:
            x = ops.add(x, self.bias)
        return self.activation(x)


class Float32OutputDense(Dense):
    """Silently changes the dtype: always returns float32."""

    def call(self, inputs):
        return ops.cast(super().call(inputs), "float32")


class ScrambledRankDense(Dense):
    """Only wrong for rank > 2: computes the right values, then transposes
    the first two axes and reshapes back, scrambling the rows."""

    def call(self, inputs):
        y = super().call(inputs)
        if len(inputs.shape) <= 2:
            return y
        return ops.reshape(ops.swapaxes(y, 0, 1), tuple(y.shape))


class IgnoredActivationDense(Dense):
    """Never applies its activation."""

    def call(self, inputs):
        x = ops.matmul(inputs, self.kernel)
        return x if self.bias is None else ops.add(x, self.bias)


class UnregularizedDense(Dense):
    """Drops the kernel regularizer when it creates the kernel."""

    def build(self, input_shape):
        self.kernel_regularizer = None
        super().build(input_shape)


class UnnamedWeightsDense(Dense):
    """Creates its weights without names (the tutorial's warning): on
    Keras 2 both become ``Variable:0`` and HDF5 saving breaks."""

    def add_weight(self, *args, name=None, **kwargs):
        return super().add_weight(*args, **kwargs)


class ConfigWithoutBiasFlagDense(Dense):
    """``get_config`` forgets ``use_bias``."""

    def get_config(self):
        config = super().get_config()
        config.pop("use_bias")
        return config


class UncheckedLastDimDense(Dense):
    """Skips the input check: a changed last dimension reaches the matmul
    and fails there with the backend's error, not a clear ValueError."""

    def call(self, inputs):
        self.input_spec = None
        x = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            x = ops.add(x, self.bias)
        return self.activation(x)


del keras


class NegativeZeroReLU(ReLU):
    """Returns ``-0.0`` instead of ``+0.0`` for negative inputs: a forward
    sign-of-zero bug, which the (gradient-only) TensorFlow sign-of-zero
    allowance must not hide."""

    def call(self, inputs):
        y = super().call(inputs)
        return ops.where(ops.less(inputs, 0), ops.zeros_like(y) * -1.0, y)


class NegativeThresholdReLU(ReLU):
    """Accepts a negative threshold, which the built-in refuses."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0,
                 **kwargs):
        super().__init__(max_value=max_value, negative_slope=negative_slope,
                         threshold=abs(threshold) if threshold else threshold,
                         **kwargs)
