"""Why the Embedding weight gradient under ``mixed_bfloat16`` differs
between TensorFlow and JAX/PyTorch (found by ``tox -e parity``).

Keras's built-in ``keras.layers.Embedding`` (no customlayers code), float32
table, ``mixed_bfloat16`` policy, one id repeated ``K`` times, a bfloat16
upstream gradient: the gradient of the table row is the sum of the ``K``
upstream rows. Printed: each backend's row against the exact (float64) sum.

- TensorFlow: the autocast ``Cast`` (float32 -> bfloat16) before the gather
  passes the gather's ``IndexedSlices`` gradient through, casting each
  *row* to float32, so the rows are summed in float32 when the slices are
  densified: exact to float32 rounding.
- JAX: the gather's transpose is a scatter-add in the operand's dtype
  (bfloat16) and the cast to float32 comes after: the sum is accumulated in
  bfloat16. The last line shows it with ``jnp.take`` alone.
- PyTorch (CPU): ``embedding_dense_backward`` in bfloat16, then the cast:
  accumulated in bfloat16 (also shown with ``torch.nn.functional.embedding``).

Run once per backend (a Keras process has one)::

    for b in tensorflow jax torch; do KERAS_BACKEND=$b python \
        benchmarks/investigations/embedding_bf16_grad_sum.py; done
"""

import os

import ml_dtypes
import numpy as np

import keras

K, DIM, SEED = 256, 4, 0
rng = np.random.default_rng(SEED)
ids = np.zeros((K,), "int32")                # one id, K times
g = rng.standard_normal((K, DIM)).astype(ml_dtypes.bfloat16)
exact = g.astype(np.float64).sum(0)          # the exact row gradient
backend = keras.backend.backend()

layer = keras.layers.Embedding(2, DIM, dtype="mixed_bfloat16")
layer.build((K,))
if backend == "jax":
    import jax
    import jax.numpy as jnp

    def f(table):
        # Through __call__ (its autocast), as a training step calls the
        # layer; layer.stateless_call skips the autocast (see
        # jax_autocast_gap.py) and would gather from the float32 table.
        with keras.StatelessScope(state_mapping=[(layer.embeddings, table)]):
            y = layer(ids)
        return jnp.sum(y.astype(jnp.float32) * jnp.asarray(g, jnp.float32))
    grad = np.asarray(jax.grad(f)(layer.embeddings.value))[0]
    low = np.asarray(jax.grad(lambda t: jnp.sum(
        jnp.take(t.astype(jnp.bfloat16), ids, axis=0).astype(jnp.float32)
        * jnp.asarray(g, jnp.float32)))(layer.embeddings.value))[0]
elif backend == "torch":
    import torch
    y = layer(torch.as_tensor(ids))
    (gr,) = torch.autograd.grad(y, [layer.embeddings.value],
                                grad_outputs=torch.as_tensor(
                                    g.astype(np.float32)).to(y.dtype))
    grad = gr[0].float().numpy()
    t = layer.embeddings.value.detach().clone().requires_grad_(True)
    yl = torch.nn.functional.embedding(torch.as_tensor(ids),
                                       t.to(torch.bfloat16))
    (gl,) = torch.autograd.grad(yl, [t], grad_outputs=torch.as_tensor(
        g.astype(np.float32)).to(torch.bfloat16))
    low = gl[0].float().numpy()
else:
    import tensorflow as tf
    with tf.GradientTape() as tape:
        y = layer(ids)
    gr = tape.gradient(y, layer.embeddings,
                       output_gradients=tf.constant(g, tf.bfloat16))
    print("gradient type:", type(gr).__name__,
          "values dtype:", getattr(gr, "values", gr).dtype.name)
    grad = tf.convert_to_tensor(gr).numpy()[0]
    low = None

print(f"{backend}: K={K} repeats of one id, seed {SEED}, "
      f"keras {keras.__version__}")
print("  exact (float64) row gradient:", exact)
print("  built-in Embedding gradient: ", grad.astype(np.float64),
      " max |error|", np.abs(grad - exact).max())
if low is not None:
    print("  the bare gather in bfloat16: ", low.astype(np.float64),
          " max |error|", np.abs(low - exact).max())
f32 = g.astype(np.float32).sum(0, dtype=np.float32)
print("  float32 running sum would be:", f32.astype(np.float64),
      " max |error|", np.abs(f32 - exact).max())
