"""Role: the project's cache folder and the MNIST cache in it: ``mnist.npz``
plus a ``mnist.json`` manifest holding its sha256, written atomically (temp
file in the same folder, fsync, ``os.replace``).

The folder is ``cache_dir=`` if given, else ``$CUSTOMLAYERS_CACHE``, else the
platform's user cache folder from ``platformdirs`` (on Linux
``$XDG_CACHE_HOME/customlayers``, by default ``~/.cache/customlayers``).
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import tempfile
import time
from typing import Callable, Optional

import numpy as np

from customlayers.datasets._io import PathLike, sha256_file
from customlayers.datasets.errors import DataIntegrityError
from customlayers.datasets.npz import load_mnist_npz
from customlayers.datasets.validation import MNISTArrays

__all__ = [
    "CACHE_FILE_NAME", "CACHE_MANIFEST_NAME", "mnist_cache_dir", "mnist_cache_path",
    "load_cache", "write_cache", "atomic_write",
]

APP_NAME = "customlayers"
CACHE_FILE_NAME = "mnist.npz"
CACHE_MANIFEST_NAME = "mnist.json"
CACHE_FORMAT = 1


def mnist_cache_dir(cache_dir: Optional[PathLike] = None) -> pathlib.Path:
    """The cache folder: ``cache_dir``, else ``$CUSTOMLAYERS_CACHE``, else the
    user cache folder (``platformdirs.user_cache_dir("customlayers")``: on Linux
    ``$XDG_CACHE_HOME/customlayers`` or ``~/.cache/customlayers``).

    Args:
        cache_dir: explicit folder, or ``None`` for the default.
    """
    if cache_dir is not None:
        return pathlib.Path(cache_dir).expanduser()
    env = os.environ.get("CUSTOMLAYERS_CACHE")
    if env:
        return pathlib.Path(env).expanduser()
    import platformdirs

    return pathlib.Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def mnist_cache_path(cache_dir: Optional[PathLike] = None) -> pathlib.Path:
    """Path of the cached ``mnist.npz`` (it may not exist yet).

    Args:
        cache_dir: cache folder, or ``None`` for the default (see :func:`mnist_cache_dir`).
    """
    return mnist_cache_dir(cache_dir) / CACHE_FILE_NAME


def manifest_path(cache_file: pathlib.Path) -> pathlib.Path:
    return cache_file.with_name(CACHE_MANIFEST_NAME)


def load_cache(cache_file: pathlib.Path) -> MNISTArrays:
    manifest_file = manifest_path(cache_file)
    if not cache_file.is_file():
        raise FileNotFoundError(f"{cache_file}: no cache yet")
    try:
        manifest = json.loads(manifest_file.read_text())
        expected = manifest["sha256"]
        if manifest.get("format") != CACHE_FORMAT or not isinstance(expected, str):
            raise ValueError(f"unsupported manifest {manifest!r}")
    except FileNotFoundError:
        raise DataIntegrityError(f"{manifest_file}: manifest missing") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataIntegrityError(f"{manifest_file}: unreadable manifest ({e})") from None
    found = sha256_file(cache_file)
    if found != expected:
        raise DataIntegrityError(
            f"{cache_file}: sha256 {found} differs from {expected} in {manifest_file.name}"
        )
    return load_mnist_npz(cache_file)


def _fsync_dir(directory: pathlib.Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(target: pathlib.Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write ``target`` via a temp file in the same directory, fsync and ``os.replace``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)  # mkstemp makes 0600; the cache is ordinary data
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(target.parent)


def _remove_stale_temp_files(directory: pathlib.Path, max_age_s: float = 3600.0) -> None:
    # A process killed mid-write (SIGKILL, power loss) leaves a temp file but never a
    # partial final file; sweep old ones so they do not pile up.
    now = time.time()
    for pattern in (f".{CACHE_FILE_NAME}.*.tmp", f".{CACHE_MANIFEST_NAME}.*.tmp"):
        for p in directory.glob(pattern):
            try:
                if now - p.stat().st_mtime > max_age_s:
                    p.unlink()
            except OSError:
                pass


def write_cache(cache_file: pathlib.Path, data: MNISTArrays, source: str) -> None:
    (x_train, y_train), (x_test, y_test) = data
    if cache_file.parent.is_dir():
        _remove_stale_temp_files(cache_file.parent)
    # Remove the manifest first: a crash between the two replaces then leaves a cache
    # that is detected as incomplete, never a manifest that vouches for the wrong file.
    try:
        manifest_path(cache_file).unlink()
    except FileNotFoundError:
        pass
    atomic_write(
        cache_file,
        lambda f: np.savez(f, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test),
    )
    manifest = {
        "format": CACHE_FORMAT,
        "file": cache_file.name,
        "sha256": sha256_file(cache_file),
        "source": source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write(
        manifest_path(cache_file),
        lambda f: f.write((json.dumps(manifest, indent=2) + "\n").encode()),
    )
