"""Shared by the integration suites: what "MNIST unavailable" means.

By default a suite that needs real MNIST is skipped, with the loader's
message, when no source can provide it. With ``CUSTOMLAYERS_REQUIRE_MNIST=1``
(set by ``.ci/run``) that is a failure instead, so that CI cannot pass by
skipping the integration tests.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_MNIST_ENV = "CUSTOMLAYERS_REQUIRE_MNIST"


def require_mnist() -> bool:
    return os.environ.get(REQUIRE_MNIST_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@pytest.fixture(scope="session")
def mnist_unavailable():
    """A function ``(reason) -> NoReturn``: skip, or fail when
    ``CUSTOMLAYERS_REQUIRE_MNIST=1``."""
    def unavailable(reason):
        message = f"real MNIST unavailable here:\n{reason}"
        if require_mnist():
            pytest.fail(f"{message}\n({REQUIRE_MNIST_ENV}=1: this is a failure, not a skip)",
                        pytrace=False)
        pytest.skip(message)
    return unavailable
