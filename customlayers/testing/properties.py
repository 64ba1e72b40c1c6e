"""The generic properties, for any declared
:class:`~customlayers.testing.LayerCase`.

Each ``*_property(case, ...)`` returns a Hypothesis test function (already
decorated with ``@given`` and ``@settings``) that raises on the first
falsifying example, after shrinking it. Each draws one example (labelled,
so a failure reads like a sentence) and hands it to a plain ``check_*``
function, which :func:`~customlayers.testing.run_equivalence_test` also
calls with fixed values. Nothing here knows a particular layer: what is
special about a pair lives in its declaration.

Example counts scale with the active Hypothesis profile: a property runs
``WEIGHTS[kind] * max_examples`` examples (at least 1).
"""

from __future__ import annotations

import math
import re
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customlayers import _compat
from customlayers._compat import keras, to_numpy
from customlayers.testing import strategies as cst
from customlayers.testing.backends import forward_backward
from customlayers.testing.equivalence import (assert_equivalent, build_pair,
                                              fact_check)
from customlayers.testing.expectations import Scope, compare_expected
from customlayers.testing.report import PROCESS
from customlayers.testing.tolerances import Tolerance

#: Share of the profile's ``max_examples`` each property runs.
WEIGHTS = {
    "equivalence/eager": 0.4,
    "equivalence/graph": 0.1,
    "equivalence/compiled": 0.03,  # an XLA compile per example: ~0.5 s
    "lazy_build": 0.3,
    "config": 1.2,
    "saving": 0.03,
    "numeric_gradient": 0.5,
    "error_inputs": 2.5,
    "nonfinite_upstream/eager": 0.1,
    "nonfinite_upstream/graph": 0.05,
    "nonfinite_upstream/compiled": 0.03,
    "input_dtypes": 0.3,
    "second_order/eager": 0.1,
    "second_order/graph": 0.05,
    "second_order/compiled": 0.03,
    "forward_mode/eager": 0.1,
    "forward_mode/graph": 0.05,
    "forward_mode/compiled": 0.03,
}


def n_examples(key: str) -> int:
    """Examples for property ``key`` under the active profile."""
    return max(1, round(settings().max_examples * WEIGHTS[key]))


