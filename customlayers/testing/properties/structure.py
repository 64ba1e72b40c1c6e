"""The layer as an object: lazy build and shapes, config, save and load."""

from __future__ import annotations

import tempfile

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from customlayers._keras import keras, variable_name
from customlayers.testing import strategies as cst
from customlayers.testing.convert import input_tensor, to_numpy
from customlayers.testing.equivalence import fact_check
from customlayers.testing.expectations import (applicable_differences,
                                               compare_expected)
from customlayers.testing.report import PROCESS
from customlayers.testing.saving import (load_model, loads_as_graph,
                                         save_model, save_path, served_graph)

from customlayers.testing.properties._base import (_draw_setup, _make, _scope, _settings, draw_input)


# -- 2. lazy build, varying batch sizes, changed last dimension ----------

def _outcome(layer, x, mode="eager"):
    """``("ok", output shape)`` or ``("error", exception)`` for a call of
    ``layer`` on ``x`` in ``mode`` (graph and compiled: traced, or compiled,
    for this input's shape, forward only)."""
    try:
        if mode == "eager":
            return "ok", tuple(to_numpy(layer(input_tensor(x))).shape)
        from customlayers.testing.backends import forward_backward
        return "ok", tuple(forward_backward(layer, x, None,
                                            mode).output.shape)
    except Exception as exc:  # noqa: BLE001 - compared with the reference
        return "error", exc


def _refusal_declared(case, policy, mode, kwargs, x, recorder) -> bool:
    """Whether a ``what="refusal"`` :class:`KnownDifference` of ``case``
    covers a call on ``x`` that the reference refused and the custom layer
    computed (counted in the recorder's ledger as applied and needed)."""
    found = [d for d in applicable_differences(
        case.known_differences, "lazy build", _scope(policy, mode, kwargs, x))
        if d.what == "refusal"]
    for d in found:
        recorder.ledger.applied[d.label] += 1
        recorder.ledger.needed[d.label] += 1
    return bool(found)


def rank_probes(shape) -> list:
    """Calls of another rank than ``shape`` (the shape a layer was built
    on) that every lazy-build example makes, placed on purpose: ``shape``
    less its batch axis, and with a batch axis of 2 added. A layer's
    rank-dependent code (how weights broadcast against the input) is where
    it can part from the reference on a rank it was not built for; the
    reference decides whether the call is valid."""
    shape = tuple(shape)
    return [shape[1:], (2,) + shape]


def check_lazy_build(case, policy, kwargs, first_shape, call_shapes, wrong,
                     recorder=PROCESS, mode="eager"):
    """One example of the lazy-build property (see
    :func:`lazy_build_property`); ``mode`` is how the built layers are
    called (eager, or traced/compiled for each input's shape)."""
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
    names = [variable_name(w) for w in layer.weights]
    ref_names = [variable_name(w) for w in reference.weights]
    assert names == ref_names, (
        f"weight names differ: custom {names}, reference {ref_names}")
    before = [np.asarray(w).copy() for w in layer.get_weights()]
    dtype = cst.input_dtype(policy)
    ids = case.id_range(kwargs)
    fill = 1
    if ids is not None:  # integer ids: the lowest id, in the first dtype
        dtype, fill = case.id_dtypes[0], ids[0]
    # The shape it was built on (batch 2) first: the reference must
    # compute it, or the example tests nothing (a harness fault, such as a
    # traced call that fails for both layers, must not pass as agreement).
    x = np.full((2,) + tuple(first_shape[1:]), fill, dtype)
    rk, b = _outcome(reference, x, mode)
    if rk == "error":
        raise RuntimeError(
            f"the reference {case.name} refused a call in {mode} mode on "
            f"the shape it was built on, {x.shape} ({type(b).__name__}: "
            f"{b}): the lazy-build example cannot compare anything")
    for i, shape in enumerate(call_shapes):
        x = np.full(shape, fill, dtype)
        (k, a), (rk, b) = (_outcome(layer, x, mode),
                           _outcome(reference, x, mode))
        if rk == "error" and k == "ok" and _refusal_declared(
                case, policy, mode, kwargs, x, recorder):
            continue
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
    bad = np.full((2,) + tuple(first_shape[1:-1]) + (wrong,), fill, dtype)
    (k, exc), (rk, ref_exc) = (_outcome(layer, bad, mode),
                               _outcome(reference, bad, mode))
    if rk == "error" and k == "ok" and _refusal_declared(
            case, policy, mode, kwargs, bad, recorder):
        rk, ref_exc = k, exc
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
        # Traced, the refusal may come from the tracer or the compiler (and
        # the reference's from anywhere in its graph): refusing is the
        # contract there; the error's type and text are the eager items'.
        if mode == "eager":
            _assert_names_the_dimensions(case, layer, bad, exc, ref_exc,
                                         last, wrong)
    checks.append(fact_check("changed last dim", True))
    recorder.record(case.name, policy, mode, checks, "lazy build")


