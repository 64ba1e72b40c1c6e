"""Gradients checked another way: float64 central differences (second
order and forward mode are in :mod:`.derivatives`)."""

from __future__ import annotations


import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from customlayers._keras import BACKEND, KERAS_VERSION
from customlayers.testing import strategies as cst
from customlayers.testing.backends import forward_backward
from customlayers.testing.convert import float64_unavailable, to_numpy
from customlayers.testing.expectations import compare_expected
from customlayers.testing.report import PROCESS
from customlayers.testing.tolerances import Tolerance

from customlayers.testing.properties._base import _make, _settings, draw_input

# -- 5. float64 numeric gradients away from the kinks ----------------------

#: Central differences with step h: truncation O(h**2 * f''') ~ 1e-12 and
#: roundoff O(u / h) ~ 1e-10 relative for h = 1e-6 in float64. 1e-6 relative
#: leaves room for curvature (tanh, gelu) and is far below a wrong kink (1.0)
#: or a missing term. A case overrides it with
#: ``check_tolerances={"numeric gradient": ...}``.
NUMERIC_TOLERANCE = Tolerance(
    rtol=1e-6, atol=1e-7,
    reason="float64 central difference, h=1e-6: truncation ~h**2, roundoff "
           "~u/h ~1e-10; 1e-6 allows curvature of smooth activations.")
NUMERIC_STEP = 1e-6
KINK_MARGIN = 1e-3


def numeric_tolerance(case) -> Tolerance:
    from customlayers.testing.declarations import check_matches
    for pattern, tol in case.check_tolerances.items():
        if check_matches("numeric gradient", pattern):
            return tol if isinstance(tol, Tolerance) else tol.get(
                "float64", NUMERIC_TOLERANCE)
    return NUMERIC_TOLERANCE


def check_numeric_gradient(case, kwargs, x, seed, recorder=PROCESS):
    """One example of the numeric-gradient property. For an id input
    (integer or boolean) only the weights are perturbed: ids have no
    derivative."""
    from customlayers.testing.backends import is_ids
    ids = is_ids(x)
    kinks = np.asarray(case.kinks(kwargs) if not ids else (), np.float64)
    for k in kinks:  # push inputs off the kinks
        near = np.abs(x - k) < KINK_MARGIN
        x = np.where(near, k + np.where(x >= k, 2, -2) * KINK_MARGIN, x)
    layer = _make(case, kwargs, "float64")
    layer(x)
    rng = np.random.default_rng(seed)
    from customlayers.testing.equivalence import positive_indices
    weights = cst.random_weights(rng, layer.get_weights(), positive=(
        positive_indices(layer, case.positive_weights)))
    layer.set_weights(weights)
    out = forward_backward(layer, x, None).output
    g = rng.standard_normal(out.shape)
    fb = forward_backward(layer, x, g)
    # One random direction for the input and each trainable weight at once
    # (non-trainable ones, e.g. moving statistics, stay put: no gradient is
    # computed for them).
    trainable = [any(v is t for t in layer.trainable_weights)
                 for v in layer.weights]
    dx = rng.standard_normal(x.shape)
    dws = [rng.standard_normal(w.shape) * (1.0 if t else 0.0)
           for w, t in zip(weights, trainable)]
    analytic = float((0.0 if ids else np.sum(fb.input_grad * dx)) + sum(
        np.sum(gw * d) for gw, d in zip(
            fb.weight_grads, [d for d, t in zip(dws, trainable) if t])))
    h = NUMERIC_STEP

    def f(step):
        layer.set_weights([w + step * d for w, d in zip(weights, dws)])
        return float(np.sum(to_numpy(
            layer(x if ids else x + step * dx)) * g))

    def central(step):
        return (f(+step) - f(-step)) / (2 * step)

    numeric = central(h)
    # The roundoff the outputs cannot show, measured: a layer that cancels
    # large intermediate terms rounds each f to their ULP, not to the
    # output's (LayerNormalization over a one-element axis computes
    # x * inv - mean * inv, both ~3e3 at inputs ~100, for an output beta
    # ~0.1: the difference was 5e-7 off at a derivative of 0.11). Truncation
    # is ~h**2 at all three steps, so the central differences at h / 2 and
    # 2 h differ from the one at h by roundoff only; twice that spread
    # bounds it. A wrong derivative (a missing term, a wrong kink) is off
    # by O(1) and leaves the spread unchanged.
    spread = max(abs(central(s) - numeric) for s in (h / 2, 2 * h))
    layer.set_weights(weights)
    base = numeric_tolerance(case)
    # Each f(+-1) sums n terms y_i * g_i in float64; its roundoff is up to
    # about n * eps * sum|y_i g_i| in the worst case and sqrt(n) * eps * ...
    # in practice, and the difference divides it by 2h. A fixed atol misses
    # that for large, saturated sums (194 x 4 outputs of tanh(100 x): 3e-7
    # off at a derivative of 0.16); 16 * eps * sum|y_i g_i| / h covers it
    # and stays ~1e-6 of the sum, far below a wrong kink or missing term.
    magnitude = float(np.sum(np.abs(np.asarray(out, np.float64) * g)))
    roundoff = 16 * np.finfo(np.float64).eps * magnitude / h
    tolerance = Tolerance(base.rtol, base.atol + roundoff + 2 * spread,
                          f"{base.reason} Plus the central difference's "
                          f"roundoff, 16 * eps * sum|y g| / h = {roundoff:.3g}"
                          f", and twice its measured spread over steps h/2, "
                          f"h, 2h = {2 * spread:.3g}.")
    comp = compare_expected("numeric gradient", np.float64(analytic),
                            np.float64(numeric), tolerance=tolerance)
    assert comp.passed, comp.describe()
    recorder.record(case.name, "float64", "eager", [comp],
                    "numeric gradient")


