"""Compiled once per signature: the cache behind
:func:`customlayers.testing.backends.forward_backward` in ``graph`` and
``compiled`` mode (Keras 3, TensorFlow or JAX); see the docstring of
:mod:`customlayers.testing.backends` for what it does and why it computes
exactly what the per-example path computes.
"""

from __future__ import annotations

import collections
import json

import numpy as np

from customlayers._keras import BACKEND
from customlayers.testing.backends import (MODES, _result, call_kwargs,
                                          forward_backward, is_ids,
                                          supported_modes)

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
    if mode == "eager" or BACKEND not in ("tensorflow", "jax", "torch"):
        return False
    from customlayers._keras import KERAS_MAJOR
    return KERAS_MAJOR >= 3


def signature(layer, x: np.ndarray, upstream, mode: str, training=None):
    """The key under which ``layer``'s traced function is cached, or ``None``
    when it cannot be keyed safely (eager mode, Keras 2, torch, a config
    that does not serialize or names an object by its address).

    Two layers with equal keys compute the same function of (input,
    variable values): same class, same config (but the name and the
    initializers), same dtype policy, same variables (shape, dtype,
    trainable, in order), called on inputs of the same shape and dtype,
    with an upstream gradient of the same shape and dtype, in the same
    mode, with the same ``training`` call argument.

    A call with ``training=True`` may update non-trainable variables
    (BatchNormalization's moving statistics): the cached function calls the
    template statelessly and returns outputs and gradients only, so those
    updates are dropped (the layer's variables keep their values). The
    ``state`` property compares the updates, outside this cache."""
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
            specs(layer.non_trainable_variables), training)


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


def programs_per_layer(mode: str) -> bool:
    """Whether :func:`forward_backward_pair` gives each layer of a pair its
    own program in ``mode`` (XLA: TensorFlow's and JAX's compiled mode),
    rather than one traced function for both."""
    return mode == "compiled" and BACKEND in ("tensorflow", "jax")


def forward_backward_pair(custom, reference, x: np.ndarray,
                          upstream: np.ndarray | None, mode: str = "eager",
                          training=None):
    """:func:`forward_backward` of both layers of a pair, on the same ``x``
    and ``upstream``: ``(custom's, reference's)``.

    Where both have a :func:`signature`, each is traced once per
    signature and reused. In graph mode (and torch's compiled mode) one
    function traces both: one trace per pair signature instead of two.
    Under XLA (TensorFlow's and JAX's compiled mode) each layer gets its
    own program, as a user's model would: XLA optimizes a program as a
    whole, and with both layers in one it rounded one of them differently
    (TensorFlow 2.18.1, LayerNormalization(axis=1) on (1, 3, 1, 1, 3):
    the custom layer's input gradient 256 ULP off inside the joint
    program, bit for bit the built-in's in a program of its own; found by
    the tox matrix, 2026-12-07).

    A mode this backend does not have is refused, as
    :func:`forward_backward` refuses it (the cache would otherwise run
    ``graph`` on JAX as ``jax.jit``)."""
    reason = supported_modes().get(mode, f"unknown mode {mode!r}; expected "
                                         f"one of {MODES}")
    if reason:
        raise NotImplementedError(f"mode {mode!r}: {reason}")
    groups = ([[custom], [reference]] if programs_per_layer(mode)
              else [[custom, reference]])
    cached = [_forward_backward_cached(group, x, upstream, mode,
                                       training=training)
              for group in groups]
    if all(c is not None for c in cached):
        return tuple(r for c in cached for r in c)
    return (forward_backward(custom, x, upstream, mode, training=training),
            forward_backward(reference, x, upstream, mode,
                             training=training))


def _forward_backward_cached(layers, x, upstream, mode, training=None):
    """The cached path for ``layers`` (one, or a pair traced together): a
    list of :class:`ForwardBackward`, or ``None`` when it does not apply or
    failed (the per-example path then runs, and raises what the layer
    raises)."""
    keys = [signature(layer, x, upstream, mode, training) for layer in layers]
    if any(k is None for k in keys):
        CACHE_STATS["uncached"] += 1
        return None
    key = tuple(keys)
    make = {"tensorflow": _tf_traced, "jax": _jax_traced,
            "torch": _torch_traced}[BACKEND]
    try:
        fn = _cached(key, lambda: make(layers, x, upstream, mode,
                                       call_kwargs(training)))
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


def _tf_traced(templates, x, upstream, mode, kw):
    """``f(x, g, [(values, frozen), ...]) -> [(y, dx, dvalues), ...]`` for
    layers with ``templates``' signatures: one ``tf.function`` with static
    shapes (with ``None`` dimensions TensorFlow's graph optimizations pick
    other kernels: a gelu gradient moved by 1 ULP against the per-example
    path, so the shapes stay exact)."""
    import tensorflow as tf

    import keras
    from customlayers.testing.convert import input_tensor

    tf.get_logger().setLevel("ERROR")
    ids = is_ids(x)

    def body(template, x, g, values, frozen_values):
        values = list(values)
        mapping = (list(zip(template.trainable_variables, values))
                   + list(zip(template.non_trainable_variables,
                              list(frozen_values))))
        with tf.GradientTape() as tape:
            if not ids:
                tape.watch(x)
            tape.watch(values)
            with keras.StatelessScope(state_mapping=mapping):
                y = template(x, **kw)
        if g is None:
            return y, []
        sources = values if ids else [x] + values
        grads = tape.gradient(y, sources, output_gradients=g)
        grads = [tf.zeros_like(v) if gr is None else gr
                 for v, gr in zip(sources, grads)]
        # ids: no input gradient; a zero-size placeholder keeps the
        # structure a tf.function can return (read back as None).
        return y, ([tf.zeros((0,))] + grads) if ids else grads

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
        return [(y, grads[0] if grads and not ids else None,
                 list(grads[1:])) for y, grads in traced(*args)]

    return call


def _torch_traced(templates, x, upstream, mode, kw):
    """The torch counterpart of :func:`_tf_traced` (``mode ==
    "compiled"``, the only traced mode torch has): one
    ``torch.compile``d forward of the templates, its backward compiled by
    AOTAutograd (:func:`customlayers.testing.torch_compile.traced`)."""
    from customlayers.testing.torch_compile import traced
    return traced(templates, x, upstream, kw)


def _jax_traced(templates, x, upstream, mode, kw):
    """The JAX counterpart of :func:`_tf_traced`: one ``jax.jit`` function
    (``mode == "compiled"``), which compiles once per input shape."""
    import jax
    import jax.numpy as jnp

    import keras

    ids = is_ids(x)

    def apply(template, x, values, frozen_values):
        mapping = (list(zip(template.trainable_variables, values))
                   + list(zip(template.non_trainable_variables,
                              frozen_values)))
        with keras.StatelessScope(state_mapping=mapping):
            return template(x, **kw)

    def one(template, x, g, values, frozen_values):
        def f(x, values):
            return apply(template, x, values, frozen_values)

        if g is None:
            return f(x, values), None, []
        if ids:  # no input cotangent (JAX's would be float0)
            y, vjp = jax.vjp(lambda values: f(x, values), values)
            (gw,) = vjp(g)
            return y, None, list(gw)
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
