"""Meta-tests: the harness catches every planted bug.

Each planted bug is the real layer with one mistake (see
``broken_layers.py``). It is swapped into the layer's declaration and run
through the *same* generic property that the real layer passes in
``tests/property``. The property must fail; the test prints the minimal
counterexample Hypothesis found (run with ``-rP`` or ``-s`` to see it).
"""

import dataclasses

import pytest

from customlayers import _keras
from customlayers.testing import properties as props
from customlayers.testing.backends import supported_modes
from customlayers.testing.battery import describe_failure, shrink_budget
from customlayers.testing.cases import CASES
from customlayers.testing.report import Recorder
from tests.meta_tests import broken_layers as bl

DENSE, RELU = CASES["Dense"], CASES["ReLU"]
_DEFAULT_RELU = {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}


@dataclasses.dataclass(frozen=True)
class PlantedBug:
    name: str
    case: object
    run: object  # f(case) -> Hypothesis test function

    def __str__(self):
        return self.name


def _eq(policy, mode):
    """The equivalence property in ``mode``, or in eager mode where the
    backend has no such mode (graph is TensorFlow's): the planted bug must
    be caught either way. The run carries its ``policy`` (the torch
    compiled-mode meta-tests rerun it there)."""
    if supported_modes().get(mode):
        mode = "eager"

    def run(case):
        return props.equivalence_property(case, policy, mode)
    run.policy = policy
    return run


def battery_mode(case, kind, policy, mode):
    """``mode``, or eager where the battery does not run ``case``'s
    ``kind`` item in ``mode`` (a mode the backend lacks, or a skip the
    case declares or the harness measures, e.g. randomness or
    BatchNormalization's training call under torch.compile): a planted
    bug is run where the battery would run its property."""
    from customlayers.testing.battery import items
    if supported_modes().get(mode):
        return "eager"
    for item in items(case, policies=[policy], modes=[mode]):
        if item.kind == kind and item.mode == mode and item.skip_reason():
            return "eager"
    return mode


def _variant(case, layer, **changes):
    return dataclasses.replace(case, name=f"{case.name}[{layer.__name__}]",
                               custom=layer, **changes)


def _pinned(case, **pins):
    """``case`` with the constructor arguments a bug lives in pinned over
    its draws: the bug's configuration is not left to a few derandomized
    draws (the relu6 bug passed unseen once the ``ci`` draws changed)."""
    draw = case.init_kwargs  # a draw(data) function or a dict
    return dataclasses.replace(case, init_kwargs=lambda data: {
        **(draw(data) if callable(draw) else draw), **pins})


BUGS = [
    PlantedBug("tutorial ReLU: gradient 1 at x == 0",
               _variant(RELU, bl.TutorialReLU,
                        init_kwargs=dict(_DEFAULT_RELU)),
               _eq("float32", "eager")),
    PlantedBug("ReLU maps NaN to 0", _variant(RELU, bl.NaNSwallowingReLU),
               _eq("float32", "graph")),
    PlantedBug("ReLU threshold kink uses >=",
               _pinned(_variant(RELU, bl.InclusiveThresholdReLU),
                       threshold=0.5),
               _eq("float64", "eager")),
    PlantedBug("ReLU misses Keras's relu6 quirk at max_value == 6",
               _pinned(_variant(RELU, bl.NoRelu6QuirkReLU), max_value=6.0,
                       threshold=0.0, negative_slope=0.0),
               _eq("float32", "eager")),
    PlantedBug("Dense drops the bias", _variant(DENSE, bl.DroppedBiasDense),
               _eq("float32", "eager")),
    PlantedBug("Dense stops the kernel gradient",
               _variant(DENSE, bl.StoppedKernelGradientDense),
               _eq("float32", "compiled")),
    PlantedBug("Dense silently returns float32",
               _variant(DENSE, bl.Float32OutputDense),
               _eq("mixed_bfloat16", "eager")),
    PlantedBug("Dense scrambles rank > 2 inputs",
               _variant(DENSE, bl.ScrambledRankDense),
               _eq("float32", "eager")),
    PlantedBug("Dense ignores its activation",
               _variant(DENSE, bl.IgnoredActivationDense),
               _eq("float16", "eager")),
    PlantedBug("Dense drops the kernel regularizer",
               _variant(DENSE, bl.UnregularizedDense), _eq("float32", "eager")),
    PlantedBug("Dense config forgets use_bias",
               _variant(DENSE, bl.ConfigWithoutBiasFlagDense),
               lambda case: props.config_property(case, "float32")),
    # Keras 2 names both unnamed weights Variable:0 and the HDF5 save fails;
    # Keras 3 names them "variable", "variable_1", HDF5 stores by position
    # and the save works, so there the lazy-build property's weight-name
    # check (kernel, bias) is what catches it.
    PlantedBug("Dense leaves its weights unnamed",
               _variant(DENSE, bl.UnnamedWeightsDense),
               (lambda case: props.saving_property(case, "float32", fmt="h5"))
               if _keras.KERAS_MAJOR < 3 else
               (lambda case: props.lazy_build_property(case, "float32"))),
    PlantedBug("Dense skips the last-dimension check",
               _variant(DENSE, bl.UncheckedLastDimDense),
               lambda case: props.lazy_build_property(case, "float32")),
]


