"""Role: the benchmark matrix (layers, shapes, dtype policies, passes,
modes, the CI gate subset) and the names of its groups.

Three implementations are timed side by side in every group:

* ``custom``: ``customlayers.Dense`` / ``customlayers.ReLU`` /
  ``customlayers.LayerNormalization``;
* ``builtin``: ``keras.layers.Dense`` / ``keras.layers.ReLU`` /
  ``keras.layers.LayerNormalization`` with the same weights and dtype policy;
* ``bare``: the backend's own op on pre-cast tensors, no Keras in the loop
  (see ``adapters/``).

Passes: ``forward``; ``fwdbwd`` (gradient of ``sum(y * g)`` with respect to the
input and, for Dense, the kernel and bias; ``g`` is a fixed random cotangent
passed as an argument, so no compiler can fold the backward pass into a
reduction; for LayerNormalization also gamma and beta); ``train`` (Dense only: the same loss, gradients with respect to
the weights, and an optimizer update; Keras SGD for the layers, a hand-written
SGD update for bare).

Modes: ``eager``; ``graph`` (TF ``tf.function``); ``compiled`` (TF
``tf.function(jit_compile=True)``, ``jax.jit``, and ``torch.compile`` only when
``--bench-torch-compile`` is given). JAX has no graph mode without XLA and
torch has none for Keras layers, so those groups are not generated.
"""

from __future__ import annotations

import keras

BACKEND = keras.backend.backend()

IMPLS = ("custom", "builtin", "bare")

# ---------------------------------------------------------------------------
# The benchmark matrix
# ---------------------------------------------------------------------------

#: Dense shapes as (batch, in_features, units); the flag says "GPU only".
DENSE_SHAPES = [
    ((8192, 4096, 4096), True),
    ((32, 784, 64), False),
    ((32, 64, 10), False),
    ((1024, 784, 64), False),
    ((1024, 64, 10), False),
    ((1024, 1024, 1024), False),
]
#: ReLU shapes: the activations of the Dense shapes above.
RELU_SHAPES = [
    ((8192, 4096), True),
    ((32, 64), False),
    ((1024, 64), False),
    ((1024, 1024), False),
]
#: LayerNormalization shapes (batch, features), normalized over the last
#: axis: a transformer's activations and the Dense activations above.
LAYERNORM_SHAPES = [
    ((8192, 4096), True),
    ((32, 64), False),
    ((1024, 64), False),
    ((1024, 1024), False),
]
#: dtype policy -> GPU only?
DTYPES = [("float32", False), ("mixed_bfloat16", False),
          ("mixed_float16", True)]
PASSES = ("forward", "fwdbwd", "train")
MODES = ("eager", "graph", "compiled")

#: The short CPU gate subset (``-m gate``): one MNIST-size shape per layer.
GATE_DENSE_SHAPE = (1024, 784, 64)
GATE_RELU_SHAPE = (1024, 64)


def shape_id(shape):
    if len(shape) == 3:
        return f"{shape[0]}x{shape[1]}-{shape[2]}"
    return "x".join(str(d) for d in shape)


def group_name(layer, shape, dtype, pass_, mode):
    if layer == "dense":
        s = f"{shape[0]}x{shape[1]}->{shape[2]}"
    else:
        s = "x".join(str(d) for d in shape)
    return f"{layer} {s} {dtype} {pass_} {mode}"


def mode_available(mode, torch_compile=False):
    if mode == "graph":
        return BACKEND == "tensorflow"
    if mode == "compiled" and BACKEND == "torch":
        return torch_compile
    return True