def numeric_gradient_property(case, recorder=PROCESS):
    """In float64, away from the kinks, the analytic directional derivative
    of ``sum(f(x, W) * g)`` along a random direction equals the central
    difference: an independent check of the gradients, not relying on the
    reference at all."""

    @_settings("numeric_gradient")
    @given(data=st.data())
    def numeric_gradient(data):
        kwargs = case.smooth_kwargs(case.draw_kwargs(data))
        shape = (cst.draw_shape(data, max_size=256)
                 if case.input_shape is None else None)
        x = draw_input(data, case, "float64", kwargs, max_specials=0,
                       shape=shape)
        seed = data.draw(st.integers(0, 2 ** 32 - 1), label="weights seed")
        check_numeric_gradient(case, kwargs, x, seed, recorder)

    numeric_gradient.__name__ = f"numeric_gradient[{case.name}]"
    return numeric_gradient


def numeric_gradient_unavailable(case) -> str | None:
    """Why this backend cannot run ``case`` in real float64 (``None`` if it
    can): checked by running the reference once in float64, and by
    probing ``ops.matmul`` and the reductions (``ops.mean``, ``ops.var``;
    the latter returns float32 on Keras 3.15.1's JAX backend even in x64
    mode). On Keras 3.15.1's torch backend a float64 matmul returns
    float32, and a float64 Dense whose activation or bias adds float64
    arithmetic afterwards still *returns* float64 (found on torch: the
    output dtype alone let a float32 central difference through, 1.5e-7
    off). The harness cannot see which ops a layer uses, so on such a
    backend the property is skipped for every case, with this reason."""
    reason = float64_unavailable(needs_matmul=True, needs_reductions=True)
    if reason:
        return reason
    kwargs = case.smooth_kwargs(case.plain_kwargs())
    try:
        from customlayers.testing.declarations import _SimplestData
        reference = _make(case, kwargs, "float64", case.reference)
        shape = case.draw_input_shape(_SimplestData(), kwargs)
        ids = case.id_range(kwargs)
        probe = np.ones(shape, np.float64) if ids is None else np.full(
            shape, ids[0], case.id_dtypes[0])
        y = to_numpy(reference(probe))
    except Exception as exc:  # noqa: BLE001 - the reason is reported
        return (f"the reference could not run in float64 here "
                f"({type(exc).__name__}: {exc})")
    if y.dtype != np.float64:
        return (f"keras {KERAS_VERSION} on {BACKEND}: "
                f"{type(reference).__name__} returns {y.dtype} for a float64 "
                "input, so a float64 central difference cannot apply (the "
                "reference itself does not compute in float64 here)")
    return None



# -- 7. second order and forward mode ----------------------------------------
