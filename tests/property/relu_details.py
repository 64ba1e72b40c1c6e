"""Shared by the ReLU detail tests (test_relu_gradient_details.py,
test_relu_forward_details.py, issue 12): the layer under test, the
configurations and parameters, the pair of layers, backend tensors, the
bit-for-bit comparison and the second-order VJP on each backend's autodiff.

Every comparison is bit for bit (NaN positions included) unless a written
allowance says otherwise. The layer under test is looked up at call time
(``CUSTOM_RELU`` here, read by :func:`pair` and by the tests as
``relu_details.CUSTOM_RELU``), so tests/meta_tests/test_relu_detail_bugs.py
can plant a broken one and show that each detail test fails for it. Draws
are labelled and the NumPy seeds are drawn (and printed on failure), so a
failure replays; under the ``ci`` profile the examples are derandomized.
"""

from __future__ import annotations

import numpy as np

import customlayers
from customlayers._keras import BACKEND, keras
from customlayers.testing.backends import MODES
from customlayers.testing.convert import input_tensor, to_numpy
from customlayers.testing.numerics import compare_arrays
from tests.params import dtype_param, mode_param

#: The layer under test (a meta-test replaces it with a planted bug).
CUSTOM_RELU = customlayers.ReLU

TF = BACKEND == "tensorflow"
FLOATS = ("float16", "bfloat16", "float32", "float64")

#: One configuration per path of ``keras.layers.ReLU.static_call``.
CONFIGS = (
    {},                                             # relu
    {"max_value": 6},                               # relu6 fast path
    {"max_value": 3.0},                             # relu + clip
    {"negative_slope": 0.5},                        # pure leaky
    {"threshold": 1.0},                             # threshold
    {"negative_slope": 0.5, "threshold": 1.0},
    {"negative_slope": 0.5, "max_value": 6},
    {"negative_slope": 0.5, "max_value": 3.0},
    {"max_value": 3.0, "threshold": 1.0},
)


def cfg_id(cfg):
    return ",".join(f"{k}={v}" for k, v in cfg.items()) or "default"


MODE_PARAMS = [mode_param(m) for m in MODES]
DTYPE_PARAMS = [dtype_param(d, "float64") for d in FLOATS]


def pair(cfg, dtype):
    """The layer under test and the built-in, both computing in ``dtype``."""
    return (CUSTOM_RELU(**cfg, dtype=dtype),
            keras.layers.ReLU(**cfg, dtype=dtype))


def tensor(a):
    if TF:
        import tensorflow as tf
        t = input_tensor(a)
        return t if isinstance(t, tf.Tensor) else tf.constant(t)
    if BACKEND == "torch":
        import torch
        # On the device Keras computes on (CUDA where there is one), or the
        # upstream gradient lands on another device than the output.
        device = "cuda" if torch.cuda.is_available() else "cpu"
        if a.dtype.name == "bfloat16":
            return torch.tensor(a.astype(np.float32)).to(device, torch.bfloat16)
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)
    import jax.numpy as jnp
    return jnp.asarray(a)


def np_or_none(t):
    return None if t is None else to_numpy(t)


def compare(check, custom, builtin, *, flush_subnormals=False,
             signed_zeros=True):
    """Both ``None`` (no gradient path), or bit for bit, signs of zero
    (unless an allowance says otherwise) and NaN positions included."""
    if isinstance(custom, str) or isinstance(builtin, str):
        # An exception, described: both sides must fail the same way.
        assert custom == builtin, (f"{check}: custom {custom!r}, "
                                   f"built-in {builtin!r}")
        return
    if custom is None or builtin is None:
        assert custom is None and builtin is None, (
            f"{check}: custom gives {'None' if custom is None else 'values'}"
            f", built-in gives {'None' if builtin is None else 'values'}:\n"
            f"custom={custom}\nbuilt-in={builtin}")
        return
    out = compare_arrays(check, custom, builtin, tolerance=None,
                         signed_zeros=signed_zeros,
                         flush_subnormals=flush_subnormals)
    assert out.passed, out.describe()


def tf_flushes(mode):
    # TensorFlow runs its CPU kernels with flush-to-zero on some threads and
    # not others (customlayers/testing/cases.py, _RELU_SUBNORMAL_GRADIENTS):
    # in eager and graph mode subnormals compare as zero. XLA is strict.
    return TF and mode != "compiled"


def _second_order_fn(layer):
    """``(x, g, v) -> (dx, hx, hg)`` on backend tensors (TensorFlow, JAX,
    torch's compiled mode): ``dx = vjp(layer, x)(g)`` and the VJP of ``dx``
    with ``v`` with respect to ``x`` and ``g``; ``None`` where the autodiff
    finds no path (TensorFlow; JAX and ``torch.func`` give zeros)."""
    if TF:
        import tensorflow as tf

        def run(x, g, v):
            with tf.GradientTape(persistent=True) as outer:
                outer.watch([x, g])
                with tf.GradientTape() as inner:
                    inner.watch(x)
                    y = layer(x)
                dx = inner.gradient(y, x, output_gradients=g)
            hx, hg = outer.gradient(dx, [x, g], output_gradients=v)
            return dx, hx, hg
        return run
    if BACKEND == "torch":  # torch.func: what torch.compile can trace
        import torch
        vjp_of = torch.func.vjp
    else:
        import jax
        vjp_of = jax.vjp

    def dx_of(x, g):
        _, vjp = vjp_of(lambda x: layer(x), x)
        return vjp(g)[0]

    def run(x, g, v):
        dx, vjp2 = vjp_of(dx_of, x, g)
        hx, hg = vjp2(v)
        return dx, hx, hg
    return run


