"""The randomness property's wiring: ``LayerCase.random`` takes only a
``RandomSpec``, and the battery runs the property (every policy and mode)
only for a case that declares one."""

import pytest

from customlayers.testing import LayerCase, RandomSpec
from customlayers.testing.battery import items
from customlayers.testing.cases import CASES


def test_random_must_be_a_random_spec():
    relu = CASES["ReLU"]
    with pytest.raises(TypeError, match="expected a RandomSpec"):
        LayerCase(name="x", custom=relu.custom, reference=relu.reference,
                  random={"training": True})


def test_random_spec_defaults():
    spec = RandomSpec()
    assert dict(spec.call_kwargs) == {"training": True}
    assert spec.rate({"rate": 0.25}) == 0.25
    assert spec.noise_shape({"rate": 0.5}) is None
    assert not spec.identical("jax", "float32", "eager")
    assert RandomSpec(identical_to_reference=lambda b, p, m: b == "jax"
                      ).identical("jax", "float32", "eager")


def test_battery_runs_randomness_only_where_declared():
    assert not [i for i in items(CASES["ReLU"]) if i.kind == "randomness"]
    if "Dropout" not in CASES:  # pragma: no cover - Keras 2
        pytest.skip("customlayers.Dropout needs Keras 3")
    got = {(i.policy, i.mode) for i in items(CASES["Dropout"])
           if i.kind == "randomness"}
    want = {(i.policy, i.mode) for i in items(CASES["Dropout"])
            if i.kind == "equivalence"}
    assert got == want and len(got) == 18
