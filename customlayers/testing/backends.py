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
- PyTorch: ``torch.autograd.grad``; modes ``eager`` and ``compiled``
  (``torch.compile``, inductor: the layer call compiled with
  ``fullgraph=True``, its backward compiled by AOTAutograd, never silently
  eager; :mod:`customlayers.testing.torch_compile`). ``graph`` does not
  exist here.

Unsupported modes come with a reason (:func:`supported_modes`), which the
test suite prints as its skip reason.

Compiled once per signature: in ``graph`` and ``compiled`` mode (Keras 3,
TensorFlow, JAX or torch) the traced function is cached and reused by every later
layer with the same :func:`signature` (class, config, dtype policy, mode,
input and upstream shape and dtype, variables' shapes and dtypes). It calls
the first such layer (the *template*) statelessly, with the later layer's
variable values passed in as arguments (what ``layer.stateless_call``
does, through ``__call__`` for its casting), so a new example with new
weights re-runs a traced (and, under XLA, ``jax.jit`` or ``torch.compile``,
compiled) program
instead of tracing and compiling it again. In graph mode (and torch's
compiled mode) a pair is traced together (:func:`forward_backward_pair`):
one trace for both layers; under XLA each layer has its own program, as a
user's model would (one program for both rounded one differently on
TF 2.18.1). Nothing
is padded and shapes stay static, so every example computes exactly what
the per-example path computes, bit for bit (tests/property/
test_signature_cache.py); Hypothesis repeats (kwargs, shape) often enough
(it mutates earlier examples) that about half the examples reuse a
program. Eager mode and Keras 2 keep the per-example path (torch's
compiled per-example path, for a layer without a signature, compiles a
one-off function the same way).
"""

from __future__ import annotations

import dataclasses

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
    #: ``"sparse"`` for a weight gradient the backend gave as
    #: ``tf.IndexedSlices`` (densified above), else ``"dense"``.
    weight_grad_forms: list = dataclasses.field(default_factory=list)


def is_ids(x) -> bool:
    """Whether ``x`` is an integer or boolean array: ids (or flags), with
    no derivative, so the harness differentiates the weights only and
    reports ``grad[input]`` as n/a. ``x`` is a concrete array (it is
    converted with NumPy): decide before tracing, never on a tracer."""
    return np.asarray(x).dtype.kind in "iub"


_UNSUPPORTED = {
    "jax": {
        "graph": "graph mode is TensorFlow's tf.function; JAX has only "
                 "eager and jit",
    },
    "torch": {
        "graph": "graph mode is TensorFlow's tf.function; PyTorch has "
                 "only eager and compiled (torch.compile)",
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


def _form(g) -> str:
    return "sparse" if type(g).__name__ == "IndexedSlices" else "dense"


def _dense(g):
    """A gradient as a dense array: a ``tf.IndexedSlices`` (a gather's
    gradient) is densified by TensorFlow's own conversion (a segment sum of
    its rows: repeated indices add)."""
    if _form(g) == "sparse":
        import tensorflow as tf
        g = tf.convert_to_tensor(g)
    return _to_numpy(g)


def _result(y, input_grad, weight_grads, weights, losses):
    """A :class:`ForwardBackward` of NumPy arrays, whatever the backend."""
    return ForwardBackward(
        output=_to_numpy(y),
        input_grad=None if input_grad is None else _to_numpy(input_grad),
        weight_grads=[_dense(g) for g in weight_grads],
        weight_names=[_weight_name(w) for w in weights],
        losses=losses,
        weight_grad_forms=[_form(g) for g in weight_grads],
    )


def call_kwargs(training) -> dict:
    """The call's keyword arguments for ``training`` (``None``: none)."""
    return {} if training is None else {"training": bool(training)}


def forward_backward(layer, x: np.ndarray, upstream: np.ndarray | None,
                     mode: str = "eager", training=None) -> ForwardBackward:
    """Run ``layer`` on ``x`` and differentiate ``sum(output * upstream)``.

    Args:
        layer: A built Keras layer.
        x: The input array.
        upstream: The cotangent of the output (its shape and dtype), or
            ``None`` for forward only.
        mode: One of :data:`MODES`.
        training: The ``training`` call argument (``None``: not passed).
    """
    reason = supported_modes().get(mode, f"unknown mode {mode!r}; expected "
                                         f"one of {MODES}")
    if reason:
        raise NotImplementedError(f"mode {mode!r}: {reason}")
    from customlayers.testing.compiled_cache import _forward_backward_cached
    cached = _forward_backward_cached([layer], x, upstream, mode,
                                      training=training)
    if cached is not None:
        return cached[0]
    kw = call_kwargs(training)
    if BACKEND == "jax":
        return _jax_forward_backward(layer, x, upstream, mode, kw)
    if BACKEND == "torch":
        return _torch_forward_backward(layer, x, upstream, mode, kw)
    return _tf_forward_backward(layer, x, upstream, mode, kw)


