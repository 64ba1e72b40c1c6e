"""Planted bugs that only one of the newer derivative checks catches
(issue 12, "deeper equivalence"). Each is customlayers.ReLU whose pure
leaky path (``negative_slope`` only) runs the real kernel of the backend
with one piece of one hand-written rule wrong. Values, first-order
gradients and reverse-over-reverse second derivatives stay the
built-in's; what differs is which transform runs the wrong piece.

torch (:mod:`customlayers.backend.torch`: ``_Kernel``, whose gradient is
the differentiable ``_Backward``, both ``autograd.Function``\\ s):

- ``torch.func.jvp`` of the layer (check ``jvp``) runs ``_Kernel.jvp``;
- forward over reverse (``hvp_fwd``: ``torch.func.jvp`` of
  ``torch.func.grad``) runs ``_Backward.jvp``, unbatched;
- ``torch.func.hessian`` (``jacfwd(jacrev)``, ``hessian[input]``) batches
  first: it runs ``_Backward.vmap``, then whatever that rule calls;
- ``torch.autograd.functional.jacobian(vectorize=True)``
  (``jacobian[input]``) batches the backward pass with torch's legacy vmap,
  which runs ``_Backward.forward`` on batched tensors, never a vmap rule.

TensorFlow (:mod:`customlayers.backend.tensorflow`: ``with_gradient``, a
``tf.custom_gradient`` in ``tf.function``, the gradient recorded on the
tape directly when eager):

- inside ``tf.function`` ``ForwardAccumulator`` (``jvp``) differentiates a
  custom gradient's *forward ops*, not its gradient (eagerly it transposes
  the recorded gradient, at an upstream of ones);
- ``tape.jacobian`` with pfor (``jacobian[input]``) traces the first-order
  gradient even in eager mode, where every other eager check runs it
  eagerly (the eager Hessian's pfor only traces the gradient's gradient).

ReLU's second derivative is zero everywhere, so a wrong second-order rule
shows only where it brings in a dependence on ``x``.
"""

import numpy as np

from customlayers import ReLU
from customlayers._keras import BACKEND, ops
from customlayers.backend.common import positive

#: The configuration every bug here plants itself on.
LEAKY = {"max_value": None, "negative_slope": 0.5, "threshold": 0.0}

#: ``{bug: kernel(x, slope)}`` for the running backend.
_KERNELS = {}


def _leaky_call(layer, inputs, bug):
    """The planted leaky kernel on the pure leaky configuration with a
    floating input, the real layer's ``call`` elsewhere."""
    x = ops.convert_to_tensor(inputs)
    if layer.negative_slope and layer.max_value is None and \
            not layer.threshold and "float" in str(x.dtype):
        return _KERNELS[bug](x, layer.negative_slope)
    return ReLU.call(layer, inputs)


if BACKEND == "torch":
    import torch

    from customlayers.backend import torch as tb

    def _leaky_backward(slope):
        return lambda x, g: ops.where(positive(x), g,
                                      tb._times_slope(g, slope))

    def _batched(info, in_dims, x, g):
        """``_Backward.vmap``'s first step: both batch dimensions first."""
        return tuple(tb._batch_first(t, d, info.batch_size)
                     for t, d in zip((x, g), in_dims[2:]))

    def _kernel_via(backward_function):
        """The real ``_Kernel`` whose gradient is ``backward_function``
        (a ``_Backward`` variant) instead of ``_Backward``; its ``jvp``
        stays the real one."""

        class Kernel(tb._Kernel):
            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return None, None, None, backward_function.apply(
                    ctx.backward, ctx.zeros_for_x, x, g)

            @staticmethod
            def vmap(info, in_dims, forward, backward, zeros_for_x, x):
                return Kernel.apply(forward, backward, zeros_for_x,
                                    x), in_dims[3]

        return Kernel

    def _leaky_with(kernel, backward=_leaky_backward):
        """``leaky_relu_kernel``'s formulas through the ``_Kernel`` variant
        ``kernel``, the gradient formula ``backward(slope)``."""
        return lambda x, slope: kernel.apply(
            lambda x: ops.where(positive(x), x, tb._times_slope(x, slope)),
            backward(slope), True, x)

    class _SwappedTangentBackward(tb._Backward):
        """``jvp`` takes the tangent of ``x`` where the tangent of ``g``
        belongs. Its vmap rule applies the gradient formula to the batched
        tensors directly (right: torch differentiates the formula itself),
        so a transform that batches first never calls this ``jvp``."""

        @staticmethod
        def jvp(ctx, _backward_t, _zeros_t, x_t, g_t):
            (x,) = ctx.saved_tensors
            if x_t is None:
                return torch.zeros_like(x)
            return tb._Backward.apply(ctx.backward, ctx.zeros_for_x, x, x_t)

        @staticmethod
        def vmap(info, in_dims, backward, zeros_for_x, x, g):
            return backward(*_batched(info, in_dims, x, g)), 0

    class _SwappedVmapBackward(tb._Backward):
        """The vmap rule hands the batched ``x`` and ``g`` over in the
        wrong order: ``where(g > 0, x, x * slope)``."""

        @staticmethod
        def vmap(info, in_dims, backward, zeros_for_x, x, g):
            x, g = _batched(info, in_dims, x, g)
            return tb._Backward.apply(backward, zeros_for_x, g, x), 0

    class _IdentityJvpKernel(tb._Kernel):
        """``jvp`` returns the tangent unchanged, as if the slope below
        zero were 1."""

        @staticmethod
        def jvp(ctx, _forward_t, _backward_t, _zeros_t, x_t):
            (x,) = ctx.saved_tensors
            return torch.zeros_like(x) if x_t is None else x_t

    def _flat_backward(slope):
        """The gradient formula on flat views (``flatten``, then
        ``view_as``): torch's legacy vmap has no batching rule for
        ``flatten`` and raises; torch.func's vmap and every unbatched
        transform run it."""
        def backward(x, g):
            return _leaky_backward(slope)(x.flatten(), g.flatten()).view_as(g)
        return backward

    _KERNELS.update(
        gradient_tangent=_leaky_with(_kernel_via(_SwappedTangentBackward)),
        batched_gradient=_leaky_with(_kernel_via(_SwappedVmapBackward)),
        output_tangent=_leaky_with(_IdentityJvpKernel),
        unbatchable_gradient=_leaky_with(tb._Kernel, _flat_backward))

