"""torch's second-order, forward-mode, Hessian and Jacobian derivatives,
eager and compiled, for :mod:`customlayers.testing.autodiff`,
:mod:`~customlayers.testing.forward_mode` and
:mod:`~customlayers.testing.hessian_api` (which dispatch here on torch).

Eager mode: ``torch.autograd.grad`` (``create_graph=True`` for reverse
over reverse), ``torch.func.jvp`` / ``vjp`` / ``grad`` / ``hessian``,
``torch.autograd.functional.jacobian(vectorize=True)``, as before.

Compiled mode: the whole derivative is one ``torch.func`` program
compiled by ``torch.compile`` (:func:`~customlayers.testing.torch_compile.
run_compiled`: ``fullgraph=True``, its own code object, a graph or an
error, never eager), the layer inside as a function of its weight values:

- reverse over reverse: ``torch.func.grad`` of ``torch.func.grad``
  (AOTAutograd has no double backward: ``torch.autograd.grad(...,
  create_graph=True)`` through a compiled forward raises "torch.compile
  with aot_autograd does not currently support double backward"), so an
  argument the gradient does not depend on gives zeros, not ``None`` (as
  on JAX);
- forward over reverse, JVPs, ``J_W v``, the Hessian: ``torch.func.jvp``
  of ``torch.func.grad``, ``torch.func.jvp`` with ``torch.func.vjp``,
  ``torch.func.hessian``, inside the compiled function (a ``torch.func``
  transform *of* a compiled function is refused: "Calling
  torch.func.jvp(compiled_fn) function from eager mode is not supported");
- the vectorised Jacobian: ``torch.func.jacrev`` (``vmap`` of the VJP,
  what ``autograd.functional.jacobian(vectorize=True)`` runs; that
  function itself graph-breaks under Dynamo).

``tests/property/test_torch_compile.py`` demonstrates each refusal.
"""

from __future__ import annotations

from customlayers.testing.calls import caller, functional, np_or_none


def _tensor(a):
    from customlayers.testing.backends import _torch_tensor
    return _torch_tensor(a)


def _compiled(fn, *args, name):
    from customlayers.testing.torch_compile import run_compiled
    return run_compiled(fn, *args, name=name)


def _own(vs, ids):
    return vs[1:] if ids else vs


def second_order(layer, x, g, vs, mode, training, ids):
    """``(first, second)`` as :func:`customlayers.testing.autodiff.
    second_order` wants them (input first unless ``ids``), as tensors or
    ``None``."""
    import torch
    if mode == "compiled":
        call, values = functional(layer, training)
        argnums = (1,) if ids else (0, 1)

        def both(x, values, directions, g):
            def h(x, values):
                y = call(x, values)
                return torch.sum(y * g.to(y.dtype))

            def flat(r):
                return list(r[0]) if ids else [r[0]] + list(r[1])

            grad = torch.func.grad(h, argnums=argnums)

            def inner(x, values):
                return sum(torch.sum(a * b.to(a.dtype)) for a, b in
                           zip(flat(grad(x, values)), directions))

            return (flat(grad(x, values)),
                    flat(torch.func.grad(inner, argnums=argnums)(x, values)))

        return _compiled(both, _tensor(x), [v.detach() for v in values],
                         [_tensor(v) for v in _own(vs, ids)], _tensor(g),
                         name="customlayers_second_order")
    xt = _tensor(x).detach()
    if not ids:  # torch refuses requires_grad on an integer tensor
        xt = xt.requires_grad_(True)
    params = [w.value for w in layer.trainable_variables]
    sources = params if ids else [xt] + params
    y = caller(layer, training)(xt)
    gt = _tensor(g).to(y.dtype)
    first = torch.autograd.grad(y, sources, grad_outputs=gt,
                                create_graph=True, allow_unused=True)
    terms = [torch.sum(f * _tensor(v).to(f.dtype))
             for f, v in zip(first, _own(vs, ids)) if f is not None]
    h = sum(terms) if terms else None
    if h is None or not h.requires_grad:
        second = [None] * len(first)
    else:
        second = torch.autograd.grad(h, sources, allow_unused=True)
    return first, second


