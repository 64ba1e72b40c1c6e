"""Deliberately broken quantization and LoRA in Dense: each must be caught.

Every class is customlayers.Dense with one plausible mistake. The three
int8 bugs redo the int8 weight quantization after the real one, the way
the bug would have done it (same axis, same value range from the config);
the LoRA bug inverts the ``alpha / rank`` scale in both call paths.
tests/meta_tests/test_quantization_bugs.py asserts that the property of
tests/property/test_dense_lora_quantization.py catches each one.
"""

import numpy as np

from customlayers import Dense
from customlayers._keras import ops


def _weight_range(config):
    quantizer = getattr(config, "weight_quantizer", None)
    return tuple(quantizer.value_range) if quantizer is not None \
        else (-127, 127)


class _RequantizedInt8Dense(Dense):
    """Quantizes as Dense does, then redoes the int8 kernel and scale with
    ``_bad_quantize(w, lo, hi) -> (q, scale per unit)``."""

    def quantize(self, mode=None, type_check=True, config=None):
        w = ops.convert_to_numpy(self._kernel)
        super().quantize(mode, type_check=False, config=config)
        if mode == "int8":
            q, scale = self._bad_quantize(w, *_weight_range(config))
            self._kernel.assign(q)
            self.kernel_scale.assign(scale)


class FloorRoundingDense(_RequantizedInt8Dense):
    """Rounds the scaled kernel with ``floor`` instead of ``round``."""

    @staticmethod
    def _bad_quantize(w, lo, hi):
        scale = hi / (np.max(np.abs(w), axis=0) + 1e-7)
        return np.clip(np.floor(w * scale), lo, hi).astype("int8"), scale


class PerTensorScaleDense(_RequantizedInt8Dense):
    """One scale for the whole kernel instead of one per output unit."""

    @staticmethod
    def _bad_quantize(w, lo, hi):
        scale = np.float32(hi / (np.max(np.abs(w)) + 1e-7))
        q = np.clip(np.round(w * scale), lo, hi).astype("int8")
        return q, np.full(w.shape[1], scale, "float32")


class UnclippedDense(_RequantizedInt8Dense):
    """Forgets to clip to the integer range: with an asymmetric
    ``value_range`` (say (-5, 127)) the most negative weights fall below
    ``lo``."""

    @staticmethod
    def _bad_quantize(w, lo, hi):
        scale = hi / (np.max(np.abs(w), axis=0) + 1e-7)
        return np.round(w * scale).astype("int8"), scale


class InvertedLoraScaleDense(Dense):
    """Scales the LoRA delta by ``rank / alpha`` instead of
    ``alpha / rank``."""

    def _scale(self):
        return self.lora_rank / self.lora_alpha

    @property
    def kernel(self):
        if not self.lora_enabled:
            return super().kernel
        base = self._kernel
        if self.quantization_mode == "int4":
            from customlayers.quantization import unpack_int4
            base = unpack_int4(base, self._orig_output_dim)
        return ops.cast(ops.add(base, self._scale() * ops.matmul(
            self.lora_kernel_a, self.lora_kernel_b)), self.compute_dtype)

    def _quantized_tail(self, inputs, x):
        if self.lora_enabled:
            lora_x = ops.matmul(ops.matmul(inputs, self.lora_kernel_a),
                                self.lora_kernel_b)
            x = ops.cast(ops.add(x, self._scale() * lora_x),
                         self.compute_dtype)
        return self._bias_and_activation(x)
