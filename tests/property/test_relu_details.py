"""customlayers.ReLU vs keras.layers.ReLU where the generic properties do not
look (issue 12): second derivatives, integer and bool inputs, non-finite
upstream gradients, and the sign of zero in relu6's forward pass.

Every comparison is bit for bit (NaN positions included) unless a written
allowance says otherwise. The layer under test is looked up at call time
(``CUSTOM_RELU``), so tests/meta_tests/test_relu_detail_bugs.py can plant a
broken one and show that each test here fails for it. Draws are labelled
and the NumPy seeds are drawn (and printed on failure), so a failure
replays; under the ``ci`` profile the examples are derandomized.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

import customlayers
from customlayers._keras import BACKEND, keras
from customlayers.testing import strategies as cst
from customlayers.testing.backends import MODES, supported_modes
from customlayers.testing.convert import (float64_unavailable, input_tensor,
                                          to_numpy)
from customlayers.testing.numerics import compare_arrays

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


def _cfg_id(cfg):
    return ",".join(f"{k}={v}" for k, v in cfg.items()) or "default"


def _mode_param(mode):
    reason = supported_modes()[mode]
    marks = [pytest.mark.skip(reason=reason)] if reason else []
    return pytest.param(mode, marks=marks, id=mode)


def _dtype_param(dtype):
    reason = float64_unavailable(needs_matmul=False) \
        if dtype == "float64" else None
    marks = [pytest.mark.skip(reason=f"float64: {reason}")] if reason else []
    return pytest.param(dtype, marks=marks, id=dtype)


MODE_PARAMS = [_mode_param(m) for m in MODES]
DTYPE_PARAMS = [_dtype_param(d) for d in FLOATS]


def _pair(cfg, dtype):
    """The layer under test and the built-in, both computing in ``dtype``."""
    return (CUSTOM_RELU(**cfg, dtype=dtype),
            keras.layers.ReLU(**cfg, dtype=dtype))


def _tensor(a):
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


def _np(t):
    return None if t is None else to_numpy(t)


def _compare(check, custom, builtin, *, flush_subnormals=False,
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


def _tf_flushes(mode):
    # TensorFlow runs its CPU kernels with flush-to-zero on some threads and
    # not others (customlayers/testing/cases.py, _RELU_SUBNORMAL_GRADIENTS):
    # in eager and graph mode subnormals compare as zero. XLA is strict.
    return TF and mode != "compiled"


# -- 1. second derivatives -------------------------------------------------

def _second_order(layer, x, g, v, mode):
    """``dx = vjp(layer, x)(g)`` and the VJP of ``dx`` with ``v``: with
    respect to ``x`` (a Hessian-vector product) and to ``g``. ``None`` where
    the backend's autodiff finds no path."""
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

        if mode != "eager":
            run = tf.function(run, jit_compile=mode == "compiled")
        return tuple(_np(t) for t in run(_tensor(x), _tensor(g), _tensor(v)))
    if BACKEND == "jax":
        import jax

        def dx_of(x, g):
            _, vjp = jax.vjp(layer, x)
            return vjp(g)[0]

        def run(x, g, v):
            dx, vjp2 = jax.vjp(dx_of, x, g)
            hx, hg = vjp2(v)
            return dx, hx, hg

        if mode == "compiled":
            run = jax.jit(run)
        return tuple(_np(t) for t in run(_tensor(x), _tensor(g), _tensor(v)))
    import torch
    xt = _tensor(x).requires_grad_(True)
    gt = _tensor(g).requires_grad_(True)
    (dx,) = torch.autograd.grad(layer(xt), xt, grad_outputs=gt,
                                create_graph=True)
    if not dx.requires_grad:
        return _np(dx), None, None
    hx, hg = torch.autograd.grad(dx, [xt, gt], grad_outputs=_tensor(v),
                                 allow_unused=True)
    return _np(dx), _np(hx), _np(hg)


