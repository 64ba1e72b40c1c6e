"""The kernel that ``customlayers.ReLU`` runs computes the formula it states.

For speed, plain ``max(x, 0)`` runs on the backend's fused relu kernels where
there are some: TensorFlow ``Relu`` with its ``ReluGrad`` gradient, ATen's
``relu`` with ``threshold_backward`` (``customlayers/backend/``,
``relu_kernel``; the numbers are in ``benchmarks/RESULTS.md``). The built-in
Keras ReLU runs the same kernels, so the layer-vs-built-in properties cannot
tell whether they compute the rule the layer is written to: this test can. It
compares ``relu_kernel``'s values and its gradient (through the backend's own
autodiff) with the elementary formula ``relu_forward_elementary`` /
``relu_backward_elementary`` on drawn arrays holding both zeros, the kink's
neighbours, subnormals, huge values and non-finite values, in every mode the
backend has (eager; graph, ``tf.function``; compiled, XLA, ``jax.jit`` or
``torch.compile``), the elementary formula run in the same mode. On JAX the
kernel *is* the
elementary formula with a hand-written gradient, jitted, and the test checks
that wiring. The allowances (TensorFlow's ``g * mask`` gradient, its
thread-dependent flush-to-zero, CUDA's sign of zero) are written where they
apply below; everything else is compared bit for bit.
"""

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from customlayers import backend
from customlayers._keras import BACKEND, ops
from customlayers.testing.convert import input_tensor, to_numpy
from customlayers.testing import strategies as cst
from customlayers.testing.backends import MODES, torch_on_cuda
from customlayers.testing.numerics import compare_arrays
from tests.params import dtype_param, mode_param

DTYPES = ("float16", "bfloat16", "float32", "float64")
TF = BACKEND == "tensorflow"


def _in_mode(run, mode):
    """``run(*tensors)`` as a function of NumPy arrays in ``mode`` (eager;
    graph, ``tf.function``; compiled, XLA or ``jax.jit``; traced once per
    input signature), its outputs as NumPy."""
    if BACKEND == "tensorflow":
        import tensorflow as tf
        if mode != "eager":
            run = tf.function(run, jit_compile=mode == "compiled")
        convert = _tf_tensor
    elif BACKEND == "jax":
        import jax
        import jax.numpy as jnp
        if mode == "compiled":
            run = jax.jit(run)
        convert = jnp.asarray
    else:
        if mode == "compiled":  # torch.compile (customlayers.testing.
            # torch_compile: its own code object, never eagerly)
            from customlayers.testing.torch_compile import compile_once
            run = compile_once(run, "kernel_and_formula")
        convert = ops.convert_to_tensor
    return lambda *arrays: [to_numpy(t) for t in run(*map(convert, arrays))]


def _tf_tensor(a):
    import tensorflow as tf
    t = input_tensor(a)
    return t if isinstance(t, tf.Tensor) else tf.constant(t)


def _kernel(x, g):
    """``relu_kernel(x)`` and the gradient of ``sum(relu_kernel(x) * g)``
    by the backend's own autodiff (looked up at call time, so a meta-test
    can plant another kernel)."""
    kernel = backend.relu_kernel
    if BACKEND == "jax":
        import jax
        y, vjp = jax.vjp(kernel, x)
        return y, vjp(g)[0]
    if BACKEND == "torch":
        import torch
        if torch.compiler.is_compiling():  # torch.compile traces torch.func
            y, vjp = torch.func.vjp(kernel, x)
            return y, vjp(g)[0]
        with torch.enable_grad():  # also in a compiled function's
            # eager warm-up, which runs under no_grad
            x = x.detach().requires_grad_(True)
            y = kernel(x)
            return y, torch.autograd.grad(y, x, grad_outputs=g)[0]
    import tensorflow as tf
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = kernel(x)
    return y, tape.gradient(y, x, output_gradients=g)


def _elementary(x, g):
    """The elementary formula (run in the same mode as the kernel: XLA, for
    one, has its own lowering of max and select, so eager is not the
    reference for compiled mode)."""
    y = backend.relu_forward_elementary(x)
    return y, backend.relu_backward_elementary(x, y, g)


def _kernel_and_formula(x1, g1, x2, g2):
    """The kernel on ``(x1, g1)`` and the formula on ``(x2, g2)``: one
    program in graph and compiled mode (one trace and one XLA compile per
    shape instead of two; issue 14). The same arrays come in twice, as
    separate parameters, so XLA cannot fold one side into the other."""
    return (*_kernel(x1, g1), *_elementary(x2, g2))


#: Drawn inputs per drawn shape: each runs through the one program traced
#: (and compiled) for that shape (issue 14): the profile's examples divided
#: by this, so the inputs checked stay what they were (``ci``: 100) at a
#: third of the compiles.
VALUE_SETS = 3


@pytest.mark.parametrize("mode", [mode_param(m) for m in MODES])
@pytest.mark.parametrize("dtype", [dtype_param(d, "float64 kernel check")
                                   for d in DTYPES])
