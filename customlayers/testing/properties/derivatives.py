"""Derivatives beyond the first reverse-mode gradient, each against the
reference's: second order (Hessian-vector products reverse over reverse
and forward over reverse, and the backend's Hessian API) and forward mode
(JVPs, their consistency with the VJP, and the vectorised Jacobian)."""

from __future__ import annotations

import functools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from customlayers._keras import variable_name
from customlayers.testing import strategies as cst
from customlayers.testing.backends import is_ids
from customlayers.testing.equivalence import (fact_check,
                                              input_grad_not_applicable)
from customlayers.testing.expectations import compare_expected
from customlayers.testing.report import PROCESS
from customlayers.testing.tolerances import Tolerance

from customlayers.testing.properties._base import (_make, _scope, draw_input,
                                                   settings_for,
                                                   training_suffix)

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


def _trainable(layer, directions):
    """The entries of ``directions`` (one per ``layer.get_weights()``)
    that belong to trainable weights, in ``trainable_weights``' order (a
    LoRA layer's frozen table comes first in its weights)."""
    return [d for d, w in zip(directions, layer.weights) if w.trainable]


def _ids_not_applicable(x, check):
    """``check``, a derivative along the input, for integer ids: n/a."""
    return input_grad_not_applicable(
        x, check, "the weights are differentiated (the input held fixed)")


def _where(policy, mode, x, seed, training):
    return (f"policy={policy}, mode={mode}, "
            + ("" if training is None else f"training={training}, ")
            + f"input shape {np.shape(x)}, seed={seed}")


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
                       recorder=PROCESS, training=None):
    """One example: Hessian-vector products (reverse over reverse) with
    respect to the input and every weight equal the reference's, ``None``
    (no dependence) included; by forward over reverse too
    (``hvp_fwd[<argument>]``); and the input Hessian through the backend's
    Hessian API (``hessian[input]``, over the first
    :data:`~customlayers.testing.autodiff.HESSIAN_MAX` flat elements).
    Both layers are called with ``training`` (``None``: not passed). For
    integer ids the weights only are differentiated: the input's rows are
    n/a, with the reason."""
    from customlayers.testing import autodiff
    custom, reference = _built_pair(case, policy, kwargs, x, seed)
    rng = np.random.default_rng(seed + 1)
    vs = [rng.standard_normal(np.shape(x)).astype(x.dtype)] + [
        rng.standard_normal(np.shape(w)).astype(np.asarray(w).dtype)
        for w in custom.get_weights()]
    ref_vs = vs[:1] + _trainable(
        reference, (case.weight_map or list)(vs[1:]))
    vs = vs[:1] + _trainable(custom, vs[1:])
    ids = is_ids(x)
    _, got = autodiff.second_order(custom, x, upstream, vs, mode, training)
    _, want = autodiff.second_order(reference, x, upstream, ref_vs, mode,
                                    training)
    names = ["input"] + _weight_names(reference)
    exact = case.is_exact(policy, mode)
    scope = _scope(policy, mode, kwargs, x)
    mapped = got[:1] + list((case.weight_map or list)(got[1:])) \
        if all(a is not None for a in got[1:]) else got
    comps = []
    for name, a, b in zip(names, mapped, want):
        check = f"hvp[{name}]"
        if ids and name == "input":
            comps.append(_ids_not_applicable(x, check))
            continue
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
                                                  mode, training),
        lambda: autodiff.hvp_forward_over_reverse(reference, x, upstream,
                                                  ref_vs, mode, training))
    raised = _raised("hvp_fwd[weights]" if ids else "hvp_fwd[input]",
                     got_fwd, ref_fwd)
    if raised is not None:
        comps.append(raised)
    else:
        if all(a is not None for a in got_fwd[1:]):
            got_fwd = got_fwd[:1] + list(
                (case.weight_map or list)(got_fwd[1:]))
        for name, a, b in zip(names, got_fwd, ref_fwd):
            check = f"hvp_fwd[{name}]"
            if ids and name == "input":
                comps.append(_ids_not_applicable(x, check))
                continue
            comps.append(_compare_maybe_none(
                check, a, b, None if exact else case.tolerance(policy, check),
                case, scope, recorder.ledger))
    # The Hessian API (tf.hessians / jax.hessian / torch.func.hessian)
    # over the first HESSIAN_MAX flat input elements, the rest held fixed:
    # every example, whatever its size.
    comps.append(_ids_not_applicable(x, "hessian[input]") if ids else
                 _compare_api("hessian[input]", lambda layer: autodiff.hessian(
                     layer, x, upstream, mode, training=training),
                     custom, reference, case, policy, exact, scope,
                     recorder.ledger))
    failed = [c for c in comps if not c.passed]
    if failed:
        error = AssertionError(
            f"{case.name}: second-order derivatives differ from the "
            f"reference's ({_where(policy, mode, x, seed, training)}):\n"
            + "\n".join(c.describe() for c in failed))
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


