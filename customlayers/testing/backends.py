"""Forward passes and gradients through the active backend's own autodiff.

This is the only backend-specific part of the harness. For one layer, one
input ``x`` and one upstream gradient ``g`` (same shape as the output) it
returns the output, the vector-Jacobian product with respect to ``x`` and
with respect to every trainable weight, as NumPy arrays:

- TensorFlow: ``tf.GradientTape``; modes ``eager``, ``graph``
  (``tf.function``) and ``compiled`` (``tf.function(jit_compile=True)``, XLA).
- JAX: the layer called statelessly (``keras.StatelessScope``, as
  ``layer.stateless_call`` does) under ``jax.vjp``; modes ``eager`` (no
  ``jit``) and ``compiled`` (``jax.jit``). ``graph`` is TensorFlow's
  ``tf.function`` and does not exist here.
- PyTorch: ``torch.autograd.grad``; mode ``eager`` only.

Unsupported modes come with a reason (:func:`supported_modes`), which the
test suite prints as its skip reason.

Compiled once per signature: in ``graph`` and ``compiled`` mode (Keras 3,
TensorFlow or JAX) the traced function is cached and reused by every later
layer with the same :func:`signature` (class, config, dtype policy, mode,
input and upstream shape and dtype, variables' shapes and dtypes). It calls
the first such layer (the *template*) statelessly, with the later layer's
variable values passed in as arguments (what ``layer.stateless_call``
does, through ``__call__`` for its casting), so a new example with new
weights re-runs a traced (and, under XLA or ``jax.jit``, compiled) program
instead of tracing and compiling it again. A pair is traced together
(:func:`forward_backward_pair`): one compilation for both layers. Nothing
is padded and shapes stay static, so every example computes exactly what
the per-example path computes, bit for bit (tests/property/
test_signature_cache.py); Hypothesis repeats (kwargs, shape) often enough
(it mutates earlier examples) that about half the examples reuse a
program. Eager mode, Keras 2 and the torch backend keep the per-example
path.
"""

from __future__ import annotations

import collections
import dataclasses
import json

import numpy as np

from customlayers._keras import BACKEND

MODES = ("eager", "graph", "compiled")


@dataclasses.dataclass
class ForwardBackward:
    """What one pass produced, as NumPy arrays."""

    output: np.ndarray
    input_grad: np.ndarray
    weight_grads: list
    weight_names: list
    losses: list


_UNSUPPORTED = {
    "jax": {
        "graph": "graph mode is TensorFlow's tf.function; JAX has only "
                 "eager and jit",
    },
    "torch": {
        "graph": "graph mode is TensorFlow's tf.function; PyTorch runs "
                 "eagerly",
        "compiled": "torch.compile is not wired into the harness yet "
                    "(it would recompile for every drawn shape and dtype; "
                    "not evaluated); PyTorch is checked in eager mode",
    },
}


def supported_modes(backend: str = BACKEND) -> dict:
    """Mode name -> ``None`` if supported, else the reason it is not."""
    if backend in ("tensorflow", "jax", "torch"):
        unsupported = _UNSUPPORTED.get(backend, {})
        return {m: unsupported.get(m) for m in MODES}
    reason = f"the {backend} backend is not wired into the harness"
    return {m: reason for m in MODES}


def torch_on_cuda() -> bool:
    """Whether ATen's CUDA kernels run: the torch backend with a GPU (Keras
    puts tensors on it whenever torch sees one)."""
    if BACKEND != "torch":
        return False
    import torch
    return torch.cuda.is_available()


def device() -> str:
    """``"gpu"`` where the backend computes on a GPU, else ``"cpu"`` (what
    a known difference's ``device=`` is matched against)."""
    if BACKEND == "torch":
        return "gpu" if torch_on_cuda() else "cpu"
    if BACKEND == "jax":
        import jax
        return "gpu" if jax.default_backend() == "gpu" else "cpu"
    if BACKEND == "tensorflow":
        import tensorflow as tf
        return "gpu" if tf.config.list_logical_devices("GPU") else "cpu"
    return "cpu"


def _weight_name(v) -> str:
    return getattr(v, "path", None) or v.name


def _to_numpy(t) -> np.ndarray:
    from customlayers.testing.convert import to_numpy
    return to_numpy(t)


def _result(y, input_grad, weight_grads, weights, losses):
    """A :class:`ForwardBackward` of NumPy arrays, whatever the backend."""
    return ForwardBackward(
        output=_to_numpy(y),
        input_grad=None if input_grad is None else _to_numpy(input_grad),
        weight_grads=[_to_numpy(g) for g in weight_grads],
        weight_names=[_weight_name(w) for w in weights],
        losses=losses,
    )