@pytest.mark.parametrize("mode", MODE_PARAMS)
@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
@settings(max_examples=30)
@given(data=st.data())
def test_second_derivatives_match_the_builtin(dtype, mode, data):
    """Grad-of-grad: the Hessian-vector product and the derivative of the
    input gradient with respect to the upstream gradient, for drawn
    configurations (every path), inputs with kinks, zeros and non-finite
    values, and finite upstream gradients and directions. ``None`` must
    match ``None``, and values bit for bit."""
    cfg = cst.draw_relu_kwargs(data)
    kinks = tuple(k for k in (0.0, cfg["threshold"], cfg["max_value"])
                  if k is not None)
    shape = cst.draw_shape(data, min_rank=1, max_rank=2, max_dim=16)
    # ATen's relu6/hardtanh gradient at a NaN input is 1 or 0 depending on
    # the NaN's position (vectorised lanes: seen on torch 2.13 CPU, 1 in the
    # scalar tail, 0 in the vectorised body; 1 everywhere on CUDA). Since
    # customlayers.ReLU runs ATen's relu6 itself on torch, every backend
    # sees NaN and infinities here.
    x = cst.draw_array(data, shape, dtype, kinks=kinks, nonfinite=True,
                       label="input", must_include=(0.0, -0.0) + kinks)
    g = cst.draw_array(data, shape, dtype, label="upstream gradient",
                       must_include=(-1.0, 1.0))
    v = cst.draw_array(data, shape, dtype, label="direction v",
                       must_include=(-1.0, 1.0))
    note(f"backend {BACKEND}, mode {mode}, dtype {dtype}, config {cfg}, "
         f"shape {shape}")
    custom, builtin = _pair(cfg, dtype)
    got = _second_order(custom, x, g, v, mode)
    want = _second_order(builtin, x, g, v, mode)
    flush = _tf_flushes(mode)
    for name, a, b in zip(("d/dx", "d2/dx2 . v", "d/dg (d/dx . v)"),
                          got, want):
        _compare(f"{name} {cfg} {dtype} {mode}", a, b,
                 flush_subnormals=flush,
                 signed_zeros=not _xla_zero_hessian_sign(name, cfg, mode))


def _xla_zero_hessian_sign(name, cfg, mode):
    """The one allowance here. Under XLA, with ``max_value == 6`` and a
    ``negative_slope`` (relu6 plus the relu of ``-x``), the Hessian-vector
    product is all zeros on both sides, but customlayers' zeros come out
    ``-0.0`` where the built-in's are ``+0.0`` (every float dtype; eager and
    graph agree in sign). The zeros are the sum of the relu6 part's
    ``zeros_like(x)`` and the negated ``-x`` part's zeros, and XLA's
    simplifier folds ``a + 0`` to ``a``, so which zero survives depends on
    the graph TensorFlow builds around ``tf.custom_gradient``; not resolved
    yet. Only the sign of these zeros is exempt: any non-zero value, NaN, or
    a ``None`` still fails."""
    return (TF and mode == "compiled" and name == "d2/dx2 . v"
            and cfg.get("max_value") == 6 and cfg.get("negative_slope")
            and not cfg.get("threshold"))


@pytest.mark.parametrize("cfg", [{"max_value": 6}, {"negative_slope": 0.2},
                                 {"threshold": 1.0}, {"max_value": 3.0}],
                         ids=_cfg_id)
def test_full_hessian_matches_the_builtin(cfg):
    """The whole Hessian of ``sum(relu(x) * w)`` on the backend's own
    Hessian API: ``tf.hessians`` (graph mode), ``jax.hessian``
    (forward-over-reverse) and ``jax.grad(jax.grad)``, torch's
    ``autograd.grad(create_graph=True)`` twice."""
    x = np.array([-2.0, -0.0, 0.0, 0.5, 1.0, 3.0, 6.0, 7.0], "float32")
    w = np.linspace(-1.0, 2.0, x.size).astype("float32")
    custom, builtin = _pair(cfg, "float32")
    print(f"backend {BACKEND}, config {cfg}, x {x.tolist()}")
    for name, got, want in _hessians(custom, builtin, x, w):
        print(name, "custom", got, "built-in", want)
        _compare(f"{name} {cfg}", got, want)


