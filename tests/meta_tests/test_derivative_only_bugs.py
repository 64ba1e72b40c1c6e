"""Meta-tests: each newer derivative check earns its place (issue 12).

For every planted bug in ``broken_derivatives.py`` the second-order and
forward-mode checks run on the draws their properties make (same
strategy, settings and example count; ``check_second_order`` /
``check_forward_mode``, the properties' own bodies), and the equivalence
property runs as it is. The bug must make its one check fail, with a
message naming it, and every other comparison pass on every example:
outputs and gradients, ``hvp[...]`` (reverse over reverse), ``hvp_fwd``,
``hessian[input]``, ``jvp``, ``jvp/vjp consistency``,
``jacobian[input]``. Run with ``-rP`` to see each failure.

torch has a bug for each of ``hvp_fwd``, ``hessian[input]``,
``jacobian[input]`` and ``jvp``; TensorFlow for ``jacobian[input]``
(eager) and ``jvp`` (graph); the others skip with the reason there is none
(JAX: none at all).
"""

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customlayers import ReLU
from customlayers._keras import BACKEND
from customlayers.testing import properties as props
from customlayers.testing.cases import CASES
from customlayers.testing.properties._base import _settings
from customlayers.testing.properties.derivatives import \
    _draw_derivative_example
from customlayers.testing.report import Recorder
from tests.meta_tests import broken_derivatives as bd
from tests.meta_tests.test_planted_bugs import assert_real_change

#: Why a backend has no bug that only this check catches.
_NONE = {
    "jax": "JAX: the kernels' hand-written rules are jax.custom_jvp rules; "
           "reverse mode is their transpose, and every higher-order and "
           "batched derivative is JAX transforming the same rule, so a wrong "
           "rule shows to the first-order checks too (a custom_vjp instead "
           "refuses forward mode outright: test_forward_mode_bugs.py)",
    ("tensorflow", "hvp_fwd"):
        "TensorFlow: forward mode over the gradient runs no rule of the "
        "layer's own: in tf.function it differentiates the gradient's "
        "formula (a select, zero in x), eagerly it transposes the gradient "
        "op's recorded gradient, which reverse over reverse (hvp) runs too",
    ("tensorflow", "hessian"):
        "TensorFlow: tf.hessians (eagerly a pfor jacobian of the gradient) "
        "is reverse over reverse, as hvp is, and pfor batches op by op: the "
        "layer has no batching rule to get wrong",
}


@dataclasses.dataclass(frozen=True)
class OnlyBug:
    check: str  # the check that alone catches it
    layer: type
    caught_by: frozenset  # the checks that fail, and no other
    says: str  # in the failure's description
    modes: dict  # backend -> the mode it is planted in (else: _NONE)

    def __str__(self):
        return self.check


_TORCH = {"torch": "eager"}
BUGS = [
    OnlyBug("hvp_fwd", bd.WrongGradientTangentReLU,
            frozenset({"hvp_fwd[input]"}), "elements differ", _TORCH),
    OnlyBug("hessian", bd.WrongBatchedGradientReLU,
            frozenset({"hessian[input]"}), "elements differ", _TORCH),
    OnlyBug("jacobian", bd.UnbatchableGradientReLU,
            frozenset({"jacobian[input]"}),
            "the custom layer's jacobian[input] raised",
            {**_TORCH, "tensorflow": "eager"}),
    OnlyBug("jvp", bd.WrongOutputTangentReLU,
            frozenset({"jvp", "jvp/vjp consistency"}), "elements differ",
            {**_TORCH, "tensorflow": "graph"}),
]

_POLICY = "float32"


def _case(layer):
    return dataclasses.replace(
        CASES["ReLU"], name=f"ReLU[{layer.__name__}]", custom=layer,
        init_kwargs=dict(bd.LEAKY))


def _failed_checks(kind, check, case, mode):
    """``{check name: first failure}`` over the examples property ``kind``
    draws, each run through ``check`` (no shrinking: every example runs)."""
    failed = {}

    @_settings(f"{kind}/{mode}")
    @given(data=st.data())
    def run(data):
        kwargs, x, seed, g = _draw_derivative_example(data, case, _POLICY)
        try:
            check(case, _POLICY, mode, kwargs, x, seed, g, Recorder())
        except AssertionError as error:
            head = str(error).splitlines()[0]
            for c in error.record[3]:
                if not c.passed:
                    failed.setdefault(c.check, f"{head}\n{c.describe()}")

    run()
    return failed


def _all_failed_checks(case, mode):
    props.equivalence_property(case, _POLICY, mode, recorder=Recorder())()
    return {**_failed_checks("second_order", props.check_second_order, case,
                             mode),
            **_failed_checks("forward_mode", props.check_forward_mode, case,
                             mode)}


@pytest.mark.parametrize("bug", BUGS, ids=str)
def test_only_its_check_catches_the_bug(bug):
    if BACKEND not in bug.modes:
        pytest.skip(_NONE.get((BACKEND, bug.check)) or _NONE[BACKEND])
    assert_real_change(bug.layer, ReLU)
    mode = bug.modes[BACKEND]
    failed = _all_failed_checks(_case(bug.layer), mode)
    assert set(failed) == bug.caught_by, (
        f"{bug.layer.__name__} ({mode}): expected only "
        f"{sorted(bug.caught_by)} to fail, got " + "\n\n".join(
            failed.values()))
    for check in bug.caught_by:
        assert bug.says in failed[check], failed[check]
    print(f"\n{bug.layer.__name__} ({BACKEND}, {mode}): caught only by "
          f"{sorted(bug.caught_by)}\n" + "\n\n".join(failed.values()))


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_the_real_layer_passes_the_same_runs(mode):
    """The control: on the same configuration and draws nothing fails for
    customlayers.ReLU itself, so each failure above is its planted bug's."""
    if not any(b.modes.get(BACKEND) == mode for b in BUGS):
        pytest.skip(f"{BACKEND}: no planted bug here runs in {mode} mode")
    assert _all_failed_checks(_case(ReLU), mode) == {}
