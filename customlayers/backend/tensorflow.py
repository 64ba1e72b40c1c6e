"""The ReLU kernels on TensorFlow.

Role: what ``keras.layers.ReLU`` runs on TensorFlow, rebuilt: Relu/Relu6
kernels with ReluGrad/Relu6Grad (``g * mask``: -0.0 for a masked-out g < 0,
NaN for a masked-out non-finite g), LeakyRelu with LeakyReluGrad,
``clip_by_value`` = ``maximum(minimum(x, hi), lo)`` differentiated by TF
(gradient 1 at x == hi). Plain ``max(x, 0)`` runs on TensorFlow's fused
``Relu``/``ReluGrad`` (``relu_kernel``, for speed); the rest are elementary
ops with hand-written gradients, recorded directly on the eager tape
(``_eager_fast_path``) outside ``tf.function``.
"""

from __future__ import annotations

import tensorflow as tf
# relu_kernel calls the generated op wrapper that tf.nn.relu itself calls
# (tensorflow.python.ops.gen_nn_ops, present in every TF 2.x): keras.ops,
# and tf.raw_ops' keyword-only wrapper, add Python to every eager call, which
# the built-in's tf.nn.relu does not pay.
from tensorflow.python.ops import gen_nn_ops as _gen_nn_ops

from customlayers._keras import ops
from customlayers.backend.common import (custom_gradient, inside_0_6, max0,
                                         min6, positive,
                                         relu_backward_elementary,
                                         relu_forward_elementary,
                                         select_backward, threshold_kernel)

__all__ = ["clip_kernel", "leaky_relu_kernel", "relu6_kernel", "relu_kernel",
           "relu_backward_elementary", "relu_forward_elementary",
           "threshold_kernel"]


def _eager_record():
    """TensorFlow's tape-recording functions (``record`` from TF 2.13,
    ``tape`` before), or ``None`` if neither has what we need."""
    try:
        from tensorflow.python.eager import record
    except ImportError:  # pragma: no cover - TF 2.12
        from tensorflow.python.eager import tape as record
    needed = ("could_possibly_record", "stop_recording", "record_operation")
    return record if all(hasattr(record, n) for n in needed) else None


def _eager_fast_path(kernel, forward, backward):
    """The same kernel, cheaper in TensorFlow's eager mode.

    ``tf.custom_gradient`` costs about 200 us of Python per eager call
    (argument inspection, a variable watcher, an extra Identity op), which
    made eager ReLU 2-3x slower than the built-in (benchmarks/RESULTS.md).
    In eager mode this records the same forward and the same hand-written
    backward on the tape directly, and skips the recording entirely when no
    tape or accumulator is active (inference). Inside ``tf.function`` and
    XLA the ``custom_gradient`` kernel is used unchanged. Values and
    gradients are the same functions either way; the property suite
    compares them bit for bit in every mode."""
    record = _eager_record()
    if record is None:  # pragma: no cover - an unknown TensorFlow
        return kernel

    def fast(x):
        if not tf.executing_eagerly():
            return kernel(x)
        if not record.could_possibly_record():
            return forward(x)
        x = tf.convert_to_tensor(x)
        with record.stop_recording():
            y = forward(x)

        def grad(upstream):
            return [backward(x, y, upstream)]

        record.record_operation("customlayers_activation", [y], [x], grad)
        return y

    return fast


def with_gradient(forward, backward):
    """``forward(x)`` whose gradient is ``backward(x, y, upstream)``."""
    return _eager_fast_path(custom_gradient(forward, backward), forward,
                            backward)


def relu_kernel(x):
    """``relu_forward_elementary`` / ``relu_backward_elementary`` on
    TensorFlow's own kernels: ``Relu`` computes ``maximum(x, 0)`` and its
    registered gradient ``ReluGrad`` computes ``g * (x > 0)``, which is
    ``g if x > 0 else 0`` for a finite upstream gradient up to the sign of
    zero (a masked-out g < 0 gives -0.0; a masked-out NaN or inf gives NaN),
    exactly as the built-in does. tests/property/test_kernels.py checks both
    against the elementary ops, in eager, graph and XLA mode. ``Maximum`` +
    a hand-written ``Greater`` + ``Select`` gradient (the previous kernel)
    ran 0.75-0.90x the built-in in eager and graph fwd+bwd on CPU, and
    ``Maximum`` is slower than ``Relu`` in bfloat16 (0.82-0.89x forward);
    benchmarks/RESULTS.md has the numbers."""
    return _gen_nn_ops.relu(x)


def _relu6_values(x):
    # XLA up to TF 2.20 lowers Relu6 to a clamp that gives +0.0 for -0.0 and
    # a number for NaN; so does its float32 max/min, but its bfloat16
    # max/min keep -0.0 and NaN. Computing bfloat16 in float32 (exact: max
    # and min only pick a value) matches the built-in in eager, graph and
    # XLA on every TF version of the matrix.
    if x.dtype == "bfloat16":
        wide = ops.cast(x, "float32")
        return ops.cast(min6(max0(wide)), x.dtype)
    return min6(max0(x))


#: ``min(max(x, 0), 6)`` with TensorFlow's Relu6 gradient: ``g`` only
#: strictly inside (0, 6), so 0 at both kinks.
relu6_kernel = with_gradient(_relu6_values, select_backward(inside_0_6))


def leaky_relu_kernel(x, negative_slope):
    """``x if x > 0 else negative_slope * x`` as TensorFlow's LeakyRelu, with
    its gradient ``g if x > 0 else g * negative_slope``."""
    slope = ops.cast(negative_slope, x.dtype)
    return with_gradient(
        lambda x: ops.where(positive(x), x, ops.multiply(x, slope)),
        lambda x, y, g: ops.where(positive(x), g, ops.multiply(g, slope)),
    )(x)


def clip_kernel(x, min_value, max_value):
    """``maximum(minimum(x, max), min)``, the composition TensorFlow's
    ``clip_by_value`` uses: at ``x == max_value`` the gradient is 1."""
    x = ops.minimum(x, ops.cast(max_value, x.dtype))
    return ops.maximum(x, ops.cast(min_value, x.dtype))
