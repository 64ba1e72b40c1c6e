"""Meta-test set-up: bound Hypothesis's shrinking time.

A planted bug is found within a few examples, but shrinking a Dense
counterexample (many labelled draws, each replay builds two layers) can run
for Hypothesis's built-in limit of 5 minutes per test. The meta-tests only
need *a* small counterexample to print, so they cap shrinking at
``CUSTOMLAYERS_META_SHRINK_SECONDS`` (default 10 s). This uses Hypothesis's
internal ``MAX_SHRINKING_SECONDS``; if a Hypothesis release drops it, the cap
is simply not applied (the tests stay correct, only slower).
"""

import os

import pytest
from hypothesis.internal.conjecture import engine


@pytest.fixture(autouse=True)
def _bounded_shrinking(monkeypatch):
    if hasattr(engine, "MAX_SHRINKING_SECONDS"):
        monkeypatch.setattr(
            engine, "MAX_SHRINKING_SECONDS",
            int(os.environ.get("CUSTOMLAYERS_META_SHRINK_SECONDS", "10")))
