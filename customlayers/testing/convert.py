"""Conversions between NumPy and the backend's tensors, for the harness.

Role: feed NumPy arrays to layers and read results back as NumPy on every
Keras and backend (``input_tensor``, ``to_numpy``), apply a constraint the
way the built-in would (``apply_constraint``), and say whether this backend
can compute in float64 (``float64_unavailable``). Used by the test harness,
not by the layers. (Moved here from ``customlayers/_compat.py``.)
"""

from __future__ import annotations

import numpy as np

from customlayers._keras import (BACKEND, KERAS_MAJOR, KERAS_VERSION, keras,
                                 ops)

__all__ = ["apply_constraint", "float64_unavailable", "input_tensor",
           "to_numpy"]


def input_tensor(a):
    """A NumPy array to feed a layer. TensorFlow 2.12 predates ml_dtypes and
    cannot convert an ml_dtypes bfloat16 array ("Unsupported numpy type"),
    so on TensorFlow bfloat16 goes through float32 (exact) and a cast.
    Anything else is returned unchanged."""
    if BACKEND == "tensorflow" and getattr(a, "dtype", None) is not None \
            and isinstance(a, np.ndarray) and a.dtype.name == "bfloat16":
        import tensorflow as tf
        return tf.cast(tf.constant(a.astype(np.float32)), tf.bfloat16)
    return a


def to_numpy(t) -> np.ndarray:
    """A backend tensor (or variable) as a NumPy array of the same dtype:
    torch tensors are detached first, and bfloat16 stays bfloat16."""
    if BACKEND == "torch":
        import torch
        value = getattr(t, "value", t)
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            if value.dtype == torch.bfloat16:
                import ml_dtypes
                return value.float().numpy().astype(ml_dtypes.bfloat16)
            return value.numpy()
    if BACKEND == "tensorflow" and getattr(t, "dtype", None) is not None \
            and not isinstance(t, np.ndarray) and str(getattr(
                t.dtype, "name", t.dtype)) == "bfloat16":
        # TF 2.12's .numpy() gives its own bfloat16 type, not ml_dtypes'.
        import ml_dtypes
        import tensorflow as tf
        wide = tf.cast(tf.convert_to_tensor(t), tf.float32).numpy()
        return wide.astype(ml_dtypes.bfloat16)
    if hasattr(t, "numpy"):
        return np.asarray(t.numpy())
    return np.asarray(t)


def apply_constraint(constraint, variable):
    """``constraint(variable)``. Keras 2's built-in constraints compute in
    ``floatx()`` (``NonNeg``: ``w * cast(w >= 0, floatx())``) and fail on a
    float16/bfloat16/float64 variable -- the built-in layer's too; the
    variable is then constrained in float32 and cast back, which is what the
    constraint means."""
    if KERAS_MAJOR < 3:  # pragma: no cover
        import tensorflow as tf
        floatx = keras.backend.floatx()
        if variable.dtype.base_dtype != floatx:
            value = tf.cast(tf.convert_to_tensor(variable), floatx)
            return tf.cast(constraint(value), variable.dtype.base_dtype)
    return constraint(variable)



def float64_unavailable(needs_matmul: bool = True,
                        needs_reductions: bool = False) -> str | None:
    """Why this backend cannot compute a float64 layer in float64 (``None``
    if it can); checked at run time, not by version number.

    - JAX computes float64 in float32 unless x64 mode is on.
    - Keras 3.15.1's torch backend: ``ops.matmul`` of two float64 tensors
      returns float32 (its ``result_type('float64', 'float64')`` is float32
      there), so a float64 Dense -- ``keras.layers.Dense`` too -- rounds its
      output to float32. Elementwise ops keep float64.
    - Keras 3.15.1's JAX backend in x64 mode: ``ops.var`` of a float64
      tensor returns float32 (found through LayerNormalization,
      whose float64 outputs -- the built-in's too -- then round like
      float32: 1e-4 off at inputs ~100), checked with ``needs_reductions``
      (``ops.mean`` and ``ops.var``).
    """
    if BACKEND == "jax":
        import jax
        if not jax.config.jax_enable_x64:
            return ("JAX computes float64 in float32 unless x64 mode is on "
                    "(JAX_ENABLE_X64=1); a float64 central difference "
                    "needs real float64")
    if needs_matmul and KERAS_MAJOR >= 3:
        a = ops.ones((1, 1), dtype="float64")
        got = to_numpy(ops.matmul(a, a)).dtype
        if got != np.float64:
            return (f"keras {KERAS_VERSION} on {BACKEND}: ops.matmul of two "
                    f"float64 tensors returns {got}, so a float64 Dense "
                    "(keras.layers.Dense too) rounds its output to "
                    f"{got}; a float64 central difference needs real "
                    "float64")
    if needs_reductions and KERAS_MAJOR >= 3:
        a = ops.ones((2,), dtype="float64")
        for name, reduce in (("mean", ops.mean), ("var", ops.var)):
            got = to_numpy(reduce(a)).dtype
            if got != np.float64:
                return (f"keras {KERAS_VERSION} on {BACKEND}: ops.{name} of "
                        f"a float64 tensor returns {got}, so a float64 "
                        "layer that reduces (the built-ins too) computes in "
                        f"{got}; a float64 central difference needs real "
                        "float64")
    return None

