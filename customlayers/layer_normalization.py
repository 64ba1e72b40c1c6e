"""A hand-written drop-in for ``keras.layers.LayerNormalization``."""

from __future__ import annotations

import math
import numbers
import warnings

from customlayers import _keras
from customlayers._axes import check_axes
from customlayers._keras import KERAS_MAJOR, keras, ops


def _validate_axis(axis):
    """``axis`` as the built-in stores it (an int, or a list), refusing
    anything that is not an int or a list/tuple of ints, naming it."""
    def is_int(a):
        return isinstance(a, numbers.Integral) and not isinstance(a, bool)

    if isinstance(axis, (list, tuple)):
        bad = [a for a in axis if not is_int(a)]
        if bad or not axis:
            raise TypeError(
                "Expected an int or a non-empty list/tuple of ints for the "
                f"argument 'axis', but received: axis={axis!r}")
        return [int(a) for a in axis]
    if is_int(axis):
        return int(axis)
    raise TypeError("Expected an int or a list/tuple of ints for the "
                    f"argument 'axis', but received: axis={axis!r}")


def _validate_epsilon(epsilon):
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) \
            or not epsilon >= 0.0 or math.isinf(epsilon):
        raise ValueError(
            "`epsilon` of a LayerNormalization layer must be a finite real "
            f"number >= 0. Received: epsilon={epsilon!r}")
    return epsilon


def _eager() -> bool:
    """Whether this call runs op by op on TensorFlow (not traced by
    ``tf.function``, XLA, or another backend's compiler)."""
    if _keras.BACKEND != "tensorflow":
        return False
    import tensorflow as tf
    return tf.executing_eagerly()


def _broadcastable(a, b) -> bool:
    """Whether shapes ``a`` and ``b`` broadcast (NumPy rules)."""
    for x, y in zip(reversed(a), reversed(b)):
        if x is not None and y is not None and x != y and 1 not in (x, y):
            return False
    return True


