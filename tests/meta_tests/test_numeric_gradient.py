"""Meta-tests of the float64 numeric-gradient property
(``customlayers/testing/properties/gradients.py``), which checks the
analytic gradient against central differences without the reference:

- it catches a gradient that is wrong by a relative 1e-3 (a term the
  analytic gradient misses), on a plain Dense and on the cancelling example
  below;
- its measured roundoff allowance (the central differences' spread over
  steps h/2, h, 2h) passes an exact gradient whose function cancels large
  intermediate terms: LayerNormalization over a one-element axis at inputs
  ~100, where each output is ``x * inv - mean * inv + beta`` with both
  products ~3e3. The thorough profile found it failing with the
  output-based allowance alone (seed 1: 5e-7 off at a derivative of 0.11).
"""

import dataclasses

import numpy as np
import pytest

import customlayers
from customlayers._keras import ops
from customlayers.testing.cases import DENSE
from customlayers.testing.cases_normalization import LAYER_NORMALIZATION
from customlayers.testing.properties import gradients


class HiddenTermDense(customlayers.Dense):
    """``Dense(x) * 1.001`` whose gradient is Dense's: the extra 1e-3 goes
    through ``stop_gradient``, so the analytic derivative misses it."""

    def call(self, inputs, training=None):
        y = super().call(inputs)
        return y + 1e-3 * ops.stop_gradient(y)


if LAYER_NORMALIZATION is not None:
    class HiddenTermLN(customlayers.LayerNormalization):
        """The same hidden 1e-3 term on LayerNormalization."""

        def call(self, inputs):
            y = super().call(inputs)
            return y + 1e-3 * ops.stop_gradient(y)


def _cancelling_input(seed):
    """(2, 5, 1) at scale 100 with a -0.0 and a 0.0: normalized over the
    last (one-element) axis, every output is beta after cancellation."""
    x = np.random.default_rng(seed).standard_normal((2, 5, 1)) * 100.0
    x.flat[0], x.flat[1] = 0.0, -0.0
    return x


_LN_KWARGS = {"axis": -1, "center": True, "scale": True, "epsilon": 1e-3}


def _needs_float64(case):
    """Skip, with the property's own reason, where it is skipped (JAX
    without x64, torch's float32 matmul: no real float64 here)."""
    reason = gradients.numeric_gradient_unavailable(case)
    if reason:
        pytest.skip(f"the numeric-gradient property does not run here: "
                    f"{reason}")


def test_catches_a_hidden_term_in_dense():
    _needs_float64(DENSE)
    case = dataclasses.replace(DENSE, custom=HiddenTermDense)
    x = np.random.default_rng(0).standard_normal((4, 5))
    with pytest.raises(AssertionError, match="numeric gradient"):
        gradients.check_numeric_gradient(case, {"units": 3}, x, seed=0)


def test_passes_the_exact_dense():
    _needs_float64(DENSE)
    x = np.random.default_rng(0).standard_normal((4, 5))
    gradients.check_numeric_gradient(DENSE, {"units": 3}, x, seed=0)


@pytest.mark.skipif(LAYER_NORMALIZATION is None,
                    reason="customlayers.LayerNormalization needs Keras 3")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_passes_a_cancelling_layer_normalization(seed):
    _needs_float64(LAYER_NORMALIZATION)
    gradients.check_numeric_gradient(
        LAYER_NORMALIZATION, _LN_KWARGS, _cancelling_input(seed), seed=113)


@pytest.mark.skipif(LAYER_NORMALIZATION is None,
                    reason="customlayers.LayerNormalization needs Keras 3")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_spread_allowance_does_not_hide_a_hidden_term(seed):
    _needs_float64(LAYER_NORMALIZATION)
    case = dataclasses.replace(LAYER_NORMALIZATION, custom=HiddenTermLN)
    with pytest.raises(AssertionError, match="numeric gradient"):
        gradients.check_numeric_gradient(
            case, _LN_KWARGS, _cancelling_input(seed), seed=113)
