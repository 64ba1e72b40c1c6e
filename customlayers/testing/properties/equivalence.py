"""Outputs and gradients against the reference, with finite and with
non-finite upstream gradients."""

from __future__ import annotations

import functools
import math

from hypothesis import given
from hypothesis import strategies as st

from customlayers.testing import strategies as cst
from customlayers.testing.equivalence import assert_equivalent
from customlayers.testing.pairs import built_pair
from customlayers.testing.report import PROCESS

from customlayers.testing.properties._base import (
    _draw_signature, _draw_values, _make, _settings, settings_for,
    training_suffix, value_sets)


# -- 1. outputs, input gradients, weight gradients ------------------------

def check_equivalence(case, policy, mode, kwargs, x, seed, upstream=None,
                      recorder=PROCESS, artifacts_dir=None, training=None):
    """One example: outputs and gradients equal the reference's. The pair
    comes from :func:`~customlayers.testing.pairs.built_pair`: built on
    ``x``, reused across examples with the same key, in its just-built
    state."""
    custom, reference = built_pair(case, kwargs, policy, x)
    exact = case.is_exact(policy, mode)
    recorder.ledger.declare(case.known_differences)
    try:
        report = assert_equivalent(
            custom, reference, x, mode=mode, upstream=upstream,
            weights="random", seed=seed, weight_map=case.weight_map,
            exact=exact,
            tolerance=lambda check: case.tolerance(policy, check),
            known_differences=case.known_differences, kwargs=kwargs,
            ledger=recorder.ledger, artifacts_dir=artifacts_dir,
            training=training, positive_weights=case.positive_weights)
    except AssertionError as exc:
        exc.record = (case.name, policy, mode, exc.report.comparisons) \
            if hasattr(exc, "report") else None
        raise
    recorder.record(case.name, policy, mode, report.comparisons,
                    "equivalence")
    return report


# The inner test functions' source is part of Hypothesis's derandomized
# seed (``function_digest``): an edit to them changes every ``ci`` draw, so
# the equivalence suite's examples change with it. Edit them knowingly.

def equivalence_property(case, policy, mode, recorder=PROCESS,
                         artifacts_dir=None, training=None):
    """Outputs and gradients (input and every weight) equal the
    reference's, in ``mode``, under dtype ``policy``, called with
    ``training`` (``None``: not passed)."""

    @_settings(f"equivalence/{mode}")
    @given(data=st.data())
    def equivalence(data):
        kwargs = case.draw_kwargs(data)
        signature = _draw_signature(data, case, kwargs)
        reference = None
        for k in range(value_sets(mode)):
            x, seed = _draw_values(data, case, policy, kwargs, signature, k)
            upstream = None
            try:
                if reference is None:
                    reference = _make(case, kwargs, policy, case.reference)
                out_shape = tuple(reference.compute_output_shape(x.shape))
            except Exception:  # noqa: BLE001 - then the seed makes it
                out_shape = None
            if out_shape and all(isinstance(d, int) for d in out_shape):
                upstream = cst.draw_array(
                    data, out_shape, cst.compute_dtype(policy),
                    label="upstream gradient" + (f" (value set {k})"
                                                 if k else ""),
                    max_specials=2, value_range=case.upstream_range)
            check_equivalence(case, policy, mode, kwargs, x, seed, upstream,
                              recorder, artifacts_dir, training)

    equivalence.__name__ = (f"equivalence[{case.name}-{policy}-{mode}"
                            f"{training_suffix(training)}]")
    return equivalence


def _called_with(training):
    """:func:`check_equivalence` with ``training`` bound."""
    if training is None:
        return check_equivalence
    return functools.partial(check_equivalence, training=training)


def nonfinite_upstream_property(case, policy, mode, recorder=PROCESS,
                                training=None):
    """With NaN, +inf and -inf in the upstream gradient (placed on purpose,
    every example), the gradients have the reference's NaN positions and
    values: a hand-written gradient that selects ``0`` where the backend's
    multiplies ``g * mask`` (NaN) shows here. Both layers are called with
    ``training`` (``None``: not passed)."""
    # ``training`` (and the item's example count) reach the inner function
    # through these local names, so that its source (the derandomized
    # seed, see above) stays the same: a training-mode item runs the
    # inference-mode item's examples.
    check_equivalence = _called_with(training)
    _settings = settings_for(training=training)  # the item's example count

    @_settings(f"nonfinite_upstream/{mode}")
    @given(data=st.data())
    def nonfinite_upstream(data):
        kwargs = case.draw_kwargs(data)
        signature = _draw_signature(data, case, kwargs)
        reference = _make(case, kwargs, policy, case.reference)
        for k in range(value_sets(mode)):
            x, seed = _draw_values(data, case, policy, kwargs, signature,
                                   k, nonfinite_ok=False)
            out_shape = tuple(reference.compute_output_shape(x.shape))
            upstream = cst.draw_array(
                data, out_shape, cst.compute_dtype(policy),
                label="upstream gradient" + (f" (value set {k})"
                                             if k else ""),
                max_specials=2, must_include=(math.nan, math.inf, -math.inf),
                # The finite values stay inside the declared range (found on
                # CUDA: an upstream of 8.5e37 overflowed ATen's fused
                # layer_norm backward to inf where the declaration had said
                # upstream gradients stay within +-10 on torch).
                value_range=case.upstream_range)
            check_equivalence(case, policy, mode, kwargs, x, seed, upstream,
                              recorder)

    nonfinite_upstream.__name__ = (f"nonfinite_upstream[{case.name}-"
                                   f"{policy}-{mode}"
                                   f"{training_suffix(training)}]")
    return nonfinite_upstream
