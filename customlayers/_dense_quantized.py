"""Quantized modes of :class:`customlayers.Dense` (Keras 3 only).

A mixin holding what ``keras.layers.Dense`` (Keras 3.15.1) does for
``quantize("int8" | "int4" | "float8")``: the same variables (names,
shapes, dtypes, trainability, creation order), the same forward and
backward passes (custom gradients through the integer kernel; float8
fake-quantization with delayed scaling whose "gradients" are the new
scales and amax histories, written back by the optimizer through
``overwrite_with_gradient``), LoRA on top of int8/int4 kernels, and the
LoRA merge + re-quantization on saving. The arithmetic is hand-written in
:mod:`customlayers.quantization`.

Left out: GPTQ and AWQ (calibration algorithms over a data set with their
own packed layouts; ``quantize("gptq" | "awq")`` raises
``NotImplementedError``, which ``Model.quantize`` turns into a warning).
"""

from __future__ import annotations

import numpy as np

from customlayers import quantization as q
from customlayers._keras import keras, ops

SUPPORTED_MODES = ("int8", "int4", "float8")

#: Variables saved per mode, in order (``save_own_variables``).
VARIABLE_SPEC = {
    None: ["kernel", "bias"],
    "int8": ["kernel", "bias", "kernel_scale"],
    "int4": ["kernel", "bias", "kernel_scale", "kernel_zero", "g_idx"],
    "float8": ["kernel", "bias", "inputs_scale", "inputs_amax_history",
               "kernel_scale", "kernel_amax_history", "outputs_grad_scale",
               "outputs_grad_amax_history"],
}


def _unsupported(mode):
    return NotImplementedError(
        f"customlayers.Dense does not implement quantization mode {mode!r} "
        f"(supported: {SUPPORTED_MODES}); GPTQ and AWQ need a calibration "
        "data set and are left out, use keras.layers.Dense for them.")


def int4_block_size(layer, config):
    """``block_size`` from an ``Int4QuantizationConfig``, else from the
    layer's ``Int4DTypePolicy`` (``-1`` read as ``None``), else ``None``
    (per channel): what Keras's ``get_block_size_for_layer`` decides."""
    if isinstance(config, keras.quantizers.Int4QuantizationConfig):
        return config.block_size
    policy = layer.dtype_policy
    if isinstance(policy, keras.dtype_policies.DTypePolicyMap):
        policy = policy[layer.path]
    if isinstance(policy, keras.dtype_policies.Int4DTypePolicy):
        return None if policy.block_size == -1 else policy.block_size
    return None


def _quantize(quantizer, x, axis, to_numpy):
    """Run a config's quantizer: a plain ``AbsMaxQuantizer`` by hand, any
    other (user) quantizer as itself."""
    if type(quantizer) is keras.quantizers.AbsMaxQuantizer:
        if axis is None:
            axis = quantizer.axis if quantizer.axis is not None else -1
        fn = q.abs_max_quantize_numpy if to_numpy else q.abs_max_quantize
        return fn(x, axis, quantizer.value_range, quantizer.output_dtype,
                  quantizer.epsilon)
    if to_numpy:
        values, scale = quantizer(x, to_numpy=True)
        return ops.convert_to_numpy(values), ops.convert_to_numpy(scale)
    return quantizer(x, axis=axis)


