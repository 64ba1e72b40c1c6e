"""Meta-test: the second-order property's ``hessian[input]`` (the
backend's Hessian API: ``torch.func.hessian`` here) catches a layer whose
hand-written gradient cannot go through it.

``OldStyleFunctionReLU`` is customlayers.ReLU as it was before this check
existed: its leaky path runs a ``torch.autograd.Function`` written in the
old style (``forward(ctx, ...)``, no ``setup_context``, no ``jvp``). Its
values, gradients and reverse-over-reverse Hessian-vector products are the
built-in's; ``torch.func.hessian`` of it raises where the built-in's works.
"""

import dataclasses

import pytest

from customlayers import ReLU
from customlayers._keras import BACKEND, ops
from customlayers.testing import properties as props
from customlayers.testing.battery import shrink_budget
from customlayers.testing.cases import CASES
from tests.meta_tests.test_planted_bugs import expect_failure

pytestmark = pytest.mark.skipif(
    BACKEND != "torch",
    reason="the planted bug is a torch.autograd.Function without "
           "setup_context; TensorFlow and JAX have no such object (their "
           "Hessian APIs are checked by the same property on the pairs)")

_LEAKY = {"max_value": None, "negative_slope": 0.5, "threshold": 0.0}


def _old_style_leaky(x, slope):
    import torch

    class Leaky(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.where(x > 0, x, x * slope)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return torch.where(x > 0, g, g * slope)

    return Leaky.apply(x)


class OldStyleFunctionReLU(ReLU):
    def call(self, inputs):
        x = ops.convert_to_tensor(inputs)
        return _old_style_leaky(x, ops.cast(self.negative_slope, x.dtype))


_CASE = dataclasses.replace(
    CASES["ReLU"], name="ReLU[OldStyleFunctionReLU]",
    custom=OldStyleFunctionReLU, init_kwargs=dict(_LEAKY), exact=False)


def test_hessian_check_catches_an_autograd_function_without_setup_context():
    prop = props.second_order_property(_CASE, "float32", "eager")
    with shrink_budget(10):
        text = str(expect_failure(prop))
    assert "hessian[input]" in text and "setup_context" in text, text[:2000]
    print(f"planted old-style autograd.Function caught:\n{text[:1500]}")
