"""Version- and backend-compatibility code, all of it in one place.

Everything that differs between Keras releases or between Keras backends is
decided here, so that the layers read like plain Keras 3 code and dropping an
old TensorFlow later is one deletion in this file.

Public names used by the rest of the package:

- ``keras``: the Keras module the layers subclass.
- ``ops``: the tensor-operation namespace (``keras.ops`` on Keras 3).
- ``KERAS_MAJOR`` and ``BACKEND``: what is running.
- ``register_serializable(package)``: the class decorator for saving.
- ``relu_kernel``, ``relu6_kernel``, ``clip_kernel``, ``leaky_relu_kernel``:
  elementary-operation versions of the backend activations, written so that
  values *and* gradients match the backend's own kernels bit for bit
  (including exact zeros, ``-0.0`` and ``NaN``).
"""

from __future__ import annotations

import keras

KERAS_VERSION = keras.__version__
KERAS_MAJOR = int(KERAS_VERSION.split(".")[0])

if KERAS_MAJOR < 3:  # pragma: no cover - exercised by the Keras 2 tox envs
    raise ImportError(
        "customlayers needs Keras 3 on this code path; found keras "
        f"{KERAS_VERSION}. Keras 2 support lives in the tox matrix issue."
    )

from keras import ops  # noqa: E402

BACKEND = keras.backend.backend()


def register_serializable(package: str = "customlayers"):
    """Register a class so that ``.keras`` files can load it by name."""
    return keras.saving.register_keras_serializable(package=package)


def _zero_like_keeping_sign(x):
    # ``x * 0`` is +0.0 for x >= +0, -0.0 for x <= -0 and NaN for NaN/inf.
    # It is selected only where x is 0 or NaN, so infinities never show.
    return ops.multiply(x, ops.zeros_like(x))


def _select_gradient(forward, passes):
    """Give ``forward(x)`` the gradient ``where(passes(x), g, 0)``.

    The backends' own ReLU gradients *select* the upstream gradient; they do
    no arithmetic on it. A composite of elementary ops would add up the
    gradient of each path instead, and TensorFlow's CPU kernels flush
    subnormal results of arithmetic to zero, so a subnormal upstream gradient
    would come back as 0 (the property suite found this). The gradient is
    therefore written by hand, as a select, like the forward.
    """

    @ops.custom_gradient
    def kernel(x):
        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return ops.where(passes(x), upstream, ops.zeros_like(upstream))

        return forward(x), grad

    return kernel


def _relu_forward(x):
    zero = ops.zeros_like(x)
    return ops.where(
        ops.greater(x, zero),
        x,
        ops.where(ops.less(x, zero), zero, _zero_like_keeping_sign(x)),
    )


def _relu6_forward(x):
    zero = ops.zeros_like(x)
    six = ops.full_like(x, 6)
    outside = ops.where(
        ops.greater_equal(x, six),
        six,
        ops.where(ops.less(x, zero), zero, _zero_like_keeping_sign(x)),
    )
    return ops.where(_inside_0_6(x), x, outside)


def _inside_0_6(x):
    return ops.logical_and(ops.greater(x, ops.zeros_like(x)),
                           ops.less(x, ops.full_like(x, 6)))


#: ``max(x, 0)`` exactly as TensorFlow's Relu kernel: ``x`` for x > 0,
#: ``+0`` for x < 0, ``x`` itself for ``+-0`` and NaN (``-0.0`` keeps its
#: sign, NaN propagates). Gradient: ``g`` where x > 0, else 0 -- **0 at
#: x == 0**, like ``tf.nn.relu``.
relu_kernel = _select_gradient(
    _relu_forward, lambda x: ops.greater(x, ops.zeros_like(x)))

#: ``min(max(x, 0), 6)`` as TensorFlow's Relu6: gradient ``g`` only strictly
#: inside (0, 6), so 0 at both kinks.
relu6_kernel = _select_gradient(_relu6_forward, _inside_0_6)


def leaky_relu_kernel(x, negative_slope):
    """``x if x > 0 else negative_slope * x`` as TensorFlow's LeakyRelu, with
    its gradient ``g if x > 0 else g * negative_slope``."""
    slope = ops.cast(negative_slope, x.dtype)

    @ops.custom_gradient
    def kernel(x):
        positive = ops.greater(x, ops.zeros_like(x))

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return ops.where(positive, upstream,
                             ops.multiply(upstream, slope))

        return ops.where(positive, x, ops.multiply(x, slope)), grad

    return kernel(x)


def clip_kernel(x, min_value, max_value):
    """``maximum(minimum(x, max), min)``, the composition TensorFlow's
    ``clip_by_value`` uses: at ``x == max_value`` the gradient is 1."""
    x = ops.minimum(x, ops.cast(max_value, x.dtype))
    return ops.maximum(x, ops.cast(min_value, x.dtype))


def shape_as_tuple(shape):
    """A shape as a tuple of ints and ``None``s, whatever Keras passed.

    Keras 3 passes tuples to ``build``; Keras 2 passes ``TensorShape``.
    """
    if hasattr(shape, "as_list"):
        try:
            return tuple(shape.as_list())
        except ValueError:  # unknown rank
            return ()
    return tuple(None if d is None else int(d) for d in shape)