def _settings(key):
    return settings(settings(), max_examples=n_examples(key),
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


def _make(case, kwargs, policy, factory=None):
    return (factory or case.custom)(**kwargs, dtype=policy)


def _scope(policy, mode, kwargs=None, x=None):
    from customlayers.testing.backends import device
    return Scope(backend=_compat.BACKEND, policy=policy, mode=mode,
                 device=device(), kwargs=dict(kwargs or {}), x=x)


# -- inputs -----------------------------------------------------------------

def _distinct(values):
    """Values without repeats, telling -0.0 from +0.0 (a set would not)."""
    seen, out = set(), []
    for v in values:
        key = repr(float(v))
        if key not in seen:
            seen.add(key)
            out.append(float(v))
    return tuple(out)


def guaranteed_values(case, kwargs, dtype) -> tuple:
    """What every equivalence input holds, placed on purpose: both zeros,
    each kink and its exact +-1-ULP neighbours in ``dtype``, inside the
    case's ``input_range``."""
    kinks = tuple(case.kinks(kwargs))
    values = [0.0, -0.0]
    for k in kinks:
        values += [k, *cst.ulp_neighbours(k, dtype)]
    if case.input_range is not None:
        lo, hi = case.input_range
        values = [v for v in values if lo <= v <= hi]
    return _distinct(values)


def draw_input(data, case, policy, kwargs, *, nonfinite=False,
               max_specials=8, label="input", shape=None):
    """One input array for ``case`` under ``policy`` (see
    :class:`~customlayers.testing.LayerCase` for the knobs)."""
    dtype = cst.input_dtype(policy)
    if case.input_data is not None:
        spec = case.input_data
        if isinstance(spec, st.SearchStrategy):
            return np.asarray(data.draw(spec, label=label))
        return np.asarray(spec)
    if shape is None:
        shape = case.draw_input_shape(data, kwargs)
    if case.input_elements is not None:
        from hypothesis.extra import numpy as hnp
        x = data.draw(hnp.arrays(np.float64, shape,
                                 elements=case.input_elements), label=label)
        return x.astype(cst.np_dtype(dtype))
    kinks = tuple(case.kinks(kwargs))
    return cst.draw_array(
        data, shape, dtype, kinks=kinks,
        nonfinite=nonfinite and case.allow_nonfinite, label=label,
        max_specials=max_specials, value_range=case.input_range,
        must_include=guaranteed_values(case, kwargs, dtype))


def _draw_setup(data, case, policy, *, nonfinite_ok=True):
    """Constructor args, an input and a weights seed for one example."""
    kwargs = case.draw_kwargs(data)
    nonfinite = nonfinite_ok and case.allow_nonfinite and data.draw(
        st.booleans(), label="include NaN/inf in the input")
    x = draw_input(data, case, policy, kwargs, nonfinite=nonfinite)
    seed = data.draw(st.integers(0, 2 ** 32 - 1), label="weights seed")
    return kwargs, x, seed


# -- 1. outputs, input gradients, weight gradients ------------------------

def check_equivalence(case, policy, mode, kwargs, x, seed, upstream=None,
                      recorder=PROCESS, artifacts_dir=None):
    """One example: outputs and gradients equal the reference's."""
    custom = _make(case, kwargs, policy)
    reference = _make(case, kwargs, policy, case.reference)
    exact = case.is_exact(policy, mode)
    recorder.ledger.declare(case.known_differences)
    try:
        report = assert_equivalent(
            custom, reference, x, mode=mode, upstream=upstream,
            weights="random", seed=seed, weight_map=case.weight_map,
            exact=exact,
            tolerance=lambda check: case.tolerance(policy, check),
            known_differences=case.known_differences, kwargs=kwargs,
            ledger=recorder.ledger, artifacts_dir=artifacts_dir)
    except AssertionError as exc:
        exc.record = (case.name, policy, mode, exc.report.comparisons) \
            if hasattr(exc, "report") else None
        raise
    recorder.record(case.name, policy, mode, report.comparisons,
                    "equivalence")
    return report


def equivalence_property(case, policy, mode, recorder=PROCESS,
                         artifacts_dir=None):
    """Outputs and gradients (input and every weight) equal the
    reference's, in ``mode``, under dtype ``policy``."""

    @_settings(f"equivalence/{mode}")
    @given(data=st.data())
    def equivalence(data):
        kwargs, x, seed = _draw_setup(data, case, policy)
        upstream = None
        try:
            reference = _make(case, kwargs, policy, case.reference)
            out_shape = tuple(reference.compute_output_shape(x.shape))
        except Exception:  # noqa: BLE001 - then the seed makes it
            out_shape = None
        if out_shape and all(isinstance(d, int) for d in out_shape):
            upstream = cst.draw_array(
                data, out_shape, cst.compute_dtype(policy),
                label="upstream gradient", max_specials=2,
                value_range=case.upstream_range)
        check_equivalence(case, policy, mode, kwargs, x, seed, upstream,
                          recorder, artifacts_dir)

    equivalence.__name__ = f"equivalence[{case.name}-{policy}-{mode}]"
    return equivalence


def nonfinite_upstream_property(case, policy, mode, recorder=PROCESS):
    """With NaN, +inf and -inf in the upstream gradient (placed on purpose,
    every example), the gradients have the reference's NaN positions and
    values: a hand-written gradient that selects ``0`` where the backend's
    multiplies ``g * mask`` (NaN) shows here."""

    @_settings(f"nonfinite_upstream/{mode}")
    @given(data=st.data())
    def nonfinite_upstream(data):
        kwargs, x, seed = _draw_setup(data, case, policy, nonfinite_ok=False)
        reference = _make(case, kwargs, policy, case.reference)
        out_shape = tuple(reference.compute_output_shape(x.shape))
        upstream = cst.draw_array(
            data, out_shape, cst.compute_dtype(policy),
            label="upstream gradient", max_specials=2,
            must_include=(math.nan, math.inf, -math.inf))
        check_equivalence(case, policy, mode, kwargs, x, seed, upstream,
                          recorder)

    nonfinite_upstream.__name__ = (f"nonfinite_upstream[{case.name}-"
                                   f"{policy}-{mode}]")
    return nonfinite_upstream


# -- 2. lazy build, varying batch sizes, changed last dimension ----------

def _outcome(layer, x):
    """``("ok", output shape)`` or ``("error", exception)``."""
    try:
        return "ok", tuple(to_numpy(layer(_compat.input_tensor(x))).shape)
    except Exception as exc:  # noqa: BLE001 - compared with the reference
        return "error", exc


def check_lazy_build(case, policy, kwargs, first_shape, call_shapes, wrong,
                     recorder=PROCESS):
    """One example of the lazy-build property (see
    :func:`lazy_build_property`)."""
    layer = _make(case, kwargs, policy)
    reference = _make(case, kwargs, policy, case.reference)
    if not reference.weights:
        assert not layer.weights, (
            f"weights exist before the first call: {layer.weights}")
    build_shape = (None,) + tuple(first_shape[1:])
    layer.build(build_shape)  # unknown batch dimension
    reference.build(build_shape)
    got = [tuple(w.shape) for w in layer.weights]
    want = [tuple(w.shape) for w in reference.weights]
    assert got == want, (f"weight shapes after build({build_shape}): "
                         f"custom {got}, reference {want}")
    names = [_compat.variable_name(w) for w in layer.weights]
    ref_names = [_compat.variable_name(w) for w in reference.weights]
    assert names == ref_names, (
        f"weight names differ: custom {names}, reference {ref_names}")
    before = [np.asarray(w).copy() for w in layer.get_weights()]
    dtype = cst.input_dtype(policy)
    for i, shape in enumerate(call_shapes):
        x = np.ones(shape, dtype)
        (k, a), (rk, b) = _outcome(layer, x), _outcome(reference, x)
        if rk == "error":
            assert k == "error", (
                f"call {i}: the reference refused shape {shape} "
                f"({type(b).__name__}: {b}); the custom layer accepted it")
        else:
            assert k == "ok", (f"call {i}: shape {shape} raised "
                               f"{type(a).__name__}: {a}; the reference "
                               f"returned shape {b}")
            assert a == b, f"call {i}: output shape {a}, expected {b}"
    after = layer.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after)), \
        "calling the layer changed its weights"
    checks = [fact_check("lazy build", True)]
    last = first_shape[-1]
    bad = np.ones((2,) + tuple(first_shape[1:-1]) + (wrong,), dtype)
    (k, exc), (rk, ref_exc) = _outcome(layer, bad), _outcome(reference, bad)
    if rk == "ok":
        assert k == "ok", (
            f"{case.name} built for last dimension {last} raised "
            f"{type(exc).__name__} for an input of shape {bad.shape}, which "
            f"the reference accepts (output shape {ref_exc}): {exc}")
        assert exc == ref_exc, (f"changed last dimension: output shape "
                                f"{exc}, expected {ref_exc}")
    else:
        if k == "ok":
            raise AssertionError(
                f"{case.name} built for last dimension {last} accepted an "
                f"input of shape {bad.shape}; the reference raises "
                f"{type(ref_exc).__name__}: {ref_exc}")
        if not isinstance(exc, (ValueError, type(ref_exc))):
            raise AssertionError(
                f"{case.name} built for last dimension {last} raised "
                f"{type(exc).__name__} for an input of shape {bad.shape}; "
                f"expected a ValueError (or {type(ref_exc).__name__}, as the "
                f"reference) naming the layer and both dimensions: {exc}")
        msg = str(exc)
        missing = [s for s in (layer.name, str(last), str(wrong))
                   if s not in msg]
        assert not missing, (f"the error for last dimension {wrong} (built "
                             f"for {last}) does not name {missing}: {msg!r}")
    checks.append(fact_check("changed last dim", True))
    recorder.record(case.name, policy, "eager", checks, "lazy build")


