"""Hypothesis profiles ``ci``, ``dev`` and ``thorough``.

``max_examples`` sizes the whole battery: each property runs a share of it
(see :data:`customlayers.testing.properties.WEIGHTS`). Deadlines are off
(graph tracing and XLA compilation times vary wildly on shared machines).
Every profile prints the ``@reproduce_failure`` blob.

The example database: ``ci`` is derandomized, which in Hypothesis implies
``database=None``, so it reads and writes none (the same examples every
run, pytest-xdist workers included). ``dev`` and ``thorough`` keep
Hypothesis's default directory database (``.hypothesis/examples``), so a
failure found once is replayed first next time; it is safe across
pytest-xdist workers and parallel runs: entries are keyed by test (a test
runs in one worker) and each is written to a temporary file and renamed
into place.

- ``ci``: derandomized (a fixed seed; the same examples on every run,
  whatever else the run selected or imported: Hypothesis also draws
  literals from the source of the local modules a run has imported, which
  :mod:`customlayers.testing.stable_draws` turns off for derandomized
  properties).
  Per pair and dtype policy the equivalence property draws 30 / 10 / 10
  examples in eager / graph / compiled mode, each with 2 / 3 / 4 value
  sets (inputs, weight seeds and upstream gradients for one drawn
  signature; ``properties.VALUE_SETS``): 60 / 30 / 40 compared inputs;
  with non-finite upstream gradients (float32) 5 / 5 / 10 drawn examples.
- ``dev``: random, 3x the examples.
- ``thorough``: random, 20x the examples, for a nightly run.

Shrinking a failure is bounded per profile (:data:`SHRINK_SECONDS`: 20 s in
``ci``, 60 s in ``dev``, 300 s in ``thorough``, Hypothesis's own limit):
replaying one layer example builds two layers, and an unbounded shrink took
50 s to over 5 minutes per failure. The minimal example found by then is
what gets printed.
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings

PROFILES = {
    "ci": dict(max_examples=100, derandomize=True),
    "dev": dict(max_examples=300),
    "thorough": dict(max_examples=2000),
}

_COMMON = dict(
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
    # No Phase.explain: it re-runs the failing example under a line tracer,
    # and through TensorFlow's Python (tf.function tracing, SavedModel
    # export) one failing example took over 10 minutes there. The minimal
    # example and the reproduce blob are printed without it.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target,
            Phase.shrink],
)


#: Seconds Hypothesis may spend shrinking one failure, per profile.
SHRINK_SECONDS = {"ci": 20, "dev": 60, "thorough": 300}

_ACTIVE = {"name": None}


def shrink_seconds():
    """The shrinking budget of the profile loaded through
    :func:`load_profile` (``None``: Hypothesis's own)."""
    return SHRINK_SECONDS.get(_ACTIVE["name"])


def use_profile(name: str) -> None:
    """Make ``name`` the profile of customlayers' properties only, leaving
    Hypothesis's global settings (other projects' tests) alone: what the
    pytest plugin does."""
    register_profiles()
    if name not in PROFILES:
        raise ValueError(f"unknown Hypothesis profile {name!r}; expected "
                         f"one of {sorted(PROFILES)}")
    _ACTIVE["name"] = name


def base_settings() -> settings:
    """The settings customlayers' properties start from: the profile chosen
    with :func:`use_profile` or :func:`load_profile`, else Hypothesis's
    current settings."""
    name = _ACTIVE["name"]
    return settings.get_profile(name) if name else settings()


def register_profiles() -> None:
    """Register the three profiles with Hypothesis (idempotent)."""
    for name, kwargs in PROFILES.items():
        settings.register_profile(name, **_COMMON, **kwargs)


def load_profile(name: str) -> settings:
    """Register the profiles and make ``name`` the active one."""
    register_profiles()
    if name not in PROFILES:
        raise ValueError(f"unknown Hypothesis profile {name!r}; expected "
                         f"one of {sorted(PROFILES)}")
    settings.load_profile(name)
    _ACTIVE["name"] = name
    return settings()
