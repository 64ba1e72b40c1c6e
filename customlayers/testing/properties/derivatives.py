"""Derivatives beyond the first reverse-mode gradient, each against the
reference's: second order (Hessian-vector products reverse over reverse
and forward over reverse, and the backend's Hessian API) and forward mode
(JVPs, their consistency with the VJP, and the vectorised Jacobian)."""

from __future__ import annotations


import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from customlayers._keras import variable_name
from customlayers.testing import strategies as cst
from customlayers.testing.equivalence import fact_check
from customlayers.testing.expectations import compare_expected
from customlayers.testing.report import PROCESS
from customlayers.testing.tolerances import Tolerance

from customlayers.testing.properties._base import (_make, _scope, _settings, draw_input)

#: The forward-mode property's full input Jacobian (through pfor/vmap) is
#: taken where it has at most this many elements.
JACOBIAN_MAX = 4096


def _built_pair(case, policy, kwargs, x, seed):
    """A fresh pair (never a reused one: these checks transform the layers
    with each backend's autodiff) with the example's random weights."""
    from customlayers.testing.equivalence import copy_weights, random_weights
    from customlayers.testing.pairs import fresh_pair
    custom, reference = fresh_pair(case, kwargs, policy, x)
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
    got_fwd, ref_fwd = _derive_both(
        lambda: autodiff.hvp_forward_over_reverse(custom, x, upstream, vs,
                                                  mode),
        lambda: autodiff.hvp_forward_over_reverse(reference, x, upstream,
                                                  ref_vs, mode))
    raised = _raised("hvp_fwd[input]", got_fwd, ref_fwd)
    if raised is not None:
        comps.append(raised)
    else:
        if all(a is not None for a in got_fwd[1:]):
            got_fwd = got_fwd[:1] + list(
                (case.weight_map or list)(got_fwd[1:]))
        for name, a, b in zip(names, got_fwd, ref_fwd):
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


def _derive_both(custom_derive, reference_derive):
    """``(custom's, reference's)`` results, an exception standing for a
    result where one raised (compared by :func:`_raised`)."""
    results = []
    for derive in (custom_derive, reference_derive):
        try:
            results.append(derive())
        except Exception as exc:  # noqa: BLE001 - compared by _raised
            results.append(exc)
    return tuple(results)


def _raised(check, got, want, what=None, works="works"):
    """``None`` when neither side raised; else the fact check. Where the
    backend's API itself raises for the reference (``tf.hessians`` on a
    function linear in ``x``: "None values not supported"), the custom
    layer must raise the same exception type or give a result (more, not
    less); raising where the reference's works fails, with the exception
    (e.g. a torch ``autograd.Function`` that ``torch.func`` cannot go
    through). The message names the custom layer's ``what`` (default: the
    check) and says the reference's ``works``."""
    if not (isinstance(got, Exception) or isinstance(want, Exception)):
        return None
    ok = type(got) is type(want) or not isinstance(got, Exception)
    return fact_check(check, ok, (
        f"the custom layer's {what or check} raised {type(got).__name__}: "
        f"{got}" if isinstance(got, Exception) else
        f"the custom layer gives {check}") + (
        f"; the reference's raised {type(want).__name__}: {want}"
        if isinstance(want, Exception) else f"; the reference's {works}"))


def _compare_api(check, derive, custom, reference, case, policy, exact,
                 scope, ledger):
    """``derive(layer)`` for both layers, compared (see :func:`_raised`
    for a side that raises)."""
    got, want = _derive_both(lambda: derive(custom), lambda: derive(reference))
    raised = _raised(check, got, want)
    if raised is not None:
        return raised
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
    got, want = _derive_both(
        lambda: autodiff.jvp(custom, x, v, upstream, mode),
        lambda: autodiff.jvp(reference, x, v, upstream, mode))
    if isinstance(want, Exception):
        raise want  # the reference's own forward mode: not the layer's bug
    # The custom layer's raising where the reference's works fails (e.g. a
    # torch layer whose keras.ops.custom_gradient, an autograd.Function
    # without setup_context/jvp, torch.func.jvp cannot go through).
    raised = _raised("jvp", got, want, what="forward mode", works="gives J v")
    if raised is not None:
        error = AssertionError(
            f"{case.name}: forward-mode derivatives fail (policy={policy}, "
            f"mode={mode}, input shape {np.shape(x)}, seed={seed}):\n"
            + raised.describe())
        error.record = (case.name, policy, mode, [raised])
        raise error from got
    (y, jv, vjp), (_, ref_jv, _) = got, want
    exact = case.is_exact(policy, mode)
    scope = _scope(policy, mode, kwargs, x)
    comps = [compare_expected(
        "jvp", jv, ref_jv,
        tolerance=None if exact else case.tolerance(policy, "jvp"),
        differences=case.known_differences, scope=scope,
        ledger=recorder.ledger)]
    # The full input Jacobian through the backend's vectorisation (pfor /
    # vmap), where it stays small: out.size * x.size <= JACOBIAN_MAX. A
    # custom layer whose gradient the vectorisation cannot batch (torch's
    # legacy vmap has no batching rule for some ops) fails with the
    # exception, where the reference's works (see _raised).
    if np.size(x) * np.size(y) <= JACOBIAN_MAX:
        comps.append(_compare_api(
            "jacobian[input]", lambda layer: autodiff.jacobian(layer, x, mode),
            custom, reference, case, policy, exact, scope, recorder.ledger))
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
