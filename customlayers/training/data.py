"""Role: the data as the tutorial feeds it (MNIST flattened to 784 floats)
and the batch order both models share. No Keras here."""

from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["prepare_mnist", "epoch_permutations"]


def prepare_mnist(limit: Optional[int] = None, *, path=None, cache_dir=None):
    """MNIST as the tutorial feeds it: images flattened to 784 float32 in
    [0, 1] (``x.reshape(-1, 784).astype("float32") / 255``), int32 labels.

    Args:
        limit: Keep only the first ``limit`` training examples (the test set
            is always complete). ``None`` keeps all 60,000.
        path, cache_dir: Passed to :func:`customlayers.datasets.load_mnist`.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``.

    Raises:
        customlayers.datasets.MNISTUnavailableError: no source could provide
            MNIST.
    """
    from customlayers.datasets import load_mnist

    (x_train, y_train), (x_test, y_test) = load_mnist(path=path,
                                                      cache_dir=cache_dir)

    def flat(x):
        return x.reshape(len(x), 784).astype("float32") / np.float32(255)

    if limit is not None:
        if limit <= 0:
            raise ValueError(f"limit must be a positive number of examples; "
                             f"received {limit!r}")
        x_train, y_train = x_train[:limit], y_train[:limit]
    return ((flat(x_train), y_train.astype("int32")),
            (flat(x_test), y_test.astype("int32")))


def epoch_permutations(n: int, epochs: int, seed: int) -> list[np.ndarray]:
    """The batch order: one permutation of ``range(n)`` per epoch, drawn from
    ``numpy.random.default_rng(seed)``; both models use the same list."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(epochs)]


