"""Element-wise comparison of two arrays, with errors measured in ULP.

Everything here works on NumPy arrays (``bfloat16`` through ``ml_dtypes``),
so it does not depend on the Keras backend.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from customlayers.testing.tolerances import Tolerance

_INT_FOR_WIDTH = {2: np.int16, 4: np.int32, 8: np.int64}


def dtype_name(array) -> str:
    """``'float32'``, ``'bfloat16'``, ... for a NumPy array or dtype."""
    return np.dtype(getattr(array, "dtype", array)).name


def _ordered_ints(x: np.ndarray) -> np.ndarray:
    """Map floats to integers whose order and spacing follow the floats, so
    that subtracting two of them counts the representable numbers between.
    ``+0.0`` and ``-0.0`` both map to 0."""
    itype = _INT_FOR_WIDTH[x.dtype.itemsize]
    bits = x.view(itype).astype(np.int64)
    sign_min = int(np.iinfo(itype).min)
    return np.where(bits < 0, sign_min - bits, bits)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Number of representable values between ``a`` and ``b`` (same dtype),
    as float64; 0 for equal values (``-0.0 == +0.0``), ``inf`` where exactly
    one of the two is NaN, 0 where both are NaN."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.dtype != b.dtype:
        raise TypeError(f"ulp_distance needs one dtype; got {a.dtype} and "
                        f"{b.dtype}")
    if not _is_float(a.dtype):
        return np.where(a == b, 0.0, np.inf)
    d = np.abs(_ordered_ints(a) - _ordered_ints(b)).astype(np.float64)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    d = np.where(nan_a & nan_b, 0.0, d)
    return np.where(nan_a ^ nan_b, np.inf, d)


@dataclasses.dataclass
class Comparison:
    """The outcome of comparing one array (``check``) of custom vs reference.

    ``max_abs``, ``max_rel`` and ``max_ulp`` are over elements where both
    values are finite; NaN/inf placement is checked exactly. ``bit_exact`` is
    True when every element has the same bits (up to NaN payloads).
    """

    check: str
    shape: tuple
    dtype: str
    passed: bool
    bit_exact: bool
    max_abs: float
    max_rel: float
    max_ulp: float
    n_bad: int
    n_total: int
    worst_index: tuple | None = None
    worst_custom: float | None = None
    worst_reference: float | None = None
    problem: str = ""
    #: ``False`` for checks of facts, not numbers (dtype names, counts):
    #: reports show ``n/a`` for their errors.
    numeric: bool = True
    #: The largest ``|a - b| / (atol + rtol * |b|)`` over finite elements
    #: (``<= 1`` when within tolerance); 0 when bit-exact, ``inf`` for a
    #: difference under a bit-exact comparison.
    tol_used: float = 0.0
    #: Labels of the known differences this comparison needed to pass.
    expected: tuple = ()

    def describe(self) -> str:
        """One paragraph that says what failed, where, and by how much."""
        lines = [f"check {self.check!r}: {self.problem}"]
        if not self.numeric:
            return lines[0]
        if self.worst_index is not None:
            lines.append(
                f"  worst element at index {self.worst_index}: "
                f"custom={self.worst_custom!r} "
                f"reference={self.worst_reference!r}")
        if self.max_abs > 0 and self.max_rel == 0:
            # Under a tolerance, relative error and ULP are counted only
            # where rtol * |reference| dominates atol (see compare()).
            rel = "rel err and ULP distance n/a (atol's range)"
        else:
            rel = (f"rel err={self.max_rel:.6g} "
                   f"ULP distance={self.max_ulp:.6g}")
        lines.append(
            f"  abs err={self.max_abs:.6g} {rel}; {self.n_bad} of "
            f"{self.n_total} elements differ")
        return "\n".join(lines)


def _as_float(v) -> float:
    return float(np.asarray(v).astype(np.float64))


def _is_float(dtype) -> bool:
    return dtype.kind == "f" or dtype.name == "bfloat16"


def _flush(x: np.ndarray) -> np.ndarray:
    """Subnormals to zero (keeping the sign), as a flush-to-zero CPU does."""
    info = np.finfo(x.dtype) if x.dtype.name != "bfloat16" else None
    tiny = float(info.tiny) if info is not None else 2.0 ** -126
    small = np.abs(x.astype(np.float64)) < tiny
    return np.where(small, np.copysign(np.zeros_like(x), x), x)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` (same shape and dtype) hold the same bits in
    every element (NaN payloads included)."""
    width = a.dtype.itemsize
    if a.dtype.kind in "fV" or a.dtype.name == "bfloat16":
        if width not in _INT_FOR_WIDTH:
            return False
        view = _INT_FOR_WIDTH[width]
        return bool(np.array_equal(np.ascontiguousarray(a).view(view),
                                   np.ascontiguousarray(b).view(view)))
    if a.dtype.kind in "iub":
        return bool(np.array_equal(a, b))
    return False