def _hessians(custom, builtin, x, w):
    if TF:
        import tensorflow as tf

        def hess(layer):
            @tf.function
            def run(x):
                return tf.hessians(tf.reduce_sum(layer(x) * w), x)[0]
            try:
                return _np(run(tf.constant(x)))
            except ValueError as e:
                # tf.hessians refuses a graph with no second-order path
                # ("None values not supported"); the threshold path's
                # where(x > t, x, 0) has none, in the built-in too.
                return f"{type(e).__name__}: {str(e).splitlines()[-1]}"

        return [("tf.hessians", hess(custom), hess(builtin))]
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        def f(layer):
            return lambda x: jnp.sum(layer(x) * w)

        out = []
        for name, op in (("jax.hessian", jax.hessian),
                         ("jax.jacrev(jax.grad)",
                          lambda f: jax.jacrev(jax.grad(f)))):
            out.append((name, _np(op(f(custom))(jnp.asarray(x))),
                        _np(op(f(builtin))(jnp.asarray(x)))))
        out.append(("jax.grad(jax.grad . v)",
                    _np(jax.grad(lambda x: jnp.sum(
                        jax.grad(f(custom))(x) * w))(jnp.asarray(x))),
                    _np(jax.grad(lambda x: jnp.sum(
                        jax.grad(f(builtin))(x) * w))(jnp.asarray(x)))))
        return out
    import torch

    def hess(layer):
        xt = torch.tensor(x, requires_grad=True)
        (g,) = torch.autograd.grad((layer(xt) * torch.tensor(w)).sum(), xt,
                                   create_graph=True)
        if not g.requires_grad:
            return None
        rows = []
        for i in range(x.size):
            (row,) = torch.autograd.grad(g[i], xt, retain_graph=True,
                                         allow_unused=True)
            rows.append(None if row is None else row.detach().numpy())
        if any(r is None for r in rows):
            return None
        return np.stack(rows)

    return [("torch.autograd.grad(create_graph=True) x2", hess(custom),
             hess(builtin))]


@pytest.mark.skipif(not TF, reason="the gradient-penalty model test runs "
                    "keras.Model weights through tf.GradientTape; on "
                    f"{BACKEND} the kernel-level second-order tests above "
                    "cover the same derivatives")
@pytest.mark.parametrize("mode", [m for m in MODE_PARAMS])
@pytest.mark.parametrize("cfg", [{"negative_slope": 0.2}, {"max_value": 6},
                                 {"negative_slope": 0.2, "max_value": 6}],
                         ids=_cfg_id)
