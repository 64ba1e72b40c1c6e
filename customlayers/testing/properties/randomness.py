"""The randomness property: what a dropout-like layer promises when its
randomness is on (a case's :class:`~customlayers.testing.RandomSpec`).

With the spec's ``call_kwargs`` (``{"training": True}``), for one drawn
example (constructor arguments, seed, input, upstream gradient), in one
mode and dtype policy:

- **values**: every output element is ``0`` or ``x / (1 - rate)``, and the
  input gradient ``0`` or ``g / (1 - rate)`` on the same mask (the mask is
  read from the gradient: the upstream gradient is never zero, the input
  may be). "Is ``v / (1 - rate)``" means within ``eps * |v / (1 - rate)|``
  of the exact quotient, ``eps`` the compute dtype's machine epsilon (one
  unit in the last place at the top of a binade): both correctly rounded
  ``v / keep`` and TensorFlow's ``v * fl(1 / keep)`` (two roundings) are
  inside it; a missing rescale (``rate`` above ``eps``) is not. Overflow
  to infinity compares equal; a subnormal input or result may come out as
  0 (flush to zero: TensorFlow's CPU kernels, XLA). ``rate == 0`` is the
  identity, ``rate == 1`` all zeros, both exactly.
- **dropped fraction**: over the mask entries (``noise_shape``, its
  ``None`` entries the input's sizes) ``|dropped - rate n| <= sigmas *
  sqrt(n rate (1 - rate)) + 1`` (``sigmas`` from the spec, 6 by default;
  the ``+ 1`` covers the discreteness at tiny ``n`` or extreme rates).
  Seeds are drawn by Hypothesis (printed; the ``ci`` profile is
  derandomized), so a run is deterministic.
- **noise_shape broadcast**: the mask is constant along every axis whose
  ``noise_shape`` entry is 1.
- **same seed, same mask**: a fresh layer with the same arguments (same
  seed) gives bit-identical outputs and gradients on its first call.
- **new mask per call**: a second call of the same layer gives another
  mask (the seed generator advances), checked where two independent masks
  coincide with probability under 1e-9 (``(r^2 + (1 - r)^2)^n``).
- **identical to the reference**: where the spec declares it for this
  backend, policy and mode, the reference with the same arguments gives
  bit-identical outputs and gradients on two successive calls.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from customlayers._keras import BACKEND
from customlayers.testing import strategies as cst
from customlayers.testing.equivalence import fact_check
from customlayers.testing.report import PROCESS

from customlayers.testing.properties._base import _make, _settings, draw_input

#: Below this probability of two independent masks coinciding, a second
#: call must draw another mask.
SAME_MASK_PROBABILITY = 1e-9


# -- running a layer with its randomness on ---------------------------------

def random_calls(layer, x, upstream, mode, call_kwargs, n_calls=1) -> list:
    """``n_calls`` successive calls of ``layer(x, **call_kwargs)`` in
    ``mode``, each differentiated against ``upstream``: a list of
    ``(output, input_gradient)`` NumPy pairs. The layer's state (its seed
    generator) advances from call to call, as in training."""
    if BACKEND == "jax":
        return _jax_calls(layer, x, upstream, mode, call_kwargs, n_calls)
    if BACKEND == "torch":
        if mode != "eager":  # the battery skips it, saying why
            from customlayers.testing.torch_compile import randomness_reason
            raise NotImplementedError(
                f"randomness in torch's {mode} mode: "
                f"{randomness_reason() or 'not wired into the harness'}")
        return _torch_calls(layer, x, upstream, call_kwargs, n_calls)
    return _tf_calls(layer, x, upstream, mode, call_kwargs, n_calls)


def _np(t):
    from customlayers.testing.convert import to_numpy
    return to_numpy(t)


def _tf_calls(layer, x, upstream, mode, call_kwargs, n_calls):
    import tensorflow as tf

    from customlayers.testing.convert import input_tensor
    tf.get_logger().setLevel("ERROR")

    def fn(x, g):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, **call_kwargs)
        gx = tape.gradient(y, x, output_gradients=g)
        return y, tf.zeros_like(x) if gx is None else gx

    if mode == "graph":
        fn = tf.function(fn, autograph=False)
    elif mode == "compiled":
        fn = tf.function(fn, autograph=False, jit_compile=True)
    xt = tf.convert_to_tensor(input_tensor(x))
    gt = tf.convert_to_tensor(input_tensor(upstream))
    return [tuple(_np(t) for t in fn(xt, gt)) for _ in range(n_calls)]


def _jax_calls(layer, x, upstream, mode, call_kwargs, n_calls):
    import jax
    import jax.numpy as jnp

    import keras

    variables = list(layer.variables)

    def step(x, g, values):
        def f(x):
            mapping = list(zip(variables, values))
            with keras.StatelessScope(state_mapping=mapping) as scope:
                y = layer(x, **call_kwargs)
                new = [scope.get_current_value(v) for v in variables]
            return y, [o if n is None else n for n, o in zip(new, values)]

        y, vjp, new = jax.vjp(f, x, has_aux=True)
        (gx,) = vjp(g.astype(y.dtype))
        return y, gx, new

    if mode == "compiled":
        step = jax.jit(step)
    values = [v.value for v in variables]
    xt, gt = jnp.asarray(x), jnp.asarray(upstream)
    out = []
    for _ in range(n_calls):
        y, gx, values = step(xt, gt, values)
        out.append((_np(y), _np(gx)))
    for v, value in zip(variables, values):
        v.assign(value)
    return out


def _torch_calls(layer, x, upstream, call_kwargs, n_calls):
    import torch

    from customlayers.testing.backends import _torch_tensor
    out = []
    for _ in range(n_calls):
        xt = _torch_tensor(x).detach().requires_grad_(True)
        y = layer(xt, **call_kwargs)
        if y.requires_grad:
            g = _torch_tensor(upstream).to(y.dtype)
            (gx,) = torch.autograd.grad(y, [xt], grad_outputs=g,
                                        allow_unused=True)
        else:  # e.g. zeros_like(x): no path from x at all
            gx = None
        out.append((_np(y), _np(torch.zeros_like(xt) if gx is None
                                 else gx)))
    return out


# -- the checks --------------------------------------------------------------

def concrete_noise_shape(noise_shape, shape) -> tuple:
    """``noise_shape`` with its ``None`` entries taken from ``shape``."""
    if noise_shape is None:
        return tuple(shape)
    return tuple(s if d is None else d for d, s in zip(noise_shape, shape))


def _finfo(dtype):
    if dtype == "bfloat16":
        import ml_dtypes
        return ml_dtypes.finfo(ml_dtypes.bfloat16)
    return np.finfo(cst.np_dtype(dtype))


def _eps(dtype) -> float:
    return float(_finfo(dtype).eps)


def _tiny(dtype) -> float:
    return float(_finfo(dtype).smallest_subnormal)


def _scaled_ok(got, v, keep, dtype):
    """Where ``got`` is ``v / keep`` in ``dtype`` (see the module doc)."""
    exact = v / keep
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = exact.astype(cst.np_dtype(dtype)).astype(np.float64)
        near = np.abs(got - exact) <= _eps(dtype) * np.abs(exact) + \
            _tiny(dtype)
    # Flush to zero (TensorFlow's CPU kernels, XLA): a subnormal input or
    # result may come out as 0.
    flushed = (got == 0) & (np.minimum(np.abs(v), np.abs(exact)) <
                            float(_finfo(dtype).tiny))
    return (got == rounded) | near | flushed


def _f64(a):
    return np.asarray(a).astype(np.float64)


def _bits_equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and \
        a.tobytes() == b.tobytes()


def mask_checks(spec, kwargs, x, upstream, y, gx) -> list:
    """The value, fraction and broadcast checks of one call: a list of
    ``(check, ok, problem)``."""
    rate = spec.rate(kwargs)
    # In the dtype the layer computed in: the policy's, except where the
    # backend narrows it (JAX without x64 computes float64 in float32).
    dtype = np.asarray(y).dtype.name
    with np.errstate(over="ignore"):  # float32 inputs beyond float16: inf
        xc = _f64(np.asarray(x).astype(cst.np_dtype(dtype)))
        g = _f64(np.asarray(upstream).astype(cst.np_dtype(dtype)))
    y, gx = _f64(y), _f64(gx)
    out = []
    if y.shape != xc.shape or gx.shape != xc.shape:
        return [("random: shapes", False, f"output {y.shape}, gradient "
                 f"{gx.shape}, input {xc.shape}")]
    if rate == 0 or rate == 1:
        want_y, want_g = (xc, g) if rate == 0 else (0 * xc, 0 * g)
        what = "the identity" if rate == 0 else "all zeros"
        for name, got, want in (("output", y, want_y),
                                ("grad[input]", gx, want_g)):
            bad = int(np.sum(got != want))
            out.append((f"random: rate {rate} {name}", bad == 0,
                        f"rate={rate} must give {what}; {bad} of "
                        f"{got.size} elements differ"))
        return out
    keep = 1.0 - rate
    mask = gx != 0
    for name, got, v in (("grad[input]", gx, g), ("output", y, xc)):
        ok = np.where(mask, _scaled_ok(got, v, keep, dtype), got == 0)
        bad = np.argwhere(~ok)
        problem = ""
        if bad.size:
            i = tuple(bad[0])
            problem = (f"{len(bad)} of {got.size} {name} elements are "
                       f"neither 0 nor v / (1 - rate) = v / {keep!r} "
                       f"(mask read from the input gradient); first at "
                       f"{i}: v={v[i]!r}, got {got[i]!r}, kept={mask[i]}")
        out.append((f"random: {name} is 0 or v/(1-rate)", not bad.size,
                     problem))
    noise = concrete_noise_shape(spec.noise_shape(kwargs), xc.shape)
    reduced = mask
    for axis, (d, s) in enumerate(zip(noise, xc.shape)):
        if d == 1 and s > 1:
            first = np.take(reduced, [0], axis=axis)
            ok = bool(np.all(reduced == first))
            out.append((f"random: noise_shape broadcast (axis {axis})", ok,
                        f"noise_shape={tuple(noise)}: the mask varies along "
                        f"axis {axis} of the input {xc.shape}"))
            reduced = first
    n = reduced.size
    dropped = int(n - reduced.sum())
    bound = spec.sigmas * math.sqrt(n * rate * keep) + 1.0
    out.append(("random: dropped fraction",
                abs(dropped - rate * n) <= bound,
                f"{dropped} of {n} mask entries dropped; rate={rate} expects "
                f"{rate * n:.1f} +- {bound:.1f} ({spec.sigmas} sigma + 1)"))
    return out


def check_randomness(case, policy, mode, kwargs, x, upstream,
                     recorder=PROCESS):
    """One example: see the module doc. Raises ``AssertionError`` naming
    every failed check."""
    spec = case.random
    calls = random_calls(_make(case, kwargs, policy), x, upstream, mode,
                         spec.call_kwargs, n_calls=2)
    results = mask_checks(spec, kwargs, x, upstream, *calls[0])
    fresh = random_calls(_make(case, kwargs, policy), x, upstream, mode,
                         spec.call_kwargs)[0]
    same = all(_bits_equal(a, b) for a, b in zip(calls[0], fresh))
    results.append(("random: same seed, same mask", same,
                    f"two fresh layers with {spec.seed_kwarg}="
                    f"{kwargs.get(spec.seed_kwarg)!r} gave different first "
                    "calls"))
    rate = spec.rate(kwargs)
    n = int(np.prod(concrete_noise_shape(spec.noise_shape(kwargs),
                                         np.shape(x)) or (1,)))
    p_same = (rate ** 2 + (1 - rate) ** 2) ** n
    if p_same < SAME_MASK_PROBABILITY:
        moved = not _bits_equal(calls[0][1], calls[1][1])
        results.append(("random: new mask per call", moved,
                        "a second call gave the same mask (the seed "
                        f"generator did not advance; chance {p_same:.1e})"))
    if spec.identical(BACKEND, policy, mode):
        ref = random_calls(_make(case, kwargs, policy, case.reference), x,
                           upstream, mode, spec.call_kwargs, n_calls=2)
        for i, (mine, theirs) in enumerate(zip(calls, ref)):
            for name, a, b in zip(("output", "grad[input]"), mine, theirs):
                diff = int(np.sum(_f64(a) != _f64(b))) if \
                    np.shape(a) == np.shape(b) else -1
                results.append((
                    f"random: identical to reference ({name})",
                    _bits_equal(a, b),
                    f"call {i + 1}: {name} differs from the reference's "
                    f"for the same seed in {diff} elements (dtypes "
                    f"{np.asarray(a).dtype}/{np.asarray(b).dtype}); the "
                    f"case declares them identical on {BACKEND} "
                    f"{policy} {mode}"))
    comparisons = [fact_check(c, ok, p) for c, ok, p in results]
    failed = [f"{c}: {p}" for c, ok, p in results if not ok]
    if failed:
        exc = AssertionError("randomness: " + "\n".join(failed))
        exc.record = (case.name, policy, mode, comparisons)
        raise exc
    recorder.record(case.name, policy, mode, comparisons, "randomness")
    return results


def randomness_property(case, policy, mode, recorder=PROCESS):
    """The case's randomness promises (its ``random`` spec), in ``mode``,
    under dtype ``policy``."""
    spec = case.random

    @_settings(f"randomness/{mode}")
    @given(data=st.data())
    def randomness(data):
        kwargs = case.draw_kwargs(data)
        if kwargs.get(spec.seed_kwarg) is None:
            kwargs[spec.seed_kwarg] = data.draw(
                st.integers(0, 2 ** 31 - 1), label=spec.seed_kwarg)
        x = draw_input(data, case, policy, kwargs, nonfinite=False)
        g_seed = data.draw(st.integers(0, 2 ** 32 - 1),
                           label="upstream gradient seed")
        rng = np.random.default_rng(g_seed)
        # Never zero (the mask is read from the input gradient): |g| in
        # [0.5, 2), either sign.
        g = rng.uniform(0.5, 2.0, np.shape(x)) * rng.choice((-1, 1),
                                                            np.shape(x))
        upstream = g.astype(cst.np_dtype(cst.compute_dtype(policy)))
        check_randomness(case, policy, mode, kwargs, x, upstream, recorder)

    randomness.__name__ = f"randomness[{case.name}-{policy}-{mode}]"
    return randomness
