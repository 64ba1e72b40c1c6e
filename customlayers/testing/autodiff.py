"""Second-order derivatives through each backend's own autodiff, for the
deeper-equivalence properties; forward mode is in
:mod:`customlayers.testing.forward_mode`, the backend's Hessian and
Jacobian APIs in :mod:`customlayers.testing.hessian_api` (re-exported
here).

For a layer ``f(x, W)``, an upstream gradient ``g`` and directions ``v``
(one per input and trainable weight):

- :func:`second_order`: the Hessian-vector product of ``h = <g, f(x, W)>``,
  reverse over reverse: ``d/d(x, W) <grad h, v>``. An entry is ``None`` where
  the backend says the result does not depend on that argument (TensorFlow
  and torch do; JAX returns zeros), so a ``None`` where the reference gives
  a tensor of zeros is visible.
- :func:`hvp_forward_over_reverse`: the Hessian-vector product of
  ``<g, f(x, W)>`` with respect to the input and every weight, by forward
  mode over the reverse-mode gradient (TensorFlow ``ForwardAccumulator``
  around a ``GradientTape``, ``jax.jvp`` of ``jax.vjp``), so a layer whose
  hand-written gradient has no forward-mode rule, or the wrong one, shows
  where reverse over reverse agrees; on torch ``torch.func.jvp`` of
  ``torch.func.grad``.

Integer or boolean inputs (ids:
:func:`~customlayers.testing.backends.is_ids`) have no derivative: both differentiate the weights only, and the
input's entry is ``None`` (its direction ``vs[0]`` is not used).
``training`` is passed to the layer as
:func:`customlayers.testing.calls.caller` says (statelessly).

Modes as in :mod:`customlayers.testing.backends`: TensorFlow eager, graph
(``tf.function``) and compiled (XLA); JAX eager and compiled (``jax.jit``);
torch eager and compiled (``torch.compile`` of ``torch.func`` transforms;
:mod:`customlayers.testing.torch_derivatives`, where torch's paths live).
"""

from __future__ import annotations

from customlayers._keras import BACKEND
from customlayers.testing.backends import is_ids
from customlayers.testing.calls import (caller, functional, np_or_none,
                                        tf_dense, tf_tensor, tf_variables,
                                        tf_wrap)
from customlayers.testing.forward_mode import jvp, jvp_weights  # noqa: F401
from customlayers.testing.hessian_api import (  # noqa: F401
    HESSIAN_MAX, hessian, jacobian)


def second_order(layer, x, g, vs, mode="eager", training=None):
    """``(first, second)``: lists (input first, then each trainable weight)
    of the first-order gradients of ``<g, layer(x)>`` and of the
    Hessian-vector products along ``vs``, as NumPy arrays or ``None``."""
    ids = is_ids(x)
    if BACKEND == "jax":
        first, second = _jax_second_order(layer, x, g, vs, mode, training,
                                          ids)
    elif BACKEND == "torch":
        from customlayers.testing import torch_derivatives
        first, second = torch_derivatives.second_order(layer, x, g, vs, mode,
                                                       training, ids)
    else:
        first, second = _tf_second_order(layer, x, g, vs, mode, training,
                                         ids)
    return _input_first(first, ids), _input_first(second, ids)


def hvp_forward_over_reverse(layer, x, g, vs, mode="eager", training=None):
    """``H v`` of ``<g, layer(x)>`` with respect to the input and every
    trainable weight, along ``vs`` (one direction per argument, input
    first): forward mode over the reverse-mode gradient. A list of NumPy
    arrays, ``None`` where the gradient does not depend on that argument
    (TensorFlow)."""
    ids = is_ids(x)
    if BACKEND == "jax":
        out = _jax_fwd_over_rev(layer, x, g, vs, mode, training, ids)
    elif BACKEND == "torch":
        from customlayers.testing import torch_derivatives
        out = torch_derivatives.fwd_over_rev(layer, x, g, vs, mode, training,
                                             ids)
    else:
        out = _tf_fwd_over_rev(layer, x, g, vs, mode, training, ids)
    return _input_first(out, ids)


def _own(vs, ids):
    """The directions of what is differentiated: ``vs`` without the
    input's for ids."""
    return vs[1:] if ids else vs


def _input_first(results, ids):
    """NumPy arrays, input first: ``None`` stands for ids' input."""
    out = [np_or_none(t) for t in results]
    return [None] + out if ids else out


