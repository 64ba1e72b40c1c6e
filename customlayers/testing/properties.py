"""The generic properties, run for every declared :class:`LayerCase`.

Each ``*_property(case, ...)`` returns a Hypothesis test function (already
decorated with ``@given`` and ``@settings``) that raises on the first
falsifying example, after shrinking it. ``tests/property`` calls them under
pytest; ``customlayers verify`` calls the same functions and records what
each example measured in a :class:`Recorder`.

Example counts scale with the active Hypothesis profile: a property runs
``weight * max_examples`` examples (at least 1), so ``--hypothesis-profile``
(``ci``, ``dev``, ``thorough``) sizes the whole battery at once.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customlayers import _compat
from customlayers._compat import keras, to_numpy
from customlayers.testing import strategies as cst
from customlayers.testing.backends import forward_backward
from customlayers.testing.equivalence import assert_equivalent, build_pair
from customlayers.testing.numerics import compare_arrays
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
    "validation": 2.5,
}


def n_examples(key: str) -> int:
    """Examples for property ``key`` under the active profile."""
    return max(1, round(settings().max_examples * WEIGHTS[key]))


@dataclasses.dataclass
class CheckStats:
    """What one check measured over all examples of a property."""

    examples: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: float = 0.0
    bit_exact: bool = True
    failed: bool = False

    def add(self, comparison) -> None:
        self.examples += 1
        self.max_abs = max(self.max_abs, comparison.max_abs)
        self.max_rel = max(self.max_rel, comparison.max_rel)
        self.max_ulp = max(self.max_ulp, comparison.max_ulp)
        self.bit_exact &= comparison.bit_exact
        self.failed |= not comparison.passed


class Recorder:
    """Collects :class:`CheckStats` keyed by (case, check, policy, mode)."""

    def __init__(self):
        self.stats = collections.defaultdict(CheckStats)

    def record(self, case, policy, mode, comparisons, kind) -> None:
        """Record one passed example of property ``kind``."""
        EXAMPLES_RUN[kind] += 1
        for c in comparisons:
            self.stats[(case, c.check, policy, mode)].add(c)


_NULL = Recorder()

#: Examples run so far in this process, per property kind (for reports).
EXAMPLES_RUN = collections.Counter()


def _settings(key):
    return settings(settings(), max_examples=n_examples(key),
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


def _make(case, kwargs, policy, factory=None):
    return (factory or case.custom)(**kwargs, dtype=policy)


def _draw_setup(data, case, policy, *, nonfinite_ok=True):
    """Constructor args, an input and (random) weights for one example."""
    kwargs = case.draw_kwargs(data)
    shape = case.draw_input_shape(data, kwargs)
    nonfinite = nonfinite_ok and data.draw(
        st.booleans(), label="include NaN/inf in the input")
    kinks = case.kinks(kwargs)
    x = cst.draw_array(data, shape, cst.input_dtype(policy),
                       kinks=kinks, nonfinite=nonfinite, label="input",
                       must_include=_distinct((0.0, -0.0) + tuple(kinks)))
    seed = data.draw(st.integers(0, 2 ** 32 - 1), label="weights seed")
    return kwargs, x, np.random.default_rng(seed)


def _distinct(values):
    """Values without repeats, telling -0.0 from +0.0 (a set would not)."""
    seen, out = set(), []
    for v in values:
        key = repr(float(v))
        if key not in seen:
            seen.add(key)
            out.append(float(v))
    return tuple(out)


# -- 1. outputs, input gradients, weight gradients ------------------------

def equivalence_property(case, policy, mode, recorder=_NULL):
    """Outputs and gradients (input and every weight) equal the
    reference's, in ``mode``, under dtype ``policy``."""

    @_settings(f"equivalence/{mode}")
    @given(data=st.data())
    def equivalence(data):
        kwargs, x, rng = _draw_setup(data, case, policy)
        custom = _make(case, kwargs, policy)
        reference = _make(case, kwargs, policy, case.reference)
        build_pair(custom, reference, x, weight_map=case.weight_map)
        weights = cst.random_weights(rng, custom.get_weights())
        out_shape = tuple(reference.compute_output_shape(x.shape))
        upstream = cst.draw_array(data, out_shape,
                                  cst.compute_dtype(policy),
                                  label="upstream gradient", max_specials=2)
        exact = case.exact(policy, mode)
        report = assert_equivalent(
            custom, reference, x, mode=mode, upstream=upstream,
            weights=weights, weight_map=case.weight_map, exact=exact,
            tolerance=None if exact else case.tolerance(policy),
            signed_zeros=case.signed_zeros(policy, mode),
            flush_subnormals=case.flush_subnormals(policy, mode))
        recorder.record(case.name, policy, mode, report.comparisons,
                        "equivalence")

    equivalence.__name__ = f"equivalence[{case.name}-{policy}-{mode}]"
    return equivalence


