"""Meta-tests of the harness's own parts: known differences relax only what
they declare, stale declarations are found, error inputs are checked, and
declarations without them do not crash."""

import dataclasses

import pytest
from hypothesis import strategies as st

from customlayers import _keras
from customlayers.testing import (ErrorInput, KnownDifference, LayerCase,
                                  Tolerance)
from customlayers.testing import properties as props
from customlayers.testing.battery import items, run_item
from customlayers.testing.cases import RELU
from customlayers.testing.report import Recorder
from tests.meta_tests import broken_layers as bl

_DEFAULT = {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}


def _variant(layer, **changes):
    return dataclasses.replace(RELU, name=f"ReLU[{layer.__name__}]",
                               custom=layer, **changes)


@pytest.mark.skipif(_keras.BACKEND != "tensorflow",
                    reason="the sign-of-zero allowance is TensorFlow's "
                           "(eager/graph); elsewhere nothing is relaxed")
def test_gradient_sign_allowance_does_not_relax_forward_values():
    """In TensorFlow eager mode ReLU's sign-of-zero allowance covers the
    input gradient only: a forward -0.0 bug is still caught, and the
    failing check is the output."""
    case = _variant(bl.NegativeZeroReLU, init_kwargs=dict(_DEFAULT))
    item = next(i for i in items(case, ["float32"], ["eager"])
                if i.kind == "equivalence")
    rec = Recorder()
    status, _, message = run_item(item, rec, shrink_seconds=5)
    assert status == "FAIL", message
    assert "output" in rec.failures[0].checks, rec.failures[0].text()
    assert "sign of zero differs" in message


def test_stale_known_difference_is_reported():
    """A declared difference that relaxes nothing is stale; one that is
    needed is counted as needed, not stale."""
    never = KnownDifference(
        "tolerance", "planted: never needed", checks=("output",),
        tolerance=Tolerance(1e-3, 1e-3, reason="planted"))
    case = dataclasses.replace(RELU, known_differences=(never,),
                               init_kwargs=dict(_DEFAULT))
    rec = Recorder()
    prop = props.equivalence_property(case, "float32", "compiled"
                                      if _keras.BACKEND != "torch"
                                      else "eager", rec)
    prop()
    (declared,) = case.known_differences  # named after the case
    assert [d.label for d in rec.ledger.stale()] == [declared.label]
    assert rec.ledger.applied[declared.label] > 0


def test_error_input_accepted_by_the_custom_layer_is_caught():
    case = _variant(bl.NegativeThresholdReLU)
    rec = Recorder()
    with pytest.raises(AssertionError, match="was accepted"):
        props.check_error_input(
            case, dict(_DEFAULT),
            ErrorInput({"threshold": -2.0}, ValueError, "threshold"), rec)


def test_no_error_inputs_is_not_applicable_not_a_crash():
    case = dataclasses.replace(RELU, error_inputs=())
    item = next(i for i in items(case) if i.kind == "error_inputs")
    status, _, message = run_item(item, Recorder())
    assert status == "skipped" and message.startswith("n/a"), message


def test_declaration_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="checks="):
        KnownDifference("signed_zeros", "why")
    with pytest.raises(ValueError, match="'sign'"):
        KnownDifference("sign", "why", checks=("output",))
    with pytest.raises(TypeError, match="layer class or a factory"):
        LayerCase(name="x", custom=RELU.custom(), reference=RELU.reference)
    with pytest.raises(ValueError, match="input_range"):
        LayerCase(name="x", custom=RELU.custom, reference=RELU.reference,
                  input_range=(1.0, -1.0))


def test_plain_values_and_strategies_both_declare_arguments():
    case = LayerCase(name="x", custom=RELU.custom, reference=RELU.reference,
                     init_kwargs={"max_value": 6.0,
                                  "threshold": st.just(0.5)})
    assert case.plain_kwargs() == {"max_value": 6.0, "threshold": 0.5}
