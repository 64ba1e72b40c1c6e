"""A hand-written drop-in for ``keras.layers.Dropout``."""

from __future__ import annotations

import numbers

from customlayers import _keras
from customlayers._keras import BACKEND, KERAS_MAJOR, keras, ops


def _validate_rate(rate):
    """``rate`` as the built-in takes it: a number in ``[0, 1]``, refused
    naming the value (a NaN fails ``0 <= rate <= 1`` as in Keras)."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) \
            or not 0 <= rate <= 1:
        raise ValueError(
            "Invalid value received for argument `rate`. Expected a float "
            f"value between 0 and 1. Received: rate={rate}")
    return rate


def _validate_noise_shape(noise_shape):
    """``noise_shape`` as the built-in stores it: ``None`` or a tuple of
    positive ints and ``None``s, refused naming the bad value."""
    if noise_shape is None:
        return None
    prefix = "Invalid value received for argument `noise_shape`. "
    if isinstance(noise_shape, str):
        raise ValueError(f"{prefix}Expected a tuple or list of integers. "
                         f"Received: noise_shape={noise_shape}")
    try:
        noise_shape = tuple(noise_shape)
    except TypeError:
        raise ValueError(f"{prefix}Expected an iterable of integers (e.g., a "
                         "tuple or list). Received: "
                         f"noise_shape={noise_shape}") from None
    for i, dim in enumerate(noise_shape):
        if dim is None:
            continue
        if not isinstance(dim, int):
            raise ValueError(f"{prefix}Expected all elements to be integers "
                             f"or None. Received element at index {i}: {dim} "
                             f"(type: {type(dim).__name__})")
        if dim <= 0:
            raise ValueError(f"{prefix}Expected all dimensions to be positive"
                             f" integers or None. Received negative or zero "
                             f"value at index {i}: {dim}")
    return noise_shape


@_keras.register_serializable()
class Dropout(keras.layers.Layer):
    """Dropout (Srivastava et al., 2014), written from
    ``keras.random.uniform``, a comparison and ``ops.where``.

    A drop-in for ``keras.layers.Dropout`` (Keras 3): same arguments,
    defaults and validation. With ``training=True`` (and ``rate > 0``) each
    element of the mask is kept with probability ``1 - rate``; kept inputs
    are scaled by ``1 / (1 - rate)``, dropped ones become ``0``. Otherwise
    (inference, the default) the input passes through unchanged. The mask
    has shape ``noise_shape`` (its ``None`` entries taken from the input)
    and is broadcast over the input.

    The uniform numbers come from the layer's own
    ``keras.random.SeedGenerator`` (created, like the built-in's, only when
    ``rate > 0``), so a given ``seed`` gives the same sequence of masks and
    each call draws a new one. The comparison and the scaling mirror each
    backend's own dropout, so that a seed gives the built-in's mask:

    - TensorFlow (``tf.nn.experimental.stateless_dropout``): the uniform
      numbers in the input's dtype, kept where ``u >= rate``, the input
      multiplied by ``1 / (1 - rate)`` rounded to its dtype;
    - JAX and PyTorch (``jax.random.bernoulli``, ``torch.bernoulli``): the
      uniform numbers in float32, kept where ``u < 1 - rate``, the input
      divided by ``1 - rate``.

    ``rate == 1`` drops everything (zeros, as the built-in).

    Args:
        rate: Float between 0 and 1, the fraction of the input units to
            drop.
        noise_shape: Optional shape of the binary mask (a tuple of ints or
            ``None``s, one per input axis); a ``1`` shares one mask entry
            along that axis, ``None`` takes the input's size.
        seed: Optional Python integer, the random seed.
        **kwargs: Base layer keyword arguments (``name``, ``dtype``, ...).

    Call arguments:
        inputs: Input tensor (of any rank).
        training: Whether to drop (``True``) or pass the input through
            (``False``, the default).

    Example:

    >>> layer = Dropout(0.5, noise_shape=(None, 1), seed=3)
    >>> y = layer(np.ones((4, 6), "float32"), training=True)
    >>> # each row is all 0.0 or all 2.0  # doctest: +SKIP
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        if KERAS_MAJOR < 3:  # pragma: no cover - Keras 2 tox envs
            raise NotImplementedError(
                "customlayers.Dropout needs Keras 3 (keras.random); this is "
                f"Keras {_keras.KERAS_VERSION}")
        super().__init__(**kwargs)
        self.rate = _validate_rate(rate)
        self.seed = seed
        self.noise_shape = _validate_noise_shape(noise_shape)
        if rate > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self._build_at_init()

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "noise_shape": self.noise_shape}

    def _mask_shape(self, inputs):
        """``noise_shape`` with its ``None`` entries taken from the input
        (its dynamic size where the static one is unknown)."""
        shape = tuple(inputs.shape)
        if any(d is None for d in shape):
            shape = ops.shape(inputs)
        if self.noise_shape is None:
            return shape
        return tuple(shape[i] if d is None else d
                     for i, d in enumerate(self.noise_shape))

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        if self.rate == 1:
            return ops.zeros_like(inputs)
        # The mask (of shape noise_shape) broadcasts against the input in
        # the select, and a dropped entry is the scalar +0.0: the values of
        # where(broadcast_to(mask), x * scale, zeros_like(x)) without the
        # two full-size temporaries (the built-in's select takes a scalar
        # zero too; benchmarks/RESULTS.md, eager CPU).
        return ops.where(self._keep_mask(inputs), self._scaled(inputs), 0.0)

    def _keep_mask(self, inputs):
        """A boolean mask of shape ``noise_shape``: ``True`` (kept) with
        probability ``1 - rate``, from the next seed of the generator."""
        shape = self._mask_shape(inputs)
        if BACKEND == "tensorflow":
            u = keras.random.uniform(shape, dtype=inputs.dtype,
                                     seed=self.seed_generator)
            # A Python float converted straight to the input's dtype, as
            # TensorFlow converts it (no float32 step in between).
            return ops.greater_equal(
                u, ops.convert_to_tensor(self.rate, dtype=inputs.dtype))
        u = keras.random.uniform(shape, dtype="float32",
                                 seed=self.seed_generator)
        return ops.less(u, ops.convert_to_tensor(1.0 - self.rate,
                                                 dtype="float32"))

    def _scaled(self, inputs):
        """The inputs scaled by ``1 / (1 - rate)``."""
        keep = 1.0 - self.rate
        if BACKEND == "tensorflow":
            return ops.multiply(
                inputs, ops.convert_to_tensor(1.0 / keep, dtype=inputs.dtype))
        return ops.divide(inputs, keep)

    def compute_output_shape(self, input_shape):
        return input_shape
