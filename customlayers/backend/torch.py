"""The ReLU kernels on PyTorch.

Role: what ``keras.layers.ReLU`` runs on PyTorch (ATen, CPU), rebuilt.
relu(x) = clamp_min(x, 0), which keeps -0.0 and NaN; its gradient is
threshold_backward(g, relu(x), 0) = ``0 if relu(x) <= 0 else g``, a select on
the *output*, so NaN passes the upstream gradient through. relu6(x) clamps
to [0, 6] with the gradient ``g if 0 < x < 6 else 0`` (at NaN: ``g`` on CUDA
and in the CPU kernel's scalar tail, 0 in its vectorised body). relu6 runs ATen's own relu6 (values and
gradient, see ``relu6_kernel`` for why), and clip takes its values from the
ATen clamp the built-in calls (``torch.clip``) with a hand-written gradient:
on CUDA those clamps map -0.0 to +0.0 where the CPU kernels and the
elementary where-formulas (kept beside them, ``relu6_forward_elementary``
and ``clip_forward_elementary``, and checked equal to them on CPU by
tests/property/test_kernels.py) keep -0.0 (found on an H200, torch 2.11). leaky_relu computes ``x * slope`` and
``g * slope`` in float32 for float16 and bfloat16 (ATen's opmath), with the
slope as a float32, not rounded to the tensor's dtype first. clip = clamp,
gradient ``g if lo <= x <= hi else 0`` (NaN gets 0). Plain ``max(x, 0)``
runs on ``torch.relu`` itself (``relu_kernel``, for speed).
"""

from __future__ import annotations

import torch as _torch

from customlayers._keras import ops
from customlayers.backend.common import (full, positive, threshold_kernel,
                                         zeros)

__all__ = ["clip_forward_elementary", "clip_kernel", "leaky_relu_kernel",
           "relu6_forward_elementary", "relu6_kernel", "relu_kernel",
           "relu_backward_elementary", "relu_forward_elementary",
           "threshold_kernel"]

def _batch_first(t, dim, size):
    return t.movedim(dim, 0) if dim is not None else t.expand(size, *t.shape)


class _Backward(_torch.autograd.Function):
    """``backward(x, g)`` (linear in ``g``) as a differentiable op, the way
    ATen's own activation gradients are (derivatives.yaml:
    ``hardtanh_backward``, ``leaky_relu_backward``): its gradient is
    ``backward(x, gg)`` for ``g`` and ``zeros_like(x)`` for ``x``. So a
    second derivative is zeros, as the built-in's, where a plain
    ``where(mask(x), g, 0)`` has no path to ``x`` at all.

    Written in the ``setup_context`` style with a ``jvp`` and a ``vmap``
    rule (element-wise: batch dimensions first; torch's generated rule
    tripped an internal assert in ``torch.clip`` with tensor bounds), so that ``torch.func`` transforms (``hessian``, ``jacfwd``,
    ``vmap``) run through it as through ATen's ops (without them
    ``torch.func.hessian`` of the layer raised where the built-in's works:
    found by the second-order property's ``hessian[input]``)."""

    @staticmethod
    def forward(backward, zeros_for_x, x, g):
        return backward(x, g)

    @staticmethod
    def vmap(info, in_dims, backward, zeros_for_x, x, g):
        # Element-wise: put both batch dimensions in front and apply.
        x, g = (_batch_first(t, d, info.batch_size)
                for t, d in zip((x, g), in_dims[2:]))
        return _Backward.apply(backward, zeros_for_x, x, g), 0

    @staticmethod
    def setup_context(ctx, inputs, output):
        backward, zeros_for_x, x, _ = inputs
        ctx.backward = backward
        ctx.zeros_for_x = zeros_for_x
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)

    @staticmethod
    def backward(ctx, gg):
        (x,) = ctx.saved_tensors
        dx = _torch.zeros_like(x) if ctx.zeros_for_x else None
        return (None, None, dx,
                _Backward.apply(ctx.backward, ctx.zeros_for_x, x, gg))

    @staticmethod
    def jvp(ctx, _backward_t, _zeros_t, x_t, g_t):
        # Linear in g; with respect to x zero (or no dependence at all).
        (x,) = ctx.saved_tensors
        if g_t is None:
            return _torch.zeros_like(x)
        return _Backward.apply(ctx.backward, ctx.zeros_for_x, x, g_t)


