"""Issue 12's Dense details, each with the test that failed before the fix
(on commit c1db878 every test here but the Keras 2 one failed):

- the constructor takes, and ``get_config`` round-trips, ``lora_rank``,
  ``lora_alpha`` and ``quantization_config`` (``None`` too), so
  ``customlayers.Dense.from_config(keras.layers.Dense(4).get_config())``
  works and ``keras.models.clone_model`` can swap built-in Dense for ours;
- after build, ``input_spec`` is ``InputSpec(min_ndim=2, axes={-1: d})``,
  so a changed last dimension gets Keras's own message;
- ``call(self, inputs, training=None)``.
"""

import inspect

import numpy as np
import pytest

import customlayers
from customlayers import _keras
from customlayers._keras import keras
from customlayers.testing.convert import to_numpy

needs_keras3 = pytest.mark.skipif(
    _keras.KERAS_MAJOR < 3,
    reason=f"Keras {_keras.KERAS_VERSION}'s Dense has no lora_rank, "
           "lora_alpha or quantization_config")

#: Keras 3.12's Dense (tox env py310) has no quantization_config at all.
needs_builtin_quantization_config = pytest.mark.skipif(
    not _keras.DENSE_TAKES_QUANTIZATION_CONFIG,
    reason=f"Keras {_keras.KERAS_VERSION}'s own Dense takes no "
           "quantization_config (and keras.quantizers has no "
           "QuantizationConfig)")

SEED = 20261129


def _x(shape):
    print(f"inputs: numpy.random.default_rng({SEED}).standard_normal"
          f"({shape})")
    return np.random.default_rng(SEED).standard_normal(shape).astype(
        "float32")


@needs_keras3
@pytest.mark.parametrize("kwargs", [
    {}, {"lora_rank": 2}, {"lora_rank": 3, "lora_alpha": 6.0},
    pytest.param({"quantization_config": None},
                 marks=needs_builtin_quantization_config)], ids=str)
def test_from_config_of_the_builtin(kwargs):
    config = keras.layers.Dense(4, **kwargs).get_config()
    ours = customlayers.Dense.from_config(config)
    assert ours.get_config() == config
    assert keras.layers.Dense.from_config(ours.get_config()).get_config() \
        == config


@needs_keras3
@needs_builtin_quantization_config
def test_quantization_config_round_trips():
    config = keras.quantizers.Int8QuantizationConfig(
        weight_quantizer=keras.quantizers.AbsMaxQuantizer(
            axis=0, value_range=(-100, 100)),
        activation_quantizer=None)
    layer = customlayers.Dense(4, quantization_config=config)
    clone = customlayers.Dense.from_config(layer.get_config())
    assert isinstance(clone.quantization_config,
                      keras.quantizers.Int8QuantizationConfig)
    assert clone.quantization_config.weight_quantizer.value_range == \
        (-100, 100)
    assert clone.get_config() == layer.get_config()


@needs_keras3
def test_clone_model_swaps_builtin_dense_for_ours():
    model = keras.Sequential([keras.Input((5,)),
                              keras.layers.Dense(3, activation="relu"),
                              keras.layers.Dense(2)])

    def swap(layer):
        if type(layer) is keras.layers.Dense:
            return customlayers.Dense.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    clone = keras.models.clone_model(model, clone_function=swap)
    clone.set_weights(model.get_weights())
    assert [type(x) for x in clone.layers] == [customlayers.Dense] * 2
    x = _x((4, 5))
    assert np.array_equal(to_numpy(clone(x)), to_numpy(model(x)))


def test_input_spec_after_build():
    layer = customlayers.Dense(3)
    layer.build((None, 7))
    spec = layer.input_spec
    assert spec.min_ndim == 2
    assert spec.axes == {-1: 7}


@pytest.mark.parametrize("last,wrong", [(4, 5), (7, 1)])
def test_changed_last_dimension_gets_keras_message(last, wrong):
    layer = customlayers.Dense(2)
    layer(_x((1, last)))
    with pytest.raises(ValueError) as info:
        layer(_x((1, wrong)))
    msg = str(info.value)
    assert "is incompatible with the layer: expected axis -1 of input " \
        f"shape to have value {last}" in msg, msg
    assert layer.name in msg and str(wrong) in msg, msg


def test_call_takes_training():
    params = inspect.signature(customlayers.Dense.call).parameters
    assert list(params) == ["self", "inputs", "training"]
    assert params["training"].default is None
    layer = customlayers.Dense(2)
    x = _x((3, 4))
    assert np.array_equal(to_numpy(layer(x, training=True)),
                          to_numpy(layer(x, training=False)))


@needs_keras3
def test_lora_alpha_is_reset_by_build_as_in_the_builtin():
    """Keras 3.15.1's build calls ``enable_lora(lora_rank)``, which sets
    ``lora_alpha = rank``: the constructor's alpha does not survive. A
    drop-in does the same."""
    ours = customlayers.Dense(4, lora_rank=2, lora_alpha=8.0)
    ref = keras.layers.Dense(4, lora_rank=2, lora_alpha=8.0)
    ours.build((None, 3))
    ref.build((None, 3))
    assert ours.lora_alpha == ref.lora_alpha == 2


@needs_keras3
@pytest.mark.parametrize("rank", [0, -1, 2.5, True, "2"])
def test_invalid_lora_rank_is_named(rank):
    with pytest.raises(ValueError, match=f"rank={rank!r}"):
        customlayers.Dense(4, lora_rank=rank)
    layer = customlayers.Dense(4)
    layer.build((None, 3))
    with pytest.raises(ValueError, match=f"rank={rank!r}"):
        layer.enable_lora(rank)


@pytest.mark.skipif(_keras.KERAS_MAJOR >= 3,
                    reason="checks the Keras 2 refusal; this is Keras 3")
def test_keras2_refuses_lora_clearly():  # pragma: no cover
    with pytest.raises(NotImplementedError, match="needs Keras 3"):
        customlayers.Dense(4, lora_rank=2)
