"""Meta-tests: tests/property/test_kernels.py catches a wrong fused kernel.

The layer-vs-built-in properties cannot see a wrong ``relu_kernel`` when the
built-in runs the same kernel, so the kernel check is the only guard there.
Each planted kernel below replaces ``customlayers.backend.relu_kernel`` and must make that
check fail (run with ``-rP`` to see the minimal counterexample).
"""

import pytest

try:  # Python >= 3.11; on 3.10 the backport Hypothesis itself depends on
    ExceptionGroup
except NameError:  # pragma: no cover
    from exceptiongroup import ExceptionGroup

from customlayers import backend
from customlayers._keras import ops
from tests.property import test_kernels


def _tutorial_kernel(x):
    """The tutorial's ``maximum(x, 0)`` with the backend's own gradient:
    at x == 0 it passes g (TensorFlow) or g / 2 (JAX, torch), not 0."""
    return ops.maximum(x, ops.zeros_like(x))


def _nan_swallowing_kernel(x):
    """``x if x > 0 else 0``: NaN becomes 0 and -0.0 becomes +0.0."""
    return ops.where(ops.greater(x, ops.zeros_like(x)), x, ops.zeros_like(x))


@pytest.mark.parametrize("kernel", [_tutorial_kernel, _nan_swallowing_kernel],
                         ids=lambda k: k.__name__.strip("_"))
def test_kernel_check_catches_a_wrong_kernel(kernel, monkeypatch):
    monkeypatch.setattr(backend, "relu_kernel", kernel)
    # Hypothesis raises an ExceptionGroup when it finds several distinct
    # failures; each of them must be the check's own assertion, not a crash.
    with pytest.raises((AssertionError, ExceptionGroup)) as caught:
        test_kernels.test_relu_kernel_computes_the_elementary_formula(
            dtype="float32", mode="eager")
    if isinstance(caught.value, ExceptionGroup):
        _, other = caught.value.split(AssertionError)
        assert other is None, f"the planted kernel crashed the check: {other!r}"
    print(f"planted {kernel.__name__} caught:\n{caught.value}")


def _nan_swallowing_clamp(x, *bounds):
    """A clamp written as ``x if x > 0 else 0``, then capped: NaN becomes 0
    and -0.0 becomes +0.0."""
    hi = bounds[1] if bounds else ops.cast(6.0, x.dtype)
    y = ops.where(ops.greater(x, ops.zeros_like(x)), x, ops.zeros_like(x))
    return ops.where(ops.greater(y, hi), ops.broadcast_to(hi, ops.shape(y)), y)


@pytest.mark.skipif(test_kernels.BACKEND != "torch",
                    reason="the ATen clamp check runs on torch only; this "
                           f"run's backend is {test_kernels.BACKEND}")
@pytest.mark.parametrize("which", ["relu6", "clip"])
def test_aten_clamp_check_catches_a_wrong_clamp(which, monkeypatch):
    from customlayers.backend import torch as tb
    name = "_aten_relu6" if which == "relu6" else "_aten_clip"
    monkeypatch.setattr(tb, name, _nan_swallowing_clamp)
    with pytest.raises((AssertionError, ExceptionGroup)) as caught:
        test_kernels.test_aten_clamps_compute_the_elementary_formula(
            which=which, dtype="float32")
    if isinstance(caught.value, ExceptionGroup):
        _, other = caught.value.split(AssertionError)
        assert other is None, f"the planted clamp crashed the check: {other!r}"
    print(f"planted clamp for {which} caught:\n{caught.value}")