def forward_backward(layer, x: np.ndarray, upstream: np.ndarray | None,
                     mode: str = "eager") -> ForwardBackward:
    """Run ``layer`` on ``x`` and differentiate ``sum(output * upstream)``.

    Args:
        layer: A built Keras layer.
        x: The input array.
        upstream: The cotangent of the output (its shape and dtype), or
            ``None`` for forward only.
        mode: One of :data:`MODES`.
    """
    reason = supported_modes().get(mode, f"unknown mode {mode!r}; expected "
                                         f"one of {MODES}")
    if reason:
        raise NotImplementedError(f"mode {mode!r}: {reason}")
    cached = _forward_backward_cached([layer], x, upstream, mode)
    if cached is not None:
        return cached[0]
    if BACKEND == "jax":
        return _jax_forward_backward(layer, x, upstream, mode)
    if BACKEND == "torch":
        return _torch_forward_backward(layer, x, upstream, mode)
    return _tf_forward_backward(layer, x, upstream, mode)


# -- compiled once per signature ---------------------------------------------

#: How many traced functions (and their templates) are kept, least recently
#: used dropped first. Each holds a layer and, under XLA or ``jax.jit``, its
#: executables (one per input shape).
CACHE_SIZE = 128
_CACHE: "collections.OrderedDict" = collections.OrderedDict()
#: ``hits``, ``misses``, ``uncached`` (eager, Keras 2, an unkeyable layer)
#: and ``fallbacks`` (the cached call raised; the per-example path ran),
#: for benchmarks and tests.
CACHE_STATS: collections.Counter = collections.Counter()
#: Config entries that cannot change what ``call`` computes once the
#: weights are given: the name, and initializers (used by ``build`` only;
#: every example's weights are passed in as values).
_KEY_IGNORED = ("name",)
_KEY_IGNORED_SUFFIX = ("_initializer",)


def clear_cache() -> None:
    """Forget every traced function (and its template layer)."""
    _CACHE.clear()


def _cacheable(mode: str) -> bool:
    if mode == "eager" or BACKEND not in ("tensorflow", "jax"):
        return False
    from customlayers._keras import KERAS_MAJOR
    return KERAS_MAJOR >= 3


def signature(layer, x: np.ndarray, upstream, mode: str):
    """The key under which ``layer``'s traced function is cached, or ``None``
    when it cannot be keyed safely (eager mode, Keras 2, torch, a config
    that does not serialize or names an object by its address).

    Two layers with equal keys compute the same function of (input,
    variable values): same class, same config (but the name and the
    initializers), same dtype policy, same variables (shape, dtype,
    trainable, in order), called on inputs of the same shape and dtype,
    with an upstream gradient of the same shape and dtype, in the same
    mode."""
    if not _cacheable(mode):
        return None
    try:
        config = layer.get_config()
    except Exception:  # noqa: BLE001 - a user's layer may not implement it
        return None
    config = {k: v for k, v in config.items() if k not in _KEY_IGNORED
              and not k.endswith(_KEY_IGNORED_SUFFIX)}
    try:
        text = json.dumps(config, sort_keys=True, default=repr)
    except Exception:  # noqa: BLE001
        return None
    if " at 0x" in text:  # an object named by its address: not a key
        return None
    policy = getattr(getattr(layer, "dtype_policy", None), "name", None)

    def specs(variables):
        return tuple((tuple(int(d) for d in v.shape), str(v.dtype))
                     for v in variables)

    x = np.asarray(x)
    g = None if upstream is None else np.asarray(upstream)
    return (type(layer), text, policy, str(getattr(layer, "dtype", "")),
            mode, BACKEND, tuple(x.shape), x.dtype.name,
            None if g is None else (tuple(g.shape), g.dtype.name),
            specs(layer.trainable_variables),
            specs(layer.non_trainable_variables))


def _cached(key, make):
    """The cached entry for ``key``, made with ``make()`` on a miss."""
    entry = _CACHE.get(key)
    if entry is not None:
        _CACHE.move_to_end(key)
        CACHE_STATS["hits"] += 1
        return entry
    CACHE_STATS["misses"] += 1
    entry = make()
    _CACHE[key] = entry
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return entry


def forward_backward_pair(custom, reference, x: np.ndarray,
                          upstream: np.ndarray | None, mode: str = "eager"):
    """:func:`forward_backward` of both layers of a pair, on the same ``x``
    and ``upstream``: ``(custom's, reference's)``.

    Where both have a :func:`signature`, one function traces (and under
    XLA or ``jax.jit`` compiles) both: one compilation per pair signature
    instead of two (two independent computations in one program; each
    layer's result is its own)."""
    cached = _forward_backward_cached([custom, reference], x, upstream, mode)
    if cached is not None:
        return tuple(cached)
    return (forward_backward(custom, x, upstream, mode),
            forward_backward(reference, x, upstream, mode))


