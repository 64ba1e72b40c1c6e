"""Meta-tests of the harness's numeric and Hypothesis helpers, in the
spirit of array-api-tests' ``meta_tests``: the ULP distance, the array
comparison and the strategies' bounds, neighbours and guaranteed values."""

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customlayers.testing import strategies as cst
from customlayers.testing.numerics import compare_arrays, ulp_distance
from customlayers.testing.tolerances import Tolerance

DTYPES = ("float16", "bfloat16", "float32", "float64")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", [0.0, 1.0, -6.0, 6.0, 1e-3])
def test_ulp_neighbours_are_one_ulp_away(dtype, value):
    lo, hi = cst.ulp_neighbours(value, dtype)
    dt = cst.np_dtype(dtype)
    v = np.asarray(value, dt)
    assert lo < float(v) < hi
    for n in (lo, hi):
        assert ulp_distance(np.asarray(n, dt), v) == 1, (dtype, value, n)


def test_first_bfloat16_above_six():
    assert cst.ulp_neighbours(6.0, "bfloat16")[1] == 6.03125


@pytest.mark.parametrize("dtype", DTYPES)
def test_ulp_distance_zeros_nans_and_order(dtype):
    dt = cst.np_dtype(dtype)
    a = np.array([0.0, -0.0, np.nan, np.nan, 1.0], dt)
    b = np.array([-0.0, 0.0, np.nan, 1.0, np.nan], dt)
    np.testing.assert_array_equal(ulp_distance(a, b),
                                  [0, 0, 0, np.inf, np.inf])
    tiny = ml_dtypes.finfo(dt).smallest_subnormal if dtype == "bfloat16" \
        else np.finfo(dt).smallest_subnormal
    # Across zero: -tiny .. +tiny is 2 steps.
    assert ulp_distance(np.asarray(-tiny, dt), np.asarray(tiny, dt)) == 2


def test_compare_arrays_sign_of_zero_only_when_bit_exact():
    a, b = np.array([-0.0]), np.array([0.0])
    assert not compare_arrays("x", a, b, tolerance=None).passed
    assert compare_arrays("x", a, b, tolerance=None,
                          signed_zeros=False).passed
    assert compare_arrays("x", a, b, tolerance=Tolerance(0, 0, "")).passed


def test_compare_arrays_tol_used_and_meaningful_relative_error():
    tol = Tolerance(rtol=1e-3, atol=1e-3, reason="")
    ref = np.array([1e-30, 100.0])
    got = np.array([5e-4, 100.05])
    c = compare_arrays("x", got, ref, tolerance=tol)
    assert c.passed and 0 < c.tol_used <= 1
    # The tiny reference element is inside atol: its huge relative error
    # and ULP distance are not reported; the 100.05 vs 100 one is.
    assert c.max_rel == pytest.approx(5e-4)
    bad = compare_arrays("x", np.array([1e-30, 101.0]), ref, tolerance=tol)
    assert not bad.passed and bad.tol_used > 1 and bad.n_bad == 1


def test_compare_arrays_nan_placement_and_relaxation():
    a, b = np.array([np.nan, 1.0]), np.array([0.0, 1.0])
    c = compare_arrays("x", a, b, tolerance=None)
    assert not c.passed and c.problem == "NaN/inf placement differs"
    assert compare_arrays("x", a, b, tolerance=None,
                          nan_placement=False).passed


def test_compare_arrays_dtype_and_shape_mismatch_fail():
    assert not compare_arrays("x", np.zeros(2, "float32"),
                              np.zeros(2, "float64"), tolerance=None).passed
    assert not compare_arrays("x", np.zeros(2), np.zeros(3),
                              tolerance=None).passed


@settings(max_examples=50, derandomize=True)
@given(data=st.data(), dtype=st.sampled_from(DTYPES),
       lo=st.floats(-50, 0), width=st.floats(0.5, 50))
def test_draw_array_stays_in_range_and_holds_guaranteed_values(
        data, dtype, lo, width):
    hi = lo + width
    guaranteed = tuple(v for v in (0.0, -0.0, lo, hi) if lo <= v <= hi)
    shape = cst.draw_shape(data, max_size=64)
    x = cst.draw_array(data, shape, dtype, value_range=(lo, hi),
                       must_include=guaranteed)
    finite = x.astype(np.float64)
    dt = cst.np_dtype(dtype)
    # Rounding to the dtype may step one ULP outside the float64 bounds.
    assert np.all(finite >= float(np.asarray(lo, dt)) - abs(lo) * 1e-2)
    assert np.all(finite <= float(np.asarray(hi, dt)) + abs(hi) * 1e-2)
    if x.size >= len(guaranteed):
        flat = x.reshape(-1).astype(np.float64)
        for v in guaranteed:
            if v == 0 and np.signbit(v):
                assert np.any((flat == 0) & np.signbit(flat)), "no -0.0"
            else:
                assert np.any(flat == float(np.asarray(v, dt))), v


@settings(max_examples=50, derandomize=True)
@given(data=st.data())
def test_draw_shape_bounds(data):
    s = cst.draw_shape(data, min_rank=2, max_rank=4, max_size=100,
                       last_dim=7)
    assert 2 <= len(s) <= 4 and s[-1] == 7
    assert all(d >= 1 for d in s)
