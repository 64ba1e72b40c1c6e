"""Deliberately broken variants of customlayers.BatchNormalization: each
must be caught by the generic properties
(``test_batch_normalization_bugs.py``)."""

from customlayers import BatchNormalization
from customlayers._keras import keras, ops


class SwappedMomentumBN(BatchNormalization):
    """``moving * (1 - momentum) + batch * momentum``: the moving averages
    follow the batch instead of remembering (outputs and gradients are
    right in both modes: only the ``state`` property sees it)."""

    def _update_moving_statistics(self, moving_mean, moving_variance, mean,
                                  variance):
        m = 1.0 - self.momentum
        self.moving_mean.assign(moving_mean * m + mean * (1.0 - m))
        self.moving_variance.assign(moving_variance * m
                                    + variance * (1.0 - m))


class FrozenStateBN(BatchNormalization):
    """Never updates the moving statistics (only the ``state`` property
    sees it)."""

    def _update_moving_statistics(self, moving_mean, moving_variance, mean,
                                  variance):
        return None


class UnbiasedVarianceBN(BatchNormalization):
    """Divides the squared deviations by n - 1 (Bessel's correction), where
    batch normalization uses the biased variance."""

    def _moments(self, x, mask):
        mean, variance = super()._moments(x, mask)
        n = 1
        for a in self._reduction_axes:
            n *= x.shape[a]
        return mean, variance * (n / max(n - 1, 1))


class MovingStatisticsInTrainingBN(BatchNormalization):
    """Normalizes with the moving statistics in training mode too (they are
    still updated)."""

    def call(self, inputs, training=None, mask=None):
        if training and self.trainable:
            x = ops.cast(inputs, keras.backend.result_type(
                inputs.dtype, "float32"))
            mean, variance = self._moments(x, mask)
            self._update_moving_statistics(
                ops.cast(self.moving_mean, x.dtype),
                ops.cast(self.moving_variance, x.dtype), mean, variance)
        # Then normalize as in inference mode (the updated moving
        # statistics), not with the batch's.
        return super().call(inputs, training=False, mask=mask)


class EpsilonOutsideSqrtBN(BatchNormalization):
    """``1 / (sqrt(var) + eps)`` instead of ``1 / sqrt(var + eps)``."""

    def _inverse_std(self, variance):
        return 1.0 / (ops.sqrt(variance) + self.epsilon)


# -- bugs that only the newer items see (training-mode derivatives, the mask
# -- property in graph and compiled mode): test_mode_gap_bugs.py


def _rsqrt_first_order_only(v):
    """``rsqrt(v)`` whose derivative is written by hand from the *stopped*
    result and argument, with the backend's own kernel or rule, so first
    derivatives (reverse and forward) are bit for bit the built-in's, but
    the derivative no longer depends on ``v``: a second derivative through
    ``v`` is lost. TensorFlow: ``tf.custom_gradient`` returning
    ``RsqrtGrad(stop(y), dy)`` (Rsqrt's own gradient op); JAX: a
    ``jax.custom_jvp`` with ``lax``'s rule, ``g * (-0.5 * (y / v))``, on
    stopped values."""
    from customlayers._keras import BACKEND
    if BACKEND == "tensorflow":
        import tensorflow as tf

        @tf.custom_gradient
        def rsqrt(v):
            y = tf.math.rsqrt(v)

            def grad(dy):
                return tf.raw_ops.RsqrtGrad(y=tf.stop_gradient(y), dy=dy)
            return y, grad
        return rsqrt(v)
    import jax
    from jax import lax

    @jax.custom_jvp
    def rsqrt(v):
        return lax.rsqrt(v)

    @rsqrt.defjvp
    def _(primals, tangents):
        (v,), (t,) = primals, tangents
        y = lax.rsqrt(v)
        ys, vs = lax.stop_gradient(y), lax.stop_gradient(v)
        return y, t * (-0.5 * (ys / vs))

    return rsqrt(v)


class FirstOrderRsqrtBN(BatchNormalization):
    """``rsqrt(variance + epsilon)`` with a hand-written derivative that is
    right to first order only (:func:`_rsqrt_first_order_only`): outputs,
    gradients and JVPs are the built-in's bit for bit, in both modes. In
    training mode the variance is the batch's, a function of ``x``, and
    the Hessian-vector products lose the terms through it; in inference
    mode it is the (not differentiated) moving variance, and nothing
    changes. Only the training-mode second-order items see it. (TensorFlow
    and JAX: on torch a ``keras.ops.custom_gradient`` has no forward-mode
    rule, so forward mode would fail too.)"""

    def _inverse_std(self, variance):
        return _rsqrt_first_order_only(variance + self.epsilon)


def _traced(t) -> bool:
    """Whether ``t`` is a symbolic value of ``tf.function``/XLA or a JAX
    tracer: NumPy cannot read it."""
    import numpy as np
    try:
        np.asarray(t)
    except Exception:  # noqa: BLE001 - symbolic tensor / tracer
        return True
    return False


class TracedMaskDroppedBN(BatchNormalization):
    """Reads the mask as NumPy to decide which positions count (a fast path
    written against eager tensors); when the call is traced (``tf.function``,
    XLA, ``jax.jit``) NumPy cannot read it, and the mask is silently
    dropped: the batch moments (and moving-statistics updates) then count
    the masked-out positions. Eager calls are right."""

    def call(self, inputs, training=None, mask=None):
        if mask is not None and _traced(mask):
            mask = None
        return super().call(inputs, training=training, mask=mask)