@_keras.register_serializable()
class LayerNormalization(keras.layers.Layer):
    """Layer normalization (Ba et al., 2016), written from ``mean``,
    ``square``, ``rsqrt``, multiplications and additions.

    A drop-in for ``keras.layers.LayerNormalization`` (Keras 3): same
    arguments and defaults, weights named ``gamma`` and ``beta`` spanning
    the normalized axes, and the same outputs and gradients. For each
    example, over ``axis``::

        mean = mean(x)
        var = mean(square(x - mean))
        inv = rsqrt(var + epsilon) * gamma
        y = x * inv + (beta - mean * inv)

    written in the built-in's own order of operations, with each backend's
    own moments (``_moments``: the variance is ``ops.var`` on JAX, as the
    built-in's ``jnp.var``), so that on TensorFlow and JAX the results are
    bit for bit the built-in's. On
    TensorFlow that includes the built-in's second derivative: its
    variance (``tf.nn.moments``) stops the gradient through the mean, which
    leaves first derivatives unchanged but drops the mean's term from the
    second derivative; customlayers mirrors it so that it stays a drop-in
    (``README.md``). On PyTorch the built-in calls the fused
    ``torch.nn.functional.layer_norm`` for contiguous axes; there the
    results agree within the dtype's tolerance, not bit for bit.

    Like the built-in it does not autocast: a float16 or bfloat16 input
    (or integer input) is normalized in float32 (float64 stays float64)
    with float32 ``gamma``/``beta`` under a mixed policy, cast back to the
    input's dtype, then to the layer's compute dtype.

    Args:
        axis: Integer or list/tuple of integers, the axis or axes to
            normalize across (typically the feature axes). ``-1`` is the
            last axis. Defaults to ``-1``.
        epsilon: Small float >= 0 added to the variance to avoid dividing
            by zero. Defaults to ``1e-3``.
        center: If True, add the offset ``beta``. Defaults to ``True``.
        scale: If True, multiply by ``gamma``. Defaults to ``True``.
        rms_scaling: Deprecated in Keras (it scales by the variance, not
            the root mean square; use ``keras.layers.RMSNormalization``);
            accepted with the built-in's warning and computed as it does.
        beta_initializer: Initializer for ``beta``. Defaults to zeros.
        gamma_initializer: Initializer for ``gamma``. Defaults to ones.
        beta_regularizer: Optional regularizer for ``beta``.
        gamma_regularizer: Optional regularizer for ``gamma``.
        beta_constraint: Optional constraint for ``beta``.
        gamma_constraint: Optional constraint for ``gamma``.
        **kwargs: Base layer keyword arguments (``name``, ``dtype``, ...).

    Example:

    >>> layer = LayerNormalization(axis=[1, 2])
    >>> y = layer(np.random.rand(4, 5, 6).astype("float32"))
    >>> tuple(layer.gamma.shape), tuple(y.shape)  # doctest: +SKIP
    ((5, 6), (4, 5, 6))
    """

    def __init__(
        self,
        axis=-1,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        **kwargs,
    ):
        if KERAS_MAJOR < 3:  # pragma: no cover - Keras 2 tox envs
            raise NotImplementedError(
                "customlayers.LayerNormalization needs Keras 3; this is "
                f"Keras {_keras.KERAS_VERSION}, whose LayerNormalization "
                "computes differently (a fused batch-norm kernel for "
                "float32). Use keras.layers.LayerNormalization there.")
        rms_scaling = kwargs.pop("rms_scaling", False)
        if rms_scaling:
            warnings.warn(
                "You passed `rms_scaling=True`, which is deprecated. This "
                "argument incorrectly scales the input by the variance, not "
                "the root mean square. To correctly use RMS Normalization, "
                "please use `keras.layers.RMSNormalization` instead.")
        super().__init__(**kwargs)
        self.axis = _validate_axis(axis)
        self.epsilon = _validate_epsilon(epsilon)
        self.center = center
        self.scale = scale
        self.rms_scaling = rms_scaling
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.beta_regularizer = keras.regularizers.get(beta_regularizer)
        self.gamma_regularizer = keras.regularizers.get(gamma_regularizer)
        self.beta_constraint = keras.constraints.get(beta_constraint)
        self.gamma_constraint = keras.constraints.get(gamma_constraint)
        self.supports_masking = True
        # As the built-in: inputs are not cast to the compute dtype.
        self.autocast = False

    def get_config(self):
        config = {
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "rms_scaling": self.rms_scaling,
            "beta_initializer": keras.initializers.serialize(
                self.beta_initializer),
            "gamma_initializer": keras.initializers.serialize(
                self.gamma_initializer),
            "beta_regularizer": keras.regularizers.serialize(
                self.beta_regularizer),
            "gamma_regularizer": keras.regularizers.serialize(
                self.gamma_regularizer),
            "beta_constraint": keras.constraints.serialize(
                self.beta_constraint),
            "gamma_constraint": keras.constraints.serialize(
                self.gamma_constraint),
        }
        return {**super().get_config(), **config}

    def build(self, input_shape):
        input_shape = _keras.shape_as_tuple(input_shape)
        check_axes(self.axis, len(input_shape), self.name)
        # As the built-in: the axes are kept sorted (and as a list) from
        # here on, in the config too.
        self.axis = sorted(self.axis) if isinstance(self.axis, list) \
            else [self.axis]
        shape = tuple(input_shape[dim] for dim in self.axis)
        self.gamma = self.add_weight(
            name="gamma", shape=shape, initializer=self.gamma_initializer,
            regularizer=self.gamma_regularizer,
            constraint=self.gamma_constraint, trainable=True,
            autocast=False) if self.scale or self.rms_scaling else None
        self.beta = self.add_weight(
            name="beta", shape=shape, initializer=self.beta_initializer,
            regularizer=self.beta_regularizer,
            constraint=self.beta_constraint, trainable=True,
            autocast=False) if self.center and not self.rms_scaling else None

    def _check_input_shape(self, shape):
        """Refuse, naming the layer and both sizes, an input whose
        normalized dimensions do not fit the weights -- exactly where the
        built-in's arithmetic would fail (it reshapes the weights to the
        input's dimensions there, or broadcasts them)."""
        check_axes(self.axis, len(shape), self.name)
        weights = [w for w in (self.gamma, self.beta) if w is not None]
        if not weights:
            return
        want = tuple(weights[0].shape)
        got = tuple(shape[dim] for dim in self.axis)
        if None in got:
            return
        if len(want) != len(shape) and self.axis != [len(shape) - 1]:
            fits = math.prod(want) == math.prod(got)
        else:
            fits = _broadcastable(want, shape)
        if not fits:
            raise ValueError(
                f"Input of shape {tuple(shape)} is incompatible with layer "
                f"{self.name!r}: it was built for dimensions {want} on axis "
                f"{self.axis}, and received dimensions {got} there.")

    def call(self, inputs):
        x = ops.convert_to_tensor(inputs)
        original_dtype = keras.backend.standardize_dtype(x.dtype)
        # At least float32, as the built-in (float64 stays float64).
        compute = keras.backend.result_type(original_dtype, "float32")
        x = ops.convert_to_tensor(x, dtype=compute)
        gamma = None if self.gamma is None else \
            ops.convert_to_tensor(self.gamma, compute)
        beta = None if self.beta is None else \
            ops.convert_to_tensor(self.beta, compute)
        shape = tuple(x.shape)
        self._check_input_shape(shape)
        ndims = len(shape)
        # A plain list: Keras tracks a list attribute as a TrackedList, and
        # torch.compile cannot pass a list subclass to torch.mean (Dynamo:
        # "Failed to convert args/kwargs to proxy"; the graph breaks where
        # the built-in's does not: found by torch's compiled mode).
        axis = list(self.axis)
        broadcast_shape = [1] * ndims
        for dim in axis:
            broadcast_shape[dim] = shape[dim]

        # The built-in reshapes the weights "when the axis is not just the
        # last dimension": its condition, verbatim, compares the sorted
        # axes with [ndims - 1] as written. So it does not reshape for
        # axis=1 on a rank-2 input (weights of another shape then
        # broadcast: tests/property/test_layernorm_details.py), and it does
        # for the default axis=-1, where the weights already broadcast. In
        # TensorFlow's eager mode, op by op, that second reshape changes no
        # value and no gradient (_check_input_shape has made sure the sizes
        # match), and costs two more dispatched ops per call
        # (benchmarks/RESULTS.md): skipped there. Traced, it stays: XLA
        # fuses the graph without it differently (a forward-mode derivative
        # 4 ULP off in compiled mode, found by the thorough profile), and it
        # costs nothing at run time.
        reshape = self._reshapes_weights(axis, ndims)

        def _broadcast(v):
            if v is not None and len(v.shape) != ndims and reshape:
                return ops.reshape(v, broadcast_shape)
            return v

        if self.rms_scaling:
            # The built-in's ops.var (reduce_variance, jnp.var, torch.var),
            # with its deprecated scaling by the variance.
            variance = ops.var(x, axis=axis, keepdims=True)
            inv = self._inverse_std(variance)
            outputs = x * inv
            if gamma is not None:
                outputs = outputs * ops.cast(_broadcast(gamma), x.dtype)
        else:
            mean, variance = self._moments(x, axis)
            gamma, beta = _broadcast(gamma), _broadcast(beta)
            inv = self._inverse_std(variance)
            if gamma is not None:
                inv = inv * gamma
            res = -mean * inv
            if beta is not None:
                res = res + beta
            outputs = x * inv + res
        return ops.cast(ops.cast(outputs, original_dtype), self.compute_dtype)

    @staticmethod
    def _reshapes_weights(axis, ndims) -> bool:
        """Whether ``call`` reshapes gamma and beta to the input's rank (see
        the comment in ``call``): the built-in's condition, less the no-op
        reshape in TensorFlow's eager mode."""
        return axis != [ndims - 1] and not (
            _eager() and [a % ndims for a in axis] == [ndims - 1])

    def _inverse_std(self, variance):
        return ops.rsqrt(variance + self.epsilon)

    @staticmethod
    def _moments(x, axis):
        """Mean and (biased) variance over ``axis``, in each backend's
        built-in order of operations."""
        if _keras.BACKEND == "tensorflow":
            # tf.nn.moments, op for op (customlayers/_moments.py says why
            # each detail matters).
            from customlayers._moments import tf_moments
            return tf_moments(x, axis)
        mean = ops.mean(x, axis=axis, keepdims=True)
        if _keras.BACKEND == "torch" and axis != list(
                range(axis[0], axis[0] + len(axis))):
            # Non-contiguous axes on torch: the built-in's moments use
            # E[x**2] - E[x]**2 (contiguous ones run the fused layer_norm,
            # which is two-pass, as below).
            return mean, ops.mean(ops.square(x), axis=axis,
                                  keepdims=True) - ops.square(mean)
        # JAX: jnp.mean and jnp.var, as the built-in. jnp.var is one jitted
        # function (its own mean, subtract, square, sum and divide fused by
        # XLA), so the same arithmetic written out in separate ops rounds
        # differently (1-2 ULP in outputs and gradients); ops.var is that
        # function.
        return mean, ops.var(x, axis=axis, keepdims=True)

    def compute_output_shape(self, input_shape):
        check_axes(self.axis, len(input_shape), self.name)
        return input_shape
