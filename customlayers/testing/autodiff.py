"""Second-order and forward-mode derivatives through each backend's own
autodiff, for the deeper-equivalence properties.

For a layer ``f(x, W)``, an upstream gradient ``g`` and directions ``v``
(one per input and trainable weight):

- :func:`second_order`: the Hessian-vector product of ``h = <g, f(x, W)>``,
  reverse over reverse: ``d/d(x, W) <grad h, v>``. An entry is ``None`` where
  the backend says the result does not depend on that argument (TensorFlow
  and torch do; JAX returns zeros), so a ``None`` where the reference gives
  a tensor of zeros is visible.
- :func:`jvp`: the forward-mode derivative ``J v`` (TensorFlow
  ``ForwardAccumulator``, ``jax.jvp``, ``torch.func.jvp``) together with
  the VJP
  ``J^T g`` of the same layer, for the consistency ``<g, J v> ==
  <J^T g, v>``.
- :func:`hvp_forward_over_reverse`: the Hessian-vector product of
  ``<g, f(x, W)>`` with respect to the input and every weight, by forward
  mode over the reverse-mode gradient (TensorFlow ``ForwardAccumulator`` around a ``GradientTape``,
  ``jax.jvp`` of ``jax.vjp``), so a layer whose hand-written gradient has
  no forward-mode rule, or the wrong one, shows where reverse over reverse
  agrees; on torch ``torch.func.jvp`` of ``torch.func.vjp``.
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
  vectorize=True)`` = ``vmap``), so a gradient that breaks under
  vectorisation shows.

Modes as in :mod:`customlayers.testing.backends`: TensorFlow eager, graph
(``tf.function``) and compiled (XLA); JAX eager and compiled (``jax.jit``);
torch eager.
"""

from __future__ import annotations

import numpy as np

from customlayers._keras import BACKEND
from customlayers.testing.convert import to_numpy


def _np(t):
    return None if t is None else to_numpy(t)


def second_order(layer, x, g, vs, mode="eager"):
    """``(first, second)``: lists (input first, then each trainable weight)
    of the first-order gradients of ``<g, layer(x)>`` and of the
    Hessian-vector products along ``vs``, as NumPy arrays or ``None``."""
    if BACKEND == "jax":
        return _jax_second_order(layer, x, g, vs, mode)
    if BACKEND == "torch":
        return _torch_second_order(layer, x, g, vs)
    return _tf_second_order(layer, x, g, vs, mode)


def jvp(layer, x, v, g, mode="eager"):
    """``(y, jv, vjp)``: the output, ``J v`` for the input direction ``v``
    (weights held fixed) and ``J^T g``, as NumPy arrays."""
    if BACKEND == "jax":
        return _jax_jvp(layer, x, v, g, mode)
    if BACKEND == "torch":
        return _torch_jvp(layer, x, v, g)
    return _tf_jvp(layer, x, v, g, mode)


def hvp_forward_over_reverse(layer, x, g, vs, mode="eager"):
    """``H v`` of ``<g, layer(x)>`` with respect to the input and every
    trainable weight, along ``vs`` (one direction per argument, input
    first): forward mode over the reverse-mode gradient. A list of NumPy
    arrays, ``None`` where the gradient does not depend on that argument
    (TensorFlow)."""
    if BACKEND == "jax":
        return _jax_fwd_over_rev(layer, x, g, vs, mode)
    if BACKEND == "torch":
        return _torch_fwd_over_rev(layer, x, g, vs)
    return _tf_fwd_over_rev(layer, x, g, vs, mode)