# -- 2. lazy build, varying batch sizes, changed last dimension ----------

def lazy_build_property(case, policy, recorder=_NULL):
    """The layer builds from the first input's last dimension, then accepts
    any batch size and rank (>= 2) with that last dimension, and rejects a
    different last dimension with a ValueError naming the layer, the
    expected and the received dimension."""

    @_settings("lazy_build")
    @given(data=st.data())
    def lazy_build(data):
        kwargs = case.draw_kwargs(data)
        last = data.draw(st.integers(1, 64), label="last dimension")
        layer = _make(case, kwargs, policy)
        reference = _make(case, kwargs, policy, case.reference)
        assert not layer.weights, "weights exist before the first call"
        layer.build((None, last))  # unknown batch dimension
        reference.build((None, last))
        shapes_ok = ([tuple(w.shape) for w in layer.weights]
                     == [tuple(w.shape) for w in reference.weights])
        assert shapes_ok, (
            f"weight shapes after build((None, {last})): custom "
            f"{[tuple(w.shape) for w in layer.weights]}, reference "
            f"{[tuple(w.shape) for w in reference.weights]}")
        names = [_compat.variable_name(w) for w in layer.weights]
        ref_names = [_compat.variable_name(w) for w in reference.weights]
        assert names == ref_names, (
            f"weight names differ: custom {names}, reference {ref_names}")
        before = [np.asarray(w).copy() for w in layer.get_weights()]
        n_calls = data.draw(st.integers(1, 3), label="number of calls")
        for i in range(n_calls):
            shape = cst.draw_shape(data, last_dim=last, max_size=512,
                                   label=f"call {i} shape")
            x = np.ones(shape, cst.input_dtype(policy))
            y = to_numpy(layer(_compat.input_tensor(x)))
            want = tuple(reference.compute_output_shape(shape))
            assert y.shape == want, (
                f"call {i}: output shape {y.shape}, expected {want}")
        after = layer.get_weights()
        assert all(np.array_equal(a, b) for a, b in zip(before, after)), \
            "calling the layer changed its weights"
        if not case.has_weights:
            recorder.record(case.name, policy, "eager", [_ok("lazy build")],
                            "lazy build")
            return
        wrong = data.draw(st.integers(1, 65).filter(lambda d: d != last),
                          label="changed last dimension")
        bad = _compat.input_tensor(
            np.ones((2, wrong), cst.input_dtype(policy)))
        try:
            layer(bad)
        except Exception as exc:  # noqa: BLE001 - any other type is a bug
            if not isinstance(exc, ValueError):
                raise AssertionError(
                    f"{case.name} built for last dimension {last} raised "
                    f"{type(exc).__name__} for an input of shape "
                    f"{bad.shape}; expected a ValueError naming the layer "
                    f"and both dimensions: {exc}") from None
            msg = str(exc)
            missing = [s for s in (layer.name, str(last), str(wrong))
                       if s not in msg]
            assert not missing, (f"the error for last dimension {wrong} "
                                 f"(built for {last}) does not name "
                                 f"{missing}: {msg!r}")
        else:
            raise AssertionError(
                f"{case.name} built for last dimension {last} accepted an "
                f"input of shape {bad.shape} without a ValueError")
        recorder.record(case.name, policy, "eager",
                        [_ok("lazy build"), _ok("changed last dim error")],
                        "lazy build")

    lazy_build.__name__ = f"lazy_build[{case.name}-{policy}]"
    return lazy_build


