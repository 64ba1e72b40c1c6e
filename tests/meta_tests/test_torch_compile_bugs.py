"""Meta-tests for torch's compiled mode (``torch.compile``):

- two planted bugs that only that mode catches
  (``broken_torch_compile.py``): a compile-only fast path with the wrong
  gradient at the kink, and a graph break where the built-in compiles
  (customlayers.LayerNormalization's own bug until this mode found it);
  each passes the same property in eager mode;
- the planted bugs of ``test_planted_bugs.py`` that the equivalence
  property catches are caught in torch's compiled mode too.

Run with ``-rP`` to see each minimal example.
"""

import pytest

from customlayers._keras import BACKEND, KERAS_MAJOR
from customlayers.testing import properties as props
from customlayers.testing.cases import CASES
from customlayers.testing.report import Recorder
from tests.meta_tests import broken_torch_compile as btc
from tests.meta_tests.test_planted_bugs import (BUGS, _variant,
                                                assert_real_change,
                                                caught_naming)

pytestmark = pytest.mark.skipif(
    BACKEND != "torch" or KERAS_MAJOR < 3,
    reason=f"torch's compiled mode (torch.compile); this run uses {BACKEND} "
           f"(Keras {KERAS_MAJOR})")


def test_only_torch_compiled_mode_sees_a_compile_only_fast_path():
    relu = CASES["ReLU"]
    case = _variant(relu, btc.CompiledFastPathReLU,
                    init_kwargs={"max_value": None, "negative_slope": 0.0,
                                 "threshold": 0.0})
    assert_real_change(case.custom, relu.custom)
    rec = Recorder()
    props.equivalence_property(case, "float32", "eager", rec)()
    text = caught_naming(props.equivalence_property(
        case, "float32", "compiled", rec), "grad[input]")
    print("\nCompiledFastPathReLU: passes eager, caught in compiled mode\n"
          + text[:3000])


def test_a_graph_break_where_the_builtin_compiles_is_caught():
    norm = CASES["LayerNormalization"]
    case = _variant(norm, btc.TrackedAxisLayerNormalization)
    assert_real_change(case.custom, norm.custom)
    rec = Recorder()
    props.equivalence_property(case, "float32", "eager", rec)()
    text = caught_naming(props.equivalence_property(
        case, "float32", "compiled", rec),
        "cannot compile tests.meta_tests.broken_torch_compile."
        "TrackedAxisLayerNormalization")
    assert "convert args/kwargs to proxy" in text, text[:3000]
    print("\nTrackedAxisLayerNormalization: passes eager, its graph breaks "
          "in compiled mode\n" + text[:3000])


#: Caught by checks that run in eager mode only: the losses are read
#: from ``layer.losses`` after an eager call (equivalence.py), so a
#: dropped regularizer is not a compiled-mode finding.
_EAGER_ONLY = {"Dense drops the kernel regularizer"}
_EQUIVALENCE_BUGS = [b for b in BUGS if getattr(b.run, "policy", None)]
# The bugs that live in one configuration (relu6, a nonzero threshold)
# carry it pinned in BUGS (test_planted_bugs._pinned): compiled mode draws
# three examples per item under the ``ci`` profile.


@pytest.mark.parametrize("bug", [b for b in _EQUIVALENCE_BUGS
                                 if b.name not in _EAGER_ONLY], ids=str)
def test_planted_bug_is_caught_in_torch_compiled_mode(bug):
    policy = bug.run.policy
    print(f"{bug.name}: equivalence-{policy}-compiled")
    caught_naming(props.equivalence_property(bug.case, policy,
                                             "compiled", Recorder()), "")


def test_the_eager_only_planted_bugs_are_named():
    assert _EAGER_ONLY <= {b.name for b in _EQUIVALENCE_BUGS}
