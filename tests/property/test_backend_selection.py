"""customlayers refuses a Keras backend it has no kernels for, by name.

Keras 3.15.1 also has ``numpy`` and ``openvino`` backends. Before the
backend package existed, ``import customlayers`` under them silently imported
the TensorFlow kernels. Now the import fails with a message naming the
backend and the supported ones. Run in a subprocess: the backend is fixed
once per process.
"""

import os
import subprocess
import sys

import pytest

from customlayers._keras import KERAS_MAJOR
from customlayers.backend import SUPPORTED_BACKENDS

keras3_only = pytest.mark.skipif(
    KERAS_MAJOR < 3, reason="Keras 2 has only the TensorFlow backend (no "
    "KERAS_BACKEND choice, no numpy backend); customlayers sets BACKEND to "
    "'tensorflow' there without asking Keras")


def _import_customlayers_under(backend, pretend=None):
    """``import keras`` then ``import customlayers`` in a fresh process with
    ``KERAS_BACKEND=backend``; with ``pretend``, Keras's reported backend
    name is replaced by it before customlayers is imported."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (root, env.get("PYTHONPATH")) if p)
    code = (
        "import keras\n"
        f"assert keras.backend.backend() == {backend!r}, "
        "keras.backend.backend()\n"
        "print('KERAS_IMPORTED')\n"
        + (f"keras.backend.backend = lambda: {pretend!r}\n" if pretend
           else "")
        + "import customlayers\n")
    return subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=300)


def test_supported_backends_are_named():
    assert SUPPORTED_BACKENDS == ("tensorflow", "jax", "torch")


def _assert_refused_by_name(done, backend):
    print(done.stdout, done.stderr[-3000:])
    # Keras itself imported under that backend: the error must be
    # customlayers' own, raised by `import customlayers`.
    assert "KERAS_IMPORTED" in done.stdout, done.stderr[-3000:]
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "customlayers.backend.UnsupportedBackendError"), last
    assert repr(backend) in last, last
    for name in SUPPORTED_BACKENDS:
        assert name in last, last


@keras3_only
def test_numpy_backend_is_refused_at_import_with_its_name():
    """Keras's real numpy backend. It needs SciPy (keras/src/backend/numpy/
    linalg.py imports scipy.linalg), which a TensorFlow-only environment
    may lack; JAX pulls SciPy in, so the JAX environment runs this."""
    probe = subprocess.run(
        [sys.executable, "-c", "import scipy.linalg"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("Keras's numpy backend needs SciPy, not installed in "
                    "this environment; the next test checks the same "
                    "refusal with the backend name replaced")
    _assert_refused_by_name(_import_customlayers_under("numpy"), "numpy")


@keras3_only
@pytest.mark.parametrize("name", ["numpy", "openvino"])
def test_unsupported_backend_name_is_refused_at_import(name):
    """The same refusal in any environment: Keras runs its default backend
    but reports ``name`` (as it would under ``KERAS_BACKEND=name``)."""
    done = _import_customlayers_under(
        os.environ.get("KERAS_BACKEND", "tensorflow"), pretend=name)
    _assert_refused_by_name(done, name)


@pytest.mark.parametrize("name", SUPPORTED_BACKENDS)
def test_each_supported_backend_has_a_module_with_every_kernel(name):
    import importlib.util
    spec = importlib.util.find_spec(f"customlayers.backend.{name}")
    assert spec is not None, name
