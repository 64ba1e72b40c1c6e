"""Planted bugs that only torch's compiled mode (``torch.compile``) can
see (tests/meta_tests/test_torch_compile_bugs.py): each is right in eager
mode, on every backend, and wrong or uncompilable under ``torch.compile``.
"""

from __future__ import annotations

from customlayers import LayerNormalization, ReLU
from customlayers._keras import BACKEND, ops


def compiling() -> bool:
    """Whether ``torch.compile`` is tracing this call (never on
    TensorFlow or JAX)."""
    if BACKEND != "torch":
        return False
    import torch
    return torch.compiler.is_compiling()


class CompiledFastPathReLU(ReLU):
    """A ``torch.compile`` fast path (``torch.compiler.is_compiling()``, a
    branch the way libraries write them) for plain ``max(x, 0)``, written
    as ``maximum(x, 0)``: the same values, but ATen's maximum splits the
    gradient at a tie, ``g / 2`` at ``x == 0`` where relu's is 0. Eager
    calls take the real layer's path."""

    def call(self, inputs):
        if compiling() and self.max_value is None and \
                not self.negative_slope and not self.threshold:
            return ops.maximum(inputs, ops.zeros_like(inputs))
        return super().call(inputs)


class TrackedAxisLayerNormalization(LayerNormalization):
    """Reduces over ``self.axis`` as Keras stores it, a ``TrackedList``
    (what customlayers.LayerNormalization did until torch's compiled mode
    found it): the same values everywhere, but ``torch.compile`` cannot
    pass a list subclass to ``torch.mean``, so the layer's graph breaks
    where the built-in's compiles."""

    def _moments(self, x, axis):
        return LayerNormalization._moments(x, self.axis)
