"""The ``mask`` property on a layer that takes ``mask=`` (``input_mask``):
passes for a pair that honours it, catches one that ignores it. Keras's
``GlobalAveragePooling1D`` averages only the unmasked steps."""

import dataclasses

import pytest
from hypothesis import strategies as st

from customlayers._keras import KERAS_MAJOR, keras
from customlayers.testing import LayerCase
from customlayers.testing import properties as props

if KERAS_MAJOR < 3:  # pragma: no cover - Keras 2
    pytest.skip("the mask property runs on Keras 3", allow_module_level=True)


class MaskIgnoringPooling(keras.layers.GlobalAveragePooling1D):
    """Averages every step, masked or not."""

    def call(self, inputs, mask=None):
        return super().call(inputs)


POOL = LayerCase(
    name="GlobalAveragePooling1D",
    custom=keras.layers.GlobalAveragePooling1D,
    reference=keras.layers.GlobalAveragePooling1D,
    init_kwargs={"keepdims": st.booleans()},
    input_shape=st.tuples(st.integers(1, 4), st.integers(1, 6),
                          st.integers(1, 3)),
    input_range=(-10.0, 10.0),
    allow_nonfinite=False,
    masks=True,
    # The mask covers (batch, steps).
    input_mask=lambda shape: shape[:2],
    exact=True,
)


def test_mask_property_passes_for_a_pair_that_honours_the_mask():
    props.mask_property(POOL, "float32", "eager")()


def test_mask_property_catches_an_ignored_input_mask():
    broken = dataclasses.replace(POOL, name="MaskIgnoringPooling",
                                 custom=MaskIgnoringPooling)
    with pytest.raises(Exception) as info:
        props.mask_property(broken, "float32", "eager")()
    assert "output" in str(info.value), str(info.value)[:2000]
