"""Meta-tests: the generic properties catch bugs planted in
customlayers.BatchNormalization (``broken_batch_normalization.py``), run
as ``test_planted_bugs.py`` runs the others: the equivalence property in
training or inference mode, or the ``state`` property, which alone sees a
wrong update of the moving statistics."""

import pytest

from customlayers.testing import properties as props
from customlayers.testing.backends import supported_modes
from customlayers.testing.cases_batch_normalization import BATCH_NORMALIZATION
from tests.meta_tests import broken_batch_normalization as bb
from tests.meta_tests import test_planted_bugs as planted
from tests.meta_tests.test_planted_bugs import PlantedBug, _variant

if BATCH_NORMALIZATION is None:  # pragma: no cover - Keras 2
    pytest.skip("customlayers.BatchNormalization needs Keras 3",
                allow_module_level=True)

BN = BATCH_NORMALIZATION


def _mode(mode):
    return "eager" if supported_modes().get(mode) else mode


def _eq(policy, mode, training):
    return lambda case: props.equivalence_property(
        case, policy, _mode(mode), training=training)


def _state(policy, mode):
    """The state property in ``mode``, or eagerly where the battery does
    not run it there (torch: the built-in cannot compile in training
    mode)."""
    return lambda case: props.state_property(
        case, policy, planted.battery_mode(case, "state", policy, mode))


BUGS = [
    PlantedBug("BatchNormalization swaps momentum and 1 - momentum",
               _variant(BN, bb.SwappedMomentumBN), _state("float32", "eager")),
    PlantedBug("BatchNormalization never updates its moving statistics",
               _variant(BN, bb.FrozenStateBN), _state("float32", "compiled")),
    PlantedBug("BatchNormalization uses the unbiased batch variance",
               _variant(BN, bb.UnbiasedVarianceBN),
               _eq("float32", "eager", True)),
    PlantedBug("BatchNormalization normalizes with the moving statistics in "
               "training mode",
               _variant(BN, bb.MovingStatisticsInTrainingBN),
               _eq("float32", "graph", True)),
    PlantedBug("BatchNormalization adds epsilon outside the square root",
               _variant(BN, bb.EpsilonOutsideSqrtBN),
               _eq("float64", "eager", False)),
]

#: Bugs that outputs and gradients cannot show, in either mode.
STATE_ONLY = [BUGS[0], BUGS[1]]


@pytest.mark.parametrize("bug", BUGS, ids=str)
def test_batch_normalization_bug_is_caught(bug):
    planted.test_planted_bug_is_caught(bug)


@pytest.mark.parametrize("bug", STATE_ONLY, ids=str)
def test_only_the_state_property_sees_it(bug):
    """The equivalence property in training mode passes for these bugs:
    without the ``state`` property they would go unseen."""
    props.equivalence_property(bug.case, "float32", "eager",
                               training=True)()
    props.equivalence_property(bug.case, "float32", "eager",
                               training=False)()


def test_every_planted_bug_is_a_real_change():
    for bug in BUGS:
        planted.assert_real_change(bug.case.custom, BN.custom)


def test_run_equivalence_test_runs_the_state_check():
    """The one-call API takes ``training``/``state_steps`` too: the real
    layer passes bit for bit, the swapped momentum fails only the state
    comparisons (seed 0, printed in the report)."""
    from customlayers.testing import run_equivalence_test
    args = dict(reference=BN.reference, init_kwargs={"momentum": 0.9},
                input_shape=(4, 3), exact=True, training=(False, True),
                checks=("equivalence", "state"), state_steps=3,
                positive_weights=("moving_variance",))
    run_equivalence_test(BN.custom, **args)
    report = run_equivalence_test(bb.SwappedMomentumBN, **args,
                                  raise_on_failure=False)
    failed = {f for failure in report.recorder.failures
              for f in failure.checks}
    assert failed == {"state[moving_mean]", "state[moving_variance]"}, \
        str(report)
