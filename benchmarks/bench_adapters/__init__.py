"""Role: pick the adapter of the running Keras backend and build one group's
steps. Each adapter module (one per backend) builds zero-argument step
callables for the ``custom``, ``builtin`` and ``bare`` impls and knows how to
wait for its device (``sync``)."""

from __future__ import annotations

from bench_adapters.common import call_kwargs, make_layers
from bench_matrix import BACKEND

_adapter = None


def adapter(torch_compile=False):
    """The adapter of the running backend (created once per process)."""
    global _adapter
    if _adapter is None:
        if BACKEND == "tensorflow":
            from bench_adapters.tensorflow_adapter import TensorFlowAdapter
            _adapter = TensorFlowAdapter()
        elif BACKEND == "jax":
            from bench_adapters.jax_adapter import JaxAdapter
            _adapter = JaxAdapter()
        elif BACKEND == "torch":
            from bench_adapters.torch_adapter import TorchAdapter
            _adapter = TorchAdapter(torch_compile)
        else:
            raise RuntimeError(f"unsupported Keras backend {BACKEND!r}; "
                               "expected tensorflow, jax or torch")
    return _adapter


def build_steps(layer, shape, policy, pass_, mode, torch_compile=False):
    """{impl: zero-argument step} for one group, and the FLOPs of one step."""
    ad = adapter(torch_compile)
    custom, builtin, x, g, weights = make_layers(layer, shape, policy)
    kw = call_kwargs(layer)
    steps = {
        impl: ad.build(impl, layer, lay, pass_, mode, x, g, weights, policy,
                       call_kwargs=kw)
        for impl, lay in (("custom", custom), ("builtin", builtin),
                          ("bare", None))
    }
    if layer == "dense":
        b, i, o = shape
        flops = 2 * b * i * o * {"forward": 1, "fwdbwd": 3, "train": 2}[pass_]
    else:
        flops = 0
    return steps, flops, ad.sync