def test_gradient_penalty_weight_gradients_match_the_builtin(cfg, mode):
    """A WGAN-GP-style loss, ``sum(d model(x) / dx ** 2)``, through
    keras.layers.Dense -> ReLU -> keras.layers.Dense: the gradient of the
    penalty with respect to every weight (the first bias included) must be
    what the built-in ReLU gives, not ``None``."""
    import tensorflow as tf
    rng = np.random.default_rng(12)
    print(f"numpy seed 12, config {cfg}, mode {mode}")

    def model(relu):
        m = keras.Sequential([keras.Input((5,)),
                              keras.layers.Dense(7, name="d1"), relu,
                              keras.layers.Dense(3, name="d2")])
        return m

    custom = model(CUSTOM_RELU(**cfg))
    builtin = model(keras.layers.ReLU(**cfg))
    weights = [rng.standard_normal(w.shape).astype("float32") * 3
               for w in builtin.get_weights()]
    custom.set_weights(weights)
    builtin.set_weights(weights)
    x = tf.constant(rng.standard_normal((6, 5)).astype("float32"))

    def penalty_grads(m):
        def run(x):
            with tf.GradientTape() as outer:
                with tf.GradientTape() as inner:
                    inner.watch(x)
                    y = m(x)
                dx = inner.gradient(y, x)
                penalty = tf.reduce_sum(dx * dx)
            return penalty, outer.gradient(penalty, m.trainable_variables)
        if mode != "eager":
            run = tf.function(run, jit_compile=mode == "compiled")
        penalty, grads = run(x)
        return _np(penalty), [_np(g) for g in grads]

    p_custom, g_custom = penalty_grads(custom)
    p_builtin, g_builtin = penalty_grads(builtin)
    _compare("penalty", p_custom, p_builtin)
    # The XLA sign-of-zero allowance of the second-derivative test (see
    # _xla_zero_hessian_sign) reaches the weights through the Hessian: with
    # relu6 and a slope, the first bias's all-zero gradient is -0.0 vs
    # +0.0 under XLA. Values, None-ness and NaN are still compared.
    signed = not _xla_zero_hessian_sign("d2/dx2 . v", cfg, mode)
    names = [w.path if hasattr(w, "path") else w.name
             for w in builtin.trainable_variables]
    for name, a, b in zip(names, g_custom, g_builtin):
        print(name, "custom", None if a is None else a.ravel()[:4],
              "built-in", None if b is None else b.ravel()[:4])
        _compare(f"d penalty / d {name}", a, b, signed_zeros=signed)


# -- 2. integer and bool inputs ----------------------------------------------

INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "bool")


def _forward(layer, x, mode):
    if TF:
        import tensorflow as tf
        f = layer if mode == "eager" else tf.function(
            layer.__call__, jit_compile=mode == "compiled")
        return f(_tensor(x))
    if BACKEND == "jax":
        import jax
        f = layer if mode == "eager" else jax.jit(layer.__call__)
        return f(_tensor(x))
    return layer(_tensor(x))


def _outcome(layer, x, mode):
    try:
        y = _forward(layer, x, mode)
    except Exception as e:  # compared by type with the built-in's
        return type(e), None
    return None, to_numpy(y)


@pytest.mark.parametrize("mode", MODE_PARAMS)
@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=_cfg_id)
def test_integer_and_bool_inputs_match_the_builtin(cfg, dtype, mode):
    """Integer and bool inputs are not autocast by the float32 policy: the
    output dtype and values (or the exception type, where the built-in
    refuses the dtype) must be the built-in's, on every path."""
    values = [-3, -1, 0, 1, 2, 7, 100] if dtype != "bool" else \
        [True, False, True]
    x = np.array(values).astype(dtype)
    custom = CUSTOM_RELU(**cfg)
    builtin = keras.layers.ReLU(**cfg)
    err_c, y_c = _outcome(custom, x, mode)
    err_b, y_b = _outcome(builtin, x, mode)
    print(f"{cfg} {dtype} {mode}: built-in "
          f"{err_b.__name__ if err_b else (y_b.dtype, y_b.tolist())}, "
          f"custom {err_c.__name__ if err_c else (y_c.dtype, y_c.tolist())}")
    assert err_c == err_b, (f"exception: custom {err_c}, built-in {err_b}"
                            f" ({cfg}, {dtype}, {mode})")
    if err_b is None:
        assert y_c.dtype == y_b.dtype, (
            f"output dtype: custom {y_c.dtype}, built-in {y_b.dtype} "
            f"({cfg}, {dtype}, {mode})")
        _compare(f"output {cfg} {dtype} {mode}", y_c, y_b)


# -- 3. non-finite upstream gradients ----------------------------------------