def _forward_backward_cached(layers, x, upstream, mode):
    """The cached path for ``layers`` (one, or a pair traced together): a
    list of :class:`ForwardBackward`, or ``None`` when it does not apply or
    failed (the per-example path then runs, and raises what the layer
    raises)."""
    keys = [signature(layer, x, upstream, mode) for layer in layers]
    if any(k is None for k in keys):
        CACHE_STATS["uncached"] += 1
        return None
    key = tuple(keys)
    make = _tf_traced if BACKEND == "tensorflow" else _jax_traced
    try:
        fn = _cached(key, lambda: make(layers, x, upstream, mode))
        values = [([v.value for v in layer.trainable_variables],
                   [v.value for v in layer.non_trainable_variables])
                  for layer in layers]
        outs = fn(x, upstream, values)
    except Exception:  # noqa: BLE001 - the per-example path reports it
        _CACHE.pop(key, None)
        CACHE_STATS["fallbacks"] += 1
        return None
    return [_result(y, gx, gws, list(layer.trainable_variables), [])
            for layer, (y, gx, gws) in zip(layers, outs)]


def _tf_traced(templates, x, upstream, mode):
    """``f(x, g, [(values, frozen), ...]) -> [(y, dx, dvalues), ...]`` for
    layers with ``templates``' signatures: one ``tf.function`` with static
    shapes (with ``None`` dimensions TensorFlow's graph optimizations pick
    other kernels: a gelu gradient moved by 1 ULP against the per-example
    path, so the shapes stay exact)."""
    import tensorflow as tf

    import keras
    from customlayers.testing.convert import input_tensor

    tf.get_logger().setLevel("ERROR")

    def body(template, x, g, values, frozen_values):
        values = list(values)
        mapping = (list(zip(template.trainable_variables, values))
                   + list(zip(template.non_trainable_variables,
                              list(frozen_values))))
        with tf.GradientTape() as tape:
            tape.watch(x)
            tape.watch(values)
            with keras.StatelessScope(state_mapping=mapping):
                y = template(x)
        if g is None:
            return y, []
        grads = tape.gradient(y, [x] + values, output_gradients=g)
        return y, [tf.zeros_like(v) if gr is None else gr
                   for v, gr in zip([x] + values, grads)]

    def specs(variables):
        return [tf.TensorSpec(v.shape, v.dtype) for v in variables]

    def tensor(a):
        return tf.convert_to_tensor(input_tensor(np.asarray(a)))

    xt = tensor(x)
    spec = [tf.TensorSpec(xt.shape, xt.dtype)]
    if upstream is not None:
        gt = tensor(upstream)
        spec.append(tf.TensorSpec(gt.shape, gt.dtype))
    spec.append([(specs(t.trainable_variables),
                  specs(t.non_trainable_variables)) for t in templates])

    if upstream is None:
        def fn(x, values):
            return [body(t, x, None, *v) for t, v in zip(templates, values)]
    else:
        def fn(x, g, values):
            return [body(t, x, g, *v) for t, v in zip(templates, values)]
    traced = tf.function(fn, input_signature=spec, autograph=False,
                         jit_compile=mode == "compiled")

    def call(x, upstream, values):
        args = [tensor(x)]
        if upstream is not None:
            args.append(tensor(upstream))
        args.append([([tf.convert_to_tensor(v) for v in w],
                      [tf.convert_to_tensor(v) for v in f])
                     for w, f in values])
        return [(y, grads[0] if grads else None, list(grads[1:]))
                for y, grads in traced(*args)]

    return call


def _jax_traced(templates, x, upstream, mode):
    """The JAX counterpart of :func:`_tf_traced`: one ``jax.jit`` function
    (``mode == "compiled"``), which compiles once per input shape."""
    import jax
    import jax.numpy as jnp

    import keras

    def apply(template, x, values, frozen_values):
        mapping = (list(zip(template.trainable_variables, values))
                   + list(zip(template.non_trainable_variables,
                              frozen_values)))
        with keras.StatelessScope(state_mapping=mapping):
            return template(x)

    def one(template, x, g, values, frozen_values):
        def f(x, values):
            return apply(template, x, values, frozen_values)

        if g is None:
            return f(x, values), None, []
        y, vjp = jax.vjp(f, x, values)
        gx, gw = vjp(g)
        return y, gx, list(gw)

    def fn(x, gs, values):
        return [one(t, x, g, *v) for t, g, v in zip(templates, gs, values)]

    jitted = jax.jit(fn)

    def call(x, upstream, values):
        xt = jnp.asarray(x)
        gs = [None] * len(templates)
        if upstream is not None:
            # The cotangent in each output's dtype (as the per-example path
            # does), cast outside the compiled function.
            gs = [jnp.asarray(upstream).astype(jax.eval_shape(
                lambda x, v=v, t=t: apply(t, x, *v), xt).dtype)
                for t, v in zip(templates, values)]
        return jitted(xt, gs, values)

    return call


