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
from customlayers.backend.common import (custom_gradient, full, inside_0_6,
                                         max0, min6, positive,
                                         relu_backward_elementary,
                                         relu_forward_elementary,
                                         threshold_kernel, zeros)

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


def _in_xla_context() -> bool:
    """Whether ops are being traced for XLA (``tf.function(jit_compile=
    True)``, Keras's ``jit_compile``): TensorFlow's activation gradients
    lower differently there (Relu6Grad selects; its CPU/GPU kernel
    multiplies)."""
    if tf.executing_eagerly():
        return False
    from tensorflow.python.ops import control_flow_util
    return control_flow_util.GraphOrParentsInXlaContext(
        tf.compat.v1.get_default_graph())


_RECORD = _eager_record()


def _differentiable(backward):
    """``backward(x, g)`` -- linear in ``g`` -- as an op that is itself
    differentiable the way TensorFlow's registered gradient ops are
    (``_Relu6GradGrad``, ``_LeakyReluGradGrad`` in nn_grad.py): its gradient
    is ``backward(x, gg)`` for ``g`` and ``zeros_like(x)`` for ``x``. So
    second derivatives (``tf.hessians``, a gradient penalty) are zeros, as
    the built-in's, not ``None``: ``backward`` reaches ``x`` only through a
    comparison, which has no gradient. Recorded directly on the eager tape
    (skipped when nothing records, as in a plain first-order gradient);
    ``tf.custom_gradient`` in graph mode and XLA."""

    @tf.custom_gradient
    def graph_op(x, g):
        def grad(gg):
            return tf.zeros_like(x), op(x, gg)
        return backward(x, g), grad

    def op(x, g):
        if not tf.executing_eagerly() or _RECORD is None:
            return graph_op(x, g)
        if not _RECORD.could_possibly_record():
            return backward(x, g)
        with _RECORD.stop_recording():
            out = backward(x, g)
        _RECORD.record_operation(
            "customlayers_activation_grad", [out], [x, g],
            lambda gg: [tf.zeros_like(x), op(x, gg)])
        return out

    return op


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
    record = _RECORD
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
            return [backward(x, upstream)]

        record.record_operation("customlayers_activation", [y], [x], grad)
        return y

    return fast


def with_gradient(forward, backward):
    """``forward(x)`` whose gradient is ``backward(x, upstream)`` (linear in
    the upstream gradient), differentiable again (see ``_differentiable``).
    """
    backward = _differentiable(backward)
    kernel = custom_gradient(forward, backward)
    return _eager_fast_path(kernel, forward, backward)


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
    """``min(max(x, 0), 6)`` with the built-in's values bit for bit, the sign
    of zero and NaN included, at every length.

    Outside XLA, ``Maximum``/``Minimum`` in ``x``'s own dtype: TensorFlow's
    Relu6 kernel is Eigen's ``cwiseMax(0).cwiseMin(6)``. (Going through
    float32 for bfloat16, as this kernel once did, lost ``-0.0`` from 8
    elements on: float32's vectorised max returns +0.0 for ``max(-0.0,
    0)``.) Under XLA, TensorFlow lowers Relu6 to ``Clamp(0, x, 6)``, and
    ``ClipByValue`` lowers to the same HLO; ``maximum`` then ``minimum``
    there gave ``-0.0`` for a lone ``-0.0`` where the clamp gives +0.0
    (tests/property/test_relu_forward_details.py checks lengths 1..64 in
    every float dtype and mode)."""
    six = full(x, 6)
    if _in_xla_context():
        return tf.raw_ops.ClipByValue(t=x, clip_value_min=zeros(x),
                                      clip_value_max=six)
    return min6(max0(x))


def _relu6_backward(x, g):
    """TensorFlow's Relu6Grad: ``g * (0 < x < 6)`` in its CPU/GPU kernels,
    so a masked-out NaN or inf upstream gradient gives NaN and a masked-out
    ``g < 0`` gives -0.0; XLA lowers it to a select (``g if 0 < x < 6 else
    0``). The same two forms here, in the same modes."""
    inside = inside_0_6(x)
    if _in_xla_context():
        return ops.where(inside, g, zeros(g))
    return ops.multiply(g, ops.cast(inside, g.dtype))


