"""Meta-test: a gradient whose values are right but whose forward mode is
wrong, which only the forward-mode property catches.

``SignMagnitudeGradientReLU``'s relu6 gradient is ``sign(g) * |g|`` where
the built-in's is ``g``: the same numbers for every upstream gradient, so
outputs, input gradients and reverse-over-reverse second derivatives (the
gradient is linear in ``g`` almost everywhere) match the built-in. Forward
mode through a hand-written gradient differentiates it with respect to the
upstream gradient at ``g = 0`` (TensorFlow's ``ForwardAccumulator`` does),
where ``sign(g) * |g|`` has derivative 0: the JVP comes out 0 where the
built-in's is ``v`` inside (0, 6). A NablaFuzz-style bug: reverse mode
right, forward mode wrong. On torch, ``torch.func.jvp`` refuses the
``custom_gradient`` outright (the property reports the forward mode that
raised); on JAX ``jax.jvp`` does (skipped: nothing silent to catch).
"""

import dataclasses

import numpy as np
import pytest

from customlayers import ReLU
from customlayers._keras import BACKEND, ops
from customlayers.testing import properties as props
from customlayers.testing.backends import forward_backward
from customlayers.testing.battery import shrink_budget
from customlayers.testing.cases import CASES
from tests.meta_tests.test_planted_bugs import expect_failure

_RELU6 = {"max_value": 6.0, "negative_slope": 0.0, "threshold": 0.0}


class SignMagnitudeGradientReLU(ReLU):
    """relu6 whose gradient is ``where(0 < x < 6, sign(g) * |g|, 0)``."""

    def call(self, inputs):
        if self.max_value == 6 and not self.threshold and \
                not self.negative_slope:
            x = ops.convert_to_tensor(inputs)

            @ops.custom_gradient
            def kernel(x):
                def grad(*args, upstream=None):
                    g = upstream if upstream is not None else args[0]
                    inside = ops.logical_and(
                        ops.greater(x, ops.zeros_like(x)),
                        ops.less(x, ops.cast(6.0, x.dtype)))
                    return ops.where(inside, ops.sign(g) * ops.abs(g),
                                     ops.zeros_like(g))
                y = ops.minimum(ops.maximum(x, ops.zeros_like(x)),
                                ops.cast(6.0, x.dtype))
                return y, grad

            return kernel(x)
        return super().call(inputs)


_CASE = dataclasses.replace(
    CASES["ReLU"], name="ReLU[SignMagnitudeGradientReLU]",
    custom=SignMagnitudeGradientReLU, init_kwargs=dict(_RELU6))

_JAX = pytest.mark.skipif(
    BACKEND == "jax",
    reason="jax.jvp refuses a custom_vjp function outright (TypeError: "
           "can't apply forward-mode autodiff), so on JAX this bug is loud, "
           "not silent; the planted bug is about a silent wrong JVP")


@_JAX
def test_first_order_values_match_the_builtin():
    """The planted gradient has the right values (so only forward mode can
    tell): on a fixed input and upstream gradient, bit for bit."""
    import keras
    x = np.array([[-1.0, 0.5, 3.0, 5.5, 7.0, 2.0]], np.float32)
    g = np.array([[0.25, -1.5, 2.0, -0.75, 1.0, -3.0]], np.float32)
    custom, builtin = SignMagnitudeGradientReLU(**_RELU6), \
        keras.layers.ReLU(**_RELU6)
    a, b = forward_backward(custom, x, g), forward_backward(builtin, x, g)
    np.testing.assert_array_equal(a.output, b.output)
    np.testing.assert_array_equal(a.input_grad, b.input_grad)


@_JAX
def test_forward_mode_property_catches_a_wrong_jvp():
    prop = props.forward_mode_property(_CASE, "float32", "eager")
    with shrink_budget(10):
        caught = expect_failure(prop)
    assert "jvp" in str(caught), str(caught)[:2000]
    if BACKEND == "torch":
        # torch.func.jvp cannot go through keras.ops.custom_gradient on
        # torch (an autograd.Function without setup_context/jvp): the bug
        # is caught loudly, as a forward mode that raises where the
        # built-in's works.
        assert "forward mode raised" in str(caught), str(caught)[:2000]
    print(f"planted sign*|g| gradient caught:\n{caught}")
