"""The tutorial's model: serializable, and equivalent to its built-in twin."""

import dataclasses
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import customlayers
from customlayers import _compat
from customlayers._compat import keras, to_numpy
from customlayers.testing import CASES, assert_equivalent
from customlayers.testing.backends import supported_modes
from customlayers.testing.strategies import draw_array


def _mode_param(mode):
    reason = supported_modes()[mode]
    marks = [pytest.mark.skip(reason=reason)] if reason else []
    return pytest.param(mode, marks=marks, id=mode)


@settings(max_examples=10)
@given(data=st.data())
@pytest.mark.parametrize("mode", [_mode_param(m) for m in ("eager",
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
    differences = [dataclasses.replace(d, checks=(
        ("output", "grad[*]") if "output" in d.checks else ("grad[*]",)))
        for d in CASES["ReLU"].known_differences]
    report = assert_equivalent(model, twin, x, mode=mode, exact=True,
                               known_differences=differences)
    assert report.passed


def test_twin_of_an_unbuilt_model_is_refused():
    with pytest.raises(ValueError, match="build it first"):
        customlayers.MyModel().builtin_twin()


def test_model_saves_and_loads_with_identical_outputs(tmp_path):
    model = customlayers.MyModel(num_classes=7, hidden_units=5)
    x = np.random.default_rng(0).standard_normal((4, 784)).astype("float32")
    before = to_numpy(model(x))
    path = os.fspath(tmp_path / "model.keras")
    _compat.save_model(model, path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is customlayers.MyModel
    assert (loaded.num_classes, loaded.hidden_units) == (7, 5)
    np.testing.assert_array_equal(to_numpy(loaded(x)), before)