def _derivative_property(kind, check, case, policy, mode, recorder,
                         training=None):
    # ``training`` reaches the check through ``check`` itself (and the
    # item's example count through ``_settings``), so that the inner
    # function's source, which seeds Hypothesis's derandomized draws (see
    # properties/equivalence.py), is the same for every value: a
    # training-mode item runs the inference-mode item's examples.
    if training is not None:
        check = functools.partial(check, training=training)
    _settings = settings_for(training=training)  # the item's example count

    @_settings(f"{kind}/{mode}")
    @given(data=st.data())
    def prop(data):
        kwargs, x, seed, g = _draw_derivative_example(data, case, policy)
        check(case, policy, mode, kwargs, x, seed, g, recorder)

    prop.__name__ = (f"{kind}[{case.name}-{policy}-{mode}"
                     f"{training_suffix(training)}]")
    return prop


def second_order_property(case, policy, mode, recorder=PROCESS,
                          training=None):
    """Hessian-vector products (reverse over reverse, and forward over
    reverse for the input) of ``<g, f(x, W)>`` with respect to the input
    and every weight equal the reference's,
    zeros included: ``None`` where the reference gives a tensor fails (a
    hand-written gradient with no path to ``x`` does that). Both layers are
    called with ``training`` (``None``: not passed)."""
    return _derivative_property("second_order", check_second_order, case,
                                policy, mode, recorder, training)


