"""Hand-written quantization arithmetic for :class:`customlayers.Dense`.

Keras 3 only. Every function here is written from ``numpy`` (the weight
quantizers, which Keras itself runs on the host with ``to_numpy=True``) or
``keras.ops`` (everything that runs inside a call), following the formulas
of ``keras.quantizers`` in Keras 3.15.1 operation for operation, so that the
integer weights and scales come out bit for bit identical to the built-in's
and the float results use the same sequence of roundings:

- :func:`abs_max_quantize_numpy` / :func:`abs_max_quantize`: symmetric
  abs-max quantization, ``q = clip(round(x * s), lo, hi)`` with
  ``s = hi / (max|x| + eps)`` along ``axis`` (per output channel for a
  kernel, per row for activations). ``round`` is round-half-to-even.
- :func:`grouped_quantize_numpy` / :func:`dequantize_grouped`: int4
  sub-channel (``block_size``) asymmetric quantization with a zero point,
  ``q = clip(round(x / s) + z, -8, 7)``, ``s = (max - min + eps) / 15``.
- :func:`pack_int4_numpy` / :func:`unpack_int4`: two int4 values per int8
  byte along the last axis, low nibble first.
- :func:`float8_scale`, :func:`float8_amax_history`,
  :func:`quantize_dequantize`: delayed-scaling float8 (e4m3 forward,
  e5m2 gradients) as in NVIDIA Transformer Engine.

Keras's own helpers are *not* called here. What the Dense layer still takes
from Keras: the quantization config classes and dtype policies (plumbing,
not arithmetic), and a user's own ``weight_quantizer`` /
``activation_quantizer`` object when a config supplies one that is not a
plain ``AbsMaxQuantizer`` (it is the user's code; we cannot rewrite it).
"""

from __future__ import annotations

import numpy as np

from customlayers._keras import keras, ops

#: The largest finite float8 values (``ml_dtypes.finfo(...).max``).
E4M3_MAX = 448.0
E5M2_MAX = 57344.0


def _standardize(dtype) -> str:
    return keras.backend.standardize_dtype(dtype)


# -- symmetric abs-max (int8, int4 per channel) ---------------------------

def abs_max_quantize_numpy(w, axis, value_range=(-127, 127), dtype="int8",
                           epsilon=1e-7):
    """Quantize ``w`` on the host: returns ``(q, scale)``, NumPy arrays,
    ``scale`` in ``w``'s dtype with ``axis`` kept (size 1)."""
    w = ops.convert_to_numpy(w)
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    scale = np.divide(value_range[1],
                      np.add(np.max(np.abs(w), axis=axis, keepdims=True),
                             epsilon))
    q = np.clip(np.round(np.multiply(w, scale)), value_range[0],
                value_range[1]).astype(dtype)
    return q, scale


def abs_max_quantize(x, axis=-1, value_range=(-127, 127), dtype="int8",
                     epsilon=1e-7):
    """The same on the device, for activations: returns ``(q, scale)``
    with ``scale`` in ``x``'s dtype and ``axis`` kept."""
    x = ops.convert_to_tensor(x)
    scale = ops.divide(value_range[1],
                       ops.add(ops.max(ops.abs(x), axis=axis, keepdims=True),
                               epsilon))
    scale = ops.cast(scale, _standardize(x.dtype))
    q = ops.clip(ops.round(ops.multiply(x, scale)), value_range[0],
                 value_range[1])
    return ops.cast(q, dtype), scale


# -- int4 sub-channel (asymmetric, zero point) ----------------------------

