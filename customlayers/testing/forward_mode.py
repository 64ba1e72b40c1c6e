"""Forward-mode derivatives through each backend's own autodiff, for the
forward-mode property (TensorFlow ``ForwardAccumulator``, ``jax.jvp``,
``torch.func.jvp``), each with the VJP of the same layer, for the
consistency ``<g, J v> == <J^T g, v>``:

- :func:`jvp`: ``J v`` along an input direction (weights held fixed);
- :func:`jvp_weights`: ``J_W v`` along a direction in the trainable
  weights (the input held fixed): what forward mode can check for a layer
  whose input is integer ids, which have no derivative.

``training`` is passed to the layer as
:func:`customlayers.testing.calls.caller` says (statelessly). Modes as in
:mod:`customlayers.testing.backends`; torch's paths (eager, and compiled:
one ``torch.compile`` of ``torch.func.jvp`` with ``torch.func.vjp``) are in
:mod:`customlayers.testing.torch_derivatives`.
"""

from __future__ import annotations

from customlayers._keras import BACKEND
from customlayers.testing.calls import (caller, functional, np_or_none,
                                        tf_dense, tf_tensor, tf_variables,
                                        tf_wrap)


def jvp(layer, x, v, g, mode="eager", training=None):
    """``(y, jv, vjp)``: the output, ``J v`` for the input direction ``v``
    (weights held fixed) and ``J^T g``, as NumPy arrays."""
    if BACKEND == "jax":
        return _jax_jvp(layer, x, v, g, mode, training)
    if BACKEND == "torch":
        from customlayers.testing import torch_derivatives
        return torch_derivatives.jvp(layer, x, v, g, mode, training)
    return _tf_jvp(layer, x, v, g, mode, training)


def jvp_weights(layer, x, vs, g, mode="eager", training=None):
    """``(y, jv, vjps)``: the output, ``J_W v`` for the directions ``vs``
    (one per trainable weight, in ``layer.trainable_weights``' order; the
    input held fixed) and ``J_W^T g`` (a list, one per trainable weight,
    dense), as NumPy arrays."""
    if BACKEND == "jax":
        y, jv, vjps = _jax_jvp_weights(layer, x, vs, g, mode, training)
    elif BACKEND == "torch":
        from customlayers.testing import torch_derivatives
        y, jv, vjps = torch_derivatives.jvp_weights(layer, x, vs, g, mode,
                                                    training)
    else:
        y, jv, vjps = _tf_jvp_weights(layer, x, vs, g, mode, training)
    return np_or_none(y), np_or_none(jv), [np_or_none(t) for t in vjps]


# -- TensorFlow ----------------------------------------------------------------

def _tf_jvp(layer, x, v, g, mode, training):
    import tensorflow as tf
    call = caller(layer, training)

    def fn(x, v, g):
        with tf.autodiff.ForwardAccumulator(x, v) as acc:
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = call(x)
        jv = acc.jvp(y, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return y, jv, tape.gradient(y, x, output_gradients=g)

    y, jv, vjp = tf_wrap(fn, mode)(tf_tensor(x), tf_tensor(v), tf_tensor(g))
    return np_or_none(y), np_or_none(jv), np_or_none(vjp)


def _tf_jvp_weights(layer, x, vs, g, mode, training):
    import tensorflow as tf
    weights = list(layer.trainable_weights)
    primals = tf_variables(weights)
    call = caller(layer, training)

    def fn(x, vs, g):
        with tf.autodiff.ForwardAccumulator(primals, vs) as acc:
            with tf.GradientTape() as tape:
                y = call(x)
        jv = acc.jvp(y, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        grads = tape.gradient(y, weights, output_gradients=tf.cast(g, y.dtype))
        return y, jv, [tf.zeros_like(p) if gr is None else tf_dense(gr)
                       for p, gr in zip(primals, grads)]

    vs = [tf.cast(tf_tensor(v), p.dtype) for v, p in zip(vs, primals)]
    return tf_wrap(fn, mode)(tf_tensor(x), vs, tf_tensor(g))


# -- JAX -------------------------------------------------------------------------

def _jax_jvp(layer, x, v, g, mode, training):
    import jax
    import jax.numpy as jnp
    call, values = functional(layer, training)

    def fn(x, v, g):
        f = lambda x: call(x, values)  # noqa: E731
        y, jv = jax.jvp(f, (x,), (v.astype(x.dtype),))
        _, pull = jax.vjp(f, x)
        (vjp,) = pull(g.astype(y.dtype))
        return y, jv, vjp

    if mode == "compiled":
        fn = jax.jit(fn)
    y, jv, vjp = fn(jnp.asarray(x), jnp.asarray(v), jnp.asarray(g))
    return np_or_none(y), np_or_none(jv), np_or_none(vjp)


def _jax_jvp_weights(layer, x, vs, g, mode, training):
    import jax
    import jax.numpy as jnp
    call, values = functional(layer, training)

    def fn(x, vs, g, values):
        f = lambda values: call(x, values)  # noqa: E731
        tangents = [v.astype(w.dtype) for v, w in zip(vs, values)]
        y, jv = jax.jvp(f, (values,), (tangents,))
        _, pull = jax.vjp(f, values)
        (vjps,) = pull(g.astype(y.dtype))
        return y, jv, list(vjps)

    if mode == "compiled":
        fn = jax.jit(fn)
    return fn(jnp.asarray(x), [jnp.asarray(v) for v in vs], jnp.asarray(g),
              values)
