"""Role: the ``mnist.npz`` parser and the ``path=`` source (an npz file or a
directory of IDX files, whichever the user named)."""

from __future__ import annotations

import pathlib
import zipfile
import zlib

import numpy as np

from customlayers.datasets._io import PathLike
from customlayers.datasets.errors import DataIntegrityError
from customlayers.datasets.idx import load_mnist_idx_dir
from customlayers.datasets.validation import MNISTArrays, validate_mnist

__all__ = ["load_mnist_npz", "load_path"]


def load_mnist_npz(path: PathLike) -> MNISTArrays:
    """Load a Keras-style ``mnist.npz`` (keys x_train, y_train, x_test, y_test).

    The file is opened with ``allow_pickle=False``.

    Args:
        path: the ``.npz`` file.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``, validated.

    Raises:
        FileNotFoundError: the file does not exist.
        DataIntegrityError: the file is unreadable, lacks a key or holds wrong data.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise DataIntegrityError(
                    f"{path}: missing arrays {missing}; expected keys {list(keys)}, "
                    f"found {npz.files}"
                )
            arrays = {k: npz[k] for k in keys}
    except DataIntegrityError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, zlib.error) as e:
        raise DataIntegrityError(
            f"{path}: not a readable .npz file ({type(e).__name__}: {e})"
        ) from None
    return validate_mnist(
        ((arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"]))
    )


def load_path(path: PathLike) -> MNISTArrays:
    """The ``path=`` source: a Keras ``mnist.npz`` or a directory of IDX files.

    Args:
        path: what the user named (``~`` is expanded).

    Returns:
        ``((x_train, y_train), (x_test, y_test))``, validated.

    Raises:
        FileNotFoundError: nothing is at ``path``, or a directory lacks IDX files.
        DataIntegrityError: a file that is not an npz (zip), or wrong data.
        OSError: the file cannot be read (permissions, ...).
    """
    p = pathlib.Path(path).expanduser()
    if p.is_dir():
        return load_mnist_idx_dir(p)
    if p.is_file():
        with open(p, "rb") as f:
            head = f.read(4)
        if head[:2] == b"PK":
            return load_mnist_npz(p)
        raise DataIntegrityError(
            f"{p}: not a .npz (zip) file (it starts with {head!r}); "
            "expected mnist.npz or a directory of IDX files"
        )
    raise FileNotFoundError(
        f"{p}: no such file or directory; expected mnist.npz or a directory of IDX files"
    )
