"""Role: what MNIST is (sizes, label counts) and :func:`validate_mnist`,
the one check every source's data goes through."""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from customlayers.datasets.errors import DataIntegrityError

__all__ = [
    "MNISTArrays", "N_TRAIN", "N_TEST", "IMAGE_SHAPE",
    "TRAIN_LABEL_COUNTS", "TEST_LABEL_COUNTS", "validate_mnist",
]

MNISTArrays = Tuple[Tuple[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]

#: Per-class label counts of the real MNIST (classes 0..9).
TRAIN_LABEL_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
TEST_LABEL_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
N_TRAIN = 60000
N_TEST = 10000
IMAGE_SHAPE = (28, 28)


def _check_split(name: str, x, y, n: int, counts: Sequence[int]) -> None:
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        raise DataIntegrityError(
            f"{name}: expected numpy arrays, got {type(x).__name__} and {type(y).__name__}"
        )
    if x.dtype != np.uint8 or y.dtype != np.uint8:
        raise DataIntegrityError(
            f"{name}: expected uint8 images and labels, got {x.dtype} and {y.dtype}"
        )
    if x.shape != (n,) + IMAGE_SHAPE:
        raise DataIntegrityError(
            f"{name}: expected images of shape {(n,) + IMAGE_SHAPE}, got {x.shape}"
        )
    if y.shape != (n,):
        raise DataIntegrityError(f"{name}: expected labels of shape {(n,)}, got {y.shape}")
    if y.size and int(y.max()) > 9:
        raise DataIntegrityError(
            f"{name}: labels must lie in 0..9, found {int(y.max())}"
        )
    found = np.bincount(y, minlength=10)
    if tuple(int(c) for c in found) != tuple(counts):
        raise DataIntegrityError(
            f"{name}: label counts {found.tolist()} differ from MNIST's {list(counts)}"
        )
    if not x.any():
        raise DataIntegrityError(f"{name}: every pixel is 0")


def validate_mnist(data) -> MNISTArrays:
    """Check that ``data`` is MNIST in the layout Keras uses.

    Checks the nesting, shapes, dtypes (uint8), value ranges (labels 0..9) and
    the per-class label counts of the real train and test sets.

    Args:
        data: ``((x_train, y_train), (x_test, y_test))``.

    Returns:
        The same data, with each array made C-contiguous.

    Raises:
        DataIntegrityError: what is wrong and what was expected.
    """
    try:
        (x_train, y_train), (x_test, y_test) = data
    except (TypeError, ValueError):
        raise DataIntegrityError(
            "expected ((x_train, y_train), (x_test, y_test)), got "
            f"{type(data).__name__}"
        ) from None
    _check_split("train", x_train, y_train, N_TRAIN, TRAIN_LABEL_COUNTS)
    _check_split("test", x_test, y_test, N_TEST, TEST_LABEL_COUNTS)
    return (
        (np.ascontiguousarray(x_train), np.ascontiguousarray(y_train)),
        (np.ascontiguousarray(x_test), np.ascontiguousarray(y_test)),
    )