def _ok(check):
    from customlayers.testing.numerics import Comparison
    return Comparison(check=check, shape=(), dtype="-", passed=True,
                      bit_exact=True, max_abs=0.0, max_rel=0.0, max_ulp=0.0,
                      n_bad=0, n_total=1)


# -- 3. get_config / from_config ------------------------------------------

_REFERENCE_ONLY_KEYS = {"quantization_config", "lora_rank", "lora_alpha"}


def config_property(case, policy, recorder=_NULL):
    """``from_config(get_config())`` rebuilds an identical layer; the
    config has the reference's keys and values (minus its LoRA and
    quantization extras), and the reference class loads it too."""

    @_settings("config")
    @given(data=st.data())
    def config(data):
        kwargs = case.draw_kwargs(data)
        layer = _make(case, kwargs, policy)
        reference = _make(case, kwargs, policy, case.reference)
        cfg = layer.get_config()
        ref_cfg = {k: v for k, v in reference.get_config().items()
                   if k not in _REFERENCE_ONLY_KEYS and k != "name"}
        mine = {k: v for k, v in cfg.items() if k != "name"}
        assert mine == ref_cfg, (
            f"config differs from the reference's:\n  custom    {mine}\n"
            f"  reference {ref_cfg}")
        clone = type(layer).from_config(cfg)
        assert clone.get_config() == cfg, "from_config(get_config()) differs"
        type(reference).from_config(cfg)  # the reference can load it too
        shape = case.draw_input_shape(data, kwargs)
        x = cst.draw_array(data, shape, cst.input_dtype(policy),
                           label="input", max_specials=0)
        x = _compat.input_tensor(x)
        layer(x)
        clone(x)
        clone.set_weights(layer.get_weights())
        comp = compare_arrays("config round trip output", to_numpy(clone(x)),
                              to_numpy(layer(x)), tolerance=None)
        assert comp.passed, comp.describe()
        recorder.record(case.name, policy, "eager", [comp], "config")

    config.__name__ = f"config[{case.name}-{policy}]"
    return config


# -- 4. save / load round trips -------------------------------------------

_FORMAT_LABELS = {"keras": ".keras", "h5": "HDF5", "savedmodel": "SavedModel"}


def saving_property(case, policy, recorder=_NULL, fmt="keras"):
    """A Sequential model holding the layer saves in ``fmt`` (``keras``,
    ``h5`` or ``savedmodel``; see ``_compat.SAVE_FORMATS``) and loads back,
    with the class resolved through registration, and gives identical
    outputs. HDF5 and SavedModel store weights by name, which is where the
    tutorial's "name your weights" matters on Keras 2: two unnamed weights
    there are both ``Variable:0`` and the save fails."""
    label = _FORMAT_LABELS[fmt]

    @_settings("saving")
    @given(data=st.data())
    def saving(data):
        kwargs, x, rng = _draw_setup(data, case, policy, nonfinite_ok=False)
        layer = _make(case, kwargs, policy)
        model = keras.Sequential([keras.Input(x.shape[1:]), layer])
        model.set_weights(cst.random_weights(rng, model.get_weights()))
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
        comp = compare_arrays(f"{label} round trip output", after, before,
                              tolerance=None)
        assert comp.passed, comp.describe()
        recorder.record(case.name, policy, "eager", [comp], "saving")

    saving.__name__ = f"saving[{case.name}-{policy}-{fmt}]"
    return saving


