"""Meta-tests of the lazy-build property's traced items and rank probes
(``customlayers.testing.properties.structure``): what they compare, that a
harness fault cannot pass as agreement, and the ``refusal`` known
difference. The planted bug they exist for (LayerNormalization's weight
reshape) is in ``test_normalization_bugs.py``."""

import dataclasses

import numpy as np
import pytest

from customlayers._keras import BACKEND, keras
from customlayers.testing import properties as props
from customlayers.testing.backends import MODES, supported_modes
from customlayers.testing.battery import items
from customlayers.testing.cases import CASES
from customlayers.testing.declarations import KnownDifference
from customlayers.testing.report import Recorder
from tests.params import mode_param

DENSE = CASES["Dense"]


def test_rank_probes_are_the_built_shapes_rank_neighbours():
    assert props.rank_probes((4, 8, 1)) == [(8, 1), (2, 4, 8, 1)]
    assert props.rank_probes((3, 5)) == [(5,), (2, 3, 5)]


def test_the_battery_runs_lazy_build_traced_under_float32():
    ids = [i.id for i in items(DENSE) if i.kind == "lazy_build"]
    assert "lazy_build-float32-graph" in ids, ids
    assert "lazy_build-float32-compiled" in ids, ids
    assert "lazy_build-float16" in ids, ids  # eager: every policy
    assert not [i for i in ids if i.startswith("lazy_build-float16-")], ids


@pytest.mark.parametrize("mode", [mode_param(m) for m in MODES])
def test_a_correct_layer_computes_every_call(mode):
    """The property's calls compute (an "ok" outcome with the reference's
    shape), in every mode: a traced path that failed for both layers would
    otherwise pass as agreement (it did, while this was written: both
    raised an AttributeError)."""
    layer = DENSE.custom(units=3)
    layer.build((None, 5))
    kind, shape = props.structure._outcome(layer, np.ones((4, 5),
                                                          "float32"), mode)
    assert (kind, shape) == ("ok", (4, 3)), shape
    props.check_lazy_build(DENSE, "float32", {"units": 3}, (2, 5),
                           [(7, 5), *props.rank_probes((2, 5))], 6,
                           Recorder(), mode)


class _Refuses(keras.layers.Layer):
    """A stand-in reference that refuses every call (its build works)."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)

    def call(self, x):
        raise ValueError("refused on purpose")


def test_a_reference_that_refuses_its_built_shape_is_a_harness_error():
    case = dataclasses.replace(_identity_pair(), reference=_Refuses)
    with pytest.raises(RuntimeError, match="cannot compare anything"):
        props.check_lazy_build(case, "float32", {}, (2, 5), [(3, 5)], 6,
                               Recorder())


class _RefusesRank3(keras.layers.Layer):
    """A stand-in reference: the identity, refusing rank-3 inputs."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)

    def call(self, x):
        if len(x.shape) == 3:
            raise ValueError("rank 3 refused on purpose")
        return x


class _Identity(keras.layers.Layer):
    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)

    def call(self, x):
        return x


def _identity_pair(*differences):
    return dataclasses.replace(
        DENSE, name="Identity", custom=_Identity, reference=_RefusesRank3,
        known_differences=tuple(differences))


def test_a_call_the_reference_refuses_must_be_refused():
    with pytest.raises(AssertionError, match="the reference refused shape "
                       r"\(2, 2, 5\)"):
        props.check_lazy_build(_identity_pair(), "float32", {}, (2, 5),
                               [(3, 5), *props.rank_probes((2, 5))], 6,
                               Recorder())


def test_a_declared_refusal_accepts_the_call_and_is_counted():
    d = KnownDifference(what="refusal", checks=("lazy build",),
                        backends=(BACKEND,), when=lambda kw, x: x.ndim == 3,
                        why="the stand-in reference refuses rank 3")
    case = _identity_pair(d)
    rec = Recorder()
    rec.ledger.declare(case.known_differences)
    props.check_lazy_build(case, "float32", {}, (2, 5),
                           [(3, 5), *props.rank_probes((2, 5))], 6, rec)
    label = case.known_differences[0].label
    assert rec.ledger.needed[label] == 1, dict(rec.ledger.needed)
    assert not rec.ledger.stale()


def test_a_refusal_declared_for_another_backend_does_not_apply():
    other = next(b for b in ("tensorflow", "jax", "torch") if b != BACKEND)
    d = KnownDifference(what="refusal", checks=("lazy build",),
                        backends=(other,), why="another backend's")
    with pytest.raises(AssertionError, match="the reference refused"):
        props.check_lazy_build(_identity_pair(d), "float32", {}, (2, 5),
                               [(2, 2, 5)], 6, Recorder())


def test_a_refusal_covers_the_lazy_build_check_only():
    with pytest.raises(ValueError, match="'lazy build' check only"):
        KnownDifference(what="refusal", checks=("output",), why="no")
