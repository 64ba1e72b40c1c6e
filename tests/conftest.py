"""Shared pytest set-up: Hypothesis profiles and the printed seeds."""

import os

# Quieten TensorFlow's C++ start-up chatter before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from customlayers.testing.profiles import load_profile, register_profiles  # noqa: E402,E501

register_profiles()


def pytest_configure(config):
    """Without ``--hypothesis-profile`` the ``ci`` profile applies (no
    deadline, fixed seed), not Hypothesis's default 200 ms deadline, which
    JAX's per-shape compilation exceeds on its first example."""
    if not config.getoption("hypothesis_profile", default=None):
        load_profile("ci")
    # Derandomized draws of this suite's own @given tests must not depend
    # on which modules the run imported either (the battery's properties
    # get this from customlayers.testing.stable_draws themselves).
    from hypothesis import settings

    from customlayers.testing import stable_draws
    profile = config.getoption("hypothesis_profile", default=None) or "ci"
    if settings.get_profile(profile).derandomize:
        stable_draws.set_everywhere(True)


def pytest_report_header(config):
    import hypothesis

    from customlayers._keras import BACKEND, KERAS_VERSION, keras
    profile = config.getoption("hypothesis_profile", default=None) or \
        "ci (the default here)"
    return [f"customlayers: keras {KERAS_VERSION} ({keras.__name__}), "
            f"backend {BACKEND}, "
            f"hypothesis {hypothesis.__version__}, profile {profile} "
            "(ci is derandomized: a fixed seed; others print "
            "'You can reproduce this example by ...' on failure)"]
