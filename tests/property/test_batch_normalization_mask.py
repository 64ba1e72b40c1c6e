"""BatchNormalization's ``mask`` call argument, which the generic
properties do not pass: in training mode the masked-out positions do not
count in the batch statistics (the built-in's weighted moments), in
inference mode the mask changes nothing. Outputs, input gradients and the
updated moving statistics against the built-in's, bit for bit, over fixed
seeds (printed in the test id)."""

import numpy as np
import pytest

from customlayers.testing.cases_batch_normalization import BATCH_NORMALIZATION

if BATCH_NORMALIZATION is None:  # pragma: no cover - Keras 2
    pytest.skip("customlayers.BatchNormalization needs Keras 3",
                allow_module_level=True)

import keras  # noqa: E402

import customlayers  # noqa: E402
from customlayers.testing.convert import to_numpy  # noqa: E402

def _BUILTIN_FAILS(shape, training):
    return (training and shape[-1] == 1
            and keras.backend.backend() in ("jax", "torch"))


SHAPES = [(4, 5, 3), (2, 7, 1), (3, 2, 4, 2)]


def _pair(seed, shape, momentum=0.9):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype("float32")
    mask = rng.random(shape[:-1]) < 0.6
    mask.flat[0] = True
    layers = [cls(momentum=momentum) for cls in (
        customlayers.BatchNormalization, keras.layers.BatchNormalization)]
    for layer in layers:
        layer.build(shape)
    weights = [rng.standard_normal(w.shape).astype("float32")
               for w in layers[0].get_weights()]
    weights[-1] = np.abs(weights[-1])
    for layer in layers:
        layer.set_weights(weights)
    return x, mask, layers


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_masked_moments_match_the_builtin(seed, shape, training):
    x, mask, (custom, reference) = _pair(seed, shape)
    if _BUILTIN_FAILS(shape, training):
        # Keras 3.15.1 on JAX and torch: the masked moments are squeezed
        # to scalars for one channel, and ops.batch_normalization reads
        # mean.shape[0] (TensorFlow broadcasts without reading it).
        # customlayers keeps the channel; noticed if Keras fixes it.
        with pytest.raises(IndexError):
            reference(x, training=True, mask=mask)
        y = to_numpy(custom(x, training=True, mask=mask))
        assert y.shape == x.shape and np.isfinite(y).all()
        return
    for step in range(2):  # the second call starts from updated statistics
        ys = [to_numpy(layer(x, training=training, mask=mask))
              for layer in (custom, reference)]
        np.testing.assert_array_equal(ys[0], ys[1], err_msg=(
            f"output, step {step}, seed {seed}"))
        for a, b in zip(custom.non_trainable_variables,
                        reference.non_trainable_variables):
            np.testing.assert_array_equal(
                to_numpy(a), to_numpy(b),
                err_msg=f"{b.name} after step {step}, seed {seed}")


def test_the_mask_changes_the_training_statistics():
    """The mask is not ignored (a planted 'mask dropped' would pass the
    comparison above only if the built-in ignored it too)."""
    x, mask, (custom, _) = _pair(0, (4, 5, 3))
    fresh = customlayers.BatchNormalization(momentum=0.9)
    fresh.build(x.shape)
    fresh.set_weights(custom.get_weights())
    a = to_numpy(custom(x, training=True, mask=mask))
    b = to_numpy(fresh(x, training=True))
    assert not np.array_equal(a, b)


def test_a_mask_of_the_wrong_rank_is_refused():
    layer = customlayers.BatchNormalization()
    x = np.ones((2, 3, 4), "float32")
    with pytest.raises(ValueError, match="one dimension less"):
        layer(x, training=True, mask=np.ones((2, 3, 4), bool))