class DenseQuantizationMixin:
    """``quantize``, ``quantized_build`` and the ``_*_call`` paths."""

    @property
    def variable_serialization_spec(self):
        return VARIABLE_SPEC

    def quantize(self, mode=None, type_check=True, config=None):
        from customlayers.dense import Dense
        if type_check and type(self) is not Dense:
            raise self._not_implemented_error(self.quantize)
        if mode not in SUPPORTED_MODES:
            raise _unsupported(mode)
        self.quantization_config = config
        kernel_shape = tuple(self._kernel.shape)
        Config = keras.quantizers.QuantizationConfig
        zero = None
        if mode == "int8":
            quantizer = Config.weight_quantizer_or_default(
                config, keras.quantizers.AbsMaxQuantizer(axis=0))
            values, scale = _quantize(quantizer, self._kernel, None, True)
            scale = np.squeeze(scale, axis=0)
        elif mode == "int4":
            block = int4_block_size(self, config)
            if block is None or block == -1:
                quantizer = Config.weight_quantizer_or_default(
                    config, keras.quantizers.AbsMaxQuantizer(
                        axis=0, value_range=(-8, 7), output_dtype="int8"))
                values, scale = _quantize(quantizer, self._kernel, None,
                                          True)
                scale = np.squeeze(scale, axis=0)
            else:
                values, scale, zero = q.grouped_quantize_numpy(
                    self._kernel, block)
            values = q.pack_int4_numpy(values)
        if mode in ("int8", "int4"):
            del self._kernel
            self.quantized_build(kernel_shape, mode, config)
            self._kernel.assign(values)
            self.kernel_scale.assign(scale)
            if zero is not None:
                self.kernel_zero.assign(zero)
        else:
            self.quantized_build(kernel_shape, mode)
        if self.dtype_policy.quantization_mode is None:
            name = mode
            if mode == "int4":
                block = int4_block_size(self, config)
                name = f"int4/{-1 if block is None else block}"
            self.dtype_policy = keras.dtype_policies.get(
                f"{name}_from_{self.dtype_policy.name}")

    def quantized_build(self, kernel_shape, mode, config=None):
        if mode == "int8":
            self._int8_build(kernel_shape, config)
        elif mode == "int4":
            self._int4_build(kernel_shape, config)
        elif mode == "float8":
            self._float8_build()
        elif mode in ("gptq", "awq"):
            raise _unsupported(mode)
        else:
            raise self._quantization_mode_error(mode)
        self._is_quantized = True

    def _int8_build(self, kernel_shape, config=None):
        self.inputs_quantizer = keras.quantizers.QuantizationConfig \
            .activation_quantizer_or_default(
                config, keras.quantizers.AbsMaxQuantizer())
        self._kernel = self.add_weight(
            name="kernel", shape=kernel_shape, initializer="zeros",
            dtype="int8", trainable=False)
        self.kernel_scale = self.add_weight(
            name="kernel_scale", shape=(self.units,), initializer="ones",
            trainable=False)

    def _int4_build(self, kernel_shape, config=None):
        self.inputs_quantizer = keras.quantizers.QuantizationConfig \
            .activation_quantizer_or_default(config, None)
        input_dim, output_dim = kernel_shape
        self._kernel = self.add_weight(
            name="kernel", shape=(input_dim, (output_dim + 1) // 2),
            initializer="zeros", dtype="int8", trainable=False)
        block = int4_block_size(self, config)
        self._int4_block_size = block
        grouped = block is not None and block > 0
        scale_shape = ((-(-input_dim // block), self.units) if grouped
                       else (self.units,))
        self.kernel_scale = self.add_weight(
            name="kernel_scale", shape=scale_shape, initializer="ones",
            trainable=False)
        if grouped:
            self.kernel_zero = self.add_weight(
                name="kernel_zero", shape=scale_shape, initializer="zeros",
                dtype="int8", trainable=False)
            self.g_idx = self.add_weight(
                name="g_idx", shape=(input_dim,),
                initializer=lambda shape, dtype: ops.floor_divide(
                    ops.arange(input_dim, dtype=dtype), block),
                dtype="float32", trainable=False)
        self._orig_input_dim = input_dim
        self._orig_output_dim = output_dim

    def _float8_build(self):
        length = getattr(
            self.dtype_policy, "amax_history_length",
            keras.dtype_policies.QuantizedFloat8DTypePolicy
            .default_amax_history_length)
        common = dict(dtype="float32", trainable=True, autocast=False,
                      overwrite_with_gradient=True)
        for name in ("inputs", "kernel", "outputs_grad"):
            setattr(self, f"{name}_scale", self.add_weight(
                name=f"{name}_scale", shape=(), initializer="ones",
                **common))
            setattr(self, f"{name}_amax_history", self.add_weight(
                name=f"{name}_amax_history", shape=(length,),
                initializer="zeros", **common))

    # -- calls ------------------------------------------------------------

    def _integer_matmul(self, inputs, kernel, kernel_scale, unpack):
        """``inputs @ dequantize(kernel)`` with symmetric per-channel
        scales: the integer matmul (inputs quantized too where the config
        says so) then one division; the input gradient goes through the
        dequantized kernel."""
        compute_dtype = self.compute_dtype
        quantizer = self.inputs_quantizer

        @ops.custom_gradient
        def matmul(inputs, kernel, kernel_scale):
            ints = unpack(kernel)

            def grad_fn(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                float_kernel = ops.divide(ops.cast(ints, compute_dtype),
                                          kernel_scale)
                return (ops.matmul(upstream, ops.transpose(float_kernel)),
                        None, None)

            output_scale = kernel_scale
            if quantizer:
                inputs, inputs_scale = _quantize(quantizer, inputs, -1,
                                                 False)
                output_scale = ops.multiply(output_scale, inputs_scale)
            x = ops.cast(ops.matmul(inputs, ints), compute_dtype)
            return ops.divide(x, output_scale), grad_fn

        return matmul(inputs, kernel, kernel_scale)

    def _grouped_matmul(self, inputs):
        compute_dtype = self.compute_dtype
        n = self._orig_output_dim

        @ops.custom_gradient
        def matmul(inputs, kernel, kernel_scale, kernel_zero, g_idx):
            float_kernel = ops.cast(q.dequantize_grouped(
                q.unpack_int4(kernel, n), kernel_scale, kernel_zero, g_idx),
                compute_dtype)

            def grad_fn(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                return (ops.matmul(upstream, ops.transpose(float_kernel)),
                        None, None, None, None)

            return ops.matmul(inputs, float_kernel), grad_fn

        return matmul(inputs, *(ops.convert_to_tensor(v) for v in (
            self._kernel, self.kernel_scale, self.kernel_zero, self.g_idx)))

    def _int8_call(self, inputs, training=None):
        x = self._integer_matmul(
            inputs, ops.convert_to_tensor(self._kernel),
            ops.convert_to_tensor(self.kernel_scale), lambda k: k)
        return self._quantized_tail(inputs, x)

    def _int4_call(self, inputs, training=None):
        block = getattr(self, "_int4_block_size", None)
        if block is None or block == -1:
            n = self._orig_output_dim
            x = self._integer_matmul(
                inputs, ops.convert_to_tensor(self._kernel),
                ops.convert_to_tensor(self.kernel_scale),
                lambda k: q.unpack_int4(k, n))
        else:
            x = self._grouped_matmul(inputs)
        return self._quantized_tail(inputs, x)

    def _quantized_tail(self, inputs, x):
        if self.lora_enabled:
            lora_x = ops.matmul(ops.matmul(inputs, self.lora_kernel_a),
                                self.lora_kernel_b)
            x = ops.add(x, (self.lora_alpha / self.lora_rank) * lora_x)
            x = ops.cast(x, self.compute_dtype)
        return self._bias_and_activation(x)

    def _float8_call(self, inputs, training=None):
        if self.lora_enabled:
            raise NotImplementedError(
                "Currently, `_float8_call` doesn't support LoRA")
        compute_dtype = self.compute_dtype

        @ops.custom_gradient
        def qdq_forward(x, scale, history):
            if training:
                new_scale = q.float8_scale(
                    ops.max(history, axis=0), scale,
                    ops.cast(q.E4M3_MAX, "float32"))
                new_history = q.float8_amax_history(x, history)
            else:
                new_scale = new_history = None
            y = q.quantize_dequantize(x, scale, "float8_e4m3fn",
                                      compute_dtype)

            def grad(*args, upstream=None, variables=None):
                if upstream is None:
                    (upstream,) = args
                return upstream, new_scale, new_history

            return y, grad

        @ops.custom_gradient
        def qdq_backward(x, scale, history):
            def grad(*args, upstream=None, variables=None):
                if upstream is None:
                    (upstream,) = args
                new_scale = q.float8_scale(
                    ops.max(history, axis=0), scale,
                    ops.cast(q.E5M2_MAX, "float32"))
                g = q.quantize_dequantize(upstream, scale, "float8_e5m2",
                                          compute_dtype)
                return g, new_scale, q.float8_amax_history(upstream, history)

            return x, grad

        t = ops.convert_to_tensor
        x = ops.matmul(
            qdq_forward(inputs, t(self.inputs_scale),
                        t(self.inputs_amax_history)),
            qdq_forward(t(self._kernel), t(self.kernel_scale),
                        t(self.kernel_amax_history)))
        x = qdq_backward(x, t(self.outputs_grad_scale),
                         t(self.outputs_grad_amax_history))
        if self.bias is not None:
            bias = self.bias
            if self.dtype_policy.compute_dtype == "float32":
                # As the built-in: round the bias through bfloat16 (for
                # XLA's biasAdd fusion).
                bias = ops.cast(ops.cast(bias, "bfloat16"), bias.dtype)
            x = ops.add(x, bias)
        return self.activation(x) if self.activation is not None else x

    # -- saving -------------------------------------------------------------

    def _kernel_for_saving(self):
        """``(kernel, kernel_scale, kernel_zero)`` to save, with LoRA merged:
        float kernels merge in float; int8/int4 dequantize, merge, and
        quantize again (a new scale)."""
        mode = self.quantization_mode
        if mode is None:
            return self.kernel, None, None
        kernel, scale = self._kernel, self.kernel_scale
        zero = getattr(self, "kernel_zero", None)
        if not self.lora_enabled or mode == "float8":
            return kernel, scale, zero
        block = getattr(self, "_int4_block_size", None)
        grouped = mode == "int4" and block is not None and block != -1
        if mode == "int4":
            ints = q.unpack_int4(kernel, self._orig_output_dim)
            if grouped:
                float_kernel = ops.cast(q.dequantize_grouped(
                    ints, scale, zero, self.g_idx), self.compute_dtype)
            else:
                float_kernel = ops.divide(
                    ops.cast(ints, self.compute_dtype), scale)
            value_range = (-8, 7)
        else:
            float_kernel = ops.divide(
                ops.cast(kernel, self.compute_dtype), scale)
            value_range = (-127, 127)
        merged = ops.add(float_kernel, (self.lora_alpha / self.lora_rank)
                         * ops.matmul(self.lora_kernel_a, self.lora_kernel_b))
        if grouped:
            values, scale, zero = q.grouped_quantize_numpy(merged, block)
        else:
            values, scale = q.abs_max_quantize_numpy(merged, 0, value_range)
            scale, zero = np.squeeze(scale, axis=0), None
        if mode == "int4":
            values = q.pack_int4_numpy(values)
        return values, scale, zero
