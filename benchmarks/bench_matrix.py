"""Role: the benchmark matrix (layers, shapes, dtype policies, passes,
modes, the CI gate subset) and the names of its groups.

Three implementations are timed side by side in every group:

* ``custom``: ``customlayers.Dense`` / ``ReLU`` / ``LayerNormalization`` /
  ``BatchNormalization`` / ``Dropout`` / ``Embedding``;
* ``builtin``: the ``keras.layers`` class of the same name with the same
  weights, dtype policy, call arguments (``CALL_KWARGS``) and seed;
* ``bare``: the backend's own op on pre-cast tensors, no Keras in the loop
  (see ``bench_adapters/``; Dropout's is ``keras.random.dropout`` on TF and
  torch, the backends' dropout behind one Keras function).

Layer kinds (the first word of a group name): ``dense``, ``relu``,
``layernorm``, ``batchnorm_inference`` (``training=False``: the moving
statistics), ``batchnorm_training`` (``training=True``: batch statistics and
the moving-average update), ``dropout`` (``training=True``, rate 0.5, seeded)
and ``embedding`` (int32 ids into a float32 table; the ids have no gradient,
so ``fwdbwd`` differentiates with respect to the table only).

Passes: ``forward``; ``fwdbwd`` (gradient of ``sum(y * g)`` with respect to the
input and, for Dense, the kernel and bias; ``g`` is a fixed random cotangent
passed as an argument, so no compiler can fold the backward pass into a
reduction; for LayerNormalization and BatchNormalization also gamma and
beta, for Embedding the table alone); ``train`` (Dense only: the same loss, gradients with respect to
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
#: BatchNormalization shapes (batch, features), normalized over the batch
#: axis: LayerNormalization's.
BATCHNORM_SHAPES = LAYERNORM_SHAPES
#: Dropout shapes: ReLU's (the activations of the Dense shapes).
DROPOUT_SHAPES = RELU_SHAPES
#: Embedding shapes as (batch, sequence, input_dim, output_dim): int32 ids
#: of shape (batch, sequence) into an (input_dim, output_dim) table.
EMBEDDING_SHAPES = [
    ((4096, 128, 32000, 512), True),
    ((32, 32, 10000, 64), False),
    ((1024, 32, 10000, 64), False),
]
#: dtype policy -> GPU only?
DTYPES = [("float32", False), ("mixed_bfloat16", False),
          ("mixed_float16", True)]
PASSES = ("forward", "fwdbwd", "train")
MODES = ("eager", "graph", "compiled")

#: layer kind -> (shapes, passes), in collection order (the first three keep
#: their test ids and order from before the other kinds were added).
LAYERS = {
    "dense": (DENSE_SHAPES, PASSES),
    # relu: no weights; the normalizations: two weight vectors, the
    # optimizer step would be all there is to time; embedding/dropout: the
    # same, or nothing, to update. Dense alone has a ``train`` pass.
    "relu": (RELU_SHAPES, ("forward", "fwdbwd")),
    "layernorm": (LAYERNORM_SHAPES, ("forward", "fwdbwd")),
    "batchnorm_inference": (BATCHNORM_SHAPES, ("forward", "fwdbwd")),
    "batchnorm_training": (BATCHNORM_SHAPES, ("forward", "fwdbwd")),
    "dropout": (DROPOUT_SHAPES, ("forward", "fwdbwd")),
    "embedding": (EMBEDDING_SHAPES, ("forward", "fwdbwd")),
}
#: Call arguments of the layers (custom and builtin alike) per kind.
CALL_KWARGS = {
    "batchnorm_inference": {"training": False},
    "batchnorm_training": {"training": True},
    "dropout": {"training": True},
}
DROPOUT_RATE = 0.5
DROPOUT_SEED = 1337

#: The short CPU gate subset (``-m gate``): one MNIST-size shape per layer.
GATE_DENSE_SHAPE = (1024, 784, 64)
GATE_RELU_SHAPE = (1024, 64)


def shape_id(shape):
    if len(shape) == 4:  # embedding: ids, then table
        return f"{shape[0]}x{shape[1]}-{shape[2]}x{shape[3]}"
    if len(shape) == 3:
        return f"{shape[0]}x{shape[1]}-{shape[2]}"
    return "x".join(str(d) for d in shape)


def group_name(layer, shape, dtype, pass_, mode):
    if layer == "dense":
        s = f"{shape[0]}x{shape[1]}->{shape[2]}"
    elif layer == "embedding":  # table[ids]
        s = f"{shape[2]}x{shape[3]}[{shape[0]}x{shape[1]}]"
    else:
        s = "x".join(str(d) for d in shape)
    return f"{layer} {s} {dtype} {pass_} {mode}"


def mode_available(mode, torch_compile=False):
    if mode == "graph":
        return BACKEND == "tensorflow"
    if mode == "compiled" and BACKEND == "torch":
        return torch_compile
    return True
