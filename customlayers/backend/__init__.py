"""The activation kernels of the running Keras backend, chosen once.

Role: pick the one backend module that matches Keras's backend
(:mod:`.tensorflow`, :mod:`.jax` or :mod:`.torch`, in the spirit of Keras's
``keras/src/backend/<backend>/``), import only it, and re-export its kernels;
refuse any other backend with :class:`UnsupportedBackendError` at import of
``customlayers`` (Keras 3 also has ``numpy`` and ``openvino`` backends,
which have no autodiff, and customlayers has no kernels for them).

Kernels (each ``f(x, ...)`` on a backend tensor, with the built-in's values
*and* gradients; the declared exceptions are in
customlayers/testing/cases.py):

- ``relu_kernel``: plain ``max(x, 0)``, on the backend's own fused relu
  kernels where there are some (TensorFlow, torch), with its elementary
  formula beside it as ``relu_forward_elementary`` /
  ``relu_backward_elementary``; tests/property/test_kernels.py checks the
  two agree.
- ``relu6_kernel``, ``leaky_relu_kernel``, ``clip_kernel``,
  ``threshold_kernel``: elementary operations (maximum, minimum, where,
  comparisons, multiply, cast) with hand-written gradients where the
  backend's own kernel has one.

Callers look the kernels up on this module at call time
(``backend.relu_kernel(x)``), so a test can plant another one.
"""

from __future__ import annotations

import importlib

from customlayers._keras import BACKEND
from customlayers.backend.common import SUPPORTED_BACKENDS


class UnsupportedBackendError(ImportError):
    """Keras runs a backend customlayers has no kernels for."""


if BACKEND not in SUPPORTED_BACKENDS:
    raise UnsupportedBackendError(
        f"customlayers does not support the Keras backend {BACKEND!r} "
        "(chosen by KERAS_BACKEND or keras.json); supported backends: "
        f"{', '.join(SUPPORTED_BACKENDS)}. Set KERAS_BACKEND to one of them.")

_module = importlib.import_module(f"customlayers.backend.{BACKEND}")

relu_kernel = _module.relu_kernel
relu6_kernel = _module.relu6_kernel
leaky_relu_kernel = _module.leaky_relu_kernel
clip_kernel = _module.clip_kernel
threshold_kernel = _module.threshold_kernel
relu_forward_elementary = _module.relu_forward_elementary
relu_backward_elementary = _module.relu_backward_elementary

__all__ = ["BACKEND", "SUPPORTED_BACKENDS", "UnsupportedBackendError",
           "clip_kernel", "leaky_relu_kernel", "relu6_kernel", "relu_kernel",
           "relu_backward_elementary", "relu_forward_elementary",
           "threshold_kernel"]
