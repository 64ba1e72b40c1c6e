"""A hand-written drop-in for ``keras.layers.Dense``."""

from __future__ import annotations

import numbers

from customlayers._keras import (KERAS_MAJOR, KERAS_VERSION,
                                 dense_config_extras, dense_inputs, keras, ops,
                                 register_serializable, shape_as_tuple)

if KERAS_MAJOR >= 3:
    from customlayers._dense_quantized import DenseQuantizationMixin as _Base
else:  # pragma: no cover - Keras 2: no LoRA or quantization
    class _Base:
        pass


def _validate_units(units):
    if isinstance(units, bool) or not isinstance(units, numbers.Integral) \
            or units <= 0:
        raise ValueError(
            "Received an invalid value for `units`, expected a positive "
            f"integer. Received: units={units!r} "
            f"(type {type(units).__name__})"
        )
    return int(units)


def _needs_keras3(what):
    if KERAS_MAJOR < 3:  # pragma: no cover
        raise NotImplementedError(
            f"customlayers.Dense: {what} needs Keras 3; this is Keras "
            f"{KERAS_VERSION}.")


def _validate_rank(rank):
    if isinstance(rank, bool) or not isinstance(rank, numbers.Integral) \
            or rank <= 0:
        raise ValueError(
            "Received an invalid value for the LoRA `rank`, expected a "
            f"positive integer. Received: rank={rank!r}")
    return int(rank)