def check_forward_mode(case, policy, mode, kwargs, x, seed, upstream,
                       recorder=PROCESS, training=None):
    """One example: ``J v`` equals the reference's, and ``<g, J v>`` equals
    ``<J^T g, v>`` for the custom layer; both layers called with
    ``training`` (``None``: not passed). For integer ids the direction is
    in the trainable weights (``jvp[weights]``: ``J_W v``, the input held
    fixed; ``<g, J_W v> == <J_W^T g, v>``), and ``jvp`` and
    ``jacobian[input]`` (along the input) are n/a, with the reason."""
    from customlayers.testing import autodiff
    custom, reference = _built_pair(case, policy, kwargs, x, seed)
    ids = is_ids(x)
    if ids:
        directions = [np.random.default_rng(seed + 3).standard_normal(
            np.shape(w)).astype(np.asarray(w).dtype)
            for w in custom.get_weights()]
        v = _trainable(custom, directions)
        ref_v = _trainable(reference,
                           (case.weight_map or list)(directions))
        check = "jvp[weights]"

        def derive(layer, v):
            return autodiff.jvp_weights(layer, x, v, upstream, mode, training)
    else:
        v = ref_v = np.random.default_rng(seed + 2).standard_normal(
            np.shape(x)).astype(x.dtype)
        check = "jvp"

        def derive(layer, v):
            return autodiff.jvp(layer, x, v, upstream, mode, training)
    where = _where(policy, mode, x, seed, training)
    got, want = _derive_both(lambda: derive(custom, v),
                             lambda: derive(reference, ref_v))
    if isinstance(want, Exception):
        raise want  # the reference's own forward mode: not the layer's bug
    # The custom layer's raising where the reference's works fails (e.g. a
    # torch layer whose keras.ops.custom_gradient, an autograd.Function
    # without setup_context/jvp, torch.func.jvp cannot go through).
    raised = _raised(check, got, want, what="forward mode", works="gives J v")
    if raised is not None:
        error = AssertionError(
            f"{case.name}: forward-mode derivatives fail ({where}):\n"
            + raised.describe())
        error.record = (case.name, policy, mode, [raised])
        raise error from got
    (y, jv, vjp), (_, ref_jv, ref_vjp) = got, want
    exact = case.is_exact(policy, mode)
    scope = _scope(policy, mode, kwargs, x)
    comps = [_ids_not_applicable(x, "jvp")] if ids else []
    comps.append(compare_expected(
        check, jv, ref_jv,
        tolerance=None if exact else case.tolerance(policy, check),
        differences=case.known_differences, scope=scope,
        ledger=recorder.ledger))
    # The full input Jacobian through the backend's vectorisation (pfor /
    # vmap), where it stays small: out.size * x.size <= JACOBIAN_MAX. A
    # custom layer whose gradient the vectorisation cannot batch (torch's
    # legacy vmap has no batching rule for some ops) fails with the
    # exception, where the reference's works (see _raised).
    if ids:
        comps.append(_ids_not_applicable(x, "jacobian[input]"))
    elif np.size(x) * np.size(y) <= JACOBIAN_MAX:
        comps.append(_compare_api(
            "jacobian[input]", lambda layer: autodiff.jacobian(
                layer, x, mode, training=training),
            custom, reference, case, policy, exact, scope, recorder.ledger))
    left, right = _sides(jv, vjp, v, upstream, ids)
    eps = float(np.finfo(np.float32 if jv.dtype.itemsize < 8 else
                         np.float64).eps)
    if jv.dtype.itemsize < 4:
        eps = 2.0 ** -7 if jv.dtype.name == "bfloat16" else 2.0 ** -10
    # Both sides are the same bilinear form, each element rounded once in
    # the layer's dtype: they agree to a few eps of the summed magnitudes.
    # Plus the reference's own gap on the same example: where an element
    # is a sum that cancels (a normalisation's Jacobian), its rounding
    # residue is not bounded by the result. Measured: XLA's VJP of a
    # training-mode BatchNormalization over one value per channel, whose
    # Jacobian is 0, is 6.4e-7 * |g| (the built-in's and ours alike), the
    # JVP exactly 0. The custom layer must be as consistent as the
    # reference, or within the bound.
    ref_left, ref_right = _sides(ref_jv, ref_vjp, ref_v, upstream, ids)
    ref_gap = abs(float(ref_left.sum()) - float(ref_right.sum()))
    bound = 8 * eps * (np.abs(left).sum() + np.abs(right).sum()) + (
        ref_gap if np.isfinite(ref_gap) else 0.0)
    consistency = Tolerance(0.0, float(bound) or 1e-30, (
        "8 eps of the summed magnitudes of both sides, plus the "
        "reference's own gap on this example"))
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
            f"{case.name}: forward-mode derivatives fail ({where}):\n"
            + "\n".join(c.describe() for c in failed))
        error.record = (case.name, policy, mode, comps)
        raise error
    recorder.record(case.name, policy, mode, comps, "forward mode")


def _sides(jv, vjp, v, upstream, ids):
    """The terms of ``<g, J v>`` and of ``<J^T g, v>`` (for ids ``vjp`` and
    ``v`` are lists, one entry per weight), in float64."""
    left = np.asarray(jv, np.float64) * np.asarray(upstream, np.float64)
    right = np.concatenate([np.zeros(0)] + [
        (np.asarray(a, np.float64) * np.asarray(b, np.float64)).ravel()
        for a, b in (zip(vjp, v) if ids else [(vjp, v)])])
    return left, right


def forward_mode_property(case, policy, mode, recorder=PROCESS,
                          training=None):
    """The JVP (forward mode) along a random input direction equals the
    reference's, and agrees with the layer's own VJP:
    ``<g, J v> == <J^T g, v>``; and the input Jacobian through pfor/vmap
    (``jacobian[input]``, where it has at most :data:`JACOBIAN_MAX`
    elements) equals the reference's. For integer ids, along the weights
    (see :func:`check_forward_mode`). Both layers are called with
    ``training`` (``None``: not passed)."""
    return _derivative_property("forward_mode", check_forward_mode, case,
                                policy, mode, recorder, training)
