"""The battery: which properties run for a case, and how one is run.

:func:`items` lists, for one :class:`~customlayers.testing.LayerCase`, every
property x dtype policy x mode (or save format) the battery runs, each as an
:class:`Item` with a readable id (``equivalence-float32-eager``). The pytest
plugin parametrizes over them, ``customlayers verify`` loops over them, and
:func:`run_item` runs one: it applies the profile's shrinking budget, and
turns a failure (an exception group unpacked) into one
:class:`~customlayers.testing.report.Failure` with its minimal example,
recorded in the :class:`~customlayers.testing.report.Recorder`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import traceback
from typing import Callable, Optional

from customlayers.testing.report import Failure, Recorder

#: Dtype policies the config and saving properties run under (a subset of
#: the case's policies; the values do not depend on much more).
CONFIG_POLICIES = ("float32", "mixed_float16")
SAVING_POLICIES = ("float32", "mixed_bfloat16")
#: ... and the second-order and forward-mode properties.
DERIVATIVE_POLICIES = ("float32",)
#: ... and the traced (graph, compiled) lazy-build items; the eager one
#: runs under every policy.
TRACED_BUILD_POLICIES = ("float32",)


@dataclasses.dataclass(frozen=True)
class Item:
    """One property of the battery for one case."""

    kind: str
    case: object
    policy: Optional[str] = None
    mode: Optional[str] = None
    fmt: Optional[str] = None
    #: The ``training`` call argument of an item (``None``: not passed;
    #: equivalence, non-finite upstream, second order, forward mode and
    #: mask items run once per value of ``LayerCase.training``).
    training: Optional[bool] = None
    #: ``f() -> reason or None``, evaluated when the item runs (it may
    #: build a layer, which collection should not).
    skip: Optional[Callable[[], Optional[str]]] = None

    @property
    def id(self) -> str:
        return "-".join(p for p in (self.kind, self.fmt, self.policy,
                                    self.mode, self._training_label) if p)

    @property
    def _training_label(self) -> Optional[str]:
        if self.training is None:
            return None
        return "training" if self.training else "inference"

    @property
    def label(self) -> str:
        parts = [self.kind.replace("_", " "), self.case.name, self.fmt,
                 self.policy, self.mode, self._training_label]
        return " ".join(p for p in parts if p)

    def skip_reason(self) -> Optional[str]:
        declared = self.case.skip_properties.get(self.kind)
        if declared is not None:
            reason = _declared_reason(declared, self)
            if reason:
                return f"{self.case.name} declares: {reason}"
        return self.skip() if self.skip else None

    def build(self, recorder: Recorder, artifacts_dir=None):
        """The Hypothesis test function for this item."""
        from customlayers.testing import properties as props
        case = self.case
        if self.kind == "equivalence":
            return props.equivalence_property(case, self.policy, self.mode,
                                              recorder, artifacts_dir,
                                              training=self.training)
        if self.kind == "state":
            return props.state_property(case, self.policy, self.mode,
                                        recorder)
        if self.kind == "lazy_build":
            return props.lazy_build_property(case, self.policy, recorder,
                                             mode=self.mode or "eager")
        if self.kind == "config":
            return props.config_property(case, self.policy, recorder)
        if self.kind == "saving":
            return props.saving_property(case, self.policy, recorder,
                                         fmt=self.fmt)
        if self.kind == "numeric_gradient":
            return props.numeric_gradient_property(case, recorder)
        if self.kind == "error_inputs":
            return props.error_inputs_property(case, recorder)
        if self.kind == "input_dtypes":
            return props.input_dtypes_property(case, recorder)
        if self.kind == "nonfinite_upstream":
            return props.nonfinite_upstream_property(
                case, self.policy, self.mode, recorder,
                training=self.training)
        if self.kind == "second_order":
            return props.second_order_property(case, self.policy, self.mode,
                                               recorder,
                                               training=self.training)
        if self.kind == "randomness":
            return props.randomness_property(case, self.policy, self.mode,
                                             recorder)
        if self.kind == "forward_mode":
            return props.forward_mode_property(case, self.policy, self.mode,
                                               recorder,
                                               training=self.training)
        if self.kind == "mask":
            return props.mask_property(case, self.policy, self.mode,
                                       recorder, training=self.training)
        raise ValueError(f"unknown property kind {self.kind!r}")


def _torch_compiled(mode) -> bool:
    from customlayers._keras import BACKEND
    return BACKEND == "torch" and mode == "compiled"


def _declared_reason(declared, item) -> Optional[str]:
    """A ``skip_properties`` entry for ``item``: a string, ``f()``, or a
    function of any of ``policy``, ``mode`` and ``training`` (the item's,
    passed by name: a skip of one mode or training value)."""
    if not callable(declared):
        return declared
    import inspect
    wanted = inspect.signature(declared).parameters
    return declared(**{k: getattr(item, k) for k in
                       ("policy", "mode", "training") if k in wanted})


def _subset(wanted, available):
    chosen = [p for p in wanted if p in available]
    return chosen or list(available[:1])


def items(case, policies=None, modes=None) -> list:
    """Every :class:`Item` the battery runs for ``case``, restricted to
    ``policies`` and ``modes`` when given (else the case's own, else all)."""
    from customlayers.testing import properties as props
    from customlayers.testing.backends import MODES, supported_modes
    from customlayers.testing.saving import SAVE_FORMATS
    from customlayers.testing.strategies import POLICIES

    policies = list(policies or case.policies or POLICIES)
    modes = list(modes or case.modes or MODES)
    support = supported_modes()
    out = []
    trainings = tuple(case.training) or (None,)
    for policy in policies:
        for mode in modes:
            reason = support.get(mode, f"unknown mode {mode!r}")
            for training in trainings:
                out.append(Item("equivalence", case, policy, mode,
                                training=training,
                                skip=(lambda r=reason: r) if reason
                                else None))
            if case.state_steps:
                out.append(Item("state", case, policy, mode, skip=(
                    lambda r=reason: r) if reason else None))
        out.append(Item("lazy_build", case, policy))
        for mode in modes if case.random is not None else ():
            reason = support.get(mode, f"unknown mode {mode!r}")
            skip = (lambda r=reason: r) if reason else None
            if not reason and _torch_compiled(mode):
                from customlayers.testing.torch_compile import \
                    randomness_reason as skip
            out.append(Item("randomness", case, policy, mode, skip=skip))
    # The lazy build traced: calls on shapes (and ranks) other than the
    # built one, each traced or compiled for its shape.
    for policy in _subset(TRACED_BUILD_POLICIES, policies):
        for mode in (m for m in modes if m != "eager"):
            reason = support.get(mode, f"unknown mode {mode!r}")
            out.append(Item("lazy_build", case, policy, mode, skip=(
                lambda r=reason: r) if reason else None))
    for policy in _subset(CONFIG_POLICIES, policies):
        out.append(Item("config", case, policy))
    for fmt in (f for f in SAVE_FORMATS if f in case.save_formats):
        for policy in _subset(SAVING_POLICIES, policies):
            out.append(Item("saving", case, policy, fmt=fmt,
                            skip=lambda f=fmt: case.save_unsupported(f)))
    # Ids (input_ids) are differentiated along the weights only there.
    for kind in ("nonfinite_upstream", "second_order", "forward_mode"):
        for policy in _subset(DERIVATIVE_POLICIES, policies):
            for mode in modes:
                reason = support.get(mode, f"unknown mode {mode!r}")
                if kind == "nonfinite_upstream" and not case.allow_nonfinite:
                    reason = (f"{case.name} declares allow_nonfinite=False: "
                              "NaN and inf are not part of its contract")
                for training in trainings:
                    out.append(Item(kind, case, policy, mode,
                                    training=training, skip=(
                                        lambda r=reason: r) if reason
                                    else None))
    out.append(Item("input_dtypes", case))
    if case.masks:  # every mode; what a model hands on in eager items only
        for policy in _subset(CONFIG_POLICIES, policies):
            for mode in modes:
                reason = support.get(mode, f"unknown mode {mode!r}")
                for training in trainings:
                    out.append(Item("mask", case, policy, mode,
                                    training=training, skip=(
                                        lambda r=reason: r) if reason
                                    else None))
    if case.numeric_gradient:
        out.append(Item("numeric_gradient", case, "float64",
                        skip=lambda: props.numeric_gradient_unavailable(case)))
    out.append(Item("error_inputs", case, skip=lambda: None if
                    case.error_inputs else
                    f"n/a: {case.name} declares no error inputs"))
    return out


# -- running one item -------------------------------------------------------

@contextlib.contextmanager
def shrink_budget(seconds: Optional[float]):
    """Bound Hypothesis's shrinking of one failure to ``seconds``.

    Hypothesis shrinks for up to 5 minutes by default; replaying a layer
    example builds two layers (and compiles under XLA), so one failure could
    take minutes. The bound uses Hypothesis's internal
    ``MAX_SHRINKING_SECONDS`` (there is no public setting); a release
    without it leaves shrinking unbounded, nothing else changes."""
    from hypothesis.internal.conjecture import engine
    if seconds is None or not hasattr(engine, "MAX_SHRINKING_SECONDS"):
        yield
        return
    old = engine.MAX_SHRINKING_SECONDS
    engine.MAX_SHRINKING_SECONDS = seconds
    try:
        yield
    finally:
        engine.MAX_SHRINKING_SECONDS = old


def _leaves(exc):
    """The exceptions inside (nested) exception groups, or ``exc``."""
    subs = getattr(exc, "exceptions", None)
    if subs is None or not isinstance(exc, BaseException):
        return [exc]
    return [leaf for e in subs for leaf in _leaves(e)]


def _notes(exc) -> str:
    return "\n".join(getattr(exc, "__notes__", ()))


def describe_failure(item, exc, recorder: Recorder) -> list:
    """One :class:`Failure` per distinct failure in ``exc``; the failing
    comparisons go into the recorder's rows."""
    failures = []
    group_notes = _notes(exc)
    for leaf in _leaves(exc):
        record = getattr(leaf, "record", None)
        checks = ()
        if record:
            case, policy, mode, comparisons = record
            failing = [c for c in comparisons if not c.passed]
            checks = tuple(c.check for c in failing)
            for c in failing:
                recorder.stats[(case, c.check, policy, mode)].add(c)
        else:
            from customlayers.testing.equivalence import fact_check
            recorder.stats[(item.case.name, item.kind.replace("_", " "),
                            item.policy or "-", item.mode or "-")].add(
                fact_check(item.kind, False, str(leaf)))
        if isinstance(leaf, AssertionError):
            error = f"{type(leaf).__name__}: {leaf}"
        else:
            error = "".join(traceback.format_exception(
                type(leaf), leaf, leaf.__traceback__, chain=False))
        notes = _notes(leaf) if leaf is exc else "\n".join(
            n for n in (_notes(leaf), group_notes) if n)
        failures.append(Failure(property=item.label, case=item.case.name,
                                error=error, counterexample=notes,
                                checks=checks))
    return failures


def run_item(item: Item, recorder: Recorder, *, shrink_seconds=None,
             artifacts_dir=None):
    """Run one item; returns ``(status, seconds, message)`` with status
    ``ok``, ``FAIL`` or ``skipped``. Failures are recorded, not raised
    (``KeyboardInterrupt`` aside)."""
    from customlayers.testing.profiles import shrink_seconds as budget
    t = time.time()
    reason = item.skip_reason()
    if reason:
        recorder.skipped.append({"property": item.label, "reason": reason})
        return "skipped", 0.0, reason
    try:
        with shrink_budget(budget() if shrink_seconds is None
                           else shrink_seconds):
            item.build(recorder, artifacts_dir)()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - reported, not raised
        failures = describe_failure(item, exc, recorder)
        recorder.failures += failures
        return ("FAIL", time.time() - t,
                "\n\n".join(f.text() for f in failures))
    recorder.passed_properties += 1
    return "ok", time.time() - t, ""
