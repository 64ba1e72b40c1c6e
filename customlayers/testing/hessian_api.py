"""The backend's own Hessian and vectorised-Jacobian APIs, for the
second-order and forward-mode properties:

- :func:`hessian`: the Hessian of ``<g, f(x, W)>`` (weights fixed) with
  respect to the first ``k`` flat elements of the input (the rest held at
  their values; the whole Hessian when the input has at most ``k``
  elements), through each backend's Hessian API: TensorFlow
  ``tf.hessians`` (graph and compiled; eagerly, where ``tf.gradients`` does
  not run, a ``GradientTape`` jacobian of the gradient), ``jax.hessian``,
  ``torch.func.hessian``. ``tf.hessians`` is where a ``None`` gradient
  raises ("None values not supported").
- :func:`jacobian`: the full input Jacobian through each backend's
  vectorisation (TensorFlow ``tape.jacobian`` with ``pfor``, ``jax.jacrev``
  = ``vmap`` of the VJP, torch ``autograd.functional.jacobian(...,
  vectorize=True)`` = ``vmap``; ``torch.func.jacrev`` in torch's compiled
  mode), so a gradient that breaks under vectorisation shows.

Both are along the input: not for integer ids (the properties report them
as n/a there). ``training`` is passed to the layer as
:func:`customlayers.testing.calls.caller` says (statelessly). Modes as in
:mod:`customlayers.testing.backends`; torch's paths are in
:mod:`customlayers.testing.torch_derivatives`.
"""

from __future__ import annotations

import numpy as np

from customlayers._keras import BACKEND
from customlayers.testing.calls import (caller, functional, np_or_none,
                                        tf_tensor, tf_wrap)

#: The Hessian property takes the first this-many flat input elements.
HESSIAN_MAX = 48


def jacobian(layer, x, mode="eager", training=None):
    """``d layer(x) / d x`` (shape ``out.shape + x.shape``) through the
    backend's vectorised Jacobian, as a NumPy array."""
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp
        call, values = functional(layer, training)
        fn = jax.jacrev(lambda x: call(x, values))
        if mode == "compiled":
            fn = jax.jit(fn)
        return np_or_none(fn(jnp.asarray(x)))
    if BACKEND == "torch":
        from customlayers.testing import torch_derivatives
        return torch_derivatives.jacobian(layer, x, mode, training)
    call = caller(layer, training)
    import tensorflow as tf

    def fn(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = call(x)
        return tape.jacobian(y, x, experimental_use_pfor=True,
                             unconnected_gradients=tf.UnconnectedGradients.ZERO)

    return np_or_none(tf_wrap(fn, mode)(tf_tensor(x)))


def hessian(layer, x, g, mode="eager", k=HESSIAN_MAX, training=None):
    """``d^2 <g, layer(x)> / d x_S^2`` for ``S`` the first ``min(k,
    x.size)`` flat elements of ``x`` (shape ``(|S|, |S|)``), through the
    backend's Hessian API (see the module docstring), as a NumPy array."""
    x = np.asarray(x)
    n = min(int(k), x.size)
    flat = x.reshape(-1)
    head, rest = flat[:n], flat[n:]
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp
        call, values = functional(layer, training)
        gj, restj = jnp.asarray(g), jnp.asarray(rest)

        def h(xs):
            y = call(jnp.concatenate([xs, restj]).reshape(x.shape), values)
            return jnp.sum(y * gj.astype(y.dtype))

        fn = jax.hessian(h)
        if mode == "compiled":
            fn = jax.jit(fn)
        return np_or_none(fn(jnp.asarray(head)))
    if BACKEND == "torch":
        from customlayers.testing import torch_derivatives
        return torch_derivatives.hessian(layer, x.shape, head, rest, g, mode,
                                         training)
    call = caller(layer, training)
    import tensorflow as tf

    def h(xs, g, rest):
        y = call(tf.reshape(tf.concat([xs, rest], 0), x.shape))
        return tf.reduce_sum(y * tf.cast(g, y.dtype))

    if mode == "eager":
        def fn(xs, g, rest):
            with tf.GradientTape() as outer:
                outer.watch(xs)
                with tf.GradientTape() as inner:
                    inner.watch(xs)
                    out = h(xs, g, rest)
                gx = inner.gradient(
                    out, xs, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return outer.jacobian(
                gx, xs, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    else:
        def fn(xs, g, rest):
            return tf.hessians(h(xs, g, rest), xs)[0]
    return np_or_none(tf_wrap(fn, mode)(tf_tensor(head), tf_tensor(g),
                                        tf_tensor(rest)))
