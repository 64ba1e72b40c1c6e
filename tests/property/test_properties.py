"""Every generic property, for every declared layer pair.

The properties live in :mod:`customlayers.testing.properties`, so that
``customlayers verify`` runs exactly these checks.
"""

import pytest

from customlayers import _compat
from customlayers.testing import properties as props
from customlayers.testing.backends import MODES, supported_modes
from customlayers.testing.cases import CASES
from customlayers.testing.strategies import POLICIES

CASE_IDS = sorted(CASES)


def _mode_param(mode):
    reason = supported_modes()[mode]
    marks = [pytest.mark.skip(reason=reason)] if reason else []
    return pytest.param(mode, marks=marks, id=mode)


@pytest.mark.parametrize("mode", [_mode_param(m) for m in MODES])
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("case", CASE_IDS)
def test_outputs_and_gradients_match_reference(case, policy, mode):
    props.equivalence_property(CASES[case], policy, mode)()


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("case", CASE_IDS)
def test_lazy_build_and_changed_last_dimension(case, policy):
    props.lazy_build_property(CASES[case], policy)()


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
@pytest.mark.parametrize("case", CASE_IDS)
def test_config_round_trip(case, policy):
    props.config_property(CASES[case], policy)()


@pytest.mark.parametrize("fmt", _compat.SAVE_FORMATS)
@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("case", CASE_IDS)
def test_save_and_load_round_trip(case, policy, fmt):
    reason = CASES[case].save_unsupported(fmt)
    if reason:
        pytest.skip(reason)
    props.saving_property(CASES[case], policy, fmt=fmt)()


@pytest.mark.parametrize("case", CASE_IDS)
def test_numeric_gradient_float64(case):
    reason = _compat.float64_unavailable(
        needs_matmul=CASES[case].has_weights)
    if reason:
        pytest.skip(reason)
    props.numeric_gradient_property(CASES[case])()


@pytest.mark.parametrize("case", CASE_IDS)
def test_constructor_validation(case):
    props.validation_property(CASES[case])()
