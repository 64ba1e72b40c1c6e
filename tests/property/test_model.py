"""The tutorial's model: serializable, and equivalent to its built-in twin."""

import dataclasses
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import customlayers
from customlayers._keras import dtype_policy, keras
from customlayers.testing import CASES, assert_equivalent
from customlayers.testing.convert import (float64_unavailable, input_tensor,
                                          to_numpy)
from customlayers.testing.saving import save_model
from customlayers.testing.strategies import draw_array, input_dtype
from tests.params import mode_param


def _model_differences():
    """The ReLU's declared known differences (TensorFlow's eager/graph
    ReluGrad: the sign of a zero input gradient, subnormals), widened to
    every gradient of the model: through it they reach the weights
    upstream of the ReLU."""
    return [dataclasses.replace(d, checks=(
        ("output", "grad[*]") if "output" in d.checks else ("grad[*]",)))
        for d in CASES["ReLU"].known_differences]


@settings(max_examples=10)
@given(data=st.data())
@pytest.mark.parametrize("mode", [mode_param(m) for m in ("eager",
                                                           "compiled")])
def test_model_matches_its_builtin_twin(mode, data):
    hidden = data.draw(st.integers(1, 32), label="hidden_units")
    classes = data.draw(st.integers(1, 12), label="num_classes")
    batch = data.draw(st.integers(1, 16), label="batch")
    model = customlayers.MyModel(num_classes=classes, hidden_units=hidden)
    model.build((None, 784))
    x = draw_array(data, (batch, 784), "float32", label="pixels",
                   must_include=(0.0,))
    twin = model.builtin_twin()
    assert [type(layer) for layer in twin.layers] == [
        keras.layers.Dense, keras.layers.ReLU, keras.layers.Dense]
    # The ReLU inside carries its declared known differences (TensorFlow's
    # eager/graph ReluGrad: the sign of a zero input gradient, subnormals);
    # through the model they reach every gradient upstream of the ReLU.
    report = assert_equivalent(model, twin, x, mode=mode, exact=True,
                               known_differences=_model_differences())
    assert report.passed


def test_twin_of_an_unbuilt_model_is_refused():
    with pytest.raises(ValueError, match="build it first"):
        customlayers.MyModel().builtin_twin()


def test_model_saves_and_loads_with_identical_outputs(tmp_path):
    model = customlayers.MyModel(num_classes=7, hidden_units=5)
    x = np.random.default_rng(0).standard_normal((4, 784)).astype("float32")
    before = to_numpy(model(x))
    path = os.fspath(tmp_path / "model.keras")
    save_model(model, path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is customlayers.MyModel
    assert (loaded.num_classes, loaded.hidden_units) == (7, 5)
    np.testing.assert_array_equal(to_numpy(loaded(x)), before)


POLICIES = ("float16", "bfloat16", "float32", "float64", "mixed_float16",
            "mixed_bfloat16")


def _policy_param(policy):
    reason = None
    if policy == "float64":
        reason = float64_unavailable()
    marks = [pytest.mark.skip(reason=f"float64: {reason}")] if reason else []
    return pytest.param(policy, marks=marks, id=policy)


#: The model class under test (a meta-test plants a broken one).
MODEL = customlayers.MyModel


@pytest.mark.parametrize("mode", [mode_param(m) for m in ("eager",
                                                           "compiled")])
@pytest.mark.parametrize("policy", [_policy_param(p) for p in POLICIES])
def test_twin_is_bit_exact_under_every_dtype_policy(policy, mode):
    """``MyModel(dtype=policy)`` computes in that policy throughout, as its
    built-in twin does: outputs and every gradient bit for bit (the ReLU's
    declared sign-of-zero rule aside, as above). NumPy integer unit counts
    work for the twin too."""
    rng = np.random.default_rng(5)
    print(f"numpy seed 5, policy {policy}, mode {mode}")
    model = MODEL(num_classes=np.int64(3), hidden_units=np.int64(8),
                  dtype=policy)
    model.build((None, 20))
    weights = [rng.standard_normal(w.shape) for w in model.get_weights()]
    model.set_weights(weights)
    twin = model.builtin_twin()
    policies = [[dtype_policy(layer).name for layer in m.layers]
                for m in (model, twin)]
    assert policies[0] == policies[1] == [policy] * 3, policies
    x = (rng.standard_normal((6, 20)) * 4).astype(input_dtype(policy))
    # The upstream gradient in the dtype the twin really returns (the
    # harness's default derives it from the output spec, which says float32
    # for a Sequential under a float16 policy).
    out = to_numpy(twin(input_tensor(x)))
    upstream = rng.standard_normal(out.shape).astype(out.dtype)
    report = assert_equivalent(
        model, twin, x, mode=mode, exact=True, upstream=upstream,
        weights="keep", known_differences=_model_differences())
    assert report.passed
    print("bit-exact:", report.bit_exact)


def test_model_config_has_plain_ints_for_numpy_units():
    model = MODEL(num_classes=np.int64(4), hidden_units=np.int32(6))
    config = model.get_config()
    assert type(config["num_classes"]) is int
    assert type(config["hidden_units"]) is int
