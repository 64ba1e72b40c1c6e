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


def _relu6_values(x):
    return ops.minimum(ops.maximum(x, ops.zeros_like(x)),
                       ops.cast(6.0, x.dtype))


def _inside_0_6(x):
    return ops.logical_and(ops.greater(x, ops.zeros_like(x)),
                           ops.less(x, ops.cast(6.0, x.dtype)))


def _relu6_with(backward):
    """``min(max(x, 0), 6)`` whose gradient is ``backward(x, g)``."""

    @ops.custom_gradient
    def kernel(x):
        def grad(*args, upstream=None):
            return backward(x, upstream if upstream is not None else args[0])
        return _relu6_values(x), grad

    return kernel


class NonDifferentiableGradientReLU(ReLU):
    """The relu6 path's hand-written gradient selects a *stopped* upstream
    gradient, so the gradient is not differentiable again: second
    derivatives are ``None`` (TensorFlow, torch) or zeros (JAX) where the
    built-in's are zeros and ``v * mask`` (issue 12, finding 1: what
    TensorFlow's kernels did before)."""

    def call(self, inputs):
        if self.max_value == 6 and not self.threshold and \
                not self.negative_slope:
            x = ops.convert_to_tensor(inputs)
            return _relu6_with(lambda x, g: ops.where(
                _inside_0_6(x), ops.stop_gradient(g),
                ops.zeros_like(g)))(x)
        return super().call(inputs)


class IntegerLeakyReLU(ReLU):
    """The pure leaky path keeps an integer input's dtype, so
    ``negative_slope * x`` is rounded to an integer (finding 2: int32
    ``[-3, -1, 0, 2]`` gave ``[0, 0, 0, 2]``; the built-in gives float32
    ``[-1.5, -0.5, 0, 2]``)."""

    def call(self, inputs):
        if self.negative_slope and self.max_value is None and \
                not self.threshold:
            x = ops.convert_to_tensor(inputs)
            slope = ops.cast(self.negative_slope, x.dtype)
            return ops.where(ops.greater(x, ops.zeros_like(x)), x,
                             ops.multiply(x, slope))
        return super().call(inputs)


class SelectRelu6GradReLU(ReLU):
    """The relu6 path's gradient is one select, ``g if 0 < x < 6 else 0``,
    so a NaN or inf upstream gradient outside (0, 6) becomes 0 where
    TensorFlow's Relu6Grad (``g * mask``) gives NaN (finding 3)."""

    def call(self, inputs):
        if self.max_value == 6 and not self.threshold and \
                not self.negative_slope:
            x = ops.convert_to_tensor(inputs)
            return _relu6_with(lambda x, g: ops.where(
                _inside_0_6(x), g, ops.zeros_like(g)))(x)
        return super().call(inputs)


class UnsignedZeroRelu6ReLU(ReLU):
    """The relu6 path maps ``-0.0`` to ``+0.0`` (``where(x > 0, min(x, 6),
    0)``), as the bfloat16 kernel did from 8 elements on (finding 4)."""

    def call(self, inputs):
        if self.max_value == 6 and not self.threshold:
            x = ops.convert_to_tensor(inputs)
            y = ops.where(ops.greater(x, ops.zeros_like(x)),
                          ops.minimum(x, ops.cast(6.0, x.dtype)),
                          ops.zeros_like(x))
            if self.negative_slope:
                y = y - self.negative_slope * ops.relu(-x)
            return y
        return super().call(inputs)


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


class ScaledKernelGradientDense(Dense):
    """The forward pass is bit for bit the real one, but the kernel's
    gradient is scaled by ``1 + 2**-8`` (``k0 + (k - k0) * s`` with ``k0 =
    stop_gradient(k)``): only gradients and training can show it. The
    distribution tests (tests/integration/test_distribution_*.py) train it
    next to the built-in."""

    @property
    def kernel(self):
        kernel = super().kernel
        frozen = ops.stop_gradient(kernel)
        return frozen + (kernel - frozen) * (1 + 2 ** -8)


class RenamedKernelDense(Dense):
    """Calls its kernel ``w``: a ``LayoutMap`` rule written for the built-in
    (``.*dense.*kernel``) then misses it, and ``ModelParallel`` leaves it
    replicated (tests/integration/test_distribution_jax.py)."""

    def add_weight(self, *args, **kwargs):
        if kwargs.get("name") == "kernel":
            kwargs["name"] = "w"
        return super().add_weight(*args, **kwargs)