class _Item:
    """What :func:`describe_failure` needs to name a planted bug's run."""

    kind = "planted bug"
    policy = mode = None

    def __init__(self, bug):
        self.case = bug.case
        self.label = bug.name


@pytest.mark.parametrize("bug", BUGS, ids=str)
def test_planted_bug_is_caught(bug):
    prop = bug.run(bug.case)
    with shrink_budget(10), pytest.raises(Exception) as info:
        prop()
    # Every failure Hypothesis found (an exception group unpacked) must be a
    # property's AssertionError with its minimal example.
    failures = describe_failure(_Item(bug), info.value, Recorder())
    for f in failures:
        assert f.error.startswith("AssertionError"), f.error
        assert "Failing test case" in f.counterexample or "Falsifying" in \
            f.counterexample, f"no counterexample was reported: {f.text()}"
    print(f"\nplanted bug caught: {bug.name}\n" + "\n\n".join(
        f.text() for f in failures))


def expect_failure(run, crashed="the property"):
    """``run()`` must fail with an AssertionError (Hypothesis may group
    several distinct failures; each must be an assertion, else the planted
    bug ``crashed`` what ran); returns the exception."""
    with pytest.raises((AssertionError, ExceptionGroup)) as caught:
        run()
    if isinstance(caught.value, ExceptionGroup):
        _, other = caught.value.split(AssertionError)
        assert other is None, f"the planted bug crashed {crashed}: {other!r}"
    return caught.value


def caught_naming(prop, says):
    """``prop`` fails with an AssertionError whose text names ``says``;
    returns that text (printed by the test). Shrinking is bounded to 3 s
    (the failure is found on the first failing example; a smaller one is
    only nicer to read, and each smaller shape is a new compile)."""
    with shrink_budget(3):
        error = expect_failure(prop)
    text = str(error) + "".join(
        f"\n{e}" for e in getattr(error, "exceptions", ()))
    assert says in text, text[:3000]
    return text


#: Attributes every class has (Python 3.13 adds __firstlineno__ and
#: __static_attributes__ to every class body).
_CLASS_METADATA = {"__module__", "__doc__", "__qualname__", "__firstlineno__",
                   "__static_attributes__", "__dict__", "__weakref__"}
_REAL = {"Dense": DENSE.custom, "ReLU": RELU.custom}


def assert_real_change(broken, real, ignore=()):
    """``broken`` is a strict subclass of the real layer ``real`` (the one
    its declaration replaced) and overrides at least one of its methods
    (a static method counts: it is callable), not counting those named in
    ``ignore`` (e.g. ``("__init__",)`` where an ``__init__`` of its own is
    no bug by itself): the meta-tests of every pair use this."""
    assert broken is not real and issubclass(broken, real), (
        f"{broken.__name__} is not a strict subclass of {real.__name__}")
    own = set(vars(broken)) - _CLASS_METADATA
    overridden = {n for n in own - set(ignore)
                  if callable(vars(broken)[n]) and hasattr(real, n)}
    assert overridden, f"{broken.__name__} overrides nothing of " \
                       f"{real.__name__}: {sorted(own)}"


def test_every_planted_bug_is_a_real_change():
    """Each broken class is a strict subclass of the real layer (the one its
    declaration replaced) and overrides at least one of its methods."""
    for bug in BUGS:
        assert_real_change(bug.case.custom,
                           _REAL[bug.case.name.split("[")[0]])