def jacobian(layer, x, mode="eager"):
    """``d layer(x) / d x`` (shape ``out.shape + x.shape``) through the
    backend's vectorised Jacobian, as a NumPy array."""
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp
        call, values = _jax_call(layer)
        fn = jax.jacrev(lambda x: call(x, values))
        if mode == "compiled":
            fn = jax.jit(fn)
        return _np(fn(jnp.asarray(x)))
    if BACKEND == "torch":
        import torch

        from customlayers.testing.backends import _torch_tensor
        return _np(torch.autograd.functional.jacobian(
            lambda t: layer(t), _torch_tensor(x), vectorize=True))
    import tensorflow as tf

    def fn(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        return tape.jacobian(y, x, experimental_use_pfor=True,
                             unconnected_gradients=tf.UnconnectedGradients.ZERO)

    return _np(_tf_wrap(fn, mode)(_tf_tensor(x)))


#: The Hessian property takes the first this-many flat input elements.
HESSIAN_MAX = 48


def hessian(layer, x, g, mode="eager", k=HESSIAN_MAX):
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
        call, values = _jax_call(layer)
        gj, restj = jnp.asarray(g), jnp.asarray(rest)

        def h(xs):
            y = call(jnp.concatenate([xs, restj]).reshape(x.shape), values)
            return jnp.sum(y * gj.astype(y.dtype))

        fn = jax.hessian(h)
        if mode == "compiled":
            fn = jax.jit(fn)
        return _np(fn(jnp.asarray(head)))
    if BACKEND == "torch":
        import torch

        from customlayers.testing.backends import _torch_tensor
        gt, restt = _torch_tensor(g), _torch_tensor(rest)

        def h(xs):
            y = layer(torch.cat([xs, restt]).reshape(x.shape))
            return torch.sum(y * gt.to(y.dtype))

        return _np(torch.func.hessian(h)(_torch_tensor(head)))
    import tensorflow as tf

    def h(xs, g, rest):
        y = layer(tf.reshape(tf.concat([xs, rest], 0), x.shape))
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
    return _np(_tf_wrap(fn, mode)(_tf_tensor(head), _tf_tensor(g),
                                  _tf_tensor(rest)))


# -- TensorFlow ----------------------------------------------------------------

def _tf_wrap(fn, mode):
    import tensorflow as tf
    if mode == "graph":
        return tf.function(fn, autograph=False)
    if mode == "compiled":
        return tf.function(fn, autograph=False, jit_compile=True)
    return fn


def _tf_tensor(a):
    import tensorflow as tf

    from customlayers.testing.convert import input_tensor
    return tf.convert_to_tensor(input_tensor(np.asarray(a)))


def _tf_second_order(layer, x, g, vs, mode):
    import tensorflow as tf
    weights = list(layer.trainable_weights)

    def fn(x, g, vs):
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = layer(x)
            first = inner.gradient(y, [x] + weights, output_gradients=g)
            terms = [tf.reduce_sum(f * tf.cast(v, f.dtype))
                     for f, v in zip(first, vs) if f is not None]
            h = tf.add_n(terms) if terms else None
        second = ([None] * len(first) if h is None else
                  outer.gradient(h, [x] + weights))
        return first, second

    first, second = _tf_wrap(fn, mode)(
        _tf_tensor(x), _tf_tensor(g), [_tf_tensor(v) for v in vs])
    return [_np(t) for t in first], [_np(t) for t in second]


def _tf_jvp(layer, x, v, g, mode):
    import tensorflow as tf

    def fn(x, v, g):
        with tf.autodiff.ForwardAccumulator(x, v) as acc:
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
        jv = acc.jvp(y, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return y, jv, tape.gradient(y, x, output_gradients=g)

    y, jv, vjp = _tf_wrap(fn, mode)(_tf_tensor(x), _tf_tensor(v),
                                    _tf_tensor(g))
    return _np(y), _np(jv), _np(vjp)


def _tf_fwd_over_rev(layer, x, g, vs, mode):
    import tensorflow as tf
    weights = list(layer.trainable_weights)
    # The tf.Variable under a Keras 3 variable (Keras 2's are tf.Variables).
    primals = [getattr(w, "value", w) if not callable(getattr(
        w, "value", None)) else w for w in weights]

    def fn(x, g, vs):
        with tf.autodiff.ForwardAccumulator([x] + primals, vs) as acc:
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
            grads = tape.gradient(y, [x] + weights,
                                  output_gradients=tf.cast(g, y.dtype))
        return [None if gr is None else acc.jvp(
            gr, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            for gr in grads]

    xt = _tf_tensor(x)
    vs = [tf.cast(_tf_tensor(v), d) for v, d in zip(
        vs, [xt.dtype] + [p.dtype for p in primals])]
    return [_np(t) for t in _tf_wrap(fn, mode)(xt, _tf_tensor(g), vs)]


# -- JAX -------------------------------------------------------------------------

def _jax_call(layer):
    import keras
    weights = list(layer.trainable_variables)
    non_trainable = [(v, v.value) for v in layer.non_trainable_variables]

    def call(x, values):
        mapping = list(zip(weights, values)) + non_trainable
        with keras.StatelessScope(state_mapping=mapping):
            return layer(x)

    return call, [w.value for w in weights]


def _jax_second_order(layer, x, g, vs, mode):
    import jax
    import jax.numpy as jnp
    call, values = _jax_call(layer)
    g = jnp.asarray(g)

    def f(x, values):
        y = call(x, values)
        return jnp.sum(y * g.astype(y.dtype))

    def both(x, values, vs):
        grad = jax.grad(f, argnums=(0, 1))

        def h(x, values):
            gx, gw = grad(x, values)
            flat = [gx] + list(gw)
            return sum(jnp.sum(a * b.astype(a.dtype))
                       for a, b in zip(flat, vs))

        gx, gw = grad(x, values)
        sx, sw = jax.grad(h, argnums=(0, 1))(x, values)
        return [gx] + list(gw), [sx] + list(sw)

    if mode == "compiled":
        both = jax.jit(both)
    first, second = both(jnp.asarray(x), values, [jnp.asarray(v) for v in vs])
    return [_np(t) for t in first], [_np(t) for t in second]


def _jax_jvp(layer, x, v, g, mode):
    import jax
    import jax.numpy as jnp
    call, values = _jax_call(layer)

    def fn(x, v, g):
        f = lambda x: call(x, values)  # noqa: E731
        y, jv = jax.jvp(f, (x,), (v.astype(x.dtype),))
        _, pull = jax.vjp(f, x)
        (vjp,) = pull(g.astype(y.dtype))
        return y, jv, vjp

    if mode == "compiled":
        fn = jax.jit(fn)
    y, jv, vjp = fn(jnp.asarray(x), jnp.asarray(v), jnp.asarray(g))
    return _np(y), _np(jv), _np(vjp)


def _jax_fwd_over_rev(layer, x, g, vs, mode):
    import jax
    import jax.numpy as jnp
    call, values = _jax_call(layer)

    def fn(x, g, values, vs):
        def grads(x, values):
            def h(x, values):
                y = call(x, values)
                return jnp.sum(y * g.astype(y.dtype))
            return jax.grad(h, argnums=(0, 1))(x, values)
        tangents = (vs[0].astype(x.dtype),
                    [v.astype(w.dtype) for v, w in zip(vs[1:], values)])
        _, (tx, tw) = jax.jvp(grads, (x, values), tangents)
        return [tx] + list(tw)

    if mode == "compiled":
        fn = jax.jit(fn)
    return [_np(t) for t in fn(jnp.asarray(x), jnp.asarray(g), values,
                               [jnp.asarray(v) for v in vs])]


# -- torch -----------------------------------------------------------------------

def _torch_second_order(layer, x, g, vs):
    import torch

    from customlayers.testing.backends import _torch_tensor
    xt = _torch_tensor(x).detach().requires_grad_(True)
    params = [w.value for w in layer.trainable_variables]
    y = layer(xt)
    gt = _torch_tensor(g).to(y.dtype)
    first = torch.autograd.grad(y, [xt] + params, grad_outputs=gt,
                                create_graph=True, allow_unused=True)
    terms = [torch.sum(f * _torch_tensor(v).to(f.dtype))
             for f, v in zip(first, vs) if f is not None]
    h = sum(terms) if terms else None
    if h is None or not h.requires_grad:
        second = [None] * len(first)
    else:
        second = torch.autograd.grad(h, [xt] + params, allow_unused=True)
    return [_np(t) for t in first], [_np(t) for t in second]


def _torch_jvp(layer, x, v, g):
    import torch

    from customlayers.testing.backends import _torch_tensor
    xt = _torch_tensor(x)
    # J v in forward mode (torch.func.jvp: dual tensors through each op's
    # forward derivative, a custom autograd.Function's ``jvp`` included).
    y, jv = torch.func.jvp(lambda t: layer(t), (xt,),
                           (_torch_tensor(v).to(xt.dtype),))
    xr = xt.detach().requires_grad_(True)
    yr = layer(xr)
    (vjp,) = torch.autograd.grad(yr, xr, grad_outputs=_torch_tensor(g).to(
        yr.dtype))
    return _np(y), _np(jv), _np(vjp)


def _torch_fwd_over_rev(layer, x, g, vs):
    import keras
    import torch

    from customlayers.testing.backends import _torch_tensor
    weights = list(layer.trainable_variables)
    xt, gt = _torch_tensor(x), _torch_tensor(g)
    values = [w.value.detach() for w in weights]

    def grads(x, values):
        def h(x, values):
            with keras.StatelessScope(state_mapping=list(zip(weights,
                                                             values))):
                y = layer(x)
            return torch.sum(y * gt.to(y.dtype))
        return torch.func.grad(h, argnums=(0, 1))(x, values)

    tangents = (_torch_tensor(vs[0]).to(xt.dtype),
                [_torch_tensor(v).to(w.dtype) for v, w in zip(vs[1:],
                                                              values)])
    # Forward over reverse: torch.func.jvp of torch.func.grad.
    _, (tx, tw) = torch.func.jvp(grads, (xt, values), tangents)
    return [_np(t) for t in [tx] + list(tw)]
