"""Deliberately broken variants of customlayers.Embedding: each must be
caught by the generic properties (``test_embedding_bugs.py``)."""

from customlayers import Embedding
from customlayers._keras import ops
from tests.meta_tests.broken_torch_compile import compiling


def _ids(inputs):
    if inputs.dtype != "int32" and inputs.dtype != "int64":
        inputs = ops.cast(inputs, "int32")
    return inputs


class LastRowClampedEmbedding(Embedding):
    """Clips ids to ``input_dim - 2``: the last id reads the row before it
    (an off-by-one in a bounds check)."""

    def call(self, inputs):
        ids = ops.clip(_ids(inputs), 0, max(self.input_dim - 2, 0))
        return ops.cast(ops.take(self.embeddings, ids, axis=0),
                        self.compute_dtype)


class OffByOneEmbedding(Embedding):
    """Reads row ``id - 1`` (1-based ids): id 0 wraps to the last row."""

    def call(self, inputs):
        ids = _ids(inputs) - 1
        return ops.cast(ops.take(self.embeddings, ids, axis=0),
                        self.compute_dtype)


class MaskIgnoredEmbedding(Embedding):
    """``compute_mask`` ignores ``mask_zero`` (never masks)."""

    def compute_mask(self, inputs, mask=None):
        return None


class PaddingOneEmbedding(Embedding):
    """Masks id 1 instead of id 0."""

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return ops.not_equal(inputs, 1)


class OneHotEmbedding(Embedding):
    """Looks up by ``one_hot(ids) @ embeddings``: the same values (each
    output is one row times 1 plus zeros), but on TensorFlow a dense
    gradient for the whole table instead of ``tf.IndexedSlices`` (every
    optimiser step then touches every row)."""

    def call(self, inputs):
        table = self.embeddings
        hot = ops.one_hot(_ids(inputs), self.input_dim, dtype=table.dtype)
        return ops.cast(ops.matmul(hot, table), self.compute_dtype)


class Int64WrapsEmbedding(Embedding):
    """Casts int64 ids through int8 (a narrowing cast meant to save
    memory): ids >= 128 wrap around to negative ones, which then count
    from the end of the table."""

    def call(self, inputs):
        from keras import backend
        if backend.standardize_dtype(inputs.dtype) == "int64":
            inputs = ops.cast(ops.cast(inputs, "int8"), "int32")
        return super().call(inputs)


class TracedMaskEmbedding(Embedding):
    """Computes the mask in NumPy (``ids != 0``) where it can read the ids
    (eager tensors), with the symbolic op where Keras builds a model
    (``KerasTensor``: so the mask a Sequential model hands on, traced from
    that op, is right), and falls back to "all positions valid" where
    neither applies: under ``tf.function``, XLA, ``jax.jit`` or
    ``torch.compile``. Wrong only there: padding is then never masked."""

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        import numpy as np

        from customlayers._keras import keras
        if isinstance(inputs, keras.KerasTensor):
            return ops.not_equal(inputs, 0)
        if compiling():  # torch.compile: NumPy would break the graph
            return ops.ones_like(inputs, dtype="bool")
        try:
            return ops.convert_to_tensor(np.asarray(inputs) != 0)
        except Exception:  # noqa: BLE001 - symbolic tensor / tracer
            return ops.ones_like(inputs, dtype="bool")


class LoraCrossTermEmbedding(Embedding):
    """Looks up in a table whose LoRA delta is written as ``a @ stop(b) +
    stop(a) @ b - stop(a @ b)`` (a hand-split product rule): the same
    values bit for bit (``2p - p`` is exact) and the same first
    derivatives (the same matmul gradients), but the cross term
    ``d^2 / da db`` is lost. Only the second-order property, which for ids
    differentiates the weights, sees it."""

    def call(self, inputs):
        if not self.lora_enabled:
            return super().call(inputs)
        a, b = self.lora_embeddings_a, self.lora_embeddings_b
        stop = ops.stop_gradient
        delta = (ops.matmul(a, stop(b)) + ops.matmul(stop(a), b)) \
            - stop(ops.matmul(a, b))
        table = ops.cast(ops.add(self._embeddings,
                                 (self.lora_alpha / self.lora_rank) * delta),
                         dtype=self.compute_dtype)
        rows = ops.take(table, _ids(inputs), axis=0)
        return ops.cast(rows, dtype=self.compute_dtype)
