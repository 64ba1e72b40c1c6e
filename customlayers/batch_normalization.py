"""A hand-written drop-in for ``keras.layers.BatchNormalization``."""

from __future__ import annotations

import math
import numbers

from customlayers import _keras
from customlayers._axes import check_axes
from customlayers._keras import KERAS_MAJOR, keras, ops


def _validate_axis(axis):
    """``int(axis)``, as the built-in stores it; a list, a string or a bool
    is refused naming it (the built-in's ``int(axis)`` raises a bare
    ``TypeError``/``ValueError`` without the argument's name)."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Real):
        raise TypeError("Expected an int for the argument 'axis' of "
                        f"BatchNormalization, but received: axis={axis!r}")
    return int(axis)


def _validate_real(name, value, low, high=None):
    """``float(value)`` inside ``[low, high]``, else ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            math.isnan(value) or value < low or \
            (high is not None and value > high) or math.isinf(value):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"`{name}` of a BatchNormalization layer must be a "
                         f"finite real number {bound}. Received: "
                         f"{name}={value!r}")
    return float(value)


@_keras.register_serializable()
class BatchNormalization(keras.layers.Layer):
    """Batch normalization (Ioffe and Szegedy, 2015), written from
    ``mean``, ``square``, ``rsqrt``, multiplications and additions.

    A drop-in for ``keras.layers.BatchNormalization`` (Keras 3): same
    arguments and defaults, weights ``gamma``, ``beta`` (trainable),
    ``moving_mean``, ``moving_variance`` (non-trainable) in that order, the
    same outputs and gradients, and the same updates of the moving
    statistics. Over every axis but ``axis``::

        training=True:  mean, var = moments(x)        (biased variance)
                        moving_mean = moving_mean * momentum
                                      + mean * (1 - momentum)
                        moving_variance likewise with var
        training=False: mean, var = moving_mean, moving_variance
        inv = rsqrt(var + epsilon) * gamma
        y = x * inv + (beta - mean * inv)

    written in each backend's built-in order of operations
    (``tf.nn.moments`` with its stopped mean and ``tf.nn.batch_normalization``
    on TensorFlow; ``jnp.mean``/``jnp.var`` and ``x * inv + (-mean * inv +
    beta)`` on JAX; ``E[x^2] - E[x]^2`` and ``(x - mean) * inv + beta`` on
    PyTorch). Like the built-in, the layer autocasts its input to the
    compute dtype, then normalizes in at least float32 (a float16 or
    bfloat16 input is upcast: BN overflows in half precision) with float32
    variables under a mixed policy, and casts the result back to the
    compute dtype. ``training`` normalizes with the batch's statistics only
    when the layer is also ``trainable`` (a frozen BatchNormalization runs
    in inference mode, as Keras documents).

    Args:
        axis: Integer, the feature axis (the one not reduced over).
            Defaults to ``-1``.
        momentum: Momentum of the moving averages, in ``[0, 1]``.
            Defaults to ``0.99``.
        epsilon: Small float >= 0 added to the variance. Defaults to
            ``1e-3``.
        center: If True, add the offset ``beta``. Defaults to ``True``.
        scale: If True, multiply by ``gamma``. Defaults to ``True``.
        beta_initializer, gamma_initializer: Initializers of the weights
            (zeros, ones).
        moving_mean_initializer, moving_variance_initializer: Initializers
            of the moving statistics (zeros, ones).
        beta_regularizer, gamma_regularizer: Optional regularizers.
        beta_constraint, gamma_constraint: Optional constraints.
        synchronized: As the built-in (``True`` only on the TensorFlow
            backend): the batch statistics are ``E[x^2] - E[x]^2`` of sums
            all-reduced over the replicas of the current replica context
            (one replica outside a distribution strategy).
        renorm, renorm_clipping, renorm_momentum: Batch renormalization is
            not implemented: ``renorm=True`` raises ``NotImplementedError``
            (the other two are kept in the config, as the built-in's).
        **kwargs: Base layer keyword arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: The input tensor (any rank >= 1).
        training: Python bool: batch statistics (and moving-average
            updates) or the moving statistics.
        mask: Optional boolean tensor of the input's shape without its last
            dimension: masked-out positions do not count in the batch
            statistics (training only), as in the built-in.

    Example:

    >>> layer = BatchNormalization(momentum=0.9)
    >>> y = layer(np.random.rand(8, 3).astype("float32"), training=True)
    >>> [w.name for w in layer.weights]  # doctest: +SKIP
    ['gamma', 'beta', 'moving_mean', 'moving_variance']
    """

    def __init__(
        self,
        axis=-1,
        momentum=0.99,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        renorm=False,
        renorm_clipping=None,
        renorm_momentum=0.99,
        synchronized=False,
        **kwargs,
    ):
        if KERAS_MAJOR < 3:  # pragma: no cover - Keras 2 tox envs
            raise NotImplementedError(
                "customlayers.BatchNormalization needs Keras 3; this is "
                f"Keras {_keras.KERAS_VERSION}, whose BatchNormalization "
                "runs a fused kernel. Use keras.layers.BatchNormalization.")
        if renorm:
            raise NotImplementedError(
                "customlayers.BatchNormalization does not implement batch "
                "renormalization (renorm=True): use "
                "keras.layers.BatchNormalization for it. Received: "
                f"renorm={renorm!r}")
        super().__init__(**kwargs)
        self.axis = _validate_axis(axis)
        if synchronized and _keras.BACKEND != "tensorflow":
            raise ValueError(
                "Argument synchronized=True is only supported "
                "with the TensorFlow backend.")
        self.synchronized = synchronized
        self.momentum = _validate_real("momentum", momentum, 0.0, 1.0)
        self.epsilon = _validate_real("epsilon", epsilon, 0.0)
        self.center = center
        self.scale = scale
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.moving_mean_initializer = keras.initializers.get(
            moving_mean_initializer)
        self.moving_variance_initializer = keras.initializers.get(
            moving_variance_initializer)
        self.beta_regularizer = keras.regularizers.get(beta_regularizer)
        self.gamma_regularizer = keras.regularizers.get(gamma_regularizer)
        self.beta_constraint = keras.constraints.get(beta_constraint)
        self.gamma_constraint = keras.constraints.get(gamma_constraint)
        self.renorm = renorm
        self.renorm_clipping = renorm_clipping
        self.renorm_momentum = renorm_momentum
        self.supports_masking = True
        self.gamma = self.beta = None
        self.moving_mean = self.moving_variance = None
        self._reduction_axes = None

    def get_config(self):
        def ser(kind, value):
            return getattr(keras, kind).serialize(value)
        config = {
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": ser("initializers", self.beta_initializer),
            "gamma_initializer": ser("initializers", self.gamma_initializer),
            "moving_mean_initializer": ser(
                "initializers", self.moving_mean_initializer),
            "moving_variance_initializer": ser(
                "initializers", self.moving_variance_initializer),
            "beta_regularizer": ser("regularizers", self.beta_regularizer),
            "gamma_regularizer": ser("regularizers", self.gamma_regularizer),
            "beta_constraint": ser("constraints", self.beta_constraint),
            "gamma_constraint": ser("constraints", self.gamma_constraint),
            "synchronized": self.synchronized,
            "renorm": self.renorm,
            "renorm_clipping": self.renorm_clipping,
            "renorm_momentum": self.renorm_momentum,
        }
        return {**super().get_config(), **config}

    def build(self, input_shape):
        input_shape = _keras.shape_as_tuple(input_shape)
        check_axes(self.axis, len(input_shape), self.name)
        shape = (input_shape[self.axis],)

        def weight(name, initializer, trainable, regularizer=None,
                   constraint=None):
            return self.add_weight(
                shape=shape, name=name, initializer=initializer,
                regularizer=regularizer, constraint=constraint,
                trainable=trainable, autocast=False)

        if self.scale:
            self.gamma = weight("gamma", self.gamma_initializer, True,
                                self.gamma_regularizer, self.gamma_constraint)
        if self.center:
            self.beta = weight("beta", self.beta_initializer, True,
                               self.beta_regularizer, self.beta_constraint)
        self.moving_mean = weight("moving_mean", self.moving_mean_initializer,
                                  False)
        self.moving_variance = weight(
            "moving_variance", self.moving_variance_initializer, False)
        self.input_spec = keras.layers.InputSpec(
            ndim=len(input_shape), axes={self.axis: input_shape[self.axis]})
        axes = list(range(len(input_shape)))
        del axes[self.axis]
        self._reduction_axes = axes

    def compute_output_shape(self, input_shape):
        check_axes(self.axis, len(input_shape), self.name)
        return input_shape

    def call(self, inputs, training=None, mask=None):
        if mask is not None and len(mask.shape) != len(inputs.shape) - 1:
            raise ValueError(
                "The mask provided should be one dimension less than the "
                f"inputs. Received: mask.shape={mask.shape}, "
                f"inputs.shape={inputs.shape}")
        # At least float32 (half precision overflows in the statistics).
        compute = keras.backend.result_type(inputs.dtype, "float32")
        x = ops.cast(inputs, compute)
        moving_mean = ops.cast(self.moving_mean, compute)
        moving_variance = ops.cast(self.moving_variance, compute)
        gamma = ops.cast(self.gamma, compute) if self.scale else None
        beta = ops.cast(self.beta, compute) if self.center else None
        if training and self.trainable:
            mean, variance = self._moments(x, mask)
            self._update_moving_statistics(moving_mean, moving_variance,
                                           mean, variance)
        else:
            mean, variance = moving_mean, moving_variance
        outputs = self._normalize(x, mean, variance, gamma, beta)
        return ops.cast(outputs, self.compute_dtype)

    def _update_moving_statistics(self, moving_mean, moving_variance, mean,
                                  variance):
        """``moving * momentum + batch * (1 - momentum)``, the built-in's
        formula in its order, mean first."""
        self.moving_mean.assign(
            moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            moving_variance * self.momentum
            + variance * (1.0 - self.momentum))

    def _moments(self, x, mask):
        """The batch mean and (biased) variance over every axis but
        ``axis``, each of shape ``(channels,)``, in the built-in's order of
        operations."""
        # A plain list, not Keras's TrackedList (see LayerNormalization:
        # torch.compile cannot pass a list subclass to torch.mean).
        axes = list(self._reduction_axes)
        if mask is not None:
            return self._masked_moments(x, mask, axes)
        if _keras.BACKEND == "tensorflow" and self.synchronized:
            mean, variance = self._synchronized_moments(x, axes)
        elif _keras.BACKEND == "tensorflow":
            # tf.nn.moments, op for op (customlayers/_moments.py).
            from customlayers._moments import tf_moments
            mean, variance = tf_moments(x, axes)
        elif _keras.BACKEND == "torch":
            # Keras's torch moments: E[x^2] - E[x]^2.
            mean = ops.mean(x, axis=axes, keepdims=True)
            variance = ops.mean(ops.square(x), axis=axes, keepdims=True) \
                - ops.square(mean)
        else:
            # JAX: jnp.mean and jnp.var (ops.var is that jitted function;
            # written out in separate ops it rounds 1-2 ULP differently).
            mean = ops.mean(x, axis=axes, keepdims=True)
            variance = ops.var(x, axis=axes, keepdims=True)
        return (ops.squeeze(mean, axis=axes),
                ops.squeeze(variance, axis=axes))

    @staticmethod
    def _synchronized_moments(x, axes):
        """TensorFlow, ``synchronized=True``: the built-in's cross-replica
        moments, ``E[x^2] - E[x]^2`` from sums all-reduced over the
        replicas of the current replica context (the default context
        outside a distribution strategy: one replica), clipped at 0."""
        import tensorflow as tf
        ctx = tf.distribute.get_replica_context()
        if ctx is None:  # cross-replica context: local moments, as Keras
            from customlayers._moments import tf_moments
            return tf_moments(x, axes)
        total = ops.sum(x, axis=axes, keepdims=True)
        squares = ops.sum(ops.square(x), axis=axes, keepdims=True)
        count = ops.sum(ops.ones_like(x), axis=axes, keepdims=True)
        total = ctx.all_reduce(tf.distribute.ReduceOp.SUM, total)
        squares = ctx.all_reduce(tf.distribute.ReduceOp.SUM, squares)
        count = ctx.all_reduce(tf.distribute.ReduceOp.SUM, count)
        mean = tf.math.divide_no_nan(total, count)
        variance = ops.maximum(
            tf.math.divide_no_nan(squares, count) - ops.square(mean), 0.0)
        return mean, variance

    def _masked_moments(self, x, mask, axes):
        """Moments over the positions the mask keeps (the built-in's
        weighted sums, with its ``+ backend.epsilon()`` in the count)."""
        keep = ops.broadcast_to(ops.expand_dims(mask, axis=-1), ops.shape(x))
        keep = ops.cast(keep, "bool")
        total = ops.sum(ops.where(keep, x, 0), axes, keepdims=True)
        count = ops.sum(ops.cast(keep, x.dtype), axes, keepdims=True)
        mean = total / (count + keras.backend.epsilon())
        squares = ops.square(ops.where(keep, x - mean, 0))
        variance = ops.sum(squares, axes, keepdims=True) / (
            count + keras.backend.epsilon())
        return ops.squeeze(mean), ops.squeeze(variance)

    def _inverse_std(self, variance):
        return ops.rsqrt(variance + self.epsilon)

    def _normalize(self, x, mean, variance, gamma, beta):
        """``x * inv + (beta - mean * inv)``, ``inv = rsqrt(var + eps) *
        gamma``, with each backend's broadcasting and order."""
        ndims = len(x.shape)
        shape = [1] * ndims
        shape[self.axis] = x.shape[self.axis]

        def reshape(v):
            return None if v is None else ops.reshape(v, shape)

        if _keras.BACKEND == "tensorflow":
            if self.axis != -1:
                mean, variance = reshape(mean), reshape(variance)
                gamma, beta = reshape(gamma), reshape(beta)
            # tf.nn.batch_normalization's scope: the same op names
            # (tf.name_scope, as in customlayers/_moments.py).
            import tensorflow as tf
            with tf.name_scope("batchnorm"):
                inv = self._inverse_std(variance)
                if gamma is not None:
                    inv = inv * gamma
                return x * inv + (beta - mean * inv if beta is not None
                                  else -mean * inv)
        mean, variance = reshape(mean), reshape(variance)
        gamma, beta = reshape(gamma), reshape(beta)
        if _keras.BACKEND == "torch":
            # (x - mean) * (rsqrt(var + eps) * gamma) + beta, with ones and
            # zeros standing in for a missing gamma or beta (adding zeros
            # turns -0.0 into +0.0, as the built-in's does).
            inv = self._inverse_std(variance) * (
                gamma if gamma is not None else ops.ones_like(variance))
            return (x - mean) * inv + (
                beta if beta is not None else ops.zeros_like(mean))
        inv = self._inverse_std(variance)
        if gamma is not None:
            inv = inv * gamma
        res = -mean * inv
        if beta is not None:
            res = res + beta
        return x * inv + res
