"""What the generic properties do not look at for customlayers.Embedding:
out-of-range ids (per backend, as the built-in), the sparse gradient an
optimiser sees on TensorFlow, ``weights=``, quantization refused."""

import numpy as np
import pytest

from customlayers._keras import BACKEND, KERAS_MAJOR

if KERAS_MAJOR < 3:  # pragma: no cover - Keras 2
    pytest.skip("customlayers.Embedding needs Keras 3",
                allow_module_level=True)

import keras  # noqa: E402

import customlayers  # noqa: E402
from customlayers.testing.convert import to_numpy  # noqa: E402

#: What each backend's gather does with an id outside [-input_dim,
#: input_dim) (measured on CPU, eager; the built-in does the same).
_OUT_OF_RANGE = {"tensorflow": "InvalidArgumentError", "jax": "nan",
                 "torch": "IndexError"}


def _outcome(layer, ids):
    try:
        return "ok", to_numpy(layer(ids))
    except Exception as exc:  # noqa: BLE001 - compared with the built-in
        return "error", exc


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32"])
@pytest.mark.parametrize("bad", [5, 6, 100, -1, -5, -6, -100])
def test_out_of_range_ids_behave_as_the_builtin(bad, dtype):
    ids = np.array([[0, bad, 4]], dtype)
    custom = customlayers.Embedding(5, 3)
    reference = keras.layers.Embedding(5, 3)
    custom(np.zeros((1, 1), "int32"))
    reference(np.zeros((1, 1), "int32"))
    weights = np.arange(15, dtype="float32").reshape(5, 3)
    custom.set_weights([weights])
    reference.set_weights([weights])
    (k, a), (rk, b) = _outcome(custom, ids), _outcome(reference, ids)
    print(f"{BACKEND}: id {bad} ({dtype}) -> built-in "
          f"{type(b).__name__ if rk == 'error' else b[0, 1].tolist()}")
    assert k == rk, (a, b)
    if rk == "error":
        assert type(a) is type(b)
        assert type(b).__name__ == _OUT_OF_RANGE[BACKEND]
        assert -5 > bad or bad >= 5
    else:
        np.testing.assert_array_equal(a, b)  # NaN positions too
        if -5 <= bad < 5:  # negative ids count from the end
            np.testing.assert_array_equal(a[0, 1], weights[bad])
        else:
            assert _OUT_OF_RANGE[BACKEND] == "nan"
            assert np.isnan(a[0, 1]).all()


@pytest.mark.skipif(BACKEND != "tensorflow",
                    reason="tf.IndexedSlices is TensorFlow's sparse gradient")
def test_optimizer_sees_a_sparse_gradient_and_updates_used_rows_only():
    import tensorflow as tf
    layer = customlayers.Embedding(6, 2, embeddings_initializer="ones")
    ids = tf.constant([[1, 3, 3]])
    layer(ids)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(ids))
    (grad,) = tape.gradient(loss, layer.trainable_variables)
    assert isinstance(grad, tf.IndexedSlices), type(grad)
    before = layer.get_weights()[0].copy()
    # Weight decay would touch every row; plain SGD only the used ones.
    opt = keras.optimizers.SGD(0.5)
    opt.apply_gradients([(grad, layer.embeddings)])
    after = layer.get_weights()[0]
    changed = sorted(set(np.nonzero((after != before).any(axis=1))[0]))
    assert changed == [1, 3]
    np.testing.assert_array_equal(after[3], before[3] - 0.5 * 2)  # summed


def test_weights_argument_builds_and_sets_the_table():
    table = np.arange(8, dtype="float32").reshape(4, 2)
    for w in (table, [table]):
        custom = customlayers.Embedding(4, 2, weights=w)
        reference = keras.layers.Embedding(4, 2, weights=w)
        assert custom.built and reference.built
        np.testing.assert_array_equal(custom.get_weights()[0],
                                      reference.get_weights()[0])


def test_quantization_is_refused_by_name():
    layer = customlayers.Embedding(4, 2)
    layer.build()
    with pytest.raises(NotImplementedError, match="quantize.*int8"):
        layer.quantize("int8")
    with pytest.raises(NotImplementedError, match="quantization_config"):
        customlayers.Embedding(4, 2, quantization_config="int8")


def test_lora_matches_the_builtin_after_a_step():
    """enable_lora on a built layer, then trained LoRA weights: same
    outputs and the same frozen table as the built-in."""
    ids = np.array([[0, 2, 3, 3]], "int32")
    layers = [cls(4, 3) for cls in (customlayers.Embedding,
                                     keras.layers.Embedding)]
    rng = np.random.default_rng(0)
    table = rng.standard_normal((4, 3)).astype("float32")
    for layer in layers:
        layer(ids)
        layer.set_weights([table])
        layer.enable_lora(2)
    a = rng.standard_normal((4, 2)).astype("float32")
    b = rng.standard_normal((2, 3)).astype("float32")
    outs = []
    for layer in layers:
        assert [v.name for v in layer.trainable_weights] == [
            "lora_embeddings_a", "lora_embeddings_b"]
        layer.lora_embeddings_a.assign(a)
        layer.lora_embeddings_b.assign(b)
        outs.append(to_numpy(layer(ids)))
    np.testing.assert_array_equal(*outs)


def test_mask_propagates_to_a_recurrent_layer_as_the_builtins():
    """Sequential([Embedding(mask_zero=True), LSTM]): padded steps are
    skipped the same way (the LSTM's output equals the built-in model's)."""
    ids = np.array([[3, 1, 0, 0], [2, 0, 0, 0]], "int32")
    outs = []
    for cls in (customlayers.Embedding, keras.layers.Embedding):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((4,), dtype="int32"),
                                  cls(5, 3, mask_zero=True),
                                  keras.layers.LSTM(2)])
        outs.append(to_numpy(model(ids)))
    np.testing.assert_array_equal(*outs)