def _integer_relu6(x):
    # Integers have no gradient: TensorFlow's own Relu6 gives the built-in's
    # dtype (uint64 included, which keras.ops would change) and its error
    # for bool.
    return _gen_nn_ops.relu6(x)


def _relu6_forward(x):
    """``_relu6_values`` whose forward-mode derivative is the built-in's.

    Under ``tf.function``, ``tf.autodiff.ForwardAccumulator`` differentiates
    the forward ops inside ``tf.custom_gradient``, not its gradient: through
    ``maximum(x, 0)`` the JVP at ``x == 0`` was the tangent itself (Maximum
    passes a tie to ``x``) where the built-in's Relu6 gives 0 (found by the
    forward-mode property). ``where(0 < x < 6, x, <the values, stopped>)``
    has the same values bit for bit (inside, ``x`` is the value; outside,
    the values themselves, -0.0 and NaN included) and the JVP ``t`` inside,
    0 outside, as Relu6's gradient (outside XLA the built-in's is ``t *
    mask``, whose masked-out negative tangents are -0.0: a declared sign-of-
    zero difference, as for its first-order gradient). Eager mode records
    the hand-written gradient itself, which forward mode uses there.

    Under XLA the select costs one bit: for a lone ``-0.0`` (length 1) XLA
    returns ``-0.0`` where the built-in's Clamp gives ``+0.0``; two attempts
    to keep the clamp's bits and the JVP together failed (XLA's clamp itself
    keeps -0.0 at some lengths), so the forward-mode derivative won and
    tests/property/test_relu_forward_details.py declares that sign."""
    if tf.executing_eagerly():
        return _relu6_values(x)
    # The values from a stopped x: the accumulator then never looks up
    # ClipByValue's JVP, which TF 2.12 does not register.
    values = _relu6_values(tf.stop_gradient(x))
    return tf.where(inside_0_6(x), x, values)


_float_relu6 = with_gradient(_relu6_forward, _relu6_backward)


def relu6_kernel(x):
    """``min(max(x, 0), 6)`` with TensorFlow's Relu6 gradient: ``g`` only
    strictly inside (0, 6), so 0 at both kinks; differentiable again (zero
    second derivative). Non-float inputs run TensorFlow's Relu6, as the
    built-in does."""
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        return _integer_relu6(x)
    return _float_relu6(x)


def leaky_relu_kernel(x, negative_slope):
    """``x if x > 0 else negative_slope * x`` as TensorFlow's LeakyRelu, with
    its gradient ``g if x > 0 else g * negative_slope`` (differentiable
    again, zero second derivative); integers are computed in float32, as
    ``tf.nn.leaky_relu`` does."""
    x = tf.convert_to_tensor(x)
    if x.dtype.is_integer:
        # tf.nn.leaky_relu computes integer inputs in float32.
        x = tf.cast(x, tf.float32)
    elif not x.dtype.is_floating:
        # bool (and the rest): TensorFlow's own LeakyRelu refuses them, with
        # its own error in each mode; nothing is computed.
        return _gen_nn_ops.leaky_relu(x, alpha=float(negative_slope))
    slope = ops.cast(negative_slope, x.dtype)
    return with_gradient(
        lambda x: ops.where(positive(x), x, ops.multiply(x, slope)),
        lambda x, g: ops.where(positive(x), g, ops.multiply(g, slope)),
    )(x)


def clip_kernel(x, min_value, max_value):
    """``maximum(minimum(x, max), min)``, the composition TensorFlow's
    ``clip_by_value`` uses: at ``x == max_value`` the gradient is 1."""
    x = ops.minimum(x, ops.cast(max_value, x.dtype))
    return ops.maximum(x, ops.cast(min_value, x.dtype))