def _tf_forward_backward(layer, x, upstream, mode):
    import tensorflow as tf

    # Every example traces a new tf.function on purpose (new layers, new
    # shapes); TensorFlow's "excessive retracing" warning is expected here.
    tf.get_logger().setLevel("ERROR")

    weights = list(layer.trainable_weights)

    def fn(x, g):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        if g is None:
            return y, []
        # A weight the output does not depend on gets None here (Keras
        # variables do not support UnconnectedGradients.ZERO); it becomes
        # zeros below, so a stopped gradient compares as 0, not as a crash.
        grads = tape.gradient(y, [x] + weights, output_gradients=g)
        return y, [tf.zeros_like(v) if gr is None else gr
                   for v, gr in zip([x] + weights, grads)]

    if mode == "graph":
        fn = tf.function(fn, autograph=False)
    elif mode == "compiled":
        fn = tf.function(fn, autograph=False, jit_compile=True)
    from customlayers.testing.convert import input_tensor
    xt = tf.convert_to_tensor(input_tensor(x))
    gt = None if upstream is None else tf.convert_to_tensor(
        input_tensor(upstream))
    y, grads = fn(xt, gt)
    # Losses made inside a tf.function are graph tensors: read them eagerly.
    losses = ([float(_to_numpy(v)) for v in layer.losses]
              if mode == "eager" else [])
    return _result(y, grads[0] if grads else None, grads[1:], weights,
                   losses)


def _jax_forward_backward(layer, x, upstream, mode):
    import jax
    import jax.numpy as jnp

    import keras

    weights = list(layer.trainable_variables)
    non_trainable = [(v, v.value) for v in layer.non_trainable_variables]

    def fn(x, g, values):
        def f(x, values):
            # What layer.stateless_call does, but through __call__: that
            # call skips __call__'s input casting and variable autocasting,
            # so a mixed_float16 layer would compute in float32.
            mapping = list(zip(weights, values)) + non_trainable
            with keras.StatelessScope(state_mapping=mapping):
                return layer(x)

        if g is None:
            return f(x, values), None, []
        y, vjp = jax.vjp(f, x, values)
        gx, gw = vjp(g)
        return y, gx, list(gw)

    if mode == "compiled":
        fn = jax.jit(fn)
    values = [v.value for v in weights]
    xt = jnp.asarray(x)
    gt = None if upstream is None else jnp.asarray(upstream)
    if gt is not None:
        # The cotangent must have the output's dtype. A layer that returns
        # the wrong dtype is then reported by the output comparison (an
        # AssertionError naming both dtypes), not by a VJP type error.
        out_dtype = jax.eval_shape(lambda x: fn(x, None, values)[0], xt).dtype
        gt = gt.astype(out_dtype)
    y, gx, gws = fn(xt, gt, values)
    losses = []
    if mode == "eager":
        layer(xt)  # a plain call, to read the layer's losses as TF does
        losses = [float(_to_numpy(v)) for v in layer.losses]
    return _result(y, gx, gws, weights, losses)


def _torch_tensor(a):
    """A NumPy array as a torch tensor on Keras's device, exactly (bfloat16
    goes through float32, which holds every bfloat16 value)."""
    import torch
    from keras import ops

    a = np.asarray(a)
    if a.dtype.name == "bfloat16":
        return ops.convert_to_tensor(a.astype(np.float32)).to(torch.bfloat16)
    return ops.convert_to_tensor(a)


def _torch_forward_backward(layer, x, upstream, mode):
    import torch

    weights = list(layer.trainable_variables)
    xt = _torch_tensor(x).detach().requires_grad_(True)
    y = layer(xt)
    grads = []
    if upstream is not None:
        params = [w.value for w in weights]
        # The cotangent in the output's dtype (see the JAX path).
        g = _torch_tensor(upstream).to(y.dtype)
        grads = torch.autograd.grad(y, [xt] + params, grad_outputs=g,
                                    allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g
                 for g, p in zip(grads, [xt] + params)]
    losses = [float(_to_numpy(v)) for v in layer.losses]
    return _result(y, grads[0] if grads else None, grads[1:], weights,
                   losses)
