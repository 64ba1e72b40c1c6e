"""Deliberately broken variants of customlayers.Dropout: each must be
caught by the generic properties (``test_dropout_bugs.py``)."""

from customlayers import Dropout
from customlayers._keras import BACKEND, keras, ops


class NoRescaleDropout(Dropout):
    """Keeps the kept inputs as they are (no ``1 / (1 - rate)``): right
    at inference, wrong in training only."""

    def _scaled(self, inputs):
        return inputs


class KeepProbabilityIsRateDropout(Dropout):
    """Keeps each entry with probability ``rate`` instead of ``1 - rate``
    (still scaled by ``1 / (1 - rate)``)."""

    def _keep_mask(self, inputs):
        u = keras.random.uniform(self._mask_shape(inputs), dtype="float32",
                                 seed=self.seed_generator)
        return ops.less(u, ops.convert_to_tensor(self.rate, dtype="float32"))


class NoiseShapeIgnoredDropout(Dropout):
    """Draws one mask entry per input element whatever ``noise_shape``
    says."""

    def _mask_shape(self, inputs):
        return ops.shape(inputs)


class DropsAtInferenceDropout(Dropout):
    """Drops when ``training`` is not given (its default is ``True``)."""

    def call(self, inputs, training=True):
        return super().call(inputs, training=training)


class IgnoresSeedDropout(Dropout):
    """Ignores ``seed``: a fresh random seed per layer."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(rate, noise_shape=noise_shape, seed=None, **kwargs)
        self.seed = seed  # the config still says what the user passed


class SameMaskEveryCallDropout(Dropout):
    """Draws from the integer ``seed`` itself (not the generator): the
    same mask on every call."""

    def _keep_mask(self, inputs):
        u = keras.random.uniform(self._mask_shape(inputs), dtype="float32",
                                 seed=self.seed or 0)
        return ops.less(u, ops.convert_to_tensor(1.0 - self.rate,
                                                 dtype="float32"))


class UnmaskedGradientDropout(Dropout):
    """Right outputs, but the input gradient is ``g / (1 - rate)``
    everywhere (the mask applied under ``stop_gradient``)."""

    def call(self, inputs, training=False):
        y = super().call(inputs, training=training)
        if not training or self.rate in (0, 1):
            return y
        scaled = self._scaled(inputs)
        return scaled + ops.stop_gradient(y - scaled)


class OtherBackendsMaskDropout(Dropout):
    """A statistically correct dropout with another backend's recipe
    (TensorFlow: ``u < 1 - rate`` in float32, JAX's and torch's; elsewhere
    ``u >= rate`` in the input's dtype, TensorFlow's): a different mask
    than the built-in's for the same seed."""

    def _keep_mask(self, inputs):
        shape = self._mask_shape(inputs)
        if BACKEND == "tensorflow":
            u = keras.random.uniform(shape, dtype="float32",
                                     seed=self.seed_generator)
            return ops.less(u, ops.convert_to_tensor(1.0 - self.rate,
                                                     dtype="float32"))
        u = keras.random.uniform(shape, dtype=inputs.dtype,
                                 seed=self.seed_generator)
        return ops.greater_equal(
            u, ops.convert_to_tensor(self.rate, dtype=inputs.dtype))
