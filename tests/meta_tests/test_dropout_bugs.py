"""Meta-tests: the generic properties catch bugs planted in
customlayers.Dropout (``broken_dropout.py``), run exactly as
``test_planted_bugs.py`` runs the Dense and ReLU ones.

Most of them are wrong only with ``training=True``: the equivalence
properties (the default call, inference) pass them
(:func:`test_training_only_bugs_pass_equivalence`); only the randomness
property catches them.
"""

import dataclasses

import pytest
from hypothesis import strategies as st

from customlayers.testing import properties as props
from customlayers.testing.cases_dropout import DROPOUT
from tests.meta_tests import broken_dropout as bd
from tests.meta_tests import test_planted_bugs as planted
from tests.meta_tests.test_planted_bugs import PlantedBug, _eq, _variant

if DROPOUT is None:  # pragma: no cover - Keras 2
    pytest.skip("customlayers.Dropout needs Keras 3", allow_module_level=True)


def _rnd(policy, mode):
    """The randomness property in ``mode``, or eagerly where the battery
    does not run it there (:func:`~tests.meta_tests.test_planted_bugs.
    battery_mode`)."""
    return lambda case: props.randomness_property(
        case, policy, planted.battery_mode(case, "randomness", policy, mode))


def _rates(case, rates, **fixed):
    """``case`` drawing ``rate`` from ``rates`` (and ``fixed`` arguments);
    every other argument as declared."""
    def kwargs(data):
        return {**case.init_kwargs(data), **fixed,
                "rate": data.draw(st.sampled_from(rates), label="rate")}
    return dataclasses.replace(case, init_kwargs=kwargs)


def _not_identical(case):
    """``case`` without the identical-to-reference declaration: only the
    statistical and structural checks of the randomness property run."""
    return dataclasses.replace(case, random=dataclasses.replace(
        case.random, identical_to_reference=False))


_V = lambda layer: _variant(DROPOUT, layer)  # noqa: E731

BUGS = [
    PlantedBug("Dropout does not rescale by 1/(1-rate)",
               _not_identical(_V(bd.NoRescaleDropout)),
               _rnd("float32", "eager")),
    PlantedBug("Dropout keeps with probability rate (mask only, not the "
               "identical-to-reference check)",
               _not_identical(_rates(_V(bd.KeepProbabilityIsRateDropout),
                                     (0.1, 0.25, 0.75, 0.9))),
               _rnd("float32", "graph")),
    PlantedBug("Dropout keeps with probability rate (against the "
               "reference's mask)",
               _rates(_V(bd.KeepProbabilityIsRateDropout), (0.1, 0.9)),
               _rnd("mixed_float16", "compiled")),
    # Rates in (0, 1) and a noise_shape with a broadcast axis (1) in every
    # example: the bug is invisible without one, and the derandomized draws
    # of the declared case need not hold one (they did not on torch).
    PlantedBug("Dropout ignores noise_shape",
               _not_identical(_rates(
                   _V(bd.NoiseShapeIgnoredDropout), (0.25, 0.5, 0.75),
                   noise_shape=(None, 1, None))),
               _rnd("float32", "eager")),
    PlantedBug("Dropout drops at inference",
               _V(bd.DropsAtInferenceDropout), _eq("float32", "eager")),
    PlantedBug("Dropout ignores its seed",
               _not_identical(_V(bd.IgnoresSeedDropout)),
               _rnd("float32", "eager")),
    PlantedBug("Dropout draws the same mask every call",
               _not_identical(_V(bd.SameMaskEveryCallDropout)),
               _rnd("bfloat16", "eager")),
    PlantedBug("Dropout's gradient is not masked",
               _not_identical(_V(bd.UnmaskedGradientDropout)),
               _rnd("float64", "compiled")),
    PlantedBug("Dropout draws another backend's mask",
               _rates(_V(bd.OtherBackendsMaskDropout), (0.25, 0.5, 0.75)),
               _rnd("float32", "eager")),
]

#: Wrong in training only: the inference equivalence passes them.
TRAINING_ONLY = (bd.NoRescaleDropout, bd.KeepProbabilityIsRateDropout,
                 bd.NoiseShapeIgnoredDropout, bd.IgnoresSeedDropout,
                 bd.SameMaskEveryCallDropout, bd.UnmaskedGradientDropout,
                 bd.OtherBackendsMaskDropout)


@pytest.mark.parametrize("bug", BUGS, ids=str)
def test_dropout_bug_is_caught(bug):
    planted.test_planted_bug_is_caught(bug)


@pytest.mark.parametrize("layer", TRAINING_ONLY, ids=lambda c: c.__name__)
def test_training_only_bugs_pass_equivalence(layer):
    """The equivalence property (inference) passes each training-only bug:
    only the randomness property catches it."""
    props.equivalence_property(_V(layer), "float32", "eager")()


def test_another_backends_mask_passes_without_identity():
    """A statistically correct dropout with another recipe passes every
    randomness check except identical-to-reference: the statistical
    checks raise no false alarm."""
    case = _not_identical(_V(bd.OtherBackendsMaskDropout))
    props.randomness_property(case, "float32", "eager")()


def test_every_planted_bug_is_a_real_change():
    for bug in BUGS:
        planted.assert_real_change(bug.case.custom, DROPOUT.custom)
