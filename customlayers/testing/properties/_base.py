"""What every property shares: example counts per profile, settings, layer
construction and the inputs (guaranteed values placed on purpose)."""

from __future__ import annotations


import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from customlayers._keras import BACKEND
from customlayers.testing import strategies as cst
from customlayers.testing.profiles import base_settings
from customlayers.testing.stable_draws import StableProperty
from customlayers.testing.expectations import Scope

#: Share of the profile's ``max_examples`` each property runs.

WEIGHTS = {
    # Each equivalence example draws VALUE_SETS[mode] inputs (below): ci
    # runs 30/10/10 drawn examples per pair, policy and mode, 60/30/40
    # inputs. Graph and compiled mode trace (and compile) once per
    # signature and reuse it for later inputs and examples
    # (customlayers.testing.compiled_cache); a pair traces as one in
    # graph mode, each layer its own XLA program in compiled mode.
    "equivalence/eager": 0.3,
    "equivalence/graph": 0.1,
    "equivalence/compiled": 0.1,
    "lazy_build": 0.3,
    # Traced: a new trace (and compile) per call shape, 4 calls per example.
    "lazy_build/graph": 0.1,
    "lazy_build/compiled": 0.1,
    # Eager: as before the other modes; graph and compiled trace (and
    # compile) one function per example (a fresh pair each).
    "mask/eager": 0.3,
    "mask/graph": 0.1,
    "mask/compiled": 0.1,
    "config": 1.2,
    "saving": 0.03,
    "numeric_gradient": 0.5,
    "error_inputs": 2.5,
    "nonfinite_upstream/eager": 0.05,
    "nonfinite_upstream/graph": 0.05,
    "nonfinite_upstream/compiled": 0.1,
    "input_dtypes": 0.3,
    "second_order/eager": 0.1,
    "second_order/graph": 0.05,
    "second_order/compiled": 0.03,
    "forward_mode/eager": 0.1,
    "forward_mode/graph": 0.05,
    "forward_mode/compiled": 0.03,
    # Training-mode items (LayerCase.training) where they cost more than
    # their inference-mode twins (BatchNormalization's batch moments: ~2 s
    # an example for second order on the 2-core VM); the same draws, fewer.
    "second_order/eager/training": 0.05,
    "second_order/graph/training": 0.03,
    "nonfinite_upstream/compiled/training": 0.1,
    # A case with a RandomSpec (dropout-like): five calls per example.
    "randomness/eager": 0.2,
    "randomness/graph": 0.1,
    "randomness/compiled": 0.1,
    # state_steps training-mode calls per example, each compared.
    "state/eager": 0.2,
    "state/graph": 0.1,
    "state/compiled": 0.1,
}


#: Drawn inputs (value sets) per drawn example of the equivalence and
#: non-finite-upstream properties, per mode (issue 14). An example draws
#: the constructor arguments and the input shape once, then this many
#: inputs, weight seeds and upstream gradients; each is compared like an
#: example of its own (and counted as one), through the one built pair and,
#: in graph and compiled mode, the one traced (and compiled) program of that
#: signature (customlayers.testing.compiled_cache), so a compile serves
#: several inputs. Each value set holds the guaranteed values (zeros, kinks
#: and their neighbours, NaN/inf where drawn), as every example does.
VALUE_SETS = {"eager": 2, "graph": 3, "compiled": 4}

#: torch's compiled mode (``torch.compile``, inductor) has its own, smaller
#: weights: an inductor compile costs seconds per signature on the 2-core
#: CI VM (forward and backward; README "torch.compile"), where XLA and
#: ``jax.jit`` take a fraction of that, while a compiled call costs well
#: under a millisecond. So fewer drawn signatures and more value sets each
#: (:data:`TORCH_COMPILED_VALUE_SETS`); keys not listed use :data:`WEIGHTS`.
TORCH_COMPILED_WEIGHTS = {
    "lazy_build/compiled": 0.02,
    "equivalence/compiled": 0.03,
    "nonfinite_upstream/compiled": 0.03,
    "nonfinite_upstream/compiled/training": 0.03,
    "mask/compiled": 0.03,
    "second_order/compiled": 0.02,
    "forward_mode/compiled": 0.02,
    "state/compiled": 0.03,
    "randomness/compiled": 0.03,
}
#: Value sets per drawn example in torch's compiled mode (see above).
TORCH_COMPILED_VALUE_SETS = 12


def _torch_compiled(mode: str) -> bool:
    return BACKEND == "torch" and mode == "compiled"


def value_sets(mode: str) -> int:
    """Value sets per drawn example in ``mode`` (:data:`VALUE_SETS`;
    :data:`TORCH_COMPILED_VALUE_SETS` in torch's compiled mode)."""
    if _torch_compiled(mode):
        return TORCH_COMPILED_VALUE_SETS
    return VALUE_SETS.get(mode, 1)


def n_examples(key: str) -> int:
    """Examples for property ``key`` under the active profile (on torch,
    a ``.../compiled`` key listed in :data:`TORCH_COMPILED_WEIGHTS` takes
    its weight from there)."""
    weight = WEIGHTS[key]
    if BACKEND == "torch" and key in TORCH_COMPILED_WEIGHTS:
        weight = TORCH_COMPILED_WEIGHTS[key]
    return max(1, round(base_settings().max_examples * weight))


