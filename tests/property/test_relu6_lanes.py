"""relu6's gradient at NaN and infinities, for every length 1..64.

ATen's CPU ``hardtanh_backward`` (the built-in relu6's gradient on torch)
gives ``0`` at a NaN input in its vectorised body but passes ``g`` in its
scalar tail, so the answer depends on the NaN's position, the dtype and the
vector width; on CUDA it passes ``g`` everywhere (found by the property
suite on an H200, reproduced on CPU with torch 2.13). A hand-written select
had ``0`` everywhere, and no derandomized ``ci`` example happened to put a
NaN into a relu6 input, so this test does it on purpose: every length
1..64 (vectorised lanes start at 4, 8 or 16 elements), NaN and infinities
at rolled positions, in every dtype and mode (graph and compiled: the
lengths around each lane boundary), input gradients compared bit for bit
with the built-in's. In graph and compiled mode the gradients of every
length and both layers are one traced program, compiled once
(``relu_details.run_together``; XLA's compile time grows with the ops a
program holds, so all 64 lengths there took 4x the boundary lengths'). The upstream gradient is positive, so
TensorFlow's ``g * mask`` and a select agree on the sign of zero.
"""

import numpy as np
import pytest

from customlayers._keras import BACKEND
from customlayers.testing import strategies as cst
from tests.property.relu_details import (DTYPE_PARAMS, MODE_PARAMS, TF,
                                        cfg_id, compare, pair, run_together,
                                        second_order, second_order_calls,
                                        tf_flushes)

#: Lane boundaries of 4-, 8-, 16- and 32-wide vectors, both sides.
_BOUNDARY_LENGTHS = (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64)


def _lengths(mode):
    """Every length 1..64 in eager mode; in graph and compiled mode the
    lengths on either side of each lane boundary."""
    return range(1, 65) if mode == "eager" else _BOUNDARY_LENGTHS


_PATTERN = np.array([np.nan, 0.0, -1.5, 2.5, 6.0, 7.0, np.nan, np.inf,
                     -np.inf, 3.0, -0.0, np.nan, 5.96875, -6.0, 1.0, np.nan],
                    "float32")


@pytest.mark.parametrize("mode", MODE_PARAMS)
@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
@pytest.mark.parametrize("cfg", [{"max_value": 6},
                                 {"max_value": 6, "negative_slope": 0.25},
                                 {"max_value": 2.5}],
                         ids=cfg_id)
def test_relu6_gradient_at_nonfinite_inputs_matches_for_every_length(
        cfg, dtype, mode):
    lengths = _lengths(mode)
    print(f"{cfg}, {dtype}, {mode}, lengths {list(lengths)}, pattern "
          f"{_PATTERN.tolist()} (rolled by the length)")
    custom, builtin = pair(cfg, dtype)
    np_dtype = cst.np_dtype(dtype)
    inputs = []
    for n in lengths:
        x = np.resize(np.roll(_PATTERN, n), n).astype(np_dtype)
        x[n - 1] = np.nan  # always one in the last lane (a scalar tail)
        g = (0.5 + (np.arange(n) % 7) / 8).astype(np_dtype)
        inputs.append((x, g, np.ones_like(g)))
    if TF or BACKEND == "jax" or mode == "compiled":
        results = run_together(
            [second_order_calls(layer, *xgv) for layer in (custom, builtin)
             for xgv in inputs], mode)
        got, want = results[:len(inputs)], results[len(inputs):]
    else:
        got = [second_order(custom, *xgv, mode) for xgv in inputs]
        want = [second_order(builtin, *xgv, mode) for xgv in inputs]
    failures = []
    for n, a, b in zip(lengths, got, want):
        try:
            compare(f"relu6 input gradient, length {n}", a[0], b[0],
                     flush_subnormals=tf_flushes(mode))
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, (f"{len(failures)} of {len(lengths)} lengths differ "
                          f"(TF: {TF}); "
                          f"first:\n{failures[0]}")
