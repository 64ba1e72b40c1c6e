"""customlayers.datasets parsers and the ``path=`` source: IDX files, a
directory of them, ``mnist.npz``; on synthetic MNIST-shaped data."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from customlayers import datasets as ds
from tests.integration.mnist_helpers import assert_same, save_npz, write_idx, write_idx_dir


# --------------------------------------------------------------------------
# path sources
# --------------------------------------------------------------------------


def test_npz_path_source(synthetic_mnist, tmp_path, no_network_sources):
    npz = tmp_path / "mine.npz"
    (x, y), (xt, yt) = synthetic_mnist
    np.savez_compressed(npz, x_train=x, y_train=y, x_test=xt, y_test=yt)
    cache_dir = tmp_path / "cache"
    data, info = ds.load_mnist_with_info(path=npz, cache_dir=cache_dir)
    assert info.source == "path" and info.location == str(npz)
    assert_same(data, synthetic_mnist)
    assert no_network_sources == []
    assert not ds.mnist_cache_path(cache_dir).exists()  # load_mnist caches only slow sources


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_idx_dir_source(synthetic_mnist, tmp_path, no_network_sources, gz):
    directory = write_idx_dir(tmp_path / "idx", synthetic_mnist, gz)
    suffix = ".gz" if gz else ""
    assert (directory / ("train-images-idx3-ubyte" + suffix)).is_file()
    data, info = ds.load_mnist_with_info(path=directory, cache_dir=tmp_path / "cache")
    assert info.source == "path"
    assert_same(data, synthetic_mnist)
    assert no_network_sources == []


def test_idx_dir_truncated_file_is_a_clear_error(synthetic_mnist, tmp_path):
    directory = write_idx_dir(tmp_path / "idx", synthetic_mnist, gz=False)
    f = directory / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(ds.DataIntegrityError, match=r"truncated IDX.*need 7840000 data bytes, found 7839900"):
        ds.load_mnist_idx_dir(directory)


def test_idx_dir_swapped_files_rejected(synthetic_mnist, tmp_path):
    directory = write_idx_dir(tmp_path / "idx", synthetic_mnist, gz=False)
    a, b = directory / "t10k-images-idx3-ubyte", directory / "t10k-labels-idx1-ubyte"
    ra, rb = a.read_bytes(), b.read_bytes()
    a.write_bytes(rb)
    b.write_bytes(ra)
    with pytest.raises(ds.DataIntegrityError, match="expected 2051"):
        ds.load_mnist_idx_dir(directory)


def test_idx_dir_missing_files_named(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte.*t10k-images-idx3-ubyte"):
        ds.load_mnist_idx_dir(tmp_path)


@pytest.mark.parametrize(
    "dtype,code", [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C),
                   (np.float32, 0x0D), (np.float64, 0x0E)]
)
def test_read_idx_round_trip(tmp_path, dtype, code):
    arr = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    write_idx(tmp_path / "f", arr, code=code)
    out = ds.read_idx(tmp_path / "f")
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert np.array_equal(out, arr)
    write_idx(tmp_path / "g", arr, gz=True, code=code)
    assert np.array_equal(ds.read_idx(tmp_path / "g.gz"), arr)


@pytest.mark.parametrize(
    "raw,match",
    [
        (b"\x00\x00", "truncated IDX file: 2 bytes"),
        (b"\x01\x00\x08\x01" + (3).to_bytes(4, "big") + b"abc", "does not start with 0000"),
        (b"\x00\x00\x07\x01" + (3).to_bytes(4, "big") + b"abc", "unknown IDX type code 0x07"),
        (b"\x00\x00\x08\x02" + (3).to_bytes(4, "big"), "header needs 12"),
        (b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"ab", "need 3 data bytes, found 2"),
        (b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"abcd", "1 unexpected trailing bytes"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (gzip.compress(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"abc", mtime=0)[:-6],
         "gzip"),
    ],
    # Explicit ids: an id made from the bytes would hold gzip's timestamp, and
    # pytest-xdist needs every worker to collect the same ids.
    ids=["short", "bad-magic", "bad-type", "short-header", "truncated", "trailing",
         "zero-dims", "bad-gzip"],
)
def test_read_idx_rejects_bad_files(raw, match):
    with pytest.raises(ds.DataIntegrityError, match=match):
        ds.read_idx(raw, name="bad")


def test_read_idx_accepts_valid_bytes():
    assert ds.read_idx(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"abc").tolist() == [97, 98, 99]


@pytest.mark.parametrize(
    "change,match",
    [
        (dict(y_test=None), "missing arrays"),
        (dict(x_train="float"), "expected uint8"),
        (dict(x_test="short"), r"expected images of shape \(10000, 28, 28\)"),
        (dict(y_train="shuffled_counts"), "label counts"),
        (dict(y_test="ten"), "labels must lie in 0..9"),
    ],
)
def test_npz_with_wrong_content_rejected(synthetic_mnist, tmp_path, change, match):
    (x, y), (xt, yt) = synthetic_mnist
    key, how = next(iter(change.items()))
    arrays = dict(x_train=x, y_train=y, x_test=xt, y_test=yt)
    if how is None:
        del arrays[key]
    elif how == "float":
        arrays[key] = arrays[key].astype(np.float32)
    elif how == "short":
        arrays[key] = arrays[key][:-1]
    elif how == "shuffled_counts":
        bad = arrays[key].copy()
        bad[bad == 3] = 4
        arrays[key] = bad
    elif how == "ten":
        bad = arrays[key].copy()
        bad[0] = 10
        arrays[key] = bad
    np.savez(tmp_path / "m.npz", **arrays)
    with pytest.raises(ds.DataIntegrityError, match=match):
        ds.load_mnist_npz(tmp_path / "m.npz")


def test_npz_with_object_array_is_not_unpickled(synthetic_mnist, tmp_path):
    save_npz(tmp_path / "m.npz", synthetic_mnist, y_test=np.array([object()] * 3, dtype=object))
    with pytest.raises(ds.DataIntegrityError, match="not a readable .npz"):
        ds.load_mnist_npz(tmp_path / "m.npz")