def grouped_quantize_numpy(w, block_size, value_range=(-8, 7),
                           dtype="int8", epsilon=1e-7):
    """``w`` of shape ``(input_dim, units)`` in groups of ``block_size``
    rows: returns ``(q, scale, zero)``, ``q`` like ``w``, ``scale`` and
    ``zero`` (int8) of shape ``(ceil(input_dim / block_size), units)``."""
    w = ops.convert_to_numpy(w)
    input_dim, units = w.shape
    n_groups = -(-input_dim // block_size)
    lo, hi = value_range
    padded = np.concatenate(
        [w, np.zeros((n_groups * block_size - input_dim, units), w.dtype)])
    groups = padded.reshape(n_groups, block_size, units)
    w_min = np.min(groups, axis=1, keepdims=True)
    w_max = np.max(groups, axis=1, keepdims=True)
    scale = np.divide(np.subtract(w_max, w_min) + epsilon, hi - lo)
    zero = np.clip(np.round(np.divide(-w_min, scale)) + lo, lo, hi)
    q = np.clip(np.round(np.divide(groups, scale)) + zero, lo, hi)
    q = q.astype(dtype).reshape(n_groups * block_size, units)[:input_dim]
    return q, np.squeeze(scale, axis=1), \
        np.squeeze(zero, axis=1).astype("int8")


def dequantize_grouped(q, scale, zero, g_idx):
    """``(q - zero[g]) * scale[g]`` with ``g = g_idx[row]``."""
    groups = ops.cast(g_idx, "int32")
    scale_rows = ops.take(scale, groups, axis=0)
    zero_rows = ops.cast(ops.take(zero, groups, axis=0), scale_rows.dtype)
    return ops.multiply(ops.subtract(q, zero_rows), scale_rows)


# -- int4 packing ----------------------------------------------------------

def pack_int4_numpy(q):
    """int8 values in [-8, 7], shape ``(rows, n)`` -> int8 bytes of shape
    ``(rows, ceil(n / 2))``; column ``2j`` in the low nibble of byte ``j``,
    column ``2j + 1`` in the high nibble (odd ``n``: a zero pad)."""
    q = np.asarray(ops.convert_to_numpy(q)).astype(np.int8)
    if q.shape[-1] % 2:
        q = np.concatenate([q, np.zeros(q.shape[:-1] + (1,), np.int8)], -1)
    low = np.bitwise_and(q[..., 0::2], np.int8(0x0F))
    high = np.bitwise_and(q[..., 1::2], np.int8(0x0F))
    return np.bitwise_or(low, np.left_shift(high, np.int8(4))).astype(
        np.int8)


def unpack_int4(packed, n):
    """Inverse of :func:`pack_int4_numpy`: int8 of shape ``(rows, n)``."""
    packed = ops.convert_to_tensor(packed)
    mask = ops.cast(0x0F, packed.dtype)
    eight = ops.cast(8, packed.dtype)

    def signed(nibble):  # 0..15 -> -8..7
        return ops.subtract(ops.bitwise_xor(nibble, eight), eight)

    low = signed(ops.bitwise_and(packed, mask))
    high = signed(ops.bitwise_and(ops.right_shift(packed, 4), mask))
    rows = ops.shape(packed)[0]
    both = ops.reshape(ops.stack([low, high], axis=-1), (rows, -1))
    return ops.cast(both[:, :n], "int8")


# -- float8 delayed scaling ------------------------------------------------

def float8_scale(amax, scale, dtype_max, margin=0):
    """The next scale from the largest recent ``amax``: ``amax /
    dtype_max * 2**margin``, keeping ``scale`` where ``amax`` is 0 or not
    finite (Transformer Engine's ``update_fp8_metas``)."""
    previous = ops.reciprocal(scale)
    factor = ops.divide(ops.divide(dtype_max, amax), 2**margin)
    factor = ops.where(amax > 0.0, factor, previous)
    factor = ops.where(ops.isfinite(amax), factor, previous)
    return ops.reciprocal(factor)


def float8_amax_history(x, history):
    """Rolls ``history`` left by one and puts ``max|x|`` at index 0 (the
    rolled-out oldest entry ends up last, as in Keras)."""
    amax = ops.cast(ops.max(ops.abs(x)), history.dtype)
    rolled = ops.roll(history, shift=-1)
    first = ops.equal(ops.arange(ops.shape(history)[0]), 0)
    return ops.where(first, amax, rolled)


def quantize_dequantize(x, scale, float8_dtype, compute_dtype):
    """``cast(cast(clip(x / s, -max, max), float8) , compute) * s``."""
    top = ops.cast(E4M3_MAX if float8_dtype == "float8_e4m3fn" else E5M2_MAX,
                   compute_dtype)
    q = ops.divide(x, ops.cast(scale, compute_dtype))
    q = ops.cast(ops.clip(q, -top, top), float8_dtype)
    return ops.multiply(ops.cast(q, compute_dtype),
                        ops.cast(scale, compute_dtype))
