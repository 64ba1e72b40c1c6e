"""customlayers.ReLU vs keras.layers.ReLU where the generic properties do not
look (issue 12), forward pass: integer and bool inputs, and the sign of zero
in relu6's forward pass. The gradient details are in
test_relu_gradient_details.py; the shared helpers in relu_details.py.

Bit for bit unless a written allowance says otherwise; the layer under
test is ``relu_details.CUSTOM_RELU``, which the meta-tests replace with
planted bugs (relu_details.py says how the draws replay).
"""

from __future__ import annotations

import numpy as np
import pytest

from customlayers._keras import BACKEND, keras
from customlayers.testing import strategies as cst
from customlayers.testing.convert import to_numpy
from customlayers.testing.numerics import compare_arrays
from tests.property import relu_details
from tests.property.relu_details import (CONFIGS, DTYPE_PARAMS, MODE_PARAMS,
                                         TF, cfg_id, compare, pair,
                                         run_together, tensor)


# -- integer and bool inputs --------------------------------------------------

INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "bool")


def _forward(layer, x, mode):
    if TF:
        import tensorflow as tf
        f = layer if mode == "eager" else tf.function(
            layer.__call__, jit_compile=mode == "compiled")
        return f(tensor(x))
    if BACKEND == "jax":
        import jax
        f = layer if mode == "eager" else jax.jit(layer.__call__)
        return f(tensor(x))
    if mode == "compiled":
        from customlayers.testing.torch_compile import run_compiled
        return run_compiled(lambda x: layer(x), tensor(x))
    return layer(tensor(x))


def _outcome(layer, x, mode):
    try:
        y = _forward(layer, x, mode)
    except Exception as e:  # compared by type with the built-in's
        return type(e), None
    return None, to_numpy(y)


@pytest.mark.parametrize("mode", MODE_PARAMS)
@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=cfg_id)
def test_integer_and_bool_inputs_match_the_builtin(cfg, dtype, mode):
    """Integer and bool inputs are not autocast by the float32 policy: the
    output dtype and values (or the exception type, where the built-in
    refuses the dtype) must be the built-in's, on every path."""
    values = [-3, -1, 0, 1, 2, 7, 100] if dtype != "bool" else \
        [True, False, True]
    x = np.array(values).astype(dtype)
    custom = relu_details.CUSTOM_RELU(**cfg)
    builtin = keras.layers.ReLU(**cfg)
    err_c, y_c = _outcome(custom, x, mode)
    err_b, y_b = _outcome(builtin, x, mode)
    print(f"{cfg} {dtype} {mode}: built-in "
          f"{err_b.__name__ if err_b else (y_b.dtype, y_b.tolist())}, "
          f"custom {err_c.__name__ if err_c else (y_c.dtype, y_c.tolist())}")
    assert err_c == err_b, (f"exception: custom {err_c}, built-in {err_b}"
                            f" ({cfg}, {dtype}, {mode})")
    if err_b is None:
        assert y_c.dtype == y_b.dtype, (
            f"output dtype: custom {y_c.dtype}, built-in {y_b.dtype} "
            f"({cfg}, {dtype}, {mode})")
        compare(f"output {cfg} {dtype} {mode}", y_c, y_b)



# -- the sign of zero in relu6's forward pass ---------------------------------

_PATTERN = np.array([-0.0, 0.0, -1.5, 2.5, 6.0, 7.0, np.nan, np.inf, -np.inf,
                     3.0, -0.0, -0.0, 5.96875, -6.0, 1.0, -0.0], "float32")


@pytest.mark.parametrize("mode", MODE_PARAMS)
@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
@pytest.mark.parametrize("cfg", [{"max_value": 6},
                                 {"max_value": 6, "negative_slope": 0.25}],
                         ids=cfg_id)
def test_relu6_forward_keeps_the_sign_of_zero(cfg, dtype, mode):
    """Forward values bit for bit, the sign of zero included, for every
    length 1..64 (vectorised lanes start at 8 or 16 elements), each with
    ``-0.0`` at several positions, NaN and infinities. No subnormals: their
    flushing is thread-dependent on TensorFlow (cases.py), and not what
    this test is about."""
    print(f"backend {BACKEND}, {cfg}, {dtype}, {mode}, lengths 1..64, "
          f"pattern {_PATTERN.tolist()} (rolled by the length)")
    custom, builtin = pair(cfg, dtype)
    inputs = []
    for n in range(1, 65):
        x = np.resize(np.roll(_PATTERN, n), n).astype(cst.np_dtype(dtype))
        x[n // 2] = -0.0
        inputs.append(x)
    # One program for the 128 forward passes in graph and compiled mode
    # (relu_details.run_together: one trace, one XLA compile).
    results = run_together([(layer, (x,)) for layer in (custom, builtin)
                            for x in inputs], mode)
    failures = []
    for n, got, want in zip(range(1, 65), results[:64], results[64:]):
        # Under XLA, customlayers' relu6 forward is where(0<x<6, x, clamp)
        # so that its forward-mode derivative is the built-in's; XLA then
        # returns -0.0 for a lone -0.0 where the built-in's Clamp gives
        # +0.0 (customlayers/backend/tensorflow.py, _relu6_forward). Only
        # that sign, only under XLA on TensorFlow; values and NaN strictly.
        xla_lone_zero = TF and mode == "compiled" and n == 1
        out = compare_arrays(f"relu6 forward, length {n}", got, want,
                             tolerance=None, signed_zeros=not xla_lone_zero)
        if not out.passed:
            failures.append(out.describe())
    assert not failures, (f"{len(failures)} of 64 lengths differ; first:\n"
                          + failures[0])