class _Kernel(_torch.autograd.Function):
    """``forward(x)`` with the gradient ``_Backward(backward)(x, g)``, and
    the same as its forward-mode derivative (``backward`` is the Jacobian,
    diagonal, applied to a vector)."""

    @staticmethod
    def forward(forward, backward, zeros_for_x, x):
        return forward(x)

    @staticmethod
    def vmap(info, in_dims, forward, backward, zeros_for_x, x):
        # Element-wise: the batched input goes through as it is.
        return _Kernel.apply(forward, backward, zeros_for_x, x), in_dims[3]

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, backward, zeros_for_x, x = inputs
        ctx.backward = backward
        ctx.zeros_for_x = zeros_for_x
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (None, None, None,
                _Backward.apply(ctx.backward, ctx.zeros_for_x, x, g))

    @staticmethod
    def jvp(ctx, _forward_t, _backward_t, _zeros_t, x_t):
        (x,) = ctx.saved_tensors
        if x_t is None:
            return _torch.zeros_like(x)
        return _Backward.apply(ctx.backward, ctx.zeros_for_x, x, x_t)


def with_gradient(forward, backward, zeros_for_x=True, params=()):
    """``forward(x, *params)`` whose gradient is ``backward(x, upstream,
    *params)`` (linear in the upstream gradient), differentiable again
    (``_Backward``): with respect to ``x`` it gives zeros (ATen's explicit
    double backward of hardtanh and leaky_relu), or, with
    ``zeros_for_x=False``, no gradient at all (``None``), as ATen's clamp,
    whose gradient is a plain ``where(mask(x), g, 0)``.

    Not under ``torch.compile``: Dynamo cannot trace an ``autograd.Function``
    with a custom ``jvp`` ("Unsupported custom jvp"; customlayers.ReLU's
    leaky and clip paths broke the graph where the built-in's compile,
    found by torch's compiled mode), and without one, a ``torch.func``
    forward-mode transform of it through a Keras layer inside a compiled
    function raised "You must implement the jvp function". So those
    kernels have a compiled form of their own (see ``leaky_relu_kernel``
    and ``clip_kernel``), from ops whose own autograd gives the same
    gradient."""

    def kernel(x):
        if not isinstance(x, _torch.Tensor):
            x = ops.convert_to_tensor(x)
        return _Kernel.apply(lambda x: forward(x, *params),
                             lambda x, g: backward(x, g, *params),
                             zeros_for_x, x)

    return kernel


def _clamp_min0(x):
    return ops.where(ops.less(x, zeros(x)), zeros(x), x)


def _clamp_0_6(x):
    x = _clamp_min0(x)
    return ops.where(ops.greater(x, full(x, 6)), full(x, 6), x)


#: The ReLU formula from elementary ops: ``x``, or ``0`` where ``x < 0``
#: (keeps -0.0 and NaN, as ATen's relu = clamp_min(x, 0)).
relu_forward_elementary = _clamp_min0


def relu_backward_elementary(x, y, g):
    """The ReLU gradient from elementary ops: ``0 if y <= 0 else g``."""
    return ops.where(ops.less_equal(y, zeros(y)), zeros(g), g)


def relu_kernel(x):
    """The formula above on ATen's own kernels: ``torch.relu`` computes
    ``clamp_min(x, 0)`` with the C++ gradient ``threshold_backward(g, y,
    0)``. tests/property/test_kernels.py checks both against the elementary
    ops, bit for bit on CPU; ATen's CUDA relu maps -0.0 to +0.0 (found on an
    H200), so there the sign of zero is not compared. Written as a
    ``torch.autograd.Function`` the layer ran eager fwd+bwd at 0.79-0.89x
    the built-in on an H200 (Python forward and backward); through keras.ops
    and ``custom_gradient``, 0.45x on CPU (benchmarks/RESULTS.md)."""
    if not isinstance(x, _torch.Tensor):
        x = ops.convert_to_tensor(x)
    return _torch.relu(x)


#: relu6 from elementary ops: ``min(max(x, 0), 6)`` as two selects (keeps
#: -0.0 and NaN, as ATen's CPU hardtanh).
relu6_forward_elementary = _clamp_0_6


def _aten_relu6(x):
    """The built-in's relu6: ``torch.nn.functional.relu6`` (ATen hardtanh,
    a clamp), the op keras's torch backend calls, with its own gradient,
    ``hardtanh_backward``."""
    return _torch.nn.functional.relu6(x)