# -- 5. float64 numeric gradients away from the kinks ----------------------

#: Central differences with step h: truncation O(h**2 * f''') ~ 1e-12 and
#: roundoff O(u / h) ~ 1e-10 relative for h = 1e-6 in float64. 1e-6 relative
#: leaves room for curvature (tanh, gelu) and is far below a wrong kink (1.0)
#: or a missing term.
NUMERIC_TOLERANCE = Tolerance(
    rtol=1e-6, atol=1e-7,
    reason="float64 central difference, h=1e-6: truncation ~h**2, roundoff "
           "~u/h ~1e-10; 1e-6 allows curvature of smooth activations.")
NUMERIC_STEP = 1e-6
KINK_MARGIN = 1e-3


def numeric_gradient_property(case, recorder=_NULL):
    """In float64, away from the kinks, the analytic directional derivative
    of ``sum(f(x, W) * g)`` along a random direction equals the central
    difference: an independent check of the gradients, not relying on the
    reference at all."""

    @_settings("numeric_gradient")
    @given(data=st.data())
    def numeric_gradient(data):
        kwargs = case.smooth_kwargs(case.draw_kwargs(data))
        kwargs = {**kwargs, **{k: None for k in (
            "kernel_regularizer", "bias_regularizer", "activity_regularizer",
            "kernel_constraint", "bias_constraint") if k in kwargs}}
        shape = cst.draw_shape(data, max_size=256)
        x = cst.draw_array(data, shape, "float64", label="input",
                           max_specials=0)
        kinks = np.asarray(case.kinks(kwargs), np.float64)
        for k in kinks:  # push inputs off the kinks
            near = np.abs(x - k) < KINK_MARGIN
            x = np.where(near, k + np.where(x >= k, 2, -2) * KINK_MARGIN, x)
        layer = _make(case, kwargs, "float64")
        layer(x)
        rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1),
                                              label="weights seed"))
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
        comp = compare_arrays("numeric gradient (float64)",
                              np.float64(analytic), np.float64(numeric),
                              tolerance=NUMERIC_TOLERANCE)
        assert comp.passed, comp.describe()
        recorder.record(case.name, "float64", "eager", [comp],
                        "numeric gradient")

    numeric_gradient.__name__ = f"numeric_gradient[{case.name}]"
    return numeric_gradient


# -- 6. constructor validation -------------------------------------------

def validation_property(case, recorder=_NULL):
    """Bad constructor arguments get a ValueError that names the argument
    and the bad value, wherever the reference rejects them (and where we
    are stricter on purpose); good ones construct."""
    triples = list(case.invalid_kwargs) + list(case.stricter_kwargs)

    @_settings("validation")
    @given(data=st.data())
    def validation(data):
        good = case.draw_kwargs(data)
        case.custom(**good)
        case.reference(**good)
        bad, name, value = data.draw(st.sampled_from(triples),
                                     label="invalid argument")
        kwargs = {**good, **bad}
        if (bad, name, value) in case.invalid_kwargs:
            try:
                case.reference(**kwargs)
            except (ValueError, TypeError):
                pass
            else:
                raise AssertionError(
                    f"the reference accepted {name}={value!r}; the "
                    "declaration lists it as invalid")
        try:
            case.custom(**kwargs)
        except ValueError as exc:
            msg = str(exc)
            shown = repr(value) if not isinstance(value, float) or not \
                math.isnan(value) else "nan"
            assert name in msg and shown in msg, (
                f"the error for {name}={value!r} does not name the argument "
                f"and the value: {msg!r}")
        else:
            raise AssertionError(f"{case.name}({name}={value!r}) was "
                                 "accepted; expected a ValueError")
        recorder.record(case.name, "-", "-", [_ok("validation")],
                        "validation")

    validation.__name__ = f"validation[{case.name}]"
    return validation
