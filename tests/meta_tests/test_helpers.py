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


@settings(max_examples=100, derandomize=True)
@given(data=st.data(), dtype=st.sampled_from(DTYPES + ("int32", "uint8")),
       tolerance=st.sampled_from([None, Tolerance(rtol=1e-3, atol=1e-6, reason="a test tolerance")]),
       flush=st.booleans())
def test_compare_arrays_same_bits_shortcut_agrees_with_the_element_path(
        data, dtype, tolerance, flush):
    """``compare_arrays`` returns at once for arrays with the same bits
    (issue 14); the shortcut must give exactly the Comparison the
    element-wise path gives, and must not be taken when one element's bits
    differ (a NaN payload, the sign of a zero, one ULP)."""
    from customlayers.testing import numerics
    shape = cst.draw_shape(data, min_rank=0, max_rank=3, max_dim=8)
    if dtype in ("int32", "uint8"):
        a = np.asarray(data.draw(st.lists(
            st.integers(0, 100), min_size=int(np.prod(shape)),
            max_size=int(np.prod(shape))), label="ints"), dtype).reshape(shape)
    else:
        a = cst.draw_array(data, shape, dtype, nonfinite=True, label="a",
                           must_include=(0.0, -0.0))
    a = np.array(a)  # a rank-0 draw is a NumPy scalar
    b = a.copy()
    floats = dtype not in ("int32", "uint8")
    kind = data.draw(st.sampled_from(
        ["none", "sign of a zero", "NaN payload", "lowest bit", "any bit"]
        if floats else ["none", "lowest bit", "any bit"]),
        label="perturbation") if b.size else "none"
    width = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[
        b.dtype.itemsize]
    i = data.draw(st.integers(0, b.size - 1), label="perturbed index") \
        if b.size else 0
    bits_a, bits_b = a.view(width).reshape(-1), b.view(width).reshape(-1)
    if kind == "sign of a zero":  # -0.0 vs +0.0: equal values
        a.reshape(-1)[i] = 0.0
        bits_b[i] = bits_a[i] ^ (width(1) << width(8 * b.itemsize - 1))
    elif kind == "NaN payload":  # NaN on both sides, other bits
        a.reshape(-1)[i] = np.nan
        bits_b[i] = bits_a[i] ^ width(1)
    elif kind == "lowest bit":  # one ULP (or 1 for integers)
        bits_b[i] = bits_a[i] ^ width(1)
    elif kind == "any bit":
        bit = data.draw(st.integers(0, 8 * b.itemsize - 1),
                        label="flipped bit")
        bits_b[i] = bits_a[i] ^ (width(1) << width(bit))
    perturb = kind != "none"
    kw = dict(tolerance=tolerance, flush_subnormals=flush)
    fast = compare_arrays("x", a, b, **kw)
    shortcut = numerics._same_bits
    numerics._same_bits = lambda a, b: False  # the element-wise path
    try:
        slow = compare_arrays("x", a, b, **kw)
    finally:
        numerics._same_bits = shortcut
    # repr: a NaN worst value equals itself there
    assert repr(fast) == repr(slow), f"shortcut {fast} vs element-wise {slow}"
    if perturb:
        assert not numerics._same_bits(a, b), f"{kind}: same bits?"
