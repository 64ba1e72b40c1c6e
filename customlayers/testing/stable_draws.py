"""Derandomized draws that do not depend on which modules a run imported.

Since 6.131, Hypothesis's own provider sometimes (with probability 0.05,
0.15 for floats) draws a *constant* instead of a random value: from a
fixed global pool (0, -0.0, NaN, the float limits, ...) or from the
*local* pool, the literals of every module in ``sys.modules`` that lives
outside site-packages and the standard library and is not a test file
(``hypothesis/internal/conjecture/providers.py``,
``_get_local_constants``). That pool grows whenever a run imports a new
local module: customlayers itself when installed editable (its backend,
``torch_compile``, ``parity``, ... modules are imported lazily), a user's
own layer modules, any script on the path.

So a derandomized (``ci`` profile) property draws other examples in a
full run than when run alone, or after another test imported a module.
Found on torch: a planted bug that the ``ci`` profile catches when its
test runs alone passed unseen in the full ``tox -e torch`` run (its three
compiled-mode examples changed with the pool).

:class:`StableProperty` wraps a property so that while it runs under a
derandomized profile, Hypothesis's provider draws its constants from the
global pool only, exactly as Hypothesis itself does when no local module
has a literal (the same random calls, in the same order). Under a random
profile (``dev``, ``thorough``) nothing changes: there the local pool
adds bug-finding power and the printed ``@reproduce_failure`` blob
replays the drawn values whatever the pool. Other tests in the process
(a user's own ``@given`` tests) are not affected: the hook is active only
inside a wrapped property, unless a suite asks for it everywhere
(:func:`set_everywhere`, which customlayers' own ``tests/conftest.py``
does under a derandomized profile).

``tests/meta_tests/test_stable_draws.py`` shows the dependence without
the hook and its absence with it; it fails if a Hypothesis release moves
the internals this relies on.
"""

from __future__ import annotations

import functools
import threading
import warnings

_STATE = threading.local()
#: ``installed`` (the hook is in place), ``absent`` (this Hypothesis has no
#: local-constants pool: nothing to neutralise) or the reason it could not
#: be installed.
STATUS = {"hook": None}


#: ``everywhere``: the hook applies to every ``@given`` test of the process
#: (:func:`set_everywhere`), not only inside wrapped properties.
_GLOBAL = {"everywhere": False}


def _active() -> bool:
    return _GLOBAL["everywhere"] or getattr(_STATE, "depth", 0) > 0


def set_everywhere(on: bool) -> bool:
    """Apply the hook to every Hypothesis test of this process (a test
    suite whose own ``@given`` tests are derandomized, as customlayers'
    ``tests/conftest.py`` does under the ``ci`` profile), or stop doing
    so; returns the previous value."""
    previous = _GLOBAL["everywhere"]
    if on:
        _install()
    _GLOBAL["everywhere"] = bool(on)
    return previous


def _install() -> str:
    """Put the hook on Hypothesis's provider (once); returns
    :data:`STATUS`'s value."""
    if STATUS["hook"] is not None:
        return STATUS["hook"]
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError as exc:  # pragma: no cover - Hypothesis < 6.100
        STATUS["hook"] = f"hypothesis.internal.conjecture.providers: {exc}"
        return STATUS["hook"]
    if not hasattr(providers, "_get_local_constants"):
        STATUS["hook"] = "absent"
        return STATUS["hook"]
    cls = getattr(providers, "HypothesisProvider", None)
    original = getattr(cls, "_maybe_draw_constant", None)
    needed = ("GLOBAL_CONSTANTS", "choice_permitted",
              "choice_constraints_key")
    missing = [n for n in needed if not hasattr(providers, n)]
    if original is None:
        missing.append("HypothesisProvider._maybe_draw_constant")
    if missing:
        STATUS["hook"] = (
            "this Hypothesis has a local-constants pool but not the "
            "provider internals customlayers.testing.stable_draws wraps "
            f"(missing: {', '.join(missing)}); derandomized draws may "
            "depend on the imported modules")
        warnings.warn(STATUS["hook"], RuntimeWarning, stacklevel=3)
        return STATUS["hook"]
    pools: dict = {}

    @functools.wraps(original)
    def _maybe_draw_constant(self, choice_type, constraints, *, p=0.05):
        if not _active():
            return original(self, choice_type, constraints, p=p)
        # Hypothesis's own steps with an empty local pool: one random()
        # against p, one choice of a pool (of one), one constant from it.
        if self._random.random() > p:
            return None
        key = (choice_type,
               providers.choice_constraints_key(choice_type, constraints))
        pool = pools.get(key)
        if pool is None:
            pool = pools[key] = tuple(
                c for c in providers.GLOBAL_CONSTANTS.set_for_type(
                    choice_type)
                if providers.choice_permitted(c, constraints))
        if not pool:
            return None
        return self._random.choice(self._random.choice([pool]))

    cls._maybe_draw_constant = _maybe_draw_constant
    STATUS["hook"] = "installed"
    return STATUS["hook"]


class StableProperty:
    """A ``@given`` function, run with the global constants only if its
    settings are ``derandomized``. Attributes are the wrapped function's;
    setting ``__name__`` names the wrapped function too, so that
    Hypothesis's report names the item."""

    def __init__(self, test, derandomized: bool):
        object.__setattr__(self, "_test", test)
        object.__setattr__(self, "_derandomized", derandomized)

    def __getattr__(self, name):
        return getattr(self._test, name)

    def __setattr__(self, name, value):
        setattr(self._test, name, value)
        if name == "__name__":
            self._test.__qualname__ = value

    def __call__(self, *args, **kwargs):
        if not self._derandomized:
            return self._test(*args, **kwargs)
        _install()
        _STATE.depth = getattr(_STATE, "depth", 0) + 1
        try:
            return self._test(*args, **kwargs)
        finally:
            _STATE.depth -= 1

    def __repr__(self):
        return f"StableProperty({self._test.__name__})"