def relu6_kernel(x):
    """``clamp(x, 0, 6)``, gradient ``g if 0 < x < 6 else 0``, on ATen's own
    kernels (``_aten_relu6``), as ``relu_kernel`` runs ``torch.relu``.

    Both halves had to be ATen's to be the built-in's function:
    - values: ATen's CUDA clamp maps -0.0 to +0.0 where the elementary
      formula (``relu6_forward_elementary``) keeps it (found on an H200,
      torch 2.11); on CPU the two are equal bit for bit
      (tests/property/test_kernels.py checks it).
    - gradient at NaN: ``hardtanh_backward`` passes ``g`` on CUDA and in
      the CPU kernel's scalar tail, but gives 0 in its vectorised body, so
      on CPU the answer depends on the NaN's position, the dtype and the
      vector width (float32: elements past the last multiple of 16 on
      AVX-512). Found by the property suite on an H200 and reproduced on
      CPU (torch 2.13): a hand-written select cannot follow that.
    Elsewhere the gradient is the select ``g if 0 < x < 6 else 0``, and
    its second derivative zeros, as derivatives.yaml declares for
    hardtanh_backward. A bool input is refused with ATen's exception type
    (its hardtanh has no bool kernel); integers keep their dtype."""
    if not isinstance(x, _torch.Tensor):
        x = ops.convert_to_tensor(x)
    if x.dtype == _torch.bool:
        raise RuntimeError(
            "relu6 (hardtanh) is not implemented for bool inputs, as in "
            "torch.nn.functional.relu6")
    return _aten_relu6(x)


def _times_slope(t, slope):
    dtype = t.dtype
    if str(dtype).split(".")[-1] in ("float16", "bfloat16"):
        wide = ops.multiply(ops.cast(t, "float32"), ops.cast(slope, "float32"))
        return ops.cast(wide, dtype)
    return ops.multiply(t, ops.cast(slope, dtype))


def _leaky_forward(x, slope):
    return ops.where(positive(x), x, _times_slope(x, slope))


def _leaky_backward(x, g, slope):
    return ops.where(positive(x), g, _times_slope(g, slope))


def leaky_relu_kernel(x, negative_slope):
    """``x if x > 0 else x * slope``, gradient ``g if x > 0 else g * slope``,
    products in ATen's opmath (float32 for 16-bit). Integer and bool inputs
    are refused with ATen's exception type: its leaky_relu has only
    floating kernels."""
    if not isinstance(x, _torch.Tensor):
        x = ops.convert_to_tensor(x)
    if not x.dtype.is_floating_point:
        raise NotImplementedError(
            f"leaky_relu is not implemented for {x.dtype} inputs, as in "
            "torch.nn.functional.leaky_relu")
    if _torch.compiler.is_compiling():
        # One product with a per-element factor, 1 where x > 0 else the
        # slope: the same values (x * 1 is x, -0.0 and NaN included), and
        # autograd's gradient g * factor is g or g * slope with g's sign
        # of zero (two selects summed would turn -0.0 into +0.0); the
        # factor has no derivative, so the second derivative is zeros.
        wide = _torch.float32 if x.dtype in (_torch.float16,
                                             _torch.bfloat16) else x.dtype
        factor = ops.where(positive(x), _torch.ones((), dtype=wide),
                           ops.cast(negative_slope, wide))
        return _times_slope(x, factor)
    return with_gradient(_leaky_forward, _leaky_backward,
                         params=(negative_slope,))(x)


def clip_forward_elementary(x, lo, hi):
    """clamp from elementary ops: ``lo`` where ``x < lo``, ``hi`` where
    ``x > hi``, else ``x`` (NaN and -0.0 kept, as ATen's CPU clamp)."""
    x = ops.where(ops.less(x, lo), ops.broadcast_to(lo, ops.shape(x)), x)
    return ops.where(ops.greater(x, hi), ops.broadcast_to(hi, ops.shape(x)), x)


def _aten_clip(x, lo, hi):
    """``keras.ops.clip`` on torch, as the built-in calls it: ``torch.clip``
    (ATen clamp) with tensor bounds, in float32 for float16 on CPU (Keras's
    workaround, mirrored so the values are the same ops' values)."""
    if x.device.type == "cpu" and x.dtype == _torch.float16:
        return _torch.clip(x.float(), min=lo, max=hi).to(_torch.float16)
    return _torch.clip(x, min=lo, max=hi)


def _clip_backward(x, g, lo, hi):
    inside = ops.logical_and(ops.greater_equal(x, lo), ops.less_equal(x, hi))
    return ops.where(inside, g, zeros(g))


def clip_kernel(x, min_value, max_value):
    """torch.clamp: NaN propagates, gradient ``g`` on ``[lo, hi]``, whose
    second derivative in ``x`` is ``None``, as clamp's. The bounds are cast
    to the input's dtype first, as the built-in's ReLU does."""
    if not isinstance(x, _torch.Tensor):
        x = ops.convert_to_tensor(x)
    if x.dtype == _torch.bool:  # keras.ops.clip on torch: bool -> int32
        x = x.to(_torch.int32)
    lo = ops.cast(min_value, x.dtype)
    hi = ops.cast(max_value, x.dtype)
    if _torch.compiler.is_compiling():
        # clamp's own gradient is the same select (see with_gradient).
        return _aten_clip(x, lo, hi)
    return with_gradient(_aten_clip, _clip_backward, zeros_for_x=False,
                         params=(lo, hi))(x)
