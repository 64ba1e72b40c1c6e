"""customlayers' Embedding pair, declared once, as data
(:data:`EMBEDDING`); :data:`customlayers.testing.cases.CASES` lists it with
the others. The input is integer ids (``input_ids``): the harness draws
int32 and int64 ids in ``[0, input_dim)``, always holding 0 and
``input_dim - 1``, and compares outputs and the ``embeddings`` gradient
(there is no input gradient), and the masks (``masks``)."""

from __future__ import annotations

import customlayers
from customlayers._keras import KERAS_MAJOR, keras
from customlayers.testing import strategies as cst
from customlayers.testing.declarations import (ErrorInput, KnownDifference,
                                               LayerCase)
from customlayers.testing.tolerances import Tolerance
from hypothesis import strategies as st

#: Vocabulary sizes: one row, a few (many repeated ids), larger tables.
_INPUT_DIMS = (1, 2, 3, 8, 50, 300)


def _emb_kwargs(data):
    # LoRA refuses a constraint (both layers raise at build): a constraint
    # is drawn only without LoRA. LoRA first, so that about half the
    # examples have it.
    lora_rank = data.draw(st.sampled_from((None, None, 1, 3)),
                          label="lora_rank")
    constraint = None if lora_rank else data.draw(
        st.sampled_from(cst.CONSTRAINTS), label="embeddings_constraint")
    return dict(
        input_dim=data.draw(st.sampled_from(_INPUT_DIMS), label="input_dim"),
        output_dim=data.draw(st.integers(1, 16), label="output_dim"),
        embeddings_initializer=data.draw(st.sampled_from(
            ("uniform",) + cst.INITIALIZERS[2:5]),
            label="embeddings_initializer"),
        embeddings_regularizer=data.draw(st.sampled_from(cst.REGULARIZERS),
                                         label="embeddings_regularizer"),
        embeddings_constraint=constraint,
        mask_zero=data.draw(st.booleans(), label="mask_zero"),
        lora_rank=lora_rank,
        lora_alpha=None if lora_rank is None else data.draw(
            st.sampled_from((None, 2.0)), label="lora_alpha"),
    )


def _emb_shape(data, kwargs):
    # Ids of rank 1-3 (the output adds one axis); small: a gather's cost is
    # the table rows touched, and the interesting cases (repeats, the edge
    # ids) show in a few dozen ids.
    return cst.draw_shape(data, min_rank=1, max_rank=3, max_dim=12,
                          max_size=128)


def _emb_smooth(kwargs):
    # Regularizers and constraints are not part of the differentiated
    # function. No LoRA: its weights are float32 by design (the built-in's
    # too, whatever the policy), so a float64 central difference through
    # them has float32 roundoff (found: 5e-4 relative off).
    return {**kwargs, "embeddings_regularizer": None,
            "embeddings_constraint": None, "lora_rank": None,
            "lora_alpha": None}


#: On a GPU the scatter-add of the weight gradient (TensorFlow's
#: unsorted_segment_sum when the IndexedSlices are densified, torch's
#: index_put_/embedding_backward with accumulate, XLA's scatter) adds the
#: rows of repeated ids with atomics, in an order that changes from run to
#: run: the sum of k terms rounds differently (a few ULP of the row's
#: magnitude; custom and built-in run the same op, so each run of either is
#: one of those orders). On CPU the order is fixed and the comparison is
#: bit for bit. The outputs (a gather, no arithmetic) are bit for bit
#: everywhere. Not yet measured on a GPU (the branch was tested on CPU
#: only): declared from how the kernels add, to be narrowed (or dropped,
#: e.g. for torch's sorted embedding_backward) after a GPU run.
_GPU_SCATTER_ORDER = KnownDifference(
    what="tolerance",
    checks=("grad[embeddings]", "grad[lora_embeddings_*]"),
    device="gpu",
    tolerance=Tolerance(rtol=1e-2, atol=1e-2, reason=(
        "a sum of up to 128 repeated-id rows (normal * 0.5 weights, normal "
        "upstream) reordered: k * u * max|term| with u = 2**-8 (bfloat16) "
        "worst case; float32 results are far inside")),
    why="the weight gradient is a scatter-add: the rows of repeated ids are "
        "summed with atomics on a GPU, in a run-dependent order (see "
        "cases_embedding.py)")


def _on_gpu() -> bool:
    from customlayers.testing.backends import device
    return KERAS_MAJOR >= 3 and device() == "gpu"


#: Declared only where it can apply (a GPU), so that it is never stale.
_ON_GPU = _on_gpu()


def _refused(kwargs, error=ValueError, match="", reference_raises=True,
             why="", input_shape=None):
    return ErrorInput(kwargs, error, match, input_shape=input_shape,
                      reference_raises=reference_raises, why=why)


EMBEDDING = LayerCase(
    name="Embedding",
    custom=customlayers.Embedding,
    reference=keras.layers.Embedding,
    init_kwargs=_emb_kwargs,
    input_shape=_emb_shape,
    input_ids=lambda kwargs: (0, kwargs["input_dim"]),
    id_dtypes=("int32", "int64"),
    masks=True,
    # Bit for bit on CPU: the same ops.take (gather), its gradient (a
    # segment sum of the looked-up rows, TensorFlow's IndexedSlices
    # densified by the harness in the same way for both), the same casts;
    # LoRA adds the same matmul, scale and add.
    exact=lambda policy, mode: True,
    smooth_kwargs=_emb_smooth,
    known_differences=(_GPU_SCATTER_ORDER,) if _ON_GPU else (),
    error_inputs=(
        _refused({"input_dim": 0}, ValueError, r"input_dim=0"),
        _refused({"input_dim": 2.5}, ValueError, r"input_dim=2\.5"),
        _refused({"input_dim": True}, ValueError, r"input_dim=True"),
        _refused({"output_dim": -1}, ValueError, r"output_dim=-1"),
        _refused({"output_dim": None}, ValueError, r"output_dim=None"),
        _refused({"lora_rank": 2, "embeddings_constraint": "non_neg"},
                 ValueError, r"Lora is incompatible with embedding "
                 r"constraints", input_shape=(2, 3)),
        _refused({"quantization_config": "int8"}, NotImplementedError,
                 r"quantization_config='int8'", reference_raises=False,
                 why="quantization is out of scope for customlayers."
                     "Embedding: refused when the layer is made, naming it, "
                     "instead of computing something else"),
    ),
    example_kwargs={"input_dim": 8, "output_dim": 4},
)

if KERAS_MAJOR < 3:  # pragma: no cover - the Keras 2 tox envs
    #: customlayers.Embedding refuses Keras 2 (NotImplementedError).
    EMBEDDING = None

#: The pair above, by name, for :data:`customlayers.testing.cases.CASES`.
CASES = {} if EMBEDDING is None else {EMBEDDING.name: EMBEDDING}
