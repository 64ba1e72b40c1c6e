"""The ReLU kernels on JAX.

Role: what ``keras.layers.ReLU`` runs on JAX, rebuilt. jax.nn.relu =
``jnp.maximum(x, 0)`` with the custom JVP ``select(x > 0, g, 0)``;
jax.nn.relu6 = ``jnp.minimum(jnp.maximum(x, 0), 6)`` with
``select(0 < x < 6, g, 0)``; jax.nn.leaky_relu = ``jnp.where(x >= 0, x,
slope * x)`` with *no* custom gradient (so ``g`` at x == 0, and the transpose
adds ``select + slope * select``); jnp.clip(x, lo, hi) = ``jnp.minimum(hi,
jnp.maximum(lo, x))``, whose gradient splits ties (0.5 at x == hi). Where
JAX differentiates the formula itself, so do we: same primitives, same
order. JAX has no fused ReLU kernels, so ``relu_kernel`` is the elementary
formula itself, jitted.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from customlayers._keras import ops
from customlayers.backend.common import (inside_0_6,
                                         max0, min6,
                                         relu_backward_elementary,
                                         relu_forward_elementary,
                                         select_backward, threshold_kernel,
                                         zeros)

__all__ = ["clip_kernel", "leaky_relu_kernel", "relu6_kernel", "relu_kernel",
           "relu_backward_elementary", "relu_forward_elementary",
           "threshold_kernel"]


def with_gradient(forward, backward):
    """``forward(x)`` whose gradient is ``backward(x, upstream)``, jitted.

    ``jax.custom_gradient`` traces its function to a jaxpr on every eager
    call (about 0.5 ms: eager ReLU ran at 0.47x the built-in). jax.nn.relu is
    ``custom_jvp(jit(...))`` for the same reason: jit caches the trace per
    shape and dtype (so, like jax.nn.relu, each new input shape compiles once
    in eager use). Under an outer jit the inner one is inlined; the property
    suite checks the values and gradients are unchanged. JAX differentiates
    ``backward`` itself, so second derivatives come out as the built-in's
    (zeros: ``x`` reaches the gradient only through comparisons;
    tests/property/test_relu_gradient_details.py).

    The rule is given as a JVP (``jax.custom_jvp``, as jax.nn.relu is), not
    a VJP: every kernel here is elementwise, so its Jacobian is diagonal and
    the JVP of a tangent ``t`` is ``backward(x, t)``; JAX transposes that
    (linear in ``t``) into the same VJP, and forward mode (``jax.jvp``),
    which a ``custom_vjp`` refuses, works as for the built-in."""
    @jax.custom_jvp
    def kernel(x):
        return forward(x)

    @kernel.defjvp
    def _jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return forward(x), backward(x, t)

    return jax.jit(kernel)


def _promoted(x, python_scalar):
    """``x`` in the dtype jax.nn's formula gives it: ``jnp.maximum(x, 0)``
    and ``negative_slope * x`` promote with a weakly typed Python scalar
    (bool with 0 gives int32; any integer with 6.0 or a slope gives the
    default float). Floats are returned as they are."""
    if jnp.issubdtype(x.dtype, jnp.floating):
        return x
    x = jnp.asarray(x)
    return x.astype(jnp.result_type(x, python_scalar))


#: The elementary formula with its hand-written gradient, jitted (see
#: ``with_gradient``).
_relu = with_gradient(
    relu_forward_elementary,
    lambda x, g: relu_backward_elementary(x, None, g))


def relu_kernel(x):
    """``maximum(x, 0)``, gradient ``g if x > 0 else 0``."""
    return _relu(_promoted(x, 0))


_relu6 = with_gradient(lambda x: min6(max0(x)), select_backward(inside_0_6))


def relu6_kernel(x):
    """``minimum(maximum(x, 0), 6)``, gradient ``g`` inside (0, 6);
    integer and bool inputs in the default float, as jax.nn.relu6's
    ``6.`` makes them."""
    return _relu6(_promoted(x, 6.0))


# jax.nn.leaky_relu and jnp.clip are jitted functions (``@jit``), so even
# in eager use their gradients are XLA's compiled transposes, and XLA folds
# leaky_relu's ``select(c, g, 0) + slope * select(c, 0, g)`` into one
# select: ``-0.0`` where ``slope * g`` underflows from a negative ``g``.
# Op by op, the sum ``+0.0 + -0.0`` gives ``+0.0`` (found by the JAX env:
# float16, g = -6e-8, slope 0.1). So these two kernels are jitted too; the
# slope and the bounds are passed in the input's dtype (one compile per
# shape and dtype, not per value), as the built-ins' weakly typed Python
# scalars are converted.
@jax.jit
def _leaky_relu(x, slope):
    return ops.where(ops.greater_equal(x, zeros(x)), x,
                     ops.multiply(slope, x))


@jax.jit
def _clip(x, lo, hi):
    return ops.minimum(hi, ops.maximum(lo, x))


def leaky_relu_kernel(x, negative_slope):
    """``where(x >= 0, x, slope * x)``, jitted and differentiated by JAX,
    as jax.nn.leaky_relu; integer and bool inputs in the default float, as
    ``slope * x`` makes them."""
    x = _promoted(x, float(negative_slope))
    return _leaky_relu(x, ops.cast(negative_slope, x.dtype))


def clip_kernel(x, min_value, max_value):
    """``minimum(hi, maximum(lo, x))``, jitted and differentiated by JAX,
    as jnp.clip."""
    return _clip(x, ops.cast(min_value, x.dtype),
                 ops.cast(max_value, x.dtype))
