"""A hand-written drop-in for ``keras.layers.Embedding``."""

from __future__ import annotations

from customlayers import _keras
from customlayers._keras import KERAS_MAJOR, keras, ops


def _positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value} "
            f"(of type {type(value).__name__}).")
    return value


def _unsupported_quantization(what):
    return NotImplementedError(
        f"customlayers.Embedding does not implement quantization ({what}); "
        "int8/int4 embeddings are out of scope. Use keras.layers.Embedding "
        "for a quantized embedding.")


@_keras.register_serializable()
class Embedding(keras.layers.Layer):
    """Turns non-negative integer ids into dense vectors: row ``i`` of the
    ``embeddings`` matrix for id ``i``.

    A drop-in for ``keras.layers.Embedding`` (Keras 3): same arguments,
    defaults and validation messages, one weight named ``embeddings`` of
    shape ``(input_dim, output_dim)``, the same outputs, mask and
    gradients. The lookup is ``ops.take(embeddings, ids, axis=0)`` (the
    gather primitive) followed by a cast to the compute dtype; like the
    built-in the layer does not autocast (the table stays in the variable
    dtype, float32 under a mixed policy, and the looked-up rows are cast).

    Ids: int32 and int64 are used as given; any other dtype (bool, uint8,
    int8, int16, floats) is cast to int32 first (floats truncate toward
    zero), with the built-in's test ``inputs.dtype != "int32"``, verbatim:
    on torch that test compares a ``torch.dtype`` with a string, so int64
    ids are cast to int32 there too, exactly as the built-in does.

    Gradient: the gather's own. On TensorFlow the gradient with respect to
    ``embeddings`` is a sparse ``tf.IndexedSlices`` (only the looked-up
    rows), so optimisers update only the rows used; repeated ids are summed
    when it is densified (``unsorted_segment_sum``). JAX and torch give a
    dense gradient (a scatter-add), as for the built-in.

    Out-of-range ids are not checked: they do what Keras's ``ops.take``
    does with them, the same as the built-in (measured on CPU in eager
    mode, compared with the built-in per backend by
    ``tests/property/test_embedding_details.py``). On every backend an id
    in ``[-input_dim, 0)`` counts from the end (``-1`` is the last row).
    Beyond that: TensorFlow raises ``InvalidArgumentError``; JAX returns
    NaN rows (``jnp.take``'s ``fill`` mode); torch raises ``IndexError``.

    Not supported: quantization (``quantize()``, ``quantization_config``):
    refused with ``NotImplementedError``. LoRA is supported as in the
    built-in.

    Args:
        input_dim: Positive int, the vocabulary size (largest id + 1).
        output_dim: Positive int, the size of each vector.
        embeddings_initializer: Initializer for ``embeddings``. Defaults to
            ``"uniform"``.
        embeddings_regularizer: Optional regularizer for ``embeddings``.
        embeddings_constraint: Optional constraint for ``embeddings``.
        mask_zero: If True, id 0 is padding: ``compute_mask`` returns
            ``ids != 0``, and the layer supports masking.
        weights: Optional initial ``(input_dim, output_dim)`` matrix (or a
            one-element list holding it); the layer is built at once.
        lora_rank: Optional int: build with LoRA of this rank (the table
            frozen, ``lora_embeddings_a @ lora_embeddings_b * alpha / rank``
            trained).
        lora_alpha: Optional LoRA scale numerator (as the built-in, the
            build's ``enable_lora(lora_rank)`` resets it to ``lora_rank``).
        quantization_config: Accepted for the built-in's signature; only
            ``None`` (quantization is out of scope).
        **kwargs: Base layer keyword arguments (``name``, ``dtype``, ...).

    Example:

    >>> layer = Embedding(1000, 64, mask_zero=True)
    >>> y = layer(np.array([[4, 0], [20, 7]]))
    >>> tuple(y.shape)  # doctest: +SKIP
    (2, 2, 64)
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        embeddings_constraint=None,
        mask_zero=False,
        weights=None,
        lora_rank=None,
        lora_alpha=None,
        quantization_config=None,
        **kwargs,
    ):
        if KERAS_MAJOR < 3:  # pragma: no cover - Keras 2 tox envs
            raise NotImplementedError(
                "customlayers.Embedding needs Keras 3; this is Keras "
                f"{_keras.KERAS_VERSION}. Use keras.layers.Embedding there.")
        _positive_int("input_dim", input_dim)
        _positive_int("output_dim", output_dim)
        if quantization_config is not None:
            raise _unsupported_quantization(
                f"quantization_config={quantization_config!r}")
        if kwargs.pop("input_length", None) is not None:
            import warnings
            warnings.warn(
                "Argument `input_length` is deprecated. Just remove it.")
        super().__init__(**kwargs)
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer)
        self.embeddings_regularizer = keras.regularizers.get(
            embeddings_regularizer)
        self.embeddings_constraint = keras.constraints.get(
            embeddings_constraint)
        self.mask_zero = mask_zero
        self.supports_masking = mask_zero
        self.autocast = False
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha if lora_alpha is not None else lora_rank
        self.lora_enabled = False
        self.quantization_config = None
        if weights is not None:
            self.build()
            if not (isinstance(weights, list) and len(weights) == 1):
                weights = [weights]
            self.set_weights(weights)

    def get_config(self):
        config = {
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": keras.initializers.serialize(
                self.embeddings_initializer),
            "embeddings_regularizer": keras.regularizers.serialize(
                self.embeddings_regularizer),
            "activity_regularizer": keras.regularizers.serialize(
                self.activity_regularizer),
            "embeddings_constraint": keras.constraints.serialize(
                self.embeddings_constraint),
            "mask_zero": self.mask_zero,
            "quantization_config": None,
        }
        if self.lora_rank:
            config["lora_rank"] = self.lora_rank
            config["lora_alpha"] = self.lora_alpha
        return {**super().get_config(), **config}

    def build(self, input_shape=None):
        if self.built:
            return
        self._embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer, name="embeddings",
            regularizer=self.embeddings_regularizer,
            constraint=self.embeddings_constraint, trainable=True)
        self.built = True
        if self.lora_rank:
            self.enable_lora(self.lora_rank)

    @property
    def embeddings(self):
        """The table the lookup reads: the variable, plus the LoRA delta
        (cast to the compute dtype) when LoRA is enabled."""
        if not self.built:
            raise AttributeError(
                "You must build the layer before accessing `embeddings`.")
        if not self.lora_enabled:
            return self._embeddings
        delta = ops.matmul(self.lora_embeddings_a, self.lora_embeddings_b)
        return ops.cast(
            ops.add(self._embeddings,
                    (self.lora_alpha / self.lora_rank) * delta),
            dtype=self.compute_dtype)

    def call(self, inputs):
        # The built-in's test, verbatim (see the class docstring on torch).
        if inputs.dtype != "int32" and inputs.dtype != "int64":
            inputs = ops.cast(inputs, "int32")
        rows = ops.take(self.embeddings, inputs, axis=0)
        return ops.cast(rows, dtype=self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(
            self.compute_output_shape(inputs.shape), dtype=self.compute_dtype,
            ragged=getattr(inputs, "ragged", False))

    def enable_lora(self, rank, lora_alpha=None, a_initializer="he_uniform",
                    b_initializer="zeros"):
        """Freeze ``embeddings`` and train a rank-``rank`` delta
        ``lora_embeddings_a @ lora_embeddings_b * lora_alpha / rank``
        (float32 weights), as the built-in's ``enable_lora``."""
        if self.embeddings_constraint:
            raise ValueError(
                "Lora is incompatible with embedding constraints. In order "
                "to enable lora on this layer, remove the "
                "`embeddings_constraint` argument.")
        if not self.built:
            raise ValueError(
                "Cannot enable lora on a layer that isn't yet built.")
        if self.lora_enabled:
            raise ValueError("lora is already enabled. This can only be done "
                             "once per layer.")
        self._tracker.unlock()
        self.lora_embeddings_a = self.add_weight(
            name="lora_embeddings_a", shape=(self.input_dim, rank),
            initializer=keras.initializers.get(a_initializer),
            dtype="float32", regularizer=self.embeddings_regularizer)
        self.lora_embeddings_b = self.add_weight(
            name="lora_embeddings_b", shape=(rank, self.output_dim),
            initializer=keras.initializers.get(b_initializer),
            dtype="float32", regularizer=self.embeddings_regularizer)
        self._embeddings.trainable = False
        self._tracker.lock()
        self.lora_enabled = True
        self.lora_rank = rank
        self.lora_alpha = lora_alpha if lora_alpha is not None else rank

    def quantize(self, mode=None, type_check=True, config=None):
        raise _unsupported_quantization(f"quantize(mode={mode!r})")

    def quantized_build(self, *args, **kwargs):
        raise _unsupported_quantization("quantized_build")
