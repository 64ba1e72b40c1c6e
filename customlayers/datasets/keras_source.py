"""Role: the Keras source, ``keras.datasets.mnist.load_data()``: reads Keras's
own cache (``$KERAS_HOME/datasets/mnist.npz``) or downloads from Keras's URL.

Keras's own output ("Downloading data from https://...", its progress bar) is
captured, so that an offline attempt fails in one line that the loader
reports (and then tries the next source) instead of a download banner that
goes nowhere. The socket default timeout is bounded while it runs
(:data:`KERAS_SOCKET_TIMEOUT_S`), so that a silent network cannot hang it.
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import socket
from typing import Tuple

from customlayers.datasets._io import env_flag
from customlayers.datasets.validation import MNISTArrays

__all__ = ["KERAS_SOCKET_TIMEOUT_S", "keras_cache_file", "fetch"]

#: Socket default timeout (seconds) set while the keras source runs, when no
#: default timeout is set already. Bounds each connect/read, not the whole download.
KERAS_SOCKET_TIMEOUT_S = 20.0

LOCATION = "keras.datasets.mnist.load_data()"


def keras_cache_file() -> pathlib.Path:
    """Where Keras keeps its downloaded ``mnist.npz`` (it may not exist)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return pathlib.Path(home) / "datasets" / "mnist.npz"


def fetch() -> Tuple[MNISTArrays, str]:
    """Load MNIST through Keras, its output captured.

    Returns:
        ``(data, location)``; ``data`` is not validated here.

    Raises:
        RuntimeError: ``CUSTOMLAYERS_OFFLINE=1`` and Keras's cache has no file,
            or Keras failed (the reason, and the last line Keras printed).
    """
    cached = keras_cache_file()
    if env_flag("CUSTOMLAYERS_OFFLINE") and not cached.is_file():
        raise RuntimeError(
            f"skipped: CUSTOMLAYERS_OFFLINE=1 and Keras's cache has no {cached}"
        )
    import keras  # lazy: importing keras imports a backend, which takes seconds

    old = socket.getdefaulttimeout()
    if old is None:
        socket.setdefaulttimeout(KERAS_SOCKET_TIMEOUT_S)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            data = keras.datasets.mnist.load_data()
    except Exception as e:
        where = "its cache" if cached.is_file() else "the internet (not in its cache)"
        raise RuntimeError(
            f"{LOCATION} could not load MNIST from {where}: {type(e).__name__}: {e}"
        ) from None
    finally:
        if old is None:
            socket.setdefaulttimeout(None)
    return data, LOCATION