#: Value sets drawn per drawn configuration and shape in the drawn detail
#: tests: each set runs through the one program traced (and compiled) for
#: that configuration and shape (issue 14), so a test's examples x value
#: sets keep the values it checked before at a third of the compiles.
VALUE_SETS = 3


def _numpy(out):
    if isinstance(out, (tuple, list)):
        return type(out)(_numpy(o) for o in out)
    return np_or_none(out)


def together(fns, mode):
    """One program running the independent computations ``fns`` (each
    taking backend tensors) in ``mode``: ``program(args_1, ..., args_n)``
    with one tuple of NumPy arrays per function returns each function's
    outputs as NumPy (``None`` stays ``None``). In graph and compiled mode
    it is one ``tf.function`` (one trace, one XLA compile per input
    signature) or one ``jax.jit``, instead of one per computation (issue
    14); calling it again with arrays of the same shapes reuses it. Every
    computation gets parameters of its own (an array used by two is passed
    twice), so no computation can share a node with another (XLA's
    common-subexpression elimination cannot fold the custom layer's ops
    into the built-in's); element-wise results do not depend on what else a
    program holds. Eager mode runs them one after another; torch's compiled
    mode is one ``torch.compile`` program (customlayers.testing.
    torch_compile: its own code object, compiled once per input shapes,
    never eagerly)."""
    if mode == "eager":
        def eager(*arg_tuples):
            return [_numpy(fn(*[tensor(a) for a in args]))
                    for fn, args in zip(fns, arg_tuples)]
        return eager

    def program(*flat, sizes):
        outs, i = [], 0
        for fn, n in zip(fns, sizes):
            outs.append(fn(*flat[i:i + n]))
            i += n
        return outs

    traced = {}

    def run(*arg_tuples):
        sizes = tuple(len(args) for args in arg_tuples)
        if sizes not in traced:
            def bound(*flat):
                return program(*flat, sizes=sizes)
            if TF:
                import tensorflow as tf
                bound = tf.function(bound, jit_compile=mode == "compiled")
            elif BACKEND == "torch":
                from customlayers.testing.torch_compile import compile_once
                bound = compile_once(bound, "relu_details_program")
            elif mode == "compiled":
                import jax
                bound = jax.jit(bound)
            traced[sizes] = bound
        flat = [tensor(a) for args in arg_tuples for a in args]
        return [_numpy(o) for o in traced[sizes](*flat)]
    return run


def run_together(calls, mode):
    """``calls`` = ``[(fn, arrays), ...]`` run once as one program
    (:func:`together`)."""
    return together([fn for fn, _ in calls], mode)(
        *[tuple(arrays) for _, arrays in calls])


def second_order_calls(layer, x, g, v):
    """:func:`second_order` of ``layer`` as one call for
    :func:`run_together` (TensorFlow, JAX, torch's compiled mode)."""
    return (_second_order_fn(layer), (x, g, v))


def second_order(layer, x, g, v, mode):
    """``dx = vjp(layer, x)(g)`` and the VJP of ``dx`` with ``v``: with
    respect to ``x`` (a Hessian-vector product) and to ``g``. ``None`` where
    the backend's autodiff finds no path."""
    if TF or BACKEND == "jax" or mode == "compiled":
        return tuple(run_together([second_order_calls(layer, x, g, v)],
                                  mode)[0])
    import torch
    xt = tensor(x).requires_grad_(True)
    gt = tensor(g).requires_grad_(True)
    (dx,) = torch.autograd.grad(layer(xt), xt, grad_outputs=gt,
                                create_graph=True)
    if not dx.requires_grad:
        return np_or_none(dx), None, None
    hx, hg = torch.autograd.grad(dx, [xt, gt], grad_outputs=tensor(v),
                                 allow_unused=True)
    return np_or_none(dx), np_or_none(hx), np_or_none(hg)


def second_order_pair(custom, builtin, mode):
    """``f(x, g, v) -> (custom's, built-in's)`` :func:`second_order`, both
    layers traced (and compiled) as one program on TensorFlow and JAX,
    reused by later calls with arrays of the same shapes (torch: in
    compiled mode, through ``torch.func``)."""
    if TF or BACKEND == "jax" or mode == "compiled":
        program = together([_second_order_fn(custom),
                            _second_order_fn(builtin)], mode)

        def both(x, g, v):
            got, want = program((x, g, v), (x, g, v))
            return tuple(got), tuple(want)
        return both
    return lambda x, g, v: (second_order(custom, x, g, v, mode),
                            second_order(builtin, x, g, v, mode))
