"""Derandomized draws do not depend on which modules the run imported
(:mod:`customlayers.testing.stable_draws`).

Hypothesis (6.131+) sometimes draws a literal from the source of any local
module in ``sys.modules``; a ``ci`` run's examples then changed with the
tests selected (found on torch: a planted bug caught when its test ran
alone passed unseen in the full run). These tests import a fresh local
module full of literals between two runs of one derandomized property:

- wrapped (as every battery property is), the draws are identical;
- unwrapped, they differ: the dependence is real, so the first check can
  fail (it does on a Hypothesis whose internals moved, with the hook not
  installed).
"""

import importlib
import sys
import uuid

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from customlayers.testing import stable_draws
from customlayers.testing.properties._base import _settings


def _recording_property():
    """A derandomized property (the same source every time: the same seed)
    and the list its draws go to."""
    drawn = []

    @settings(derandomize=True, database=None, max_examples=25,
              deadline=None, phases=[Phase.generate])
    @given(data=st.data())
    def prop(data):
        drawn.append(data.draw(st.lists(st.integers(200, 700), min_size=30,
                                        max_size=30), label="integers"))
        drawn.append(data.draw(st.lists(st.floats(200.0, 700.0),
                                        min_size=30, max_size=30),
                               label="floats"))
    return prop, drawn


@pytest.fixture
def import_new_local_module(tmp_path):
    """A function that imports a new local module with 400 literals in the
    drawn ranges (Hypothesis pools literals of modules outside
    site-packages, the standard library and test files: this file's own
    are not pooled)."""
    name = f"cl_literals_{uuid.uuid4().hex[:8]}"
    ints = ", ".join(str(v) for v in range(301, 501))
    floats = ", ".join(f"{v}.25" for v in range(301, 501))
    (tmp_path / f"{name}.py").write_text(
        f"INTS = ({ints},)\nFLOATS = ({floats},)\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield lambda: importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))


def _run(wrapped: bool):
    prop, drawn = _recording_property()
    previous = stable_draws.set_everywhere(False)  # tests/conftest.py's
    try:
        (stable_draws.StableProperty(prop, True) if wrapped else prop)()
    finally:
        stable_draws.set_everywhere(previous)
    return drawn


def test_a_new_local_module_does_not_change_wrapped_draws(
        import_new_local_module):
    before = _run(wrapped=True)
    import_new_local_module()
    if stable_draws.STATUS["hook"] == "absent":
        pytest.skip("this Hypothesis has no local-constants pool: draws "
                    "cannot depend on imported modules")
    assert stable_draws.STATUS["hook"] == "installed", (
        "customlayers could not neutralise Hypothesis's local-constants "
        f"pool: {stable_draws.STATUS['hook']}")
    _ = _run(wrapped=False)  # Hypothesis scans the new module here
    from hypothesis.internal.conjecture import providers
    assert 401 in providers._get_local_constants().integers, (
        "the new module's literals did not reach Hypothesis's local pool: "
        "this test would show nothing")
    after = _run(wrapped=True)
    assert after == before, (
        "a derandomized property drew other examples after a new local "
        "module was imported: stable_draws no longer holds")


def test_without_the_hook_the_draws_depend_on_the_module(
        import_new_local_module):
    if "_get_local_constants" not in vars(importlib.import_module(
            "hypothesis.internal.conjecture.providers")):
        pytest.skip("this Hypothesis has no local-constants pool: draws "
                    "cannot depend on imported modules")
    module = import_new_local_module()
    _ = _run(wrapped=False)  # Hypothesis scans the new module here
    literals = set(module.FLOATS)  # x.25: a random draw misses

    def floats_from_module(runs):
        return sorted({v for run in runs[1::2] for v in run} & literals)

    unwrapped = floats_from_module(_run(wrapped=False))
    assert unwrapped, (
        "no float literal of the new module was drawn by the unwrapped "
        "property: Hypothesis no longer draws local constants, and this "
        "test shows nothing")
    assert not floats_from_module(_run(wrapped=True)), (
        "the wrapped property drew the new module's literals")
    print(f"unwrapped, the property drew {len(unwrapped)} of the new "
          f"module's literals (e.g. {unwrapped[:3]}); wrapped, none")


def test_battery_properties_are_wrapped():
    @given(data=st.data())
    def prop(data):
        data.draw(st.integers())

    decorated = _settings("equivalence/eager")(prop)
    assert isinstance(decorated, stable_draws.StableProperty)
    decorated.__name__ = "equivalence[X-float32-eager]"
    assert decorated._test.__name__ == "equivalence[X-float32-eager]"