def _assert_names_the_dimensions(case, layer, bad, exc, ref_exc, last,
                                 wrong):
    """The error for a changed last dimension: a ValueError (or the
    reference's type) naming the layer and both dimensions."""
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


def lazy_build_property(case, policy, recorder=PROCESS, mode="eager"):
    """The layer builds from an input shape with an unknown batch
    dimension, creates the reference's weights (shapes and names), then
    behaves as the reference on other batch sizes and shapes with that last
    dimension, the built shape's rank neighbours among them
    (:func:`rank_probes`; accepting what it accepts, with the same output
    shapes) and
    on a changed last dimension: where the reference raises, a ValueError
    naming the layer, the expected and the received dimension; where it
    accepts (a configuration without weights), the same output shape.

    ``mode`` ``"graph"`` or ``"compiled"``: the same calls, each traced (or
    compiled) for its input's shape; a changed last dimension must be
    refused there too (its message is checked eagerly). An example's input
    shapes may have another rank than the one the layer was built on, which
    is where a layer's traced code can part from its eager code
    (LayerNormalization's weight reshape, found by the JAX env only:
    tests/meta_tests/test_normalization_bugs.py)."""

    key = "lazy_build" if mode == "eager" else f"lazy_build/{mode}"

    @_settings(key)
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
        shapes += rank_probes(first)
        wrong = data.draw(st.integers(1, max(65, last + 1)).filter(
            lambda d: d != last), label="changed last dimension")
        check_lazy_build(case, policy, kwargs, first, shapes, wrong,
                         recorder, mode)

    suffix = "" if mode == "eager" else f"-{mode}"
    lazy_build.__name__ = f"lazy_build[{case.name}-{policy}{suffix}]"
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
    ref_full = {k: v for k, v in reference.get_config().items()
                if k not in case.config_ignore_keys}
    try:
        swapped = type(layer).from_config(ref_full)
    except Exception as exc:  # noqa: BLE001 - reported as a failure
        raise AssertionError(
            f"{type(layer).__name__}.from_config(<the reference's config, "
            f"less config_ignore_keys>) "
            f"failed with {type(exc).__name__}: {exc}") from exc
    got = {k: v for k, v in swapped.get_config().items() if k != "name"}
    assert got == mine, (
        f"{type(layer).__name__} built from the reference's config has "
        f"config\n  {got}\nexpected\n  {mine}")
    x = input_tensor(x)
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
    from customlayers.testing.backends import is_ids
    from customlayers.testing.equivalence import positive_indices
    model = keras.Sequential([keras.Input(
        x.shape[1:], **({"dtype": x.dtype.name} if is_ids(x) else {})),
        layer])
    model.set_weights(cst.random_weights(
        np.random.default_rng(seed), model.get_weights(),
        positive=positive_indices(model, case.positive_weights)))
    # A served graph (Keras 3's SavedModel export) is compared with the same
    # model traced the same way before saving, not with its eager output:
    # Grappler rewrites a graph's arithmetic (LayerNormalization: reordered
    # sums, 1-64 ULP; with a one-element axis, x * inv - mean * inv cancels
    # to beta on a coarser grid in eager mode), and the round trip must
    # keep the function, not match another mode.
    mode = "graph" if loads_as_graph(fmt) else "eager"
    before = to_numpy((served_graph(model, x) if mode == "graph"
                       else model)(x))
    with tempfile.TemporaryDirectory() as tmp:
        path = save_path(tmp, fmt)
        try:
            save_model(model, path, fmt)
            loaded = load_model(path, fmt)
        except Exception as exc:  # noqa: BLE001 - report, do not crash
            raise AssertionError(
                f"{label} round trip of {case.name}({kwargs}) failed "
                f"with {type(exc).__name__}: {exc}") from exc
        if isinstance(loaded, keras.Model):
            inner = loaded.layers[-1]
            assert type(inner) is type(layer), (
                f"loaded layer is {type(inner).__name__}, expected "
                f"{type(layer).__name__}")
            names = [variable_name(w) for w in inner.weights]
            want = [variable_name(w) for w in layer.weights]
            assert names == want, (
                f"weight names after the {label} round trip: {names}, "
                f"expected {want}")
        after = to_numpy(loaded(x))
    check = f"saving/{fmt}"
    exact = case.is_exact(policy, mode)
    comp = compare_expected(
        check, after, before,
        tolerance=None if exact else case.tolerance(policy, check),
        differences=case.known_differences,
        scope=_scope(policy, mode, kwargs, x), ledger=recorder.ledger)
    assert comp.passed, (f"{label} round trip output differs:\n"
                         f"{comp.describe()}")
    recorder.record(case.name, policy, mode, [comp], "saving")


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
