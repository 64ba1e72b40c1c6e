"""What a declaration says it expects: the :class:`KnownDifference`s a
comparison may be relaxed by (scoped, with their reasons), the
:class:`ErrorInput`s a layer must refuse, and the check names they refer
to. Re-exported by :mod:`customlayers.testing.declarations`; imports
neither Keras nor a backend."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from typing import Any, Callable, Mapping, Optional, Sequence

from customlayers.testing.tolerances import Tolerance

#: What a :class:`KnownDifference` can relax.
RELAXATIONS = ("signed_zeros", "subnormals", "nan_placement", "tolerance",
               "refusal")

#: The checks a declaration can name (``grad[<weight>]`` for each weight;
#: ``saving/<format>`` for each save format). Patterns use ``fnmatch``:
#: ``grad[*]`` is every gradient.
CHECK_NAMES = ("output", "grad[input]", "grad[<weight>]", "losses",
               "constraints", "variable dtypes", "config",
               "saving/keras", "saving/h5", "saving/savedmodel",
               "numeric gradient", "lazy build", "error input",
               "hvp[input]", "hvp[<weight>]", "hvp_fwd[input]",
               "hvp_fwd[<weight>]", "hessian[input]", "jvp", "jvp[weights]",
               "jacobian[input]",
               "jvp/vjp consistency", "grad form", "mask", "mask[<where>]",
               "state[<variable>]")


def check_matches(check: str, pattern: str) -> bool:
    """Whether ``check`` matches ``pattern``: ``*`` and ``?`` are wildcards;
    brackets are literal (check names hold them: ``grad[input]``)."""
    return fnmatch.fnmatchcase(check, pattern.replace("[", "[[]"))


@dataclasses.dataclass(frozen=True)
class KnownDifference:
    """A documented, deliberate difference from the reference.

    Each one states which checks it covers, where it applies, what it
    relaxes and why. Comparisons it relaxes are reported as *expected*
    differences; a declaration that relaxed nothing in a run is reported as
    *stale* (and fails the run under ``strict``, like pytest's strict
    xfail).

    Args:
        what: One of :data:`RELAXATIONS`: ``"signed_zeros"`` (``-0.0`` vs
            ``+0.0`` not counted), ``"subnormals"`` (subnormals compare as
            zero), ``"nan_placement"`` (a NaN on one side may face any value
            on the other), ``"tolerance"`` (compare with ``tolerance``
            instead of bit for bit / the table), ``"refusal"`` (the
            reference raises on a call that the custom layer computes: the
            ``lazy build`` check, where the custom layer's output shape is
            then accepted; ``when`` sees the constructor arguments and the
            call's input).
        why: The reason, in words a reviewer can check.
        checks: ``fnmatch`` patterns of the checks covered
            (:data:`CHECK_NAMES`, e.g. ``("grad[input]",)`` or
            ``("grad[*]",)``). Required: a difference covers nothing by
            default.
        backends: Backend names where it applies (``None``: every one).
        policies: Dtype policies where it applies (``None``: every one).
        modes: Execution modes where it applies (``None``: every one).
        device: ``"cpu"``, ``"gpu"`` or ``None`` (both).
        when: ``f(kwargs, x) -> bool``, a predicate on the drawn
            constructor arguments and input (``None``: always).
        tolerance: The :class:`Tolerance` for ``what="tolerance"``.
    """

    what: str
    why: str
    checks: Sequence[str] = ()
    backends: Optional[Sequence[str]] = None
    policies: Optional[Sequence[str]] = None
    modes: Optional[Sequence[str]] = None
    device: Optional[str] = None
    when: Optional[Callable[[dict, Any], bool]] = None
    tolerance: Optional[Tolerance] = None
    #: Set by ``LayerCase`` so that reports can say whose difference it is.
    name: str = ""

    def __post_init__(self):
        if self.what not in RELAXATIONS:
            raise ValueError(
                f"KnownDifference(what={self.what!r}): expected one of "
                f"{RELAXATIONS}")
        if isinstance(self.checks, str) or not self.checks:
            raise ValueError(
                f"KnownDifference(what={self.what!r}) needs checks=, a "
                f"non-empty tuple of check patterns such as "
                f"('grad[input]',); got checks={self.checks!r}")
        if (self.what == "tolerance") != (self.tolerance is not None):
            raise ValueError(
                "KnownDifference: tolerance= goes with what='tolerance' "
                f"and only with it; got what={self.what!r}, "
                f"tolerance={self.tolerance!r}")
        if self.what == "refusal" and not all(
                check_matches("lazy build", p) for p in self.checks):
            raise ValueError(
                "KnownDifference(what='refusal') covers the 'lazy build' "
                f"check only (a call refused or computed); got checks="
                f"{self.checks!r}")
        if self.device not in (None, "cpu", "gpu"):
            raise ValueError(f"KnownDifference(device={self.device!r}): "
                             "expected 'cpu', 'gpu' or None")
        if not self.why.strip():
            raise ValueError("KnownDifference needs a why=")

    @property
    def label(self) -> str:
        scope = ", ".join(f"{k}={'/'.join(v)}" for k, v in (
            ("backends", self.backends), ("policies", self.policies),
            ("modes", self.modes)) if v)
        if self.device:
            scope += (", " if scope else "") + f"device={self.device}"
        return (f"{self.name + ': ' if self.name else ''}{self.what} on "
                f"{'/'.join(self.checks)}{' (' + scope + ')' if scope else ''}")

    def covers(self, check: str) -> bool:
        return any(check_matches(check, p) for p in self.checks)

    def applies(self, *, check: str, backend: str, policy: str, mode: str,
                device: str, kwargs=None, x=None) -> bool:
        """Whether this difference applies to one comparison."""
        if not self.covers(check):
            return False
        for allowed, value in ((self.backends, backend),
                               (self.policies, policy), (self.modes, mode)):
            if allowed is not None and value not in allowed:
                return False
        if self.device is not None and device != self.device:
            return False
        if self.when is not None:
            return bool(self.when(kwargs or {}, x))
        return True


@dataclasses.dataclass(frozen=True)
class ErrorInput:
    """An input the layer must refuse, in the style of PyTorch's
    ``ModuleErrorInput``.

    Args:
        init_kwargs: Constructor arguments (merged over a valid drawn set).
        error: The exception type expected from the custom layer.
        match: A regular expression the message must match (``re.search``).
        input_shape: If given, the layer is built and called on an input of
            this shape, and the *call* must raise; else the constructor.
        reference_raises: The reference must raise too (``False`` for
            arguments the custom layer refuses on purpose; say why).
        why: Why the custom layer refuses it (needed when
            ``reference_raises`` is ``False``).
    """

    init_kwargs: Mapping = dataclasses.field(default_factory=dict)
    error: type = ValueError
    match: str = ""
    input_shape: Optional[tuple] = None
    reference_raises: bool = True
    why: str = ""

    def __post_init__(self):
        if not self.reference_raises and not self.why:
            raise ValueError("ErrorInput(reference_raises=False) needs a why=")
        re.compile(self.match)

    @property
    def label(self) -> str:
        call = (f", called on shape {self.input_shape}"
                if self.input_shape is not None else "")
        return f"{dict(self.init_kwargs)}{call} -> {self.error.__name__}"
