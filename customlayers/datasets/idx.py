"""Role: the IDX parser (the format of the original MNIST files) and the
loader of a directory of the four MNIST IDX files."""

from __future__ import annotations

import os
import pathlib
from typing import Optional, Tuple, Union

import numpy as np

from customlayers.datasets._io import PathLike, gunzip
from customlayers.datasets.errors import DataIntegrityError
from customlayers.datasets.validation import MNISTArrays, validate_mnist

__all__ = ["IDX_FILE_NAMES", "read_idx", "load_mnist_idx_dir"]

IDX_FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# Decompressed size we accept, as a guard against gzip bombs.
_MAX_IDX_BYTES = 200 * 1024 * 1024

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
        raw = gunzip(raw, _MAX_IDX_BYTES, name)
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