def fwd_over_rev(layer, x, g, vs, mode, training, ids):
    """``H v`` by ``torch.func.jvp`` of ``torch.func.grad`` (input first
    unless ``ids``)."""
    import torch
    call, values = functional(layer, training)

    def run(x, g, values, tangents):
        def h(x, values):
            y = call(x, values)
            return torch.sum(y * g.to(y.dtype))

        weight_tangents = [t.to(w.dtype) for t, w in
                           zip(tangents if ids else tangents[1:], values)]
        if ids:  # the weights only: x is a constant
            grads = torch.func.grad(lambda values: h(x, values))
            _, tw = torch.func.jvp(grads, (values,), (weight_tangents,))
            return list(tw)
        grads = torch.func.grad(h, argnums=(0, 1))
        _, (tx, tw) = torch.func.jvp(
            grads, (x, values), (tangents[0].to(x.dtype), weight_tangents))
        return [tx] + list(tw)

    args = (_tensor(x), _tensor(g), [v.detach() for v in values],
            [_tensor(v) for v in _own(vs, ids)])
    if mode == "compiled":
        return _compiled(run, *args, name="customlayers_fwd_over_rev")
    return run(*args)


def jvp(layer, x, v, g, mode, training):
    """``(y, J v, J^T g)`` along the input, as NumPy arrays."""
    import torch
    call = caller(layer, training)
    if mode == "compiled":
        def run(x, v, g):
            y, jv = torch.func.jvp(call, (x,), (v.to(x.dtype),))
            _, pull = torch.func.vjp(call, x)
            (vjp,) = pull(g.to(y.dtype))
            return y, jv, vjp

        out = _compiled(run, _tensor(x), _tensor(v), _tensor(g),
                        name="customlayers_jvp")
        return tuple(np_or_none(t) for t in out)
    xt = _tensor(x)
    # J v in forward mode (torch.func.jvp: dual tensors through each op's
    # forward derivative, a custom autograd.Function's ``jvp`` included).
    y, jv = torch.func.jvp(lambda t: call(t), (xt,),
                           (_tensor(v).to(xt.dtype),))
    xr = xt.detach().requires_grad_(True)
    yr = call(xr)
    (vjp,) = torch.autograd.grad(yr, xr, grad_outputs=_tensor(g).to(
        yr.dtype))
    return np_or_none(y), np_or_none(jv), np_or_none(vjp)


def jvp_weights(layer, x, vs, g, mode, training):
    """``(y, J_W v, [J_W^T g, ...])`` as tensors."""
    import torch
    call, values = functional(layer, training)

    def run(x, values, tangents, g):
        f = lambda *values: call(x, list(values))  # noqa: E731
        tangents = tuple(t.to(w.dtype) for t, w in zip(tangents, values))
        y, jv = torch.func.jvp(f, tuple(values), tangents)
        _, pull = torch.func.vjp(f, *values)
        return y, jv, list(pull(g.to(y.dtype)))

    args = (_tensor(x), [v.detach() for v in values],
            [_tensor(v) for v in vs], _tensor(g))
    if mode == "compiled":
        return _compiled(run, *args, name="customlayers_jvp_weights")
    return run(*args)


def hessian(layer, x_shape, head, rest, g, mode, training):
    """``torch.func.hessian`` of ``<g, layer(concat(head, rest))>`` along
    ``head``, as a NumPy array."""
    import torch
    call = caller(layer, training)

    def run(head, rest, g):
        def h(xs):
            y = call(torch.cat([xs, rest]).reshape(x_shape))
            return torch.sum(y * g.to(y.dtype))
        return torch.func.hessian(h)(head)

    args = (_tensor(head), _tensor(rest), _tensor(g))
    if mode == "compiled":
        return np_or_none(_compiled(run, *args, name="customlayers_hessian"))
    return np_or_none(run(*args))


def jacobian(layer, x, mode, training):
    """The input Jacobian, vectorised, as a NumPy array."""
    import torch
    call = caller(layer, training)
    if mode == "compiled":
        return np_or_none(_compiled(
            lambda x: torch.func.jacrev(call)(x), _tensor(x),
            name="customlayers_jacobian"))
    return np_or_none(torch.autograd.functional.jacobian(
        lambda t: call(t), _tensor(x), vectorize=True))
