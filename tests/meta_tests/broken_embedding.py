"""Deliberately broken variants of customlayers.Embedding: each must be
caught by the generic properties (``test_embedding_bugs.py``)."""

from customlayers import Embedding
from customlayers._keras import ops


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