def lazy_build_property(case, policy, recorder=PROCESS):
    """The layer builds from an input shape with an unknown batch
    dimension, creates the reference's weights (shapes and names), then
    behaves as the reference on other batch sizes and shapes with that last
    dimension (accepting what it accepts, with the same output shapes) and
    on a changed last dimension: where the reference raises, a ValueError
    naming the layer, the expected and the received dimension; where it
    accepts (a configuration without weights), the same output shape."""

    @_settings("lazy_build")
    @given(data=st.data())
    def lazy_build(data):
        kwargs = case.draw_kwargs(data)
        first = case.draw_input_shape(data, kwargs)
        last = first[-1]
        n_calls = data.draw(st.integers(1, 3), label="number of calls")
        shapes = []
        for i in range(n_calls):
            s = case.draw_input_shape(data, kwargs)
            shapes.append(tuple(s[:-1]) + (last,))
        wrong = data.draw(st.integers(1, max(65, last + 1)).filter(
            lambda d: d != last), label="changed last dimension")
        check_lazy_build(case, policy, kwargs, first, shapes, wrong,
                         recorder)

    lazy_build.__name__ = f"lazy_build[{case.name}-{policy}]"
    return lazy_build


# -- 3. get_config / from_config ------------------------------------------

def check_config(case, policy, kwargs, x, recorder=PROCESS):
    """One example of the config property."""
    missing = missing_parameters(case)
    assert not missing, (
        f"{case.name} does not take the reference's constructor "
        f"parameter(s) {missing} (declare config_ignore_keys for those it "
        "leaves out on purpose)")
    layer = _make(case, kwargs, policy)
    reference = _make(case, kwargs, policy, case.reference)
    cfg = layer.get_config()
    ignore = set(case.config_ignore_keys) | {"name"}
    ref_cfg = {k: v for k, v in reference.get_config().items()
               if k not in ignore}
    mine = {k: v for k, v in cfg.items() if k != "name"}
    assert mine == ref_cfg, (
        f"config differs from the reference's:\n  custom    {mine}\n"
        f"  reference {ref_cfg}")
    clone = type(layer).from_config(cfg)
    assert clone.get_config() == cfg, "from_config(get_config()) differs"
    type(reference).from_config(cfg)  # the reference can load it too
    # ... and the custom class loads the reference's config: a model built
    # with the reference can be rebuilt with the custom layer.
    try:
        swapped = type(layer).from_config(reference.get_config())
    except Exception as exc:  # noqa: BLE001 - reported as a failure
        raise AssertionError(
            f"{type(layer).__name__}.from_config(<the reference's config>) "
            f"failed with {type(exc).__name__}: {exc}") from exc
    got = {k: v for k, v in swapped.get_config().items() if k != "name"}
    assert got == mine, (
        f"{type(layer).__name__} built from the reference's config has "
        f"config\n  {got}\nexpected\n  {mine}")
    x = _compat.input_tensor(x)
    layer(x)
    clone(x)
    clone.set_weights(layer.get_weights())
    comp = compare_expected("config", to_numpy(clone(x)), to_numpy(layer(x)),
                            tolerance=None)
    assert comp.passed, comp.describe()
    recorder.record(case.name, policy, "eager", [comp], "config")


