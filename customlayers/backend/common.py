"""Pieces of the activation kernels that every backend module shares.

Role: the constants (``zeros``, ``full``), the comparisons the ReLU kinks
are made of (``positive``, ``inside_0_6``), the elementary ``max(x, 0)`` /
``min(x, 6)``, the select gradient ``g if passes(x) else 0``, the generic
``custom_gradient`` wrapper, and ``threshold_kernel`` (Keras 3 computes the
threshold the same way on every backend). The backend modules
(:mod:`.tensorflow`, :mod:`.jax`, :mod:`.torch`) build their kernels from
these; :mod:`customlayers.backend` picks one of them.

Every reference formula below is what ``keras.layers.ReLU`` ends up running
(keras/src/activations/activations.py ``ReLU.static_call``, or
``backend.relu`` in Keras 2), rebuilt from elementary operations with the
same gradient, written by hand where the reference has a hand-written one.
"""

from __future__ import annotations

from customlayers._keras import BACKEND, KERAS_MAJOR, ops

#: The Keras backends customlayers has kernels for.
SUPPORTED_BACKENDS = ("tensorflow", "jax", "torch")


def custom_gradient(forward, backward):
    """``forward(x)`` whose gradient is ``backward(x, upstream)``, through
    ``ops.custom_gradient`` (the backend modules add their fast paths).
    ``backward`` is linear in ``upstream``, like every activation gradient
    here."""

    @ops.custom_gradient
    def kernel(x):
        y = forward(x)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return backward(x, upstream)

        return y, grad

    return kernel


_TF_SCALARS = {}


def full(x, value):
    """``value`` in ``x``'s dtype, shaped to broadcast against ``x``.

    On TensorFlow a scalar that the binary op broadcasts: TensorFlow's Relu
    kernel itself computes cwiseMax against a scalar, and a full tensor would
    cost a kernel (ZerosLike / Fill) on every call. In eager mode the scalar
    is made once per dtype and reused. Elsewhere ``ops.full_like``."""
    if BACKEND == "tensorflow":
        import tensorflow as tf
        if not tf.executing_eagerly():
            return tf.constant(value, dtype=x.dtype)
        key = (x.dtype, value)
        if key not in _TF_SCALARS:
            _TF_SCALARS[key] = tf.constant(value, dtype=x.dtype)
        return _TF_SCALARS[key]
    return ops.full_like(x, value)


def zeros(x):
    return full(x, 0)


def select_backward(passes):
    """The gradient ``where(passes(x), g, 0)``, as a ``backward(x, g)``.

    The backends' own ReLU gradients *select* the upstream gradient. The
    tutorial's ``maximum(x, 0)`` has the right values but the wrong gradient
    at the kink (``Maximum``'s gradient goes to ``x`` on a tie), and a
    composite of selects would add up the gradient of each path, which
    TensorFlow's CPU kernels flush to zero for subnormal values (the property
    suite found both). So the gradient is written by hand, as one select.
    """
    return lambda x, g: ops.where(passes(x), g, zeros(g))


def positive(x):
    return ops.greater(x, zeros(x))


def inside_0_6(x):
    return ops.logical_and(ops.greater(x, zeros(x)), ops.less(x, full(x, 6)))


def max0(x):
    """``maximum(x, 0)``: one elementwise op; on TensorFlow the same values as
    the Relu kernel, NaN and the sign of zero included (checked in every
    dtype by tests/property/test_kernels.py), subnormals aside: TensorFlow's
    CPU kernels flush them to zero on some threads and not others. On JAX it
    *is* jax.nn.relu's forward (``jnp.maximum(x, 0)``)."""
    return ops.maximum(x, zeros(x))


def min6(x):
    return ops.minimum(x, full(x, 6))


def relu_forward_elementary(x):
    """The ReLU formula from elementary ops: ``maximum(x, 0)`` (TensorFlow
    and JAX; torch's, a select on ``x < 0``, is in its module)."""
    return max0(x)


def relu_backward_elementary(x, y, g):
    """The ReLU gradient from elementary ops: ``g if x > 0 else 0`` --
    **0 at x == 0**, unlike the tutorial's ``tf.math.maximum(x, 0)``, whose
    gradient goes to ``x`` on a tie (TensorFlow and JAX; torch's selects on
    the output, see its module)."""
    return ops.where(positive(x), g, zeros(g))


def threshold_kernel(x, threshold):
    """``x`` where ``x > threshold``, else 0.

    Keras 3 (every backend): ``where(x > t, x, 0)``. Keras 2
    (``backend.relu``): ``x * cast(x > t)``, so NaN and infinities below the
    threshold give NaN, ``-0.0`` keeps its sign, and the gradient is
    ``g * mask``.
    """
    t = ops.cast(threshold, x.dtype)
    passes = ops.greater(x, t)
    if KERAS_MAJOR < 3:  # pragma: no cover
        return ops.multiply(x, ops.cast(passes, x.dtype))
    if not is_float(x):
        # Integer and bool inputs: the built-in's own expression, whose
        # Python 0 sets the output dtype (bool gives int32 on JAX/torch).
        return ops.where(passes, x, 0)
    return ops.where(passes, x, zeros(x))


def is_float(x) -> bool:
    """Whether ``x`` has a floating dtype (integer and bool inputs are not
    autocast by Keras and follow the built-in's own dtype rules)."""
    from customlayers._keras import keras
    return "float" in keras.backend.standardize_dtype(x.dtype)
