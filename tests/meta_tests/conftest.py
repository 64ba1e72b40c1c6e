"""Meta-test set-up: bound Hypothesis's shrinking of each planted bug.

A planted bug is found within a few examples, but shrinking its
counterexample (each replay builds two layers, and compiles under XLA) runs
up to Hypothesis's own limit of 5 minutes per test. The meta-tests only need
*a* small counterexample to print, so every test here runs under
:func:`customlayers.testing.battery.shrink_budget` of
``CUSTOMLAYERS_META_SHRINK_SECONDS`` (default 10 s). Tests that go through
``run_item`` with their own ``shrink_seconds`` keep theirs (the inner budget
applies while it runs). Found, caught and reported are unchanged: only how
long the minimal example is searched for.
"""

import os

import pytest

from customlayers.testing.battery import shrink_budget

_DEFAULT_SECONDS = 10


def _seconds() -> float:
    raw = os.environ.get("CUSTOMLAYERS_META_SHRINK_SECONDS",
                         str(_DEFAULT_SECONDS))
    try:
        seconds = float(raw)
    except ValueError:
        raise pytest.UsageError(
            f"CUSTOMLAYERS_META_SHRINK_SECONDS={raw!r}: expected a number of "
            f"seconds (default {_DEFAULT_SECONDS})") from None
    if seconds <= 0:
        raise pytest.UsageError(
            f"CUSTOMLAYERS_META_SHRINK_SECONDS={raw!r}: expected a positive "
            "number of seconds")
    return seconds


@pytest.fixture(autouse=True)
def _bounded_shrinking():
    with shrink_budget(_seconds()):
        yield