@pytest.mark.parametrize("mode", MODE_PARAMS)
@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
@settings(max_examples=30)
@given(data=st.data())
def test_nonfinite_upstream_gradients_match_the_builtin(dtype, mode, data):
    """NaN and +-inf upstream gradients, everywhere, in every configuration:
    the input gradient's NaN positions and values must be the built-in's
    (TensorFlow's Relu6Grad and ReluGrad compute ``g * mask`` outside XLA,
    so a masked-out NaN or inf gives NaN there)."""
    cfg = cst.draw_relu_kwargs(data)
    kinks = tuple(k for k in (0.0, cfg["threshold"], cfg["max_value"])
                  if k is not None)
    shape = cst.draw_shape(data, min_rank=1, max_rank=2, max_dim=32)
    # Non-finite inputs too, on torch as well (see the second-derivative
    # test for ATen's position-dependent relu6 gradient at NaN).
    x = cst.draw_array(data, shape, dtype, kinks=kinks,
                       nonfinite=True, label="input",
                       must_include=(0.0, -0.0) + kinks)
    g = cst.draw_array(data, shape, dtype, nonfinite=True,
                       label="upstream gradient",
                       must_include=(np.nan, np.inf, -np.inf, -1.0),
                       max_specials=32)
    note(f"backend {BACKEND}, mode {mode}, dtype {dtype}, config {cfg}, "
         f"shape {shape}")
    custom, builtin = _pair(cfg, dtype)
    got = _second_order(custom, x, g, np.ones_like(g), mode)[0]
    want = _second_order(builtin, x, g, np.ones_like(g), mode)[0]
    _compare(f"input gradient {cfg} {dtype} {mode}", got, want,
             flush_subnormals=_tf_flushes(mode))


# -- 4. the sign of zero in relu6's forward pass -----------------------------

_PATTERN = np.array([-0.0, 0.0, -1.5, 2.5, 6.0, 7.0, np.nan, np.inf, -np.inf,
                     3.0, -0.0, -0.0, 5.96875, -6.0, 1.0, -0.0], "float32")


@pytest.mark.parametrize("mode", MODE_PARAMS)
@pytest.mark.parametrize("dtype", DTYPE_PARAMS)
@pytest.mark.parametrize("cfg", [{"max_value": 6},
                                 {"max_value": 6, "negative_slope": 0.25}],
                         ids=_cfg_id)
def test_relu6_forward_keeps_the_sign_of_zero(cfg, dtype, mode):
    """Forward values bit for bit, the sign of zero included, for every
    length 1..64 (vectorised lanes start at 8 or 16 elements), each with
    ``-0.0`` at several positions, NaN and infinities. No subnormals: their
    flushing is thread-dependent on TensorFlow (cases.py), and not what
    this test is about."""
    print(f"backend {BACKEND}, {cfg}, {dtype}, {mode}, lengths 1..64, "
          f"pattern {_PATTERN.tolist()} (rolled by the length)")
    custom, builtin = _pair(cfg, dtype)
    failures = []
    for n in range(1, 65):
        x = np.resize(np.roll(_PATTERN, n), n).astype(cst.np_dtype(dtype))
        x[n // 2] = -0.0
        got = to_numpy(_forward(custom, x, mode))
        want = to_numpy(_forward(builtin, x, mode))
        # Under XLA, customlayers' relu6 forward is where(0<x<6, x, clamp)
        # so that its forward-mode derivative is the built-in's; XLA then
        # returns -0.0 for a lone -0.0 where the built-in's Clamp gives
        # +0.0 (customlayers/backend/tensorflow.py, _relu6_forward). Only
        # that sign, only under XLA on TensorFlow; values and NaN strictly.
        xla_lone_zero = TF and mode == "compiled" and n == 1
        out = compare_arrays(f"relu6 forward, length {n}", got, want,
                             tolerance=None, signed_zeros=not xla_lone_zero)
        if not out.passed:
            failures.append(out.describe())
    assert not failures, (f"{len(failures)} of 64 lengths differ; first:\n"
                          + failures[0])