def _tf_forward_backward(layer, x, upstream, mode, kw=None):
    kw = kw or {}
    import tensorflow as tf

    # Every example traces a new tf.function on purpose (new layers, new
    # shapes); TensorFlow's "excessive retracing" warning is expected here.
    tf.get_logger().setLevel("ERROR")

    weights = list(layer.trainable_weights)
    ids = is_ids(x)

    def fn(x, g):
        with tf.GradientTape() as tape:
            if not ids:
                tape.watch(x)
            y = layer(x, **kw)
        if g is None:
            return y, []
        # A weight the output does not depend on gets None here (Keras
        # variables do not support UnconnectedGradients.ZERO); it becomes
        # zeros below, so a stopped gradient compares as 0, not as a crash.
        sources = weights if ids else [x] + weights
        grads = tape.gradient(y, sources, output_gradients=g)
        grads = [tf.zeros_like(v) if gr is None else gr
                 for v, gr in zip(sources, grads)]
        return y, [None] + grads if ids else grads

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


def _jax_forward_backward(layer, x, upstream, mode, kw=None):
    kw = kw or {}
    import jax
    import jax.numpy as jnp

    import keras

    weights = list(layer.trainable_variables)
    non_trainable = [(v, v.value) for v in layer.non_trainable_variables]
    # Decided here, on the concrete input: inside ``fn`` under ``jax.jit``
    # ``x`` is a tracer, which NumPy cannot convert.
    ids = is_ids(x)

    def fn(x, g, values):
        def f(x, values):
            # What layer.stateless_call does, but through __call__: that
            # call skips __call__'s input casting and variable autocasting,
            # so a mixed_float16 layer would compute in float32.
            mapping = list(zip(weights, values)) + non_trainable
            with keras.StatelessScope(state_mapping=mapping):
                return layer(x, **kw)

        if g is None:
            return f(x, values), None, []
        if ids:  # no input cotangent (JAX's would be float0)
            y, vjp = jax.vjp(lambda values: f(x, values), values)
            (gw,) = vjp(g)
            return y, None, list(gw)
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
        layer(xt, **kw)  # a plain call, to read the losses as TF does
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


def _torch_forward_backward(layer, x, upstream, mode, kw=None):
    kw = kw or {}
    import torch
    if mode == "compiled":  # a layer without a signature: compiled once
        from customlayers.testing.torch_compile import traced
        values = [([v.value for v in layer.trainable_variables],
                   [v.value for v in layer.non_trainable_variables])]
        ((y, gx, gws),) = traced([layer], x, upstream, kw)(x, upstream,
                                                           values)
        return _result(y, gx, gws, list(layer.trainable_variables), [])

    weights = list(layer.trainable_variables)
    ids = is_ids(x)
    xt = _torch_tensor(x).detach()
    if not ids:  # torch refuses requires_grad on an integer tensor
        xt = xt.requires_grad_(True)
    y = layer(xt, **kw)
    grads = []
    if upstream is not None:
        params = [w.value for w in weights]
        sources = params if ids else [xt] + params
        # The cotangent in the output's dtype (see the JAX path).
        g = _torch_tensor(upstream).to(y.dtype)
        grads = torch.autograd.grad(y, sources, grad_outputs=g,
                                    allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g
                 for g, p in zip(grads, sources)]
        if ids:
            grads = [None] + grads
    losses = [float(_to_numpy(v)) for v in layer.losses]
    return _result(y, grads[0] if grads else None, grads[1:], weights,
                   losses)


# The compiled-once cache (customlayers/testing/compiled_cache.py), under
# the names the harness and tests use here.
from customlayers.testing.compiled_cache import (  # noqa: E402
    CACHE_SIZE, CACHE_STATS, clear_cache, forward_backward_pair, signature)

__all__ = ["CACHE_SIZE", "CACHE_STATS", "ForwardBackward", "MODES",
           "call_kwargs", "clear_cache", "device", "forward_backward",
           "is_ids",
           "forward_backward_pair", "signature", "supported_modes",
           "torch_on_cuda"]
