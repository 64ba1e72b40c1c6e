"""Comparisons under a case's expectations: its tolerance and the known
differences that apply to one check.

:func:`compare_expected` compares like
:func:`~customlayers.testing.numerics.compare_arrays`, relaxing only what the
applicable :class:`~customlayers.testing.declarations.KnownDifference`
declarations relax, and names the ones the comparison *needed* (it would
fail without them) in ``Comparison.expected``. A :class:`Ledger` counts,
per declaration, where it applied and where it was needed, so that a run can
report declarations that matched nothing as stale.
"""

from __future__ import annotations

import collections
import dataclasses

from customlayers.testing.numerics import Comparison, compare_arrays


@dataclasses.dataclass(frozen=True)
class Scope:
    """Where one comparison happens (what a difference's ``applies``
    looks at)."""

    backend: str
    policy: str
    mode: str
    device: str
    kwargs: dict = dataclasses.field(default_factory=dict, hash=False,
                                     compare=False)
    x: object = dataclasses.field(default=None, hash=False, compare=False)


class Ledger:
    """How often each known difference applied, and was needed."""

    def __init__(self):
        self.applied = collections.Counter()
        self.needed = collections.Counter()
        self.declared = {}

    def declare(self, differences) -> None:
        for d in differences:
            self.declared[d.label] = d

    def stale(self) -> list:
        """Declarations that relaxed nothing in this run."""
        return [d for label, d in sorted(self.declared.items())
                if not self.needed[label]]


def _relaxations(differences, tolerance):
    kw = dict(signed_zeros=True, flush_subnormals=False, nan_placement=True,
              tolerance=tolerance)
    for d in differences:
        if d.what == "signed_zeros":
            kw["signed_zeros"] = False
        elif d.what == "subnormals":
            kw["flush_subnormals"] = True
        elif d.what == "nan_placement":
            kw["nan_placement"] = False
        elif d.what == "tolerance":
            kw["tolerance"] = d.tolerance
    return kw


def applicable_differences(differences, check: str,
                           scope: Scope | None) -> list:
    """The ``differences`` that apply to ``check`` in ``scope`` (none
    without a scope)."""
    return [] if scope is None else [
        d for d in differences if d.applies(
            check=check, backend=scope.backend, policy=scope.policy,
            mode=scope.mode, device=scope.device, kwargs=scope.kwargs,
            x=scope.x)]


def compare_expected(check, custom, reference, *, tolerance, differences=(),
                     scope: Scope | None = None,
                     ledger: Ledger | None = None) -> Comparison:
    """Compare ``custom`` with ``reference`` for ``check``, relaxed by the
    ``differences`` that apply in ``scope``; ``tolerance`` ``None`` means
    bit for bit."""
    applicable = applicable_differences(differences, check, scope)
    comp = compare_arrays(check, custom, reference,
                          **_relaxations(applicable, tolerance))
    if not applicable:
        return comp
    if ledger is not None:
        for d in applicable:
            ledger.applied[d.label] += 1
    if not comp.passed:
        return comp
    strict = compare_arrays(check, custom, reference,
                            **_relaxations((), tolerance))
    if strict.passed:
        return comp
    needed = [d for d in applicable if not compare_arrays(
        check, custom, reference, **_relaxations(
            [e for e in applicable if e is not d], tolerance)).passed]
    needed = needed or applicable  # only jointly needed
    comp.expected = tuple(d.label for d in needed)
    if ledger is not None:
        for d in needed:
            ledger.needed[d.label] += 1
    return comp