def compare_arrays(check: str, custom, reference, *,
                   tolerance: Tolerance | None,
                   signed_zeros: bool = True,
                   flush_subnormals: bool = False,
                   nan_placement: bool = True) -> Comparison:
    """Compare ``custom`` with ``reference`` element by element.

    Args:
        check: Name of what is compared (``"output"``, ``"grad[kernel]"``).
        custom: The custom layer's array.
        reference: The reference's array.
        tolerance: ``None`` demands bit-exact equality (NaN payloads aside);
            otherwise ``|a - b| <= atol + rtol * |b|``.
        signed_zeros: Whether ``-0.0`` vs ``+0.0`` counts as a difference
            in a bit-exact comparison (``tolerance=None``); under a
            tolerance they are equal values.
        flush_subnormals: Treat subnormal values as zero on both sides (for
            kernels whose flush-to-zero state depends on the thread).
        nan_placement: Whether a NaN must face a NaN. ``False`` lets a NaN
            on either side face any value (a declared known difference).

    Returns:
        A :class:`Comparison`; its ``passed`` says whether it is within
        bounds and ``problem`` explains a failure.
    """
    a = np.asarray(custom)
    b = np.asarray(reference)
    if flush_subnormals and a.dtype == b.dtype and _is_float(a.dtype):
        a, b = _flush(a), _flush(b)
    base = dict(check=check, shape=tuple(b.shape), dtype=dtype_name(b),
                n_total=int(b.size))

    def mismatch(problem):
        return Comparison(**base, passed=False, bit_exact=False,
                          max_abs=math.inf, max_rel=math.inf,
                          max_ulp=math.inf, n_bad=int(b.size),
                          problem=problem)

    if a.shape != b.shape:
        return mismatch(f"shape differs: custom {a.shape}, "
                        f"reference {b.shape}")
    if a.dtype != b.dtype:
        return mismatch(f"dtype differs: custom {dtype_name(a)}, "
                        f"reference {dtype_name(b)}")
    if _same_bits(a, b):
        # Every element has the same bits: what the element-wise path below
        # concludes for such arrays (bit-exact, every error 0), without its
        # float64 copies and ULP arithmetic (issue 14: most comparisons of
        # the suite are bit-exact; tests/meta_tests/test_helpers.py checks
        # that both paths agree).
        return Comparison(**base, passed=True, bit_exact=True, max_abs=0.0,
                          max_rel=0.0, max_ulp=0.0, n_bad=0, tol_used=0.0)
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    nan_a, nan_b = np.isnan(a64), np.isnan(b64)
    both_nan = nan_a & nan_b
    finite = np.isfinite(a64) & np.isfinite(b64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf
        abs_err = np.where(finite, np.abs(a64 - b64), 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rel_err = np.where(finite & (abs_err > 0),
                           abs_err / np.maximum(np.abs(b64), np.finfo(
                               np.float64).tiny), 0.0)
    ulp = ulp_distance(a, b)
    ulp_finite = np.where(finite, ulp, 0.0)
    same_value = both_nan | (a64 == b64)
    if not nan_placement:
        same_value = same_value | nan_a | nan_b
    sign_differs = (a64 == 0) & (b64 == 0) & (
        np.signbit(a64) != np.signbit(b64))
    if tolerance is None:
        bad = ~same_value
        bound = np.zeros_like(abs_err)
        # Above the atol of nothing: every finite difference counts fully.
        counted = finite & (abs_err > 0)
    else:
        bound = tolerance.atol + tolerance.rtol * np.abs(b64)
        within = finite & (abs_err <= bound)
        bad = ~(same_value | within)
        # Relative error and ULP mean something only where the relative
        # term of the bound dominates, |b| >= atol / rtol (near zero a 1e-30
        # difference is 1e8 ULP and a huge relative error, yet well inside
        # atol): the report shows them there only.
        counted = finite & (tolerance.rtol * np.abs(b64) >= tolerance.atol)
    if signed_zeros and tolerance is None:
        # The sign of zero is part of a bit-for-bit comparison. Under a
        # tolerance (different arithmetic, legitimately) -0.0 and +0.0 are
        # the same value, |a - b| = 0.
        bad = bad | sign_differs
    bit_exact = bool(np.all((both_nan | (a64 == b64)) & ~sign_differs))
    n_bad = int(np.count_nonzero(bad))
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(finite & (abs_err > 0),
                        np.where(bound > 0, abs_err / np.where(
                            bound > 0, bound, 1.0), np.inf), 0.0)
    comp = Comparison(
        **base, passed=n_bad == 0, bit_exact=bit_exact,
        max_abs=float(abs_err.max(initial=0.0)),
        max_rel=float(np.where(counted, rel_err, 0.0).max(initial=0.0)),
        max_ulp=float(np.where(counted, ulp_finite, 0.0).max(initial=0.0)),
        n_bad=n_bad, tol_used=float(frac.max(initial=0.0)))
    if n_bad:
        # The worst element: a NaN/inf misplacement first, then the largest
        # ULP distance among the failing elements.
        score = np.where(bad, np.where(finite, ulp, np.inf), -1.0)
        flat = int(np.argmax(score))
        idx = tuple(int(i) for i in np.unravel_index(flat, b.shape))
        comp.worst_index = idx
        comp.worst_custom = _as_float(a[idx])
        comp.worst_reference = _as_float(b[idx])
        if not finite[idx] and not both_nan[idx] and not (
                a64[idx] == b64[idx]):
            comp.problem = "NaN/inf placement differs"
        elif sign_differs[idx]:
            comp.problem = "sign of zero differs (-0.0 vs +0.0)"
        elif tolerance is None:
            comp.problem = "values are not bit-exact (declared exact)"
        else:
            comp.problem = (f"out of tolerance (rtol={tolerance.rtol:g}, "
                            f"atol={tolerance.atol:g})")
    return comp
