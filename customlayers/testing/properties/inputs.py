"""What the layer accepts: declared error inputs and every input dtype."""

from __future__ import annotations

import math
import re

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from customlayers.testing import strategies as cst
from customlayers.testing.convert import input_tensor, to_numpy
from customlayers.testing.equivalence import (build_pair, fact_check)
from customlayers.testing.expectations import compare_expected
from customlayers.testing.report import PROCESS

from customlayers.testing.properties._base import (_scope, _settings)

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
                layer(input_tensor(
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



# -- 8. every input dtype ------------------------------------------------------

#: The input dtypes a user may feed (the layer keeps its default policy).
INPUT_DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64",
                "float16", "bfloat16", "float32", "float64")


#: Integers below this are exact in the dtype (ids of an id input).
_EXACT_BELOW = {"bool": 2, "uint8": 256, "int8": 128, "int16": 2 ** 15,
                "int32": 2 ** 31, "int64": 2 ** 63, "float16": 2049,
                "bfloat16": 257, "float32": 2 ** 24 + 1,
                "float64": 2 ** 53 + 1}


def check_input_dtype(case, kwargs, x, seed, recorder=PROCESS):
    """One example: under the default dtype policy, an input of ``x``'s
    dtype gives the reference's output dtype and values, or the same
    exception type where the reference refuses it."""
    custom = case.custom(**kwargs)
    reference = case.reference(**kwargs)
    ids = case.id_range(kwargs)
    probe = np.full((1,) + tuple(np.shape(x)[1:]),
                    1 if ids is None else ids[0],
                    "float32" if ids is None else case.id_dtypes[0])
    build_pair(custom, reference, probe, weight_map=case.weight_map)
    from customlayers.testing.equivalence import copy_weights, random_weights
    copy_weights(custom, reference, weight_map=case.weight_map,
                 weights=random_weights(custom, seed,
                                        positive=case.positive_weights))
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
        return "ok", to_numpy(layer(input_tensor(x)))
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
        dtype = data.draw(st.sampled_from(case.input_dtypes or INPUT_DTYPES),
                          label="input dtype")
        shape = case.draw_input_shape(data, kwargs)
        seed = data.draw(st.integers(0, 2 ** 31 - 1), label="seed")
        rng = np.random.default_rng(seed)
        lo = 0 if dtype in ("bool", "uint8") else -4
        hi = 2 if dtype == "bool" else 6
        ids = case.id_range(kwargs)
        if ids is not None:  # ids: inside the range and exact in dtype
            lo, hi = max(ids[0], 0 if dtype in ("bool", "uint8") else
                         ids[0]), min(ids[1], _EXACT_BELOW[dtype])
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