# -- TensorFlow ----------------------------------------------------------------

def _tf_second_order(layer, x, g, vs, mode, training, ids):
    import tensorflow as tf
    weights = list(layer.trainable_weights)
    call = caller(layer, training)

    def fn(x, g, vs):
        sources = weights if ids else [x] + weights
        with tf.GradientTape() as outer:
            if not ids:
                outer.watch(x)
            with tf.GradientTape() as inner:
                if not ids:
                    inner.watch(x)
                y = call(x)
            first = [tf_dense(f) for f in inner.gradient(
                y, sources, output_gradients=g)]
            terms = [tf.reduce_sum(f * tf.cast(v, f.dtype))
                     for f, v in zip(first, vs) if f is not None]
            h = tf.add_n(terms) if terms else None
        second = ([None] * len(first) if h is None else
                  outer.gradient(h, sources))
        return first, second

    return tf_wrap(fn, mode)(tf_tensor(x), tf_tensor(g),
                             [tf_tensor(v) for v in _own(vs, ids)])


def _tf_fwd_over_rev(layer, x, g, vs, mode, training, ids):
    import tensorflow as tf
    weights = list(layer.trainable_weights)
    primals = tf_variables(weights)
    call = caller(layer, training)

    def fn(x, g, vs):
        watched = primals if ids else [x] + primals
        with tf.autodiff.ForwardAccumulator(watched, vs) as acc:
            with tf.GradientTape() as tape:
                if not ids:
                    tape.watch(x)
                y = call(x)
            grads = [tf_dense(gr) for gr in tape.gradient(
                y, weights if ids else [x] + weights,
                output_gradients=tf.cast(g, y.dtype))]
        return [None if gr is None else acc.jvp(
            gr, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            for gr in grads]

    xt = tf_tensor(x)
    dtypes = [p.dtype for p in primals] if ids else \
        [xt.dtype] + [p.dtype for p in primals]
    vs = [tf.cast(tf_tensor(v), d) for v, d in zip(_own(vs, ids), dtypes)]
    return tf_wrap(fn, mode)(xt, tf_tensor(g), vs)


# -- JAX -------------------------------------------------------------------------

def _jax_split(grads, ids):
    """``jax.grad``'s ``(dx, dvalues)`` (or ``(dvalues,)`` for ids) as one
    list, input first unless ids."""
    return list(grads[-1]) if ids else [grads[0]] + list(grads[1])


def _jax_second_order(layer, x, g, vs, mode, training, ids):
    import jax
    import jax.numpy as jnp
    call, values = functional(layer, training)
    g = jnp.asarray(g)
    argnums = (1,) if ids else (0, 1)

    def f(x, values):
        y = call(x, values)
        return jnp.sum(y * g.astype(y.dtype))

    def both(x, values, vs):
        grad = jax.grad(f, argnums=argnums)

        def h(x, values):
            flat = _jax_split(grad(x, values), ids)
            return sum(jnp.sum(a * b.astype(a.dtype))
                       for a, b in zip(flat, vs))

        first = _jax_split(grad(x, values), ids)
        second = _jax_split(jax.grad(h, argnums=argnums)(x, values), ids)
        return first, second

    if mode == "compiled":
        both = jax.jit(both)
    return both(jnp.asarray(x), values, [jnp.asarray(v) for v in _own(vs, ids)])


def _jax_fwd_over_rev(layer, x, g, vs, mode, training, ids):
    import jax
    import jax.numpy as jnp
    call, values = functional(layer, training)

    def fn(x, g, values, vs):
        def h(x, values):
            y = call(x, values)
            return jnp.sum(y * g.astype(y.dtype))

        if ids:
            grads = jax.grad(lambda values: h(x, values))
            tangents = [v.astype(w.dtype) for v, w in zip(vs, values)]
            return list(jax.jvp(grads, (values,), (tangents,))[1])
        grads = jax.grad(h, argnums=(0, 1))
        tangents = (vs[0].astype(x.dtype),
                    [v.astype(w.dtype) for v, w in zip(vs[1:], values)])
        _, (tx, tw) = jax.jvp(grads, (x, values), tangents)
        return [tx] + list(tw)

    if mode == "compiled":
        fn = jax.jit(fn)
    return fn(jnp.asarray(x), jnp.asarray(g), values,
              [jnp.asarray(v) for v in _own(vs, ids)])
