"""Built pairs reused across equivalence examples
(:mod:`customlayers.testing.pairs`).

A reused pair must compute exactly what a freshly built one does: every
variable, the random seed generators' state included, is back at its
just-built value each time it is handed out. These tests check that, that
the key keeps apart what must not share a pair, and that a case can opt out.
"""

import dataclasses

import numpy as np
import pytest

from customlayers._keras import KERAS_MAJOR
from customlayers.testing import pairs
from customlayers.testing.convert import input_tensor, to_numpy
from tests.params import mode_param

pytestmark = pytest.mark.skipif(
    KERAS_MAJOR < 3, reason="built pairs are reused on Keras 3 only (Keras "
    "2's random layers keep state outside their variables)")


@pytest.fixture(autouse=True)
def _fresh_cache():
    pairs.clear_pairs()
    pairs.PAIR_STATS.clear()
    yield
    pairs.clear_pairs()


def _x(shape=(4, 6), seed=0):
    x = np.random.default_rng(seed).standard_normal(shape).astype("float32")
    x.reshape(-1)[:2] = (0.0, -0.0)
    return x


def _reports_equal(a, b):
    fields = ("check", "passed", "bit_exact", "max_abs", "max_ulp", "n_bad")
    assert [tuple(getattr(c, f) for f in fields) for c in a.comparisons] == \
        [tuple(getattr(c, f) for f in fields) for c in b.comparisons]


@pytest.mark.parametrize("mode", [mode_param(m) for m in ("eager", "graph",
                                                           "compiled")])
def test_a_reused_pair_reports_what_a_fresh_pair_does(mode):
    from customlayers.testing.cases import DENSE
    from customlayers.testing.properties import check_equivalence
    fresh_case = dataclasses.replace(DENSE, reuse_layers=False)
    kwargs = {"units": 3, "activation": "relu", "use_bias": True}
    x = _x()
    for seed in (1, 2, 3):  # the 2nd and 3rd reuse the 1st's pair
        got = check_equivalence(DENSE, "float32", mode, kwargs, x, seed)
        want = check_equivalence(fresh_case, "float32", mode, kwargs, x,
                                 seed)
        _reports_equal(got, want)
        assert got.weights_seed == want.weights_seed == seed
    assert pairs.PAIR_STATS["hits"] == 2
    assert pairs.PAIR_STATS["misses"] == 1
    assert pairs.PAIR_STATS["uncached"] == 3


def test_seed_generator_state_is_restored():
    """Dropout's seed generator advances on every training call; a reused
    pair must draw the first mask again, as a fresh pair does. Without
    the restore (planted below) it draws the next one."""
    from customlayers.testing.cases_dropout import DROPOUT
    kwargs = {"rate": 0.5, "seed": 7}
    x = _x((8, 16))

    def first_mask():
        custom, _ = pairs.built_pair(DROPOUT, kwargs, "float32", x)
        return to_numpy(custom(input_tensor(x), training=True))

    fresh = first_mask()
    again = first_mask()
    assert pairs.PAIR_STATS["hits"] == 1
    np.testing.assert_array_equal(again, fresh)
    # Planted bug: no restore. The same assertion must then fail.
    restore, pairs._restore = pairs._restore, lambda entry: None
    try:
        advanced = first_mask()
    finally:
        pairs._restore = restore
    assert not np.array_equal(advanced, fresh), \
        "the seed-state check cannot fail: the mask did not depend on it"


def test_weights_are_back_at_their_built_values():
    from customlayers.testing.cases import DENSE
    x = _x()
    custom, reference = pairs.built_pair(DENSE, {"units": 3}, "float32", x)
    built = [w.copy() for w in custom.get_weights() + reference.get_weights()]
    custom.set_weights([w + 1 for w in custom.get_weights()])
    custom2, reference2 = pairs.built_pair(DENSE, {"units": 3}, "float32", x)
    assert custom2 is custom and reference2 is reference
    for a, b in zip(custom.get_weights() + reference.get_weights(), built):
        np.testing.assert_array_equal(a, b)


def test_the_key_keeps_apart_what_must_not_share_a_pair():
    from customlayers.testing.cases import DENSE, RELU
    x = _x()
    base = pairs.pair_key(DENSE, {"units": 3}, "float32", x)
    assert base == pairs.pair_key(DENSE, {"units": 3}, "float32", x.copy())
    others = [
        pairs.pair_key(DENSE, {"units": 4}, "float32", x),
        pairs.pair_key(DENSE, {"units": 3}, "mixed_float16", x),
        pairs.pair_key(DENSE, {"units": 3}, "float32", _x((2, 4, 6))),
        pairs.pair_key(DENSE, {"units": 3}, "float32", x.astype("float16")),
        pairs.pair_key(RELU, {"units": 3}, "float32", x),
        pairs.pair_key(dataclasses.replace(DENSE), {"units": 3}, "float32",
                       x),
    ]
    assert len({base, *others}) == len(others) + 1


def test_opted_out_and_unkeyable_cases_get_fresh_pairs():
    from customlayers.testing.cases import DENSE
    x = _x()
    opted_out = dataclasses.replace(DENSE, reuse_layers=False)
    assert pairs.pair_key(opted_out, {"units": 3}, "float32", x) is None
    unkeyable = {"units": 3, "kernel_constraint": object()}  # repr: 0x...
    assert pairs.pair_key(DENSE, unkeyable, "float32", x) is None
    a = pairs.built_pair(opted_out, {"units": 3}, "float32", x)
    b = pairs.built_pair(opted_out, {"units": 3}, "float32", x)
    assert a[0] is not b[0] and pairs.PAIR_STATS["uncached"] == 2


def test_the_cache_is_bounded(monkeypatch):
    from customlayers.testing.cases import RELU
    monkeypatch.setattr(pairs, "PAIR_CACHE_SIZE", 3)
    for n in range(2, 8):
        pairs.built_pair(RELU, {}, "float32", _x((n, 3)))
    assert len(pairs._PAIRS) == 3
    first, _ = pairs.built_pair(RELU, {}, "float32", _x((7, 3)))
    assert pairs.PAIR_STATS["hits"] == 1 and first.built


def test_a_mode_the_backend_lacks_is_refused_for_a_pair_too():
    """forward_backward_pair, like forward_backward, refuses a mode this
    backend has not (on JAX, the signature cache ran 'graph' as jax.jit)."""
    from customlayers.testing import backends
    from customlayers.testing.cases import RELU
    x = _x()
    custom, reference = pairs.built_pair(RELU, {}, "float32", x)
    for mode in ("warp", *[m for m, why in backends.supported_modes().items()
                           if why]):
        with pytest.raises(NotImplementedError, match=f"mode '{mode}'"):
            backends.forward_backward_pair(custom, reference, x, x, mode)
