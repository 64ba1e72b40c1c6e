"""Meta-tests (issue 11): a planted bug for each coverage the battery
gained, which only that coverage catches.

- second order in training mode (``second_order-...-training``):
  BatchNormalization with a first-order-only derivative of ``rsqrt``
  (``FirstOrderRsqrtBN``);
- second order for integer ids (along the weights): an Embedding whose
  LoRA delta loses its cross second derivative (``LoraCrossTermEmbedding``);
- the mask property in graph and compiled mode: an Embedding whose mask is
  wrong only when traced (``TracedMaskEmbedding``), and a
  BatchNormalization that drops its mask when traced
  (``TracedMaskDroppedBN``, seen in training mode only).

Each test runs the items that must catch the bug (each fails with an
AssertionError naming the expected check) and the items closest to them
that must not (the same property in the other mode or ``training`` value,
and the equivalence, non-finite upstream and forward-mode properties on
the same configuration where they could see it): without the new items
these bugs would go unseen. Run with ``-rP`` to see each minimal
example.
"""

import dataclasses

import pytest

from customlayers._keras import BACKEND
from customlayers.testing import properties as props
from customlayers.testing.backends import supported_modes
from customlayers.testing.cases_batch_normalization import BATCH_NORMALIZATION
from customlayers.testing.cases_embedding import EMBEDDING
from customlayers.testing.report import Recorder
from tests.meta_tests import broken_batch_normalization as bb
from tests.meta_tests import broken_embedding as be
from tests.meta_tests.test_planted_bugs import (_variant, assert_real_change,
                                                caught_naming)

if BATCH_NORMALIZATION is None:  # pragma: no cover - Keras 2
    pytest.skip("customlayers.BatchNormalization and Embedding need Keras 3",
                allow_module_level=True)

BN, EMB = BATCH_NORMALIZATION, EMBEDDING
_TRACED = [m for m in ("graph", "compiled") if not supported_modes()[m]]


def _fixed(case, **kwargs):
    """``case`` with some constructor arguments pinned."""
    def draw(data):
        return {**case.init_kwargs(data), **kwargs}
    return dataclasses.replace(case, init_kwargs=draw)


def _passes(*runs):
    for run in runs:
        run()


@pytest.mark.skipif(BACKEND == "torch", reason=(
    "torch: a keras.ops.custom_gradient is an autograd.Function without a "
    "forward-mode rule there, so a first-order-only rsqrt would fail the "
    "forward-mode property too; TensorFlow (tf.custom_gradient with "
    "RsqrtGrad) and JAX (jax.custom_jvp with lax's rule) plant it"))
def test_only_training_mode_second_order_sees_a_first_order_only_rsqrt():
    case = _variant(BN, bb.FirstOrderRsqrtBN)
    assert_real_change(case.custom, BN.custom)
    rec = Recorder()
    text = caught_naming(props.second_order_property(
        case, "float32", "eager", rec, training=True), "hvp[")
    _passes(
        props.second_order_property(case, "float32", "eager", rec,
                                    training=False),
        props.forward_mode_property(case, "float32", "eager", rec,
                                    training=True),
        props.nonfinite_upstream_property(case, "float32", "eager", rec,
                                          training=True),
        props.equivalence_property(case, "float32", "eager", rec,
                                   training=True))
    print("\nFirstOrderRsqrtBN: caught only by second_order-float32-eager-"
          "training\n" + text[:4000])


def test_only_second_order_along_the_weights_sees_a_lost_cross_term():
    """Ids: second order differentiates the embeddings (here the LoRA
    factors) instead of skipping the property."""
    case = _fixed(_variant(EMB, be.LoraCrossTermEmbedding), lora_rank=3,
                  embeddings_constraint=None)
    assert_real_change(case.custom, EMB.custom)
    rec = Recorder()
    text = caught_naming(props.second_order_property(case, "float32",
                                                     "eager", rec),
                         "hvp[lora_embeddings_")
    _passes(props.forward_mode_property(case, "float32", "eager", rec),
            props.equivalence_property(case, "float32", "eager", rec),
            props.nonfinite_upstream_property(case, "float32", "eager", rec))
    print("\nLoraCrossTermEmbedding: caught only by second_order-float32-"
          "eager (along the weights)\n" + text[:3000])


@pytest.mark.skipif(not _TRACED, reason=(
    f"{BACKEND}: no graph or compiled mode in the harness (the bug is "
    "wrong only when traced)"))
def test_only_traced_mask_items_see_a_mask_wrong_when_traced():
    case = _fixed(_variant(EMB, be.TracedMaskEmbedding), mask_zero=True)
    assert_real_change(case.custom, EMB.custom)
    rec = Recorder()
    texts = [caught_naming(props.mask_property(case, "float32", mode, rec),
                           "mask") for mode in _TRACED]
    _passes(props.mask_property(case, "float32", "eager", rec),
            *[props.equivalence_property(case, "float32", mode, rec)
              for mode in _TRACED])
    print(f"\nTracedMaskEmbedding: caught by mask-float32-{_TRACED} only\n"
          + "\n".join(t[:2000] for t in texts))


@pytest.mark.skipif(not _TRACED, reason=(
    f"{BACKEND}: no graph or compiled mode in the harness (the bug drops "
    "the mask only when traced)"))
@pytest.mark.skipif(BACKEND == "torch", reason=(
    "torch: the built-in BatchNormalization cannot compile in training "
    "mode (a TrackedList of axes reaches torch.mean; measured in tests/"
    "property/test_torch_compile.py), so the battery skips mask-...-"
    "compiled-training there, the one traced item that sees this bug"))
def test_only_traced_training_mask_items_see_a_dropped_mask():
    case = _variant(BN, bb.TracedMaskDroppedBN)
    assert_real_change(case.custom, BN.custom)
    rec = Recorder()
    texts = [caught_naming(props.mask_property(case, "float32", mode, rec,
                                               training=True), "output")
             for mode in _TRACED]
    # The equivalence and state properties pass no mask: they cannot see
    # it by construction (not run here, to save their ~15 s).
    _passes(props.mask_property(case, "float32", "eager", rec,
                                training=True),
            props.mask_property(case, "float32", _TRACED[-1], rec,
                                training=False))
    print(f"\nTracedMaskDroppedBN: caught by mask-float32-{_TRACED}-training "
          "only\n" + "\n".join(t[:2000] for t in texts))
