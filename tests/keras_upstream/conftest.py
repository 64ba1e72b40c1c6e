"""Markers that Keras's own test suite uses (its conftest registers them;
this project runs pytest with ``--strict-markers``)."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "requires_trainable_backend: Keras's marker for tests "
        "that train (every backend this project runs can train)")