@settings(max_examples=max(1, -(-settings().max_examples // VALUE_SETS)))
@given(data=st.data())
def test_relu_kernel_computes_the_elementary_formula(dtype, mode, data):
    shape = cst.draw_shape(data, min_rank=1, max_rank=3, max_dim=64)
    note(f"backend {BACKEND}, mode {mode}, dtype {dtype}, "
         f"shape {shape}")
    program = _in_mode(_kernel_and_formula, mode)
    for k in range(VALUE_SETS):  # one program, VALUE_SETS drawn inputs
        x = cst.draw_array(data, shape, dtype, kinks=(0.0,), nonfinite=True,
                           label=f"input {k}", must_include=(0.0, -0.0))
        # TensorFlow's ReluGrad *multiplies* g by the mask, so a NaN or
        # infinite upstream gradient where x <= 0 gives NaN there, where the
        # select gives 0; upstream gradients are finite on TensorFlow (a
        # loss's gradient normally is). ATen's threshold_backward is a
        # select and sees non-finite g too.
        g = cst.draw_array(data, shape, dtype, nonfinite=not TF,
                           label=f"upstream gradient {k}",
                           must_include=(-1.0, 1.0))
        y, dx, y_ref, dx_ref = program(x, g, x, g)
        _compare_kernel(y, dx, y_ref, dx_ref, k)


def _compare_kernel(y, dx, y_ref, dx_ref, k):
    # TensorFlow runs CPU kernels with flush-to-zero on some threads and not
    # others (seen here: Maximum flushed a subnormal input that Relu kept,
    # in one process), so on TensorFlow subnormals compare as zero; the ReLU
    # layer case declares the same (customlayers/testing/cases.py).
    # ATen's CUDA relu maps -0.0 to +0.0, where its CPU relu (and the
    # elementary formula) keep -0.0: found by this test on an H200,
    # torch 2.11. The layer runs torch.relu, as the built-in does, so the
    # two agree on either device; here the sign of zero is not counted on
    # CUDA.
    out = compare_arrays(f"relu_kernel value vs elementary formula (value "
                         f"set {k})", y, y_ref, tolerance=None,
                         flush_subnormals=TF,
                         signed_zeros=not torch_on_cuda())
    assert out.passed, out.describe()
    # ReluGrad's two quirks: it computes g * mask, so a masked-out g < 0
    # gives -0.0 where the select gives +0.0 (measured: float16, bfloat16
    # and, on TF 2.21's CPU kernels, float32 and float64 too), and a
    # subnormal g is flushed or not depending on the thread that ran it
    # (the ReLU layer case declares that one, customlayers/testing/cases.py).
    # Both are about zeros only; every other value is compared bit for bit.
    grad = compare_arrays(
        f"relu_kernel gradient vs elementary select (value set {k})", dx,
        dx_ref, tolerance=None, signed_zeros=not TF, flush_subnormals=TF)
    assert grad.passed, grad.describe()


_TORCH_ONLY = pytest.mark.skipif(
    BACKEND != "torch",
    reason=f"ATen's clamps (relu6, clip) back customlayers.ReLU on torch "
           f"only; this run's backend is {BACKEND}")


def _aten_clamp_and_formula(which):
    """(kernel forward, elementary forward) of relu6 or clip on torch."""
    from customlayers.backend import torch as tb
    if which == "relu6":
        return tb._aten_relu6, tb.relu6_forward_elementary
    lo, hi = 0.0, 2.5

    def aten(x):
        return tb._aten_clip(x, ops.cast(lo, x.dtype), ops.cast(hi, x.dtype))

    def formula(x):
        return tb.clip_forward_elementary(x, ops.cast(lo, x.dtype),
                                          ops.cast(hi, x.dtype))
    return aten, formula


@_TORCH_ONLY
@pytest.mark.parametrize("which", ["relu6", "clip"])
@pytest.mark.parametrize("dtype", [dtype_param(d, "float64 ATen clamp check")
                                   for d in DTYPES])
@given(data=st.data())
def test_aten_clamps_compute_the_elementary_formula(which, dtype, data):
    """On torch, relu6's and clip's *values* come from the ATen clamps the
    built-in calls (so CUDA's sign of zero is the built-in's); their
    gradients are hand-written selects, which the layer properties check.
    Here the clamps are checked against the elementary where-formula: bit
    for bit on CPU; on CUDA the sign of zero is not compared, since ATen's
    CUDA clamp maps -0.0 to +0.0 (found on an H200, torch 2.11)."""
    shape = cst.draw_shape(data, min_rank=1, max_rank=3, max_dim=64)
    kinks = (0.0, 6.0) if which == "relu6" else (0.0, 2.5)
    x = cst.draw_array(data, shape, dtype, kinks=kinks, nonfinite=True,
                       label="input", must_include=(0.0, -0.0))
    note(f"{which}, dtype {dtype}, shape {shape}")
    aten, formula = _aten_clamp_and_formula(which)
    xt = ops.convert_to_tensor(x)
    out = compare_arrays(f"ATen {which} vs elementary formula",
                         to_numpy(aten(xt)), to_numpy(formula(xt)),
                         tolerance=None, signed_zeros=not torch_on_cuda())
    assert out.passed, out.describe()
