"""The parity comparison of Dropout and Embedding can fail: dumps of a
planted bug (``tests/meta_tests/broken_*.py``) compared with the real
layer's, both on this process's backend (the same seed, so the same
inputs and weights), as ``compare`` compares two backends' dumps.

A correct dropout with *another* mask (another backend's recipe) passes:
masks are not compared across backends, their invariants are
(``customlayers/testing/parity_training.py``).
"""

import dataclasses

import pytest

from customlayers._keras import KERAS_MAJOR
from customlayers.testing import parity

pytestmark = pytest.mark.skipif(
    KERAS_MAJOR < 3, reason="customlayers.Dropout and Embedding are Keras 3 "
                            "only (NotImplementedError on Keras 2)")

SEED = 0  # the dumps' seed (inputs, weights, upstream gradients)


def _rows(tmp_path, name, kwargs, broken):
    from customlayers.testing.cases import CASES
    case = CASES[name]
    real = parity.dump(case, kwargs, tmp_path / "real.npz", seed=SEED)
    other = parity.dump(dataclasses.replace(case, custom=broken), kwargs,
                        tmp_path / "broken.npz", seed=SEED)
    rows = parity.compare([real, other])
    print(f"seed {SEED}: " + "; ".join(
        f"{p} {c}: {'ok' if r.passed else 'FAIL'}" for _, p, c, r in rows))
    return rows


def _failed(rows):
    return sorted({c for _, _, c, r in rows if not r.passed})


DROPOUT = {"rate": 0.3, "seed": 1234}


@pytest.mark.parametrize("bug,failing", [
    ("NoRescaleDropout", ["train/output is 0 or v/(1-rate)",
                          "train/grad[input] is 0 or v/(1-rate)",
                          "train/output where both kept",
                          "train/grad[input] where both kept"]),
    ("KeepProbabilityIsRateDropout", ["train/dropped fraction"]),
    # Its gradient keeps everything: read from it, the mask drops nothing,
    # so the zeros of the output are wrong and the dropped share is 0.
    ("UnmaskedGradientDropout", ["train/output is 0 or v/(1-rate)",
                                 "train/dropped fraction"]),
])
def test_dropout_training_bug_is_caught(tmp_path, bug, failing):
    from tests.meta_tests import broken_dropout as bd
    rows = _rows(tmp_path, "Dropout", DROPOUT, getattr(bd, bug))
    # At least these; more may fail on some backends (on TensorFlow the
    # planted u < rate is the exact complement of the real u >= rate on
    # the same draw, so the two masks keep nothing in common either).
    assert set(failing) <= set(_failed(rows))
    # Inference (the identity) is right in every planted class.
    assert all(c.startswith("train/") for c in _failed(rows))


def test_noise_shape_ignored_is_caught(tmp_path):
    from tests.meta_tests import broken_dropout as bd
    kwargs = {"rate": 0.5, "noise_shape": [None, 1, None], "seed": 7}
    rows = _rows(tmp_path, "Dropout", kwargs, bd.NoiseShapeIgnoredDropout)
    assert _failed(rows) == ["train/noise_shape broadcast (axis 1)"]


def test_another_correct_mask_passes(tmp_path):
    """Another backend's mask recipe, statistically right: a different mask
    for the same seed, and every parity check passes."""
    import numpy as np
    from tests.meta_tests import broken_dropout as bd
    rows = _rows(tmp_path, "Dropout", DROPOUT, bd.OtherBackendsMaskDropout)
    assert _failed(rows) == []
    _, a = parity.load(tmp_path / "real.npz")
    _, b = parity.load(tmp_path / "broken.npz")
    key = "float32/train/grad[input]"
    assert np.any((a[key] != 0) != (b[key] != 0)), "the masks are the same"


def test_embedding_off_by_one_is_caught(tmp_path):
    from tests.meta_tests import broken_embedding as be
    rows = _rows(tmp_path, "Embedding", {"input_dim": 50, "output_dim": 8},
                 be.OffByOneEmbedding)
    assert _failed(rows) == ["grad[0:embeddings]", "output"]
    assert {p for _, p, _, r in rows if not r.passed} == {
        "float32:int32", "float32:int64", "mixed_bfloat16:int32",
        "mixed_bfloat16:int64"}


def test_embedding_mask_ignored_is_refused(tmp_path):
    from tests.meta_tests import broken_embedding as be
    with pytest.raises(parity.ParityError, match=r"other arrays.*/mask"):
        _rows(tmp_path, "Embedding",
              {"input_dim": 3, "output_dim": 5, "mask_zero": True},
              be.MaskIgnoredEmbedding)


def _emb_dump(path, backend, grad, ids, upstream):
    import json
    import numpy as np
    meta = dict(format=parity.FORMAT, backend=backend, device="cpu",
                keras="x", case="Embedding", kwargs={}, policies=[
                    "mixed_bfloat16"], shape=list(ids.shape), seed=SEED,
                random=None, bfloat16_keys=["mixed_bfloat16:int32/upstream"])
    v = "mixed_bfloat16:int32"
    np.savez(path, __meta__=np.frombuffer(json.dumps(meta).encode(),
                                          dtype=np.uint8),
             **{f"{v}/input": ids, f"{v}/upstream": upstream.view(np.uint16),
                f"{v}/grad[0:embeddings]": grad})
    return path


def test_declared_gather_difference_excuses_only_its_models(tmp_path):
    """parity_known.GATHER_GRAD_ACCUMULATION: TensorFlow's float32 sum vs
    JAX's bfloat16 running sum is 'expected'; the same sum off by one
    bfloat16 ULP in one element is not, and says which backend."""
    import ml_dtypes
    import numpy as np
    from customlayers.testing import parity_known
    # Seed 8: the two sums differ beyond the bfloat16 table (tol used 3.0;
    # seeds 0-3 happen to stay inside it).
    rng = np.random.default_rng(8)
    ids = np.zeros(192, np.int32)  # one id, 192 times
    g = rng.standard_normal((192, 8)).astype(ml_dtypes.bfloat16)
    f32 = parity_known._segment_sum(ids, g, np.float32)
    b16 = parity_known._segment_sum(ids, g, ml_dtypes.bfloat16)
    tf = _emb_dump(tmp_path / "tf.npz", "tensorflow", f32, ids, g)
    (row,) = parity.compare(
        [tf, _emb_dump(tmp_path / "jax.npz", "jax", b16, ids, g)])
    print(row[3].describe(), row[3].expected)
    assert row[3].tol_used > 1, "the sums must differ beyond the table"
    assert row[3].passed and row[3].expected == (
        parity_known.GATHER_GRAD_ACCUMULATION.label,)
    off = b16.copy()
    i = np.unravel_index(np.argmax(np.abs(off - f32)), off.shape)
    off[i] = np.nextafter(off[i].astype(ml_dtypes.bfloat16),
                          ml_dtypes.bfloat16(np.inf)).astype(np.float32)
    (row,) = parity.compare(
        [tf, _emb_dump(tmp_path / "off.npz", "jax", off, ids, g)])
    print(row[3].describe())
    assert not row[3].passed and not row[3].expected
    assert "tensorflow equals its model, jax is not its model" in \
        row[3].problem