def missing_parameters(case) -> list:
    """Constructor parameters of the reference that the custom layer does
    not name (found by introspection, so that a new argument in a new Keras
    shows up in the tox matrix), minus the declared ``config_ignore_keys``.
    Keyword-only catch-alls (``**kwargs``) do not count as naming one."""
    import inspect

    def names(factory):
        target = factory.__init__ if isinstance(factory, type) else factory
        params = inspect.signature(target).parameters.values()
        return {p.name for p in params if p.kind not in (
            p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self"}

    base = names(keras.layers.Layer)
    return sorted(names(case.reference) - names(case.custom) - base
                  - set(case.config_ignore_keys))


def config_property(case, policy, recorder=PROCESS):
    """``from_config(get_config())`` rebuilds an identical layer; the
    config has the reference's keys and values (minus the declared
    ``config_ignore_keys``); configs load both ways (the reference class
    loads ours, ours loads the reference's); and the custom constructor
    names every parameter of the reference's."""

    @_settings("config")
    @given(data=st.data())
    def config(data):
        kwargs = case.draw_kwargs(data)
        x = draw_input(data, case, policy, kwargs, max_specials=0)
        check_config(case, policy, kwargs, x, recorder)

    config.__name__ = f"config[{case.name}-{policy}]"
    return config


# -- 4. save / load round trips -------------------------------------------

_FORMAT_LABELS = {"keras": ".keras", "h5": "HDF5", "savedmodel": "SavedModel"}


def check_saving(case, policy, fmt, kwargs, x, seed, recorder=PROCESS):
    """One example of the save/load property."""
    label = _FORMAT_LABELS[fmt]
    layer = _make(case, kwargs, policy)
    model = keras.Sequential([keras.Input(x.shape[1:]), layer])
    model.set_weights(cst.random_weights(np.random.default_rng(seed),
                                         model.get_weights()))
    before = to_numpy(model(x))
    with tempfile.TemporaryDirectory() as tmp:
        path = _compat.save_path(tmp, fmt)
        try:
            _compat.save_model(model, path, fmt)
            loaded = _compat.load_model(path, fmt)
        except Exception as exc:  # noqa: BLE001 - report, do not crash
            raise AssertionError(
                f"{label} round trip of {case.name}({kwargs}) failed "
                f"with {type(exc).__name__}: {exc}") from exc
        if isinstance(loaded, keras.Model):
            inner = loaded.layers[-1]
            assert type(inner) is type(layer), (
                f"loaded layer is {type(inner).__name__}, expected "
                f"{type(layer).__name__}")
            names = [_compat.variable_name(w) for w in inner.weights]
            want = [_compat.variable_name(w) for w in layer.weights]
            assert names == want, (
                f"weight names after the {label} round trip: {names}, "
                f"expected {want}")
        after = to_numpy(loaded(x))
    check = f"saving/{fmt}"
    exact = case.is_exact(policy, "eager")
    comp = compare_expected(
        check, after, before,
        tolerance=None if exact else case.tolerance(policy, check),
        differences=case.known_differences,
        scope=_scope(policy, "eager", kwargs, x), ledger=recorder.ledger)
    assert comp.passed, (f"{label} round trip output differs:\n"
                         f"{comp.describe()}")
    recorder.record(case.name, policy, "eager", [comp], "saving")


def saving_property(case, policy, recorder=PROCESS, fmt="keras"):
    """A Sequential model holding the layer saves in ``fmt`` (``keras``,
    ``h5`` or ``savedmodel``) and loads back, with the class resolved
    through registration, the same weight names and the same outputs (bit
    for bit where the case is exact, else within its tolerance). HDF5 and
    SavedModel store weights by name, which is where the tutorial's "name
    your weights" matters on Keras 2."""

    @_settings("saving")
    @given(data=st.data())
    def saving(data):
        kwargs, x, seed = _draw_setup(data, case, policy, nonfinite_ok=False)
        check_saving(case, policy, fmt, kwargs, x, seed, recorder)

    saving.__name__ = f"saving[{case.name}-{policy}-{fmt}]"
    return saving


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
    """One example of the numeric-gradient property."""
    kinks = np.asarray(case.kinks(kwargs), np.float64)
    for k in kinks:  # push inputs off the kinks
        near = np.abs(x - k) < KINK_MARGIN
        x = np.where(near, k + np.where(x >= k, 2, -2) * KINK_MARGIN, x)
    layer = _make(case, kwargs, "float64")
    layer(x)
    rng = np.random.default_rng(seed)
    weights = cst.random_weights(rng, layer.get_weights())
    layer.set_weights(weights)
    out = forward_backward(layer, x, None).output
    g = rng.standard_normal(out.shape)
    fb = forward_backward(layer, x, g)
    # One random direction for the input and each weight at once.
    dx = rng.standard_normal(x.shape)
    dws = [rng.standard_normal(w.shape) for w in weights]
    analytic = float(np.sum(fb.input_grad * dx) + sum(
        np.sum(gw * d) for gw, d in zip(fb.weight_grads, dws)))
    h = NUMERIC_STEP

    def f(sign):
        layer.set_weights([w + sign * h * d for w, d in zip(weights, dws)])
        return float(np.sum(to_numpy(layer(x + sign * h * dx)) * g))

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
    can): checked by running the reference once in float64."""
    reason = _compat.float64_unavailable(needs_matmul=False)
    if reason:
        return reason
    kwargs = case.smooth_kwargs(case.plain_kwargs())
    try:
        from customlayers.testing.declarations import _SimplestData
        reference = _make(case, kwargs, "float64", case.reference)
        shape = case.draw_input_shape(_SimplestData(), kwargs)
        y = to_numpy(reference(np.ones(shape, np.float64)))
    except Exception as exc:  # noqa: BLE001 - the reason is reported
        return (f"the reference could not run in float64 here "
                f"({type(exc).__name__}: {exc})")
    if y.dtype != np.float64:
        return (f"keras {_compat.KERAS_VERSION} on {_compat.BACKEND}: "
                f"{type(reference).__name__} returns {y.dtype} for a float64 "
                "input, so a float64 central difference cannot apply (the "
                "reference itself does not compute in float64 here)")
    return None


# -- 6. error inputs -----------------------------------------------------

def _raises(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - inspected by the caller
        return exc
    return None


def check_error_input(case, good_kwargs, error, recorder=PROCESS):
    """One declared :class:`~customlayers.testing.ErrorInput`, over a valid
    set of constructor arguments."""
    kwargs = {**good_kwargs, **error.init_kwargs}

    def attempt(factory):
        def run():
            layer = factory(**kwargs)
            if error.input_shape is not None:
                layer(_compat.input_tensor(
                    np.ones(error.input_shape, "float32")))
        return run

    if error.reference_raises:
        ref_exc = _raises(attempt(case.reference))
        assert ref_exc is not None, (
            f"the reference accepted {error.label}; the declaration says it "
            "raises")
    exc = _raises(attempt(case.custom))
    if exc is None:
        raise AssertionError(f"{case.name}: {error.label} was accepted; "
                             f"expected {error.error.__name__} matching "
                             f"{error.match!r}")
    if not isinstance(exc, error.error):
        raise AssertionError(
            f"{case.name}: {error.label} raised {type(exc).__name__}: {exc}; "
            f"expected {error.error.__name__} matching {error.match!r}")
    assert re.search(error.match, str(exc)), (
        f"{case.name}: the {type(exc).__name__} for {dict(error.init_kwargs)}"
        f" does not match {error.match!r}: {str(exc)!r}")
    recorder.record(case.name, "-", "-", [fact_check("error input", True)],
                    "error inputs")


def error_inputs_property(case, recorder=PROCESS):
    """Each declared error input is refused with the declared exception and
    message, over random valid arguments, wherever the reference refuses it
    too (and where the custom layer is stricter on purpose)."""

    @_settings("error_inputs")
    @given(data=st.data())
    def error_inputs(data):
        good = case.draw_kwargs(data)
        case.custom(**good)
        case.reference(**good)
        error = data.draw(st.sampled_from(case.error_inputs),
                          label="error input")
        check_error_input(case, good, error, recorder)

    error_inputs.__name__ = f"error_inputs[{case.name}]"
    return error_inputs


def names_value(name: str, value) -> str:
    """A regex matching a message that names argument ``name`` and its
    ``value`` (in either order)."""
    shown = "nan" if isinstance(value, float) and math.isnan(value) \
        else repr(value)
    return f"(?s)(?=.*{re.escape(name)})(?=.*{re.escape(shown)})"


# -- 7. second order and forward mode ----------------------------------------

def _built_pair(case, policy, kwargs, x, seed):
    custom = _make(case, kwargs, policy)
    reference = _make(case, kwargs, policy, case.reference)
    build_pair(custom, reference, x, weight_map=case.weight_map)
    from customlayers.testing.equivalence import copy_weights, random_weights
    copy_weights(custom, reference, weight_map=case.weight_map,
                 weights=random_weights(custom, seed))
    return custom, reference


def _weight_names(layer):
    return [_compat.variable_name(w).split("/")[-1]
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
    (no dependence) included."""
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


def second_order_property(case, policy, mode, recorder=PROCESS):
    """Hessian-vector products (reverse over reverse) of ``<g, f(x, W)>``
    with respect to the input and every weight equal the reference's,
    zeros included: ``None`` where the reference gives a tensor fails (a
    hand-written gradient with no path to ``x`` does that)."""

    @_settings(f"second_order/{mode}")
    @given(data=st.data())
    def second_order(data):
        kwargs, x, seed, g = _draw_derivative_example(data, case, policy)
        check_second_order(case, policy, mode, kwargs, x, seed, g, recorder)

    second_order.__name__ = f"second_order[{case.name}-{policy}-{mode}]"
    return second_order


def check_forward_mode(case, policy, mode, kwargs, x, seed, upstream,
                       recorder=PROCESS):
    """One example: ``J v`` equals the reference's, and ``<g, J v>`` equals
    ``<J^T g, v>`` for the custom layer."""
    from customlayers.testing import autodiff
    custom, reference = _built_pair(case, policy, kwargs, x, seed)
    v = np.random.default_rng(seed + 2).standard_normal(
        np.shape(x)).astype(x.dtype)
    y, jv, vjp = autodiff.jvp(custom, x, v, upstream, mode)
    _, ref_jv, _ = autodiff.jvp(reference, x, v, upstream, mode)
    exact = case.is_exact(policy, mode)
    scope = _scope(policy, mode, kwargs, x)
    comps = [compare_expected(
        "jvp", jv, ref_jv,
        tolerance=None if exact else case.tolerance(policy, "jvp"),
        differences=case.known_differences, scope=scope,
        ledger=recorder.ledger)]
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
    ``<g, J v> == <J^T g, v>``."""

    @_settings(f"forward_mode/{mode}")
    @given(data=st.data())
    def forward_mode(data):
        kwargs, x, seed, g = _draw_derivative_example(data, case, policy)
        check_forward_mode(case, policy, mode, kwargs, x, seed, g, recorder)

    forward_mode.__name__ = f"forward_mode[{case.name}-{policy}-{mode}]"
    return forward_mode


# -- 8. every input dtype ------------------------------------------------------

#: The input dtypes a user may feed (the layer keeps its default policy).
INPUT_DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64",
                "float16", "bfloat16", "float32", "float64")


def check_input_dtype(case, kwargs, x, seed, recorder=PROCESS):
    """One example: under the default dtype policy, an input of ``x``'s
    dtype gives the reference's output dtype and values, or the same
    exception type where the reference refuses it."""
    custom = case.custom(**kwargs)
    reference = case.reference(**kwargs)
    probe = np.ones((1,) + tuple(np.shape(x)[1:]), "float32")
    build_pair(custom, reference, probe, weight_map=case.weight_map)
    from customlayers.testing.equivalence import copy_weights, random_weights
    copy_weights(custom, reference, weight_map=case.weight_map,
                 weights=random_weights(custom, seed))
    dtype = np.asarray(x).dtype.name
    (k, a), (rk, b) = _value_or_error(custom, x), _value_or_error(
        reference, x)
    check = f"input dtype {dtype}"
    if rk == "error":
        ok = k == "error" and isinstance(a, type(b))
        comp = fact_check(check, ok, (
            f"the reference raises {type(b).__name__} for a {dtype} input "
            f"({str(b)[:200]}); the custom layer "
            + (f"raises {type(a).__name__}: {str(a)[:200]}" if k == "error"
               else f"returns {a.dtype}")))
    elif k == "error":
        comp = fact_check(check, False, (
            f"the custom layer raises {type(a).__name__} for a {dtype} input "
            f"({str(a)[:300]}); the reference returns {b.dtype}"))
    elif a.dtype != b.dtype:
        comp = fact_check(check, False, (
            f"a {dtype} input gives {a.dtype}; the reference gives "
            f"{b.dtype}"))
    else:
        exact = case.is_exact("float32", "eager")
        comp = compare_expected(
            check, a, b, tolerance=None if exact else case.tolerance(
                b.dtype.name if b.dtype.kind == "f" or
                b.dtype.name == "bfloat16" else "float32", "output"),
            differences=case.known_differences,
            scope=_scope("float32", "eager", kwargs, x),
            ledger=recorder.ledger)
    assert comp.passed, f"{case.name}: {comp.describe()}"
    recorder.record(case.name, dtype, "eager", [comp], "input dtypes")


def _value_or_error(layer, x):
    try:
        return "ok", to_numpy(layer(_compat.input_tensor(x)))
    except Exception as exc:  # noqa: BLE001 - compared with the reference
        return "error", exc


def input_dtypes_property(case, recorder=PROCESS):
    """Every input dtype a user may feed (integers, bool, floats), under the
    default dtype policy: the reference's output dtype and values, or the
    reference's exception type."""

    @_settings("input_dtypes")
    @given(data=st.data())
    def input_dtypes(data):
        kwargs = case.draw_kwargs(data)
        dtype = data.draw(st.sampled_from(INPUT_DTYPES), label="input dtype")
        shape = case.draw_input_shape(data, kwargs)
        seed = data.draw(st.integers(0, 2 ** 31 - 1), label="seed")
        rng = np.random.default_rng(seed)
        lo = 0 if dtype in ("bool", "uint8") else -4
        hi = 2 if dtype == "bool" else 6
        values = rng.integers(lo, hi, size=shape)
        kinks = [k for k in case.kinks(kwargs) if float(k).is_integer()
                 and lo <= k < hi]
        flat = values.reshape(-1)
        for i, k in enumerate(kinks[: flat.size]):
            flat[i] = int(k)  # integer kinks, exactly
        x = values.astype(cst.np_dtype(dtype))
        check_input_dtype(case, kwargs, x, seed, recorder)

    input_dtypes.__name__ = f"input_dtypes[{case.name}]"
    return input_dtypes
