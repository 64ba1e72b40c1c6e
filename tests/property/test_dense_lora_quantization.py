"""customlayers.Dense with LoRA and quantization vs keras.layers.Dense.

Hypothesis draws the shapes (input rank 2 or 3), ``units``, ``use_bias``,
the activation, the quantization mode and its config (default, custom
``AbsMaxQuantizer`` value ranges -- asymmetric ones too --, weight-only,
int4 per channel or in blocks of any size), LoRA (rank, alpha, before or
after quantizing), an all-zero kernel column now and then, and a labelled
seed from which the float weights, LoRA weights, inputs (of a drawn
magnitude, up to past float8's 448) and the upstream gradient come. Both
layers get the same float weights and are quantized the same way; then
:func:`customlayers.testing.quantized.assert_quantized_equivalent` demands
their state and saved variables bit for bit and their outputs and
gradients within the built-in's own eager-vs-XLA spread.

Every mode runs eagerly and compiled (``tf.function(jit_compile=True)``);
float8 runs in graph mode instead of eagerly, because Keras's own float8
Dense cannot be differentiated under an eager GradientTape (see
customlayers/testing/quantized.py). TensorFlow only: the gradients are
taken with ``tf.GradientTape``.

``make_property`` is reused by tests/meta_tests/test_quantization_bugs.py
with planted bugs in place of customlayers.Dense.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import customlayers
from customlayers import _keras

if _keras.KERAS_MAJOR < 3:  # pragma: no cover - Keras 2 tox envs
    pytest.skip(f"LoRA and quantization need Keras 3; this is Keras "
                f"{_keras.KERAS_VERSION}", allow_module_level=True)
if _keras.BACKEND != "tensorflow":  # pragma: no cover
    pytest.skip(f"the quantized-equivalence checker takes gradients with "
                f"tf.GradientTape; this run uses {_keras.BACKEND}",
                allow_module_level=True)

from customlayers._keras import keras  # noqa: E402
from customlayers.testing.quantized import \
    assert_quantized_equivalent  # noqa: E402

#: (family, execution) pairs: every mode eagerly (float8: graph) and XLA.
RUNS = [("lora", "eager"), ("lora", "compiled"),
        ("int8", "eager"), ("int8", "compiled"),
        ("int4", "eager"), ("int4", "compiled"),
        ("float8", "graph"), ("float8", "compiled")]


def _examples():
    # A tenth of the profile's budget per run: ci 10, dev 30, thorough 200.
    return max(4, settings().max_examples // 10)


def _range(data, lo_min, hi_max, label):
    lo = data.draw(st.integers(lo_min, -1), label=f"{label} low")
    hi = data.draw(st.integers(1, hi_max), label=f"{label} high")
    return (lo, hi)


def draw_config(data, family, input_dim):
    """``(mode, config)`` for ``family``."""
    Q = keras.quantizers
    if family == "lora":
        return None, None
    if family == "float8":
        return "float8", None
    kind = data.draw(st.sampled_from(
        ["default", "custom"] + (["blocks"] if family == "int4" else [])),
        label="config")
    if kind == "default":
        return family, None
    if kind == "blocks":
        block = data.draw(st.integers(1, input_dim + 2), label="block_size")
        return family, Q.Int4QuantizationConfig(block_size=block)
    # Keras's Int4QuantizationConfig accepts only value_range=(-8, 7).
    weight_q = Q.AbsMaxQuantizer(
        axis=0, value_range=_range(data, -128, 127, "weight range")
        if family == "int8" else (-8, 7))
    act = data.draw(st.sampled_from(["none", "default", "custom"]),
                    label="activation quantizer")
    if act == "custom":
        act_q = Q.AbsMaxQuantizer(axis=-1, value_range=_range(
            data, -128, 127, "activation range"))
    else:
        act_q = None if act == "none" else "default"
    if family == "int8":
        return family, Q.Int8QuantizationConfig(
            weight_quantizer=weight_q, activation_quantizer=act_q)
    block = data.draw(st.sampled_from([None, -1]), label="block_size")
    if act_q == "default":
        act_q = Q.AbsMaxQuantizer(axis=-1)
    return family, Q.Int4QuantizationConfig(
        weight_quantizer=weight_q, activation_quantizer=act_q,
        block_size=block)


def make_property(family, execution, custom=customlayers.Dense,
                  max_examples=None):
    """The property for one (family, execution), ``custom`` vs the
    built-in."""

    @settings(settings(), max_examples=max_examples or _examples(),
              deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def quantized_equivalence(data):
        input_dim = data.draw(st.integers(1, 12), label="input_dim")
        units = data.draw(st.integers(1, 12), label="units")
        batch = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1,
                                         max_size=2), label="batch dims"))
        use_bias = data.draw(st.booleans(), label="use_bias")
        activation = data.draw(st.sampled_from([None, "relu"]),
                               label="activation")
        mode, config = draw_config(data, family, input_dim)
        lora = None
        lora_first = True
        if family == "lora" or (family != "float8" and data.draw(
                st.booleans(), label="with LoRA")):
            lora = (data.draw(st.integers(1, 4), label="LoRA rank"),
                    data.draw(st.sampled_from([None, 1, 2, 0.5, 3.0, 16]),
                              label="LoRA alpha"))
            lora_first = data.draw(st.booleans(),
                                   label="LoRA before quantizing")
        zero_column = data.draw(st.booleans(), label="a zero kernel column")
        magnitude = data.draw(st.sampled_from([1e-3, 1.0, 30.0, 1000.0]),
                              label="input magnitude")
        training = data.draw(st.booleans(), label="training")
        seed = data.draw(st.integers(0, 2**32 - 1), label="weights seed")
        note(f"seed {seed}: kernel, bias, LoRA A/B, input and upstream "
             "gradient come from numpy.random.default_rng(seed)")

        rng = np.random.default_rng(seed)
        kernel = rng.standard_normal((input_dim, units)).astype("float32")
        if zero_column:
            kernel[:, 0] = 0.0
        weights = [kernel] + ([rng.standard_normal(units).astype("float32")]
                              if use_bias else [])
        lora_weights = None
        if lora:
            rank = lora[0]
            lora_weights = (
                rng.standard_normal((input_dim, rank)).astype("float32"),
                rng.standard_normal((rank, units)).astype("float32"))
        x = (rng.standard_normal(batch + (input_dim,)) * magnitude).astype(
            "float32")
        kwargs = dict(units=units, use_bias=use_bias, activation=activation)
        assert_quantized_equivalent(
            custom(**kwargs), keras.layers.Dense(**kwargs), x, mode=mode,
            config=config, weights=weights, lora=lora,
            lora_weights=lora_weights, lora_first=lora_first,
            execution=execution, training=training,
            seed=int(rng.integers(2**31)),
            quantize_kwargs={"type_check": False})

    quantized_equivalence.__name__ = f"quantized_equivalence[{family}-" \
                                     f"{execution}-{custom.__name__}]"
    return quantized_equivalence


@pytest.mark.parametrize("family,execution", RUNS,
                         ids=[f"{f}-{e}" for f, e in RUNS])
def test_dense_quantized_equivalence(family, execution):
    make_property(family, execution)()


def test_default_lora_b_is_zero_so_the_output_is_unchanged():
    """``enable_lora`` keeps the output (B starts at zero): the property
    sets random LoRA weights because of exactly this."""
    layer = customlayers.Dense(3)
    x = np.random.default_rng(0).standard_normal((2, 4)).astype("float32")
    before = np.asarray(layer(x))
    layer.enable_lora(2)
    assert np.array_equal(np.asarray(layer(x)), before)
    assert [v.name for v in layer.trainable_weights] == [
        "bias", "lora_kernel_a", "lora_kernel_b"]