def _settings(key):
    """The decorator of property ``key``: its settings, and under a
    derandomized profile draws that do not depend on which modules the run
    imported (:mod:`customlayers.testing.stable_draws`)."""
    chosen = settings(base_settings(), max_examples=n_examples(key),
                      deadline=None,
                      suppress_health_check=[HealthCheck.too_slow,
                                             HealthCheck.data_too_large])

    def decorate(test):
        return StableProperty(chosen(test), chosen.derandomize)
    return decorate


def settings_for(mode=None, training=None):
    """``_settings`` for one item, as an inner property function calls it
    (its source, the derandomized seed, stays the same; see
    properties/equivalence.py): ``key`` read as ``key/<mode>`` when
    ``mode`` is given, then as ``.../training`` for a training-mode item
    where :data:`WEIGHTS` has such an entry."""
    def item_settings(key):
        if mode:
            key = f"{key}/{mode}"
        if training and f"{key}/training" in WEIGHTS:
            key = f"{key}/training"
        return _settings(key)
    return item_settings


def training_suffix(training) -> str:
    """What a property's name ends with for its ``training`` call
    argument: ``""`` (not passed), ``-training`` or ``-inference``."""
    return "" if training is None else (
        "-training" if training else "-inference")


def _make(case, kwargs, policy, factory=None):
    return (factory or case.custom)(**kwargs, dtype=policy)


def _scope(policy, mode, kwargs=None, x=None):
    from customlayers.testing.backends import device
    return Scope(backend=BACKEND, policy=policy, mode=mode,
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


def guaranteed_values(case, kwargs, dtype, *, nonfinite=False) -> tuple:
    """What every equivalence input holds, placed on purpose: both zeros,
    each kink and its exact +-1-ULP neighbours in ``dtype``, inside the
    case's ``input_range``; with ``nonfinite`` (an example that draws
    non-finite inputs, for a case that allows them), NaN, +inf and -inf
    too (after the kinks, as an input range does not bound them), so that such an example never leaves them to chance (a relu6
    gradient at NaN differed from the built-in's and no ``ci`` example
    happened to hold a NaN)."""
    kinks = tuple(case.kinks(kwargs))
    values = [0.0, -0.0]
    for k in kinks:
        values += [k, *cst.ulp_neighbours(k, dtype)]
    if case.input_range is not None:
        lo, hi = case.input_range
        values = [v for v in values if lo <= v <= hi]
    if nonfinite and case.allow_nonfinite:  # last: kinks first if few fit
        values += [float("nan"), float("inf"), float("-inf")]
    return _distinct(values)


def draw_input(data, case, policy, kwargs, *, nonfinite=False,
               max_specials=8, label="input", shape=None, id_dtype=None):
    """One input array for ``case`` under ``policy`` (see
    :class:`~customlayers.testing.LayerCase` for the knobs): integer ids
    from ``case.id_dtypes`` whatever the policy when it declares
    ``input_ids``."""
    dtype = cst.input_dtype(policy)
    if case.input_data is not None:
        spec = case.input_data
        if isinstance(spec, st.SearchStrategy):
            return np.asarray(data.draw(spec, label=label))
        return np.asarray(spec)
    if shape is None:
        shape = case.draw_input_shape(data, kwargs)
    ids = case.id_range(kwargs)
    if ids is not None:
        if id_dtype is None:
            id_dtype = draw_id_dtype(data, case)
        return cst.draw_ids(data, shape, *ids, id_dtype, label=label)
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
        must_include=guaranteed_values(case, kwargs, dtype,
                                       nonfinite=nonfinite))


def _draw_values(data, case, policy, kwargs, signature, k, *,
                 nonfinite_ok=True):
    """Value set ``k`` for drawn ``kwargs`` and ``signature`` (what
    :func:`_draw_signature` drew): an input (guaranteed values placed) and
    a weights seed, labelled with ``k``."""
    shape, id_dtype = signature
    suffix = f" (value set {k})" if k else ""
    nonfinite = nonfinite_ok and case.allow_nonfinite and data.draw(
        st.booleans(), label=f"include NaN/inf in the input{suffix}")
    x = draw_input(data, case, policy, kwargs, nonfinite=nonfinite,
                   shape=shape, label=f"input{suffix}", id_dtype=id_dtype)
    seed = data.draw(st.integers(0, 2 ** 32 - 1),
                     label=f"weights seed{suffix}")
    return x, seed


def _draw_signature(data, case, kwargs):
    """What every value set of a drawn example shares, so that they run
    through one traced program: the input shape (``None`` for a case with
    fixed ``input_data``, whose arrays give it) and, for a case with id
    inputs, their dtype (else ``None``)."""
    if case.input_data is not None:
        return None, None
    shape = case.draw_input_shape(data, kwargs)
    ids = case.id_range(kwargs) is not None
    return shape, (draw_id_dtype(data, case) if ids else None)


def draw_id_dtype(data, case):
    """The dtype of an id input (``case.id_dtypes``)."""
    return data.draw(st.sampled_from(case.id_dtypes), label="input ids: dtype")


def _draw_setup(data, case, policy, *, nonfinite_ok=True):
    """Constructor args, an input and a weights seed for one example."""
    kwargs = case.draw_kwargs(data)
    nonfinite = nonfinite_ok and case.allow_nonfinite and data.draw(
        st.booleans(), label="include NaN/inf in the input")
    x = draw_input(data, case, policy, kwargs, nonfinite=nonfinite)
    seed = data.draw(st.integers(0, 2 ** 32 - 1), label="weights seed")
    return kwargs, x, seed