@register_serializable()
class Dense(_Base, keras.layers.Layer):
    """A densely-connected layer: ``activation(inputs @ kernel + bias)``.

    A drop-in for ``keras.layers.Dense``, written from ``matmul`` and ``add``
    as in the Keras custom-layer tutorial. It takes the same arguments, names
    its weights ``kernel`` and ``bias`` (so models that contain it can be
    saved), builds lazily from ``input_shape[-1]`` for inputs of any rank
    >= 2, and computes the same outputs and gradients as the built-in.

    Inputs of rank > 2 are contracted on their last axis, like the built-in:
    ``(batch, d0, ..., input_dim) -> (batch, d0, ..., units)``.

    Args:
        units: Positive integer, the dimensionality of the output space.
            Python and NumPy integers are accepted; ``bool`` is not.
        activation: Activation function to use (anything
            ``keras.activations.get`` accepts). ``None`` means linear.
        use_bias: Boolean, whether the layer adds a bias vector.
        kernel_initializer: Initializer for the ``kernel`` matrix.
        bias_initializer: Initializer for the bias vector.
        kernel_regularizer: Regularizer applied to the ``kernel`` matrix.
        bias_regularizer: Regularizer applied to the bias vector.
        activity_regularizer: Regularizer applied to the layer's output.
        kernel_constraint: Constraint applied to the ``kernel`` matrix.
        bias_constraint: Constraint applied to the bias vector.
        lora_rank: Optional positive integer: build with LoRA of this rank
            (as ``enable_lora(lora_rank)`` right after build). Keras 3 only.
        lora_alpha: Optional number scaling the LoRA delta by
            ``lora_alpha / lora_rank``. As in the built-in, the build's
            ``enable_lora(lora_rank)`` resets it to ``lora_rank``; pass it
            to ``enable_lora`` to keep another value. Keras 3 only.
        quantization_config: Optional ``keras.quantizers``
            ``QuantizationConfig`` (what ``quantize`` stores and
            ``get_config`` saves). Keras 3 only.
        **kwargs: Base layer keyword arguments, such as ``name``, ``dtype``
            (also a quantized policy such as ``"int8_from_float32"``) and
            ``trainable``.

    LoRA and quantization (Keras 3): ``enable_lora(rank)`` freezes the
    kernel and trains ``lora_kernel_a @ lora_kernel_b * alpha / rank`` on
    top of it; ``quantize("int8" | "int4" | "float8")`` (or
    ``Model.quantize``) stores the kernel as the built-in does. GPTQ and
    AWQ are not implemented (``NotImplementedError``). The quantized paths
    live in :mod:`customlayers._dense_quantized`, their arithmetic in
    :mod:`customlayers.quantization`. No ``keras.quantizers`` function is
    called; Keras's own pieces used are configuration (the
    ``QuantizationConfig`` classes, ``AbsMaxQuantizer`` as a description
    of what to compute -- a user's *other* quantizer object is called as
    it is), the dtype policies, and ``Layer``'s own ``quantize`` checks
    (unbuilt layer, quantizing twice, invalid mode). On Keras 2 these
    raise ``NotImplementedError``.

    Example:

    >>> layer = Dense(32, activation="relu")
    >>> y = layer(np.ones((4, 16), "float32"))   # builds a (16, 32) kernel
    >>> tuple(y.shape)
    (4, 32)
    """

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        lora_rank=None,
        lora_alpha=None,
        quantization_config=None,
        **kwargs,
    ):
        units = _validate_units(units)
        if lora_rank is not None:
            _needs_keras3("lora_rank")
            lora_rank = _validate_rank(lora_rank)
        if quantization_config is not None:
            _needs_keras3("quantization_config")
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha if lora_alpha is not None else lora_rank
        self.lora_enabled = False
        self.quantization_config = quantization_config
        self.input_spec = keras.layers.InputSpec(min_ndim=2)
        self.supports_masking = True
        self.input_dim = None

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer),
                "bias_regularizer": keras.regularizers.serialize(
                    self.bias_regularizer),
                "kernel_constraint": keras.constraints.serialize(
                    self.kernel_constraint),
                "bias_constraint": keras.constraints.serialize(
                    self.bias_constraint),
                **dense_config_extras(self),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("quantization_config") is not None:
            config["quantization_config"] = \
                keras.saving.deserialize_keras_object(
                    config["quantization_config"])
        return super().from_config(config)

    def _quantization_mode(self):
        return None if KERAS_MAJOR < 3 else self.quantization_mode

    def build(self, input_shape):
        shape = tuple(shape_as_tuple(input_shape))
        if len(shape) < 2:
            raise ValueError(
                f'Layer "{self.name}" (Dense) expects inputs of rank >= 2, '
                f"(batch, ..., features); received shape {shape}."
            )
        input_dim = shape[-1]
        if input_dim is None:
            raise ValueError(
                f'Layer "{self.name}" (Dense) needs a known last dimension to '
                f"create its kernel; received input shape {shape}. Give the "
                "input a fixed feature size."
            )
        self.input_dim = int(input_dim)
        kernel_shape = (self.input_dim, self.units)
        mode = self._quantization_mode()
        if mode:
            # int8/int4 create their own integer `kernel`; float8 adds its
            # scales before the float kernel, as the built-in does.
            self.quantized_build(kernel_shape, mode=mode,
                                 config=self.quantization_config)
        if mode not in ("int8", "int4"):
            self._kernel = self.add_weight(
                name="kernel",
                shape=kernel_shape,
                initializer=self.kernel_initializer,
                regularizer=self.kernel_regularizer,
                constraint=self.kernel_constraint,
            )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        # Keras checks every later input against this in __call__: a
        # changed last dimension gets its "... is incompatible with the
        # layer: expected axis -1 of input shape to have value N" error.
        self.input_spec = keras.layers.InputSpec(
            min_ndim=2, axes={-1: self.input_dim})
        self.built = True
        if self.lora_rank:
            self.enable_lora(self.lora_rank)

    @property
    def kernel(self):
        """The float kernel the layer computes with: the variable itself,
        an int4 kernel unpacked (still integers), or with LoRA the merged
        ``kernel + lora_alpha / lora_rank * lora_kernel_a @ lora_kernel_b``
        (cast to the compute dtype)."""
        if not self.built:
            raise AttributeError(
                "You must build the layer before accessing `kernel`.")
        kernel = self._kernel
        if self._quantization_mode() == "int4":
            from customlayers.quantization import unpack_int4
            kernel = unpack_int4(kernel, self._orig_output_dim)
        if self.lora_enabled:
            kernel = ops.cast(
                ops.add(kernel, (self.lora_alpha / self.lora_rank)
                        * ops.matmul(self.lora_kernel_a, self.lora_kernel_b)),
                self.compute_dtype)
        return kernel

    def call(self, inputs, training=None):
        inputs = dense_inputs(self, inputs)
        return self._bias_and_activation(ops.matmul(inputs, self.kernel))

    def _bias_and_activation(self, x):
        if self.bias is not None:
            x = ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def compute_output_shape(self, input_shape):
        shape = list(shape_as_tuple(input_shape))
        shape[-1] = self.units
        return tuple(shape)

    # -- LoRA (Keras 3) ------------------------------------------------------

    def enable_lora(self, rank, lora_alpha=None, a_initializer="he_uniform",
                    b_initializer="zeros"):
        """Freeze ``kernel`` and add trainable float32 ``lora_kernel_a``
        ``(input_dim, rank)`` and ``lora_kernel_b`` ``(rank, units)``; the
        layer then computes with ``kernel + lora_alpha / rank * A @ B``
        (``lora_alpha`` defaults to ``rank``). B starts at zero, so the
        output is unchanged until training moves it."""
        _needs_keras3("enable_lora")
        if self.kernel_constraint:
            raise ValueError(
                "Lora is incompatible with kernel constraints. "
                "In order to enable lora on this layer, remove the "
                "`kernel_constraint` argument.")
        if not self.built:
            raise ValueError(
                "Cannot enable lora on a layer that isn't yet built.")
        if self.lora_enabled:
            raise ValueError(
                "lora is already enabled. This can only be done once per "
                "layer.")
        rank = _validate_rank(rank)
        self._tracker.unlock()
        input_dim = self.kernel.shape[0]
        self.lora_kernel_a = self.add_weight(
            name="lora_kernel_a", shape=(input_dim, rank),
            initializer=keras.initializers.get(a_initializer),
            dtype="float32", regularizer=self.kernel_regularizer)
        self.lora_kernel_b = self.add_weight(
            name="lora_kernel_b", shape=(rank, self.units),
            initializer=keras.initializers.get(b_initializer),
            dtype="float32", regularizer=self.kernel_regularizer)
        self._kernel.trainable = False
        self._tracker.lock()
        self.lora_enabled = True
        self.lora_rank = rank
        self.lora_alpha = lora_alpha if lora_alpha is not None else rank

    # -- saving (Keras 3: weights by position, LoRA merged into kernel) ------

    def save_own_variables(self, store):
        if KERAS_MAJOR < 3 or not self.built:
            return super().save_own_variables(store)
        mode = self.quantization_mode
        if mode not in self.variable_serialization_spec:
            raise self._quantization_mode_error(mode)
        kernel, scale, zero = self._kernel_for_saving()
        values = {"kernel": kernel, "bias": self.bias,
                  "kernel_zero": zero, "g_idx": getattr(self, "g_idx", None)}
        if mode in ("int8", "int4"):
            values["kernel_scale"] = scale
        i = 0
        for name in self.variable_serialization_spec[mode]:
            value = values[name] if name in values else getattr(self, name)
            if value is None:
                continue
            store[str(i)] = value
            i += 1

    def load_own_variables(self, store):
        if KERAS_MAJOR < 3:  # pragma: no cover
            return super().load_own_variables(store)
        if not self.lora_enabled:
            self._check_load_own_variables(store)
        if not self.built:
            return
        mode = self.quantization_mode
        if mode not in self.variable_serialization_spec:
            raise self._quantization_mode_error(mode)
        targets = {"kernel": self._kernel}
        i = 0
        for name in self.variable_serialization_spec[mode]:
            variable = targets.get(name, getattr(self, name, None))
            if variable is None:
                continue
            variable.assign(store[str(i)])
            i += 1
        if self.lora_enabled:
            # The saved kernel has LoRA merged in: start the delta at zero.
            self.lora_kernel_a.assign(ops.zeros(self.lora_kernel_a.shape))
            self.lora_kernel_b.assign(ops.zeros(self.lora_kernel_b.shape))
