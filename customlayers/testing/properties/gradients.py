"""Gradients checked other ways: float64 central differences, second
order (Hessian-vector products) and forward mode (JVPs)."""

from __future__ import annotations


import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from customlayers._keras import BACKEND, KERAS_VERSION, variable_name
from customlayers.testing import strategies as cst
from customlayers.testing.backends import forward_backward
from customlayers.testing.convert import float64_unavailable, to_numpy
from customlayers.testing.equivalence import (build_pair, fact_check)
from customlayers.testing.expectations import compare_expected
from customlayers.testing.report import PROCESS
from customlayers.testing.tolerances import Tolerance

from customlayers.testing.properties._base import (_make, _scope, _settings, draw_input)

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
#: The largest input Jacobian (output elements x input elements) that the
#: forward-mode property computes through pfor/vmap for each example.
JACOBIAN_MAX = 4096
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

    def f(sign):
        layer.set_weights([w + sign * h * d for w, d in zip(weights, dws)])
        return float(np.sum(to_numpy(
            layer(x if ids else x + sign * h * dx)) * g))

    numeric = (f(+1) - f(-1)) / (2 * h)
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
    tolerance = Tolerance(base.rtol, base.atol + roundoff,
                          f"{base.reason} Plus the central difference's "
                          f"roundoff, 16 * eps * sum|y g| / h = {roundoff:.3g}.")
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
    probing ``ops.matmul``: on Keras 3.15.1's torch backend a float64
    matmul returns float32, and a float64 Dense whose activation or bias
    adds float64 arithmetic afterwards still *returns* float64 (found on
    torch: the output dtype alone let a float32 central difference through,
    1.5e-7 off). The harness cannot see which ops a layer uses, so on such a
    backend the property is skipped for every case, with this reason."""
    reason = float64_unavailable(needs_matmul=True)
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

def _built_pair(case, policy, kwargs, x, seed):
    custom = _make(case, kwargs, policy)
    reference = _make(case, kwargs, policy, case.reference)
    build_pair(custom, reference, x, weight_map=case.weight_map)
    from customlayers.testing.equivalence import copy_weights, random_weights
    copy_weights(custom, reference, weight_map=case.weight_map,
                 weights=random_weights(custom, seed,
                                        positive=case.positive_weights))
    return custom, reference


def _weight_names(layer):
    return [variable_name(w).split("/")[-1]
            for w in layer.trainable_weights]


def _compare_maybe_none(check, a, b, tolerance, case, scope, ledger):
    """Compare two results that a backend may give as ``None`` (does not
    depend): ``None`` where the reference has a tensor is a failure; where
    the reference has ``None``, zeros (or ``None``) are expected."""
    if a is None and b is None:
        return fact_check(check, True)
    if a is None:
        return fact_check(check, False, (
            f"None (no dependence) where the reference gives a tensor of "
            f"shape {np.shape(b)} (values {np.asarray(b).ravel()[:4]}...)"))
    if b is None:
        zeros = np.all(np.asarray(a, np.float64) == 0)
        return fact_check(check, bool(zeros), (
            "the reference does not depend on this argument (None), the "
            "custom layer gives non-zero values"))
    return compare_expected(check, a, b, tolerance=tolerance,
                            differences=case.known_differences, scope=scope,
                            ledger=ledger)


def check_second_order(case, policy, mode, kwargs, x, seed, upstream,
                       recorder=PROCESS):
    """One example: Hessian-vector products (reverse over reverse) with
    respect to the input and every weight equal the reference's, ``None``
    (no dependence) included; by forward over reverse too
    (``hvp_fwd[<argument>]``); and the input Hessian through the backend's
    Hessian API (``hessian[input]``, over the first
    :data:`~customlayers.testing.autodiff.HESSIAN_MAX` flat elements)."""
    from customlayers.testing import autodiff
    custom, reference = _built_pair(case, policy, kwargs, x, seed)
    rng = np.random.default_rng(seed + 1)
    vs = [rng.standard_normal(np.shape(x)).astype(x.dtype)] + [
        rng.standard_normal(np.shape(w)).astype(np.asarray(w).dtype)
        for w in custom.get_weights()]
    ref_vs = vs[:1] + list((case.weight_map or list)(vs[1:]))
    _, got = autodiff.second_order(custom, x, upstream, vs, mode)
    _, want = autodiff.second_order(reference, x, upstream, ref_vs, mode)
    names = ["input"] + _weight_names(reference)
    exact = case.is_exact(policy, mode)
    scope = _scope(policy, mode, kwargs, x)
    mapped = got[:1] + list((case.weight_map or list)(got[1:])) \
        if all(a is not None for a in got[1:]) else got
    comps = []
    for name, a, b in zip(names, mapped, want):
        check = f"hvp[{name}]"
        comps.append(_compare_maybe_none(
            check, a, b, None if exact else case.tolerance(policy, check),
            case, scope, recorder.ledger))
    if len(got) != len(want):
        comps.append(fact_check("hvp arguments", False,
                                f"{len(got)} vs {len(want)}"))
    # Forward over reverse: H_x v of <g, f> (weights fixed), against the
    # reference's, along the same input direction.
    # Forward over reverse, with respect to the input and every weight.
    fwd = []
    for layer, directions in ((custom, vs), (reference, ref_vs)):
        try:
            fwd.append(autodiff.hvp_forward_over_reverse(
                layer, x, upstream, directions, mode))
        except Exception as exc:  # noqa: BLE001 - compared below
            fwd.append(exc)
    if any(isinstance(f, Exception) for f in fwd):
        comps.append(_compare_api(
            "hvp_fwd[input]", lambda layer: fwd[layer is reference],
            custom, reference, case, policy, exact, scope, recorder.ledger))
    else:
        got_fwd = fwd[0][:1] + list((case.weight_map or list)(fwd[0][1:])) \
            if all(a is not None for a in fwd[0][1:]) else fwd[0]
        for name, a, b in zip(names, got_fwd, fwd[1]):
            check = f"hvp_fwd[{name}]"
            comps.append(_compare_maybe_none(
                check, a, b, None if exact else case.tolerance(policy, check),
                case, scope, recorder.ledger))
    # The Hessian API (tf.hessians / jax.hessian / torch.func.hessian)
    # over the first HESSIAN_MAX flat input elements, the rest held fixed:
    # every example, whatever its size.
    comps.append(_compare_api(
        "hessian[input]", lambda layer: autodiff.hessian(
            layer, x, upstream, mode),
        custom, reference, case, policy, exact, scope, recorder.ledger))
    failed = [c for c in comps if not c.passed]
    if failed:
        error = AssertionError(
            f"{case.name}: second-order derivatives differ from the "
            f"reference's (policy={policy}, mode={mode}, input shape "
            f"{np.shape(x)}, seed={seed}):\n" + "\n".join(
                c.describe() for c in failed))
        error.record = (case.name, policy, mode, comps)
        raise error
    recorder.record(case.name, policy, mode, comps, "second order")


def _compare_api(check, derive, custom, reference, case, policy, exact,
                 scope, ledger):
    """``derive(layer)`` for both layers, compared. Where the backend's API
    itself raises for the reference (``tf.hessians`` on a function linear
    in ``x``: "None values not supported"), the custom layer must raise
    the same exception type or give a result (more, not less); raising
    where the reference's works fails, with the exception (e.g. a torch
    ``autograd.Function`` that ``torch.func`` cannot go through)."""
    results = []
    for layer in (custom, reference):
        try:
            result = derive(layer)
        except Exception as exc:  # noqa: BLE001 - compared below
            result = exc
        results.append(result)
    got, want = results
    if isinstance(got, Exception) or isinstance(want, Exception):
        ok = type(got) is type(want) or not isinstance(got, Exception)
        return fact_check(check, ok, (
            f"the custom layer's {check} raised {type(got).__name__}: "
            f"{got}" if isinstance(got, Exception) else
            f"the custom layer gives {check}") + (
            f"; the reference's raised {type(want).__name__}: {want}"
            if isinstance(want, Exception) else "; the reference's works"))
    return _compare_maybe_none(
        check, got, want, None if exact else case.tolerance(policy, check),
        case, scope, ledger)


def _draw_derivative_example(data, case, policy, nonfinite=False):
    kwargs = case.draw_kwargs(data)
    x = draw_input(data, case, policy, kwargs, nonfinite=nonfinite)
    seed = data.draw(st.integers(0, 2 ** 31 - 1), label="weights seed")
    reference = _make(case, kwargs, policy, case.reference)
    out_shape = tuple(reference.compute_output_shape(x.shape))
    g = cst.draw_array(data, out_shape, cst.compute_dtype(policy),
                       label="upstream gradient", max_specials=0,
                       value_range=case.upstream_range)
    return kwargs, x, seed, g


def _derivative_property(kind, check, case, policy, mode, recorder):
    @_settings(f"{kind}/{mode}")
    @given(data=st.data())
    def prop(data):
        kwargs, x, seed, g = _draw_derivative_example(data, case, policy)
        check(case, policy, mode, kwargs, x, seed, g, recorder)

    prop.__name__ = f"{kind}[{case.name}-{policy}-{mode}]"
    return prop


def second_order_property(case, policy, mode, recorder=PROCESS):
    """Hessian-vector products (reverse over reverse, and forward over
    reverse for the input) of ``<g, f(x, W)>`` with respect to the input
    and every weight equal the reference's,
    zeros included: ``None`` where the reference gives a tensor fails (a
    hand-written gradient with no path to ``x`` does that)."""
    return _derivative_property("second_order", check_second_order, case,
                                policy, mode, recorder)


def check_forward_mode(case, policy, mode, kwargs, x, seed, upstream,
                       recorder=PROCESS):
    """One example: ``J v`` equals the reference's, and ``<g, J v>`` equals
    ``<J^T g, v>`` for the custom layer."""
    from customlayers.testing import autodiff
    custom, reference = _built_pair(case, policy, kwargs, x, seed)
    v = np.random.default_rng(seed + 2).standard_normal(
        np.shape(x)).astype(x.dtype)
    _, ref_jv, _ = autodiff.jvp(reference, x, v, upstream, mode)
    try:
        y, jv, vjp = autodiff.jvp(custom, x, v, upstream, mode)
    except Exception as exc:  # noqa: BLE001 - the reference's works
        # E.g. a torch layer whose keras.ops.custom_gradient (an
        # autograd.Function without setup_context/jvp) torch.func.jvp
        # cannot go through, where the built-in's ops can.
        comps = [fact_check("jvp", False, (
            f"the custom layer's forward mode raised "
            f"{type(exc).__name__}: {exc}; the reference's gives J v"))]
        error = AssertionError(
            f"{case.name}: forward-mode derivatives fail (policy={policy}, "
            f"mode={mode}, input shape {np.shape(x)}, seed={seed}):\n"
            + comps[0].describe())
        error.record = (case.name, policy, mode, comps)
        raise error from exc
    exact = case.is_exact(policy, mode)
    scope = _scope(policy, mode, kwargs, x)
    comps = [compare_expected(
        "jvp", jv, ref_jv,
        tolerance=None if exact else case.tolerance(policy, "jvp"),
        differences=case.known_differences, scope=scope,
        ledger=recorder.ledger)]
    # The full input Jacobian through the backend's vectorisation (pfor /
    # vmap), where it stays small: out.size * x.size <= JACOBIAN_MAX.
    if np.size(x) * np.size(y) <= JACOBIAN_MAX:
        jac = autodiff.jacobian(custom, x, mode)
        ref_jac = autodiff.jacobian(reference, x, mode)
        comps.append(compare_expected(
            "jacobian[input]", jac, ref_jac,
            tolerance=None if exact else case.tolerance(policy,
                                                        "jacobian[input]"),
            differences=case.known_differences, scope=scope,
            ledger=recorder.ledger))
    g64 = np.asarray(upstream, np.float64)
    left = np.asarray(jv, np.float64) * g64
    right = np.asarray(vjp, np.float64) * np.asarray(v, np.float64)
    eps = float(np.finfo(np.float32 if jv.dtype.itemsize < 8 else
                         np.float64).eps)
    if jv.dtype.itemsize < 4:
        eps = 2.0 ** -7 if jv.dtype.name == "bfloat16" else 2.0 ** -10
    # Both sides are the same bilinear form, each element rounded once in
    # the layer's dtype: they agree to a few eps of the summed magnitudes.
    bound = 8 * eps * (np.abs(left).sum() + np.abs(right).sum())
    consistency = Tolerance(0.0, float(bound) or 1e-30,
                            "8 eps of the summed magnitudes of both sides")
    # A layer whose Jacobian holds reductions (normalisations) rounds each
    # element after a sum of larger terms, so a case may add a declared
    # rtol: check_tolerances={"jvp/vjp consistency": Tolerance(...)}.
    from customlayers.testing.declarations import check_matches
    for pattern, tol in case.check_tolerances.items():
        if isinstance(tol, Tolerance) and check_matches(
                "jvp/vjp consistency", pattern):
            consistency = Tolerance(tol.rtol, consistency.atol + tol.atol,
                                    f"{consistency.reason}; {tol.reason}")
    finite = np.isfinite(left).all() and np.isfinite(right).all()
    if finite:
        comps.append(compare_expected(
            "jvp/vjp consistency", np.float64(left.sum()),
            np.float64(right.sum()), tolerance=consistency))
    failed = [c for c in comps if not c.passed]
    if failed:
        error = AssertionError(
            f"{case.name}: forward-mode derivatives fail (policy={policy}, "
            f"mode={mode}, input shape {np.shape(x)}, seed={seed}):\n"
            + "\n".join(c.describe() for c in failed))
        error.record = (case.name, policy, mode, comps)
        raise error
    recorder.record(case.name, policy, mode, comps, "forward mode")


def forward_mode_property(case, policy, mode, recorder=PROCESS):
    """The JVP (forward mode) along a random input direction equals the
    reference's, and agrees with the layer's own VJP:
    ``<g, J v> == <J^T g, v>``; and the input Jacobian through pfor/vmap
    (``jacobian[input]``, where it has at most :data:`JACOBIAN_MAX`
    elements) equals the reference's."""
    return _derivative_property("forward_mode", check_forward_mode, case,
                                policy, mode, recorder)