if BACKEND == "tensorflow":
    from customlayers.backend import tensorflow as tfb

    def _tie_at_zero_leaky(x, slope):
        """``leaky_relu_kernel`` with the forward formula's select written
        ``x >= 0``: the same values (0 either way at x == 0), the same
        hand-written gradient, but inside ``tf.function`` TensorFlow's
        forward mode differentiates a custom gradient's forward ops, not
        its gradient: J v = v at x == 0 where the built-in's is slope * v.
        (Eagerly the kernel records its gradient on the tape, and forward
        mode transposes that: right.)"""
        slope = ops.cast(slope, x.dtype)
        return tfb.with_gradient(
            lambda x: ops.where(ops.greater_equal(x, ops.zeros_like(x)), x,
                                ops.multiply(x, slope)),
            lambda x, g: ops.where(positive(x), g, ops.multiply(g, slope)),
        )(x)

    #: What ``_tallied_leaky``'s gradient counts.
    NONFINITE_UPSTREAM = []

    def _tallied_leaky(x, slope):
        """``leaky_relu_kernel`` whose eager gradient first counts the
        non-finite upstream values in NumPy (a debugging aid): fine under
        an eager ``GradientTape`` (and forward mode, which runs it eagerly),
        but ``tape.jacobian``'s pfor traces the gradient, where a symbolic
        tensor has no NumPy value. The gradient's own gradient (second
        order) is ``_differentiable``'s, which counts nothing."""
        slope = ops.cast(slope, x.dtype)

        def forward(x):
            return ops.where(positive(x), x, ops.multiply(x, slope))

        backward = tfb._differentiable(
            lambda x, g: ops.where(positive(x), g, ops.multiply(g, slope)))

        def tallied(x, g):
            NONFINITE_UPSTREAM.append(int(np.sum(~np.isfinite(g))))
            return backward(x, g)

        return tfb._eager_fast_path(tfb.custom_gradient(forward, backward),
                                    forward, tallied)(x)

    _KERNELS.update(output_tangent=_tie_at_zero_leaky,
                    unbatchable_gradient=_tallied_leaky)


class WrongGradientTangentReLU(ReLU):
    """torch: the forward-mode derivative of the *gradient*
    (``_Backward.jvp``) takes ``x``'s tangent for ``g``'s, so forward over
    reverse (``hvp_fwd``) gives ``where(x > 0, v, slope * v)`` where the
    Hessian is zero; reverse over reverse runs ``backward``, the layer's
    JVP ``_Kernel.jvp``, the Hessian API the vmap rule."""

    def call(self, inputs):
        return _leaky_call(self, inputs, "gradient_tangent")


class WrongOutputTangentReLU(ReLU):
    """The forward-mode derivative of the *layer* is wrong; everything
    else is right (the second-order transforms take the tangent of the
    gradient, not of the output). torch: ``_Kernel.jvp`` returns the
    tangent unchanged (``J v = v``). TensorFlow, in ``tf.function``: the
    forward formula selects ``x >= 0`` (same values), so ``J v = v`` at
    ``x == 0``, where the built-in's is ``slope * v``."""

    def call(self, inputs):
        return _leaky_call(self, inputs, "output_tangent")


class WrongBatchedGradientReLU(ReLU):
    """torch: the gradient's vmap rule (``_Backward.vmap``) swaps ``x`` and
    ``g``. Only ``torch.func.hessian`` (``hessian[input]``) runs a vmap
    rule; the legacy vmap of ``jacobian(vectorize=True)`` does not."""

    def call(self, inputs):
        return _leaky_call(self, inputs, "batched_gradient")


class UnbatchableGradientReLU(ReLU):
    """The vectorised Jacobian (``jacobian[input]``) raises where the
    built-in's works; every other check passes. torch: the gradient formula
    works on flattened views, which the legacy vmap of
    ``torch.autograd.functional.jacobian(..., vectorize=True)`` cannot
    batch. TensorFlow, eager: the gradient tallies its upstream in NumPy,
    which pfor's trace cannot."""

    def call(self, inputs):
        return _leaky_call(self, inputs, "unbatchable_gradient")
