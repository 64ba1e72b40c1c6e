"""Meta-tests: the generic properties catch bugs planted in
customlayers.Embedding (``broken_embedding.py``), run exactly as
``test_planted_bugs.py`` runs the Dense and ReLU ones."""

import dataclasses

import pytest

from customlayers._keras import BACKEND
from customlayers.testing import properties as props
from customlayers.testing.cases_embedding import EMBEDDING
from tests.meta_tests import broken_embedding as be
from tests.meta_tests import test_planted_bugs as planted
from tests.meta_tests.test_planted_bugs import PlantedBug, _eq, _variant

if EMBEDDING is None:  # pragma: no cover - Keras 2
    pytest.skip("customlayers.Embedding needs Keras 3",
                allow_module_level=True)

EMB = EMBEDDING


def _fixed(case, **kwargs):
    """``case`` with some constructor arguments pinned."""
    def draw(data):
        return {**case.init_kwargs(data), **kwargs}
    return dataclasses.replace(case, init_kwargs=draw)


def _mask(case):
    return props.mask_property(case, "float32", "eager")


BUGS = [
    PlantedBug("Embedding reads the row before for the last id",
               _variant(EMB, be.LastRowClampedEmbedding),
               _eq("float32", "eager")),
    PlantedBug("Embedding reads row id - 1",
               _variant(EMB, be.OffByOneEmbedding), _eq("float32", "graph")),
    PlantedBug("Embedding ignores mask_zero in compute_mask",
               _variant(EMB, be.MaskIgnoredEmbedding), _mask),
    PlantedBug("Embedding masks id 1 instead of 0",
               _variant(EMB, be.PaddingOneEmbedding), _mask),
]
if BACKEND != "jax":
    # JAX without x64 mode has no int64 arrays (an int64 input arrives as
    # int32), so the bug never triggers there.
    BUGS.append(PlantedBug(
        "Embedding wraps int64 ids through int8",
        _fixed(_variant(EMB, be.Int64WrapsEmbedding), input_dim=300),
        _eq("float32", "eager")))
if BACKEND == "tensorflow":
    # The values are the same (one row times 1 plus zeros); only the
    # gradient's form differs, and only TensorFlow has a sparse form.
    BUGS.append(PlantedBug(
        "Embedding gives a dense gradient (one_hot @ table) on TensorFlow",
        _fixed(_variant(EMB, be.OneHotEmbedding), lora_rank=None,
               lora_alpha=None),
        _eq("float32", "compiled")))


@pytest.mark.parametrize("bug", BUGS, ids=str)
def test_embedding_bug_is_caught(bug):
    planted.test_planted_bug_is_caught(bug)


def test_dense_gradient_bug_is_tensorflow_only():
    """Printed so a run on JAX or torch says why that bug is not listed."""
    if BACKEND != "tensorflow":
        print(f"\n{BACKEND}: the one_hot (dense gradient) planted bug is "
              "TensorFlow-only: JAX and torch have no sparse gradient form, "
              "and its values equal the built-in's")
    assert any("dense gradient" in b.name for b in BUGS) == (
        BACKEND == "tensorflow")


def test_every_planted_bug_is_a_real_change():
    for bug in BUGS:
        planted.assert_real_change(bug.case.custom, EMB.custom)
