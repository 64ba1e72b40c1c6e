"""The one table of per-dtype tolerances, with the reason for each number.

A comparison passes element-wise when ``|custom - reference| <= atol +
rtol * |reference|``; NaNs must sit in the same places and infinities must be
equal. The ULP distance is always measured and reported alongside.

When custom and reference run the *same kernels* (same elementary ops in the
same order, as our Dense and ReLU do against Keras on TensorFlow), a case is
declared ``exact`` and compared bit for bit: no tolerance is applied, and the
report says "bit-exact". The table below is for pairs that legitimately run
different kernels: a different summation order in a GEMM (``tensordot`` vs
broadcasting ``matmul``, Keras 2 vs Keras 3, another backend), or a
reassociated elementwise expression.

The numbers come from the unit roundoff ``u`` of each dtype (half the
machine epsilon) and the longest reduction the property tests draw
(``K <= 256`` terms, values mostly of order 1): a reordered sum of K terms
differs by at most about ``K * u * sum|x_i w_i|``, and in practice by
``sqrt(K) * u`` of it. ``rtol`` allows a few ULP of the result plus that
reordering; ``atol`` covers results that cancel to nearly zero, where a
relative bound means nothing.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """``|a - b| <= atol + rtol * |b|`` element-wise, with the reason why."""

    rtol: float
    atol: float
    reason: str

    def scaled(self, factor: float, why: str) -> "Tolerance":
        """A tolerance ``factor`` times looser, with the reason recorded."""
        return Tolerance(self.rtol * factor, self.atol * factor,
                         f"{self.reason} Scaled x{factor:g}: {why}")


TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(
        rtol=1e-12, atol=1e-12,
        reason="u = 2**-53 = 1.1e-16; a reordered 256-term sum moves the "
               "result by <= 256 * u = 2.8e-14 of the term magnitudes; "
               "1e-12 leaves 35x headroom and is still far below any real "
               "bug (a wrong kink or a lost bias is an O(1) error).",
    ),
    "float32": Tolerance(
        rtol=2e-5, atol=2e-5,
        reason="u = 2**-24 = 6.0e-8; 256 * u = 1.5e-5 bounds a reordered "
               "256-term sum relative to the term magnitudes (oneDNN and "
               "Eigen block K differently, and XLA may fuse the bias add "
               "into the GEMM epilogue). TF32 is never on for these CPU "
               "checks; on Ampere/Hopper GPUs it must be switched off or "
               "this table does not apply.",
    ),
    "float16": Tolerance(
        rtol=1e-2, atol=1e-2,
        reason="u = 2**-11 = 4.9e-4; float16 GEMMs on CPU accumulate in "
               "float32 and round once, but a backend may round partial "
               "sums: 2 * sqrt(256) * u = 1.6e-2 in the worst reordering, "
               "1e-2 in practice; a lost bias or a wrong slope is >= 0.1.",
    ),
    "bfloat16": Tolerance(
        rtol=4e-2, atol=4e-2,
        reason="u = 2**-8 = 3.9e-3, 8x float16's; the same reasoning as "
               "float16 gives 8 * 4.9e-3; 4e-2 is ~10 ULP at 1.0. Still "
               "well below the O(1) errors of the bugs the suite plants.",
    ),
}


def tolerance_for(dtype: str) -> Tolerance:
    """The tolerance for a compute dtype name (``mixed_*`` policies use their
    compute dtype)."""
    name = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}.get(
        dtype, dtype)
    try:
        return TOLERANCES[name]
    except KeyError:
        raise ValueError(
            f"No tolerance is defined for dtype {dtype!r}; expected one of "
            f"{sorted(TOLERANCES)} or a mixed_* policy.") from None
