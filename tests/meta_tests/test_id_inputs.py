"""The harness's integer-id inputs: the strategy places the edge ids, the
declaration checks its range, and ``grad[input]`` is reported as n/a."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customlayers._keras import KERAS_MAJOR
from customlayers.testing import LayerCase
from customlayers.testing import strategies as cst


@settings(max_examples=50, deadline=None)
@given(data=st.data(), high=st.integers(1, 400),
       shape=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       dtype=st.sampled_from(["int32", "int64"]))
def test_ids_stay_in_range_and_hold_the_edges(data, high, shape, dtype):
    x = cst.draw_ids(data, tuple(shape), 0, high, dtype)
    assert x.dtype == np.dtype(dtype) and x.shape == tuple(shape)
    assert x.min() >= 0 and x.max() < high
    edges = cst.id_edges(0, high)
    assert set(edges) == ({0, high - 1})
    for e in edges[: x.size]:
        assert e in x


def test_id_range_is_checked():
    case = LayerCase(name="ids", custom=lambda **k: None,
                     reference=lambda **k: None,
                     input_ids=lambda kw: (kw["n"], kw["n"]))
    with pytest.raises(ValueError, match="low < high"):
        case.id_range({"n": 3})
    assert LayerCase(name="f", custom=lambda **k: None,
                     reference=lambda **k: None).id_range({}) is None


@pytest.mark.skipif(KERAS_MAJOR < 3, reason="customlayers.Embedding needs "
                    "Keras 3")
def test_input_gradient_of_ids_is_reported_not_applicable():
    import keras

    import customlayers
    from customlayers.testing import assert_equivalent
    report = assert_equivalent(customlayers.Embedding(4, 2),
                               keras.layers.Embedding(4, 2),
                               np.array([[0, 3, 3]], "int32"), exact=True)
    row = [c for c in report.comparisons if c.check == "grad[input]"][0]
    assert row.passed and not row.numeric and row.problem.startswith("n/a")
    assert "grad[embeddings]" in [c.check for c in report.comparisons]


@pytest.mark.skipif(KERAS_MAJOR < 3, reason="customlayers.Embedding needs "
                    "Keras 3")
def test_derivatives_of_ids_are_taken_along_the_weights():
    """Second order and forward mode for ids: the rows along the input are
    n/a with the reason, the weights' (here a LoRA pair's) are compared."""
    from customlayers.testing import properties as props
    from customlayers.testing.cases_embedding import EMBEDDING
    from customlayers.testing.report import Recorder
    rec = Recorder()
    kwargs = {"input_dim": 5, "output_dim": 3, "lora_rank": 2}
    x = np.array([[0, 4, 4, 1]], "int32")
    g = np.random.default_rng(0).standard_normal((1, 4, 3)).astype("float32")
    props.check_second_order(EMBEDDING, "float32", "eager", kwargs, x, 7, g,
                             rec)
    props.check_forward_mode(EMBEDDING, "float32", "eager", kwargs, x, 7, g,
                             rec)
    rows = {r["check"]: r for r in rec.rows()}
    for check in ("hvp[input]", "hvp_fwd[input]", "hessian[input]", "jvp",
                  "jacobian[input]"):
        assert rows[check]["result"] == "ok", rows[check]
    for check in ("hvp[lora_embeddings_a]", "hvp_fwd[lora_embeddings_b]",
                  "jvp[weights]"):
        assert rows[check]["result"] == "bit-exact", rows[check]
    assert "jvp/vjp consistency" in rows
