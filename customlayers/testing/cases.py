"""customlayers' own layer pairs, each declared once, as data.

Every generic property (:mod:`customlayers.testing.properties`) runs for
each :class:`~customlayers.testing.LayerCase` here, exactly as it runs for a
user's case: what is special about a pair (its arguments, kinks, known
differences, error inputs) is in its declaration, not in the properties.
:data:`CASES` is read, never written, by ``verify`` and the tests.
"""

from __future__ import annotations

import types

import customlayers
from customlayers._keras import BACKEND, DENSE_UNITS_ONLY_KERAS2_ACCEPTS, keras
from customlayers.testing import strategies as cst
from customlayers.testing.declarations import (ErrorInput, KnownDifference,
                                               LayerCase)
from customlayers.testing.properties import names_value

def _dense_smooth(kwargs):
    act = kwargs.get("activation")
    if act in ("relu", "elu", None):
        # relu has a kink at 0; elu's second derivative jumps there. Keep the
        # numeric check to functions whose central difference is O(h**2).
        act = "tanh"
    # Regularizers add losses, not outputs; constraints act on the weights
    # after a step: neither is part of the function differentiated here.
    none = {k: None for k in ("kernel_regularizer", "bias_regularizer",
                              "activity_regularizer", "kernel_constraint",
                              "bias_constraint")}
    return {**kwargs, **none, "activation": act}


def _relu_kinks(kwargs):
    kinks = [0.0, kwargs["threshold"]]
    if kwargs["max_value"] is not None:
        kinks.append(kwargs["max_value"])
    return tuple(kinks)


def _refused(name, value, reference_raises=True, why=""):
    return ErrorInput({name: value}, ValueError, names_value(name, value),
                      reference_raises=reference_raises, why=why)


DENSE = LayerCase(
    name="Dense",
    custom=customlayers.Dense,
    reference=keras.layers.Dense,
    init_kwargs=cst.draw_dense_kwargs,
    kinks=lambda kwargs: (0.0,),
    smooth_kwargs=_dense_smooth,
    # Same matmul and add as keras.layers.Dense on every backend.
    exact=True,
    error_inputs=tuple(
        _refused("units", u) for u in (0, -1, -64, 2.5, None, "8")
        if u not in DENSE_UNITS_ONLY_KERAS2_ACCEPTS) + (
        _refused("units", True, False,
                 "a bool is not a number of units (Keras accepts it as 1)"),
    ) + tuple(
        _refused("units", u, False, "Keras 2 accepts it through int(units); "
                 "Keras 3 and customlayers.Dense refuse it")
        for u in DENSE_UNITS_ONLY_KERAS2_ACCEPTS),
    example_kwargs={"units": 1},
)

def _tensorflow_eager_or_graph(policy: str, mode: str) -> bool:
    """Where TensorFlow's own (non-XLA) ReLU kernels run."""
    return BACKEND == "tensorflow" and mode in ("eager", "graph")


_RELU_SIGN_OF_ZERO = KnownDifference(
    what="signed_zeros",
    checks=("grad[input]", "jvp"),
    backends=("tensorflow",),
    modes=("eager", "graph"),
    why="TensorFlow's non-XLA activation-gradient kernels (ReluGrad, "
        "Relu6Grad) compute g * mask, so a masked-out g < 0 gives -0.0, "
        "where XLA selects +0.0. customlayers.ReLU's hand-written gradients "
        "(relu6 at max_value == 6, threshold, leaky) are one select each "
        "(+0.0, as XLA; mode 'compiled' is compared with signs of zero), "
        "while its plain max(x, 0) runs on the same Relu/ReluGrad kernels "
        "as the built-in (tests/property/test_kernels.py checks them "
        "against the elementary formula). The same holds for the forward-"
        "mode derivative (JVP), which TensorFlow takes from those gradient "
        "kernels (t * mask) for the built-in and from a select for ours. "
        "Only the -0.0 vs +0.0 of the input gradient and the JVP is "
        "relaxed; forward values are compared bit for bit.",
)


_RELU_SUBNORMALS = KnownDifference(
    what="subnormals",
    checks=("output", "grad[input]"),
    backends=("tensorflow",),
    modes=("eager", "graph"),
    why="TensorFlow runs its CPU kernels with flush-to-zero (and "
        "denormals-are-zero) on its worker threads but not always on the "
        "calling thread, so whether a subnormal survives a kernel depends "
        "on which thread ran it (seen both ways in one process). The "
        "built-in's ReluGrad multiplies the upstream gradient by the mask, "
        "and customlayers.ReLU's bfloat16 relu6 computes max/min in float32 "
        "(where a bfloat16 subnormal is a float32 subnormal too), so a "
        "subnormal input or upstream gradient can come out flushed on one "
        "side only. In eager and graph mode subnormals therefore compare "
        "as zero in the output and the input gradient; every other value "
        "is compared bit for bit, and 'compiled' compares subnormals too.",
)

_RELU_XLA_SECOND_ORDER_SIGN = KnownDifference(
    what="signed_zeros",
    checks=("hvp[input]", "hvp_fwd[input]", "hessian[input]"),
    backends=("tensorflow",),
    modes=("compiled",),
    when=lambda kwargs, x: bool(kwargs.get("negative_slope")),
    why="With a negative_slope the built-in and customlayers.ReLU both "
        "compute x - slope * relu(threshold - x), whose second derivative "
        "is identically zero. Under XLA the built-in's zero (the constant "
        "of TensorFlow's registered ReluGradGrad) is folded away before "
        "the negation of -x and comes out +0.0; ours is a zeros_like from "
        "the hand-written gradient's own gradient, negated to -0.0. Only "
        "the sign of that zero is relaxed, only for the input's "
        "Hessian-vector product under XLA; its values (all zeros) and "
        "every other mode are compared bit for bit.",
)

_RELU_TORCH_FORWARD_SECOND_ORDER_SIGN = KnownDifference(
    what="signed_zeros",
    checks=("hvp_fwd[input]", "hessian[input]"),
    backends=("torch",),
    when=lambda kwargs, x: bool(kwargs.get("negative_slope")),
    why="The torch face of the XLA difference above: with a negative_slope "
        "(and a threshold or max_value) the built-in computes x - slope * "
        "relu(threshold - x), whose second derivative is identically zero; "
        "torch.func's forward mode over the reverse-mode gradient carries "
        "that zero through the negation and returns -0.0, where "
        "customlayers.ReLU's hand-written gradient (an autograd.Function "
        "whose jvp is the gradient itself, zero in x) gives +0.0. Found when "
        "the forward-over-reverse and Hessian-API checks moved to torch.func "
        "(ReLU(max_value=6, negative_slope=0.1, threshold=0.5), input (1, "
        "1)). Only the sign of those zeros is relaxed, only on torch; the "
        "reverse-over-reverse products are compared with their signs.",
)

RELU = LayerCase(
    name="ReLU",
    custom=customlayers.ReLU,
    reference=keras.layers.ReLU,
    init_kwargs=cst.draw_relu_kwargs,
    kinks=_relu_kinks,
    exact=True,
    error_inputs=(
        _refused("max_value", -1.0),
        _refused("negative_slope", -0.5),
        _refused("negative_slope", None),
        _refused("threshold", -2.0),
        _refused("threshold", None),
        _refused("threshold", float("nan"), False,
                 "NaN compares false with everything, so a NaN threshold "
                 "would silently pass nothing through; Keras accepts it"),
        _refused("max_value", float("nan"), False,
                 "a NaN max_value would silently clip nothing; Keras "
                 "accepts it"),
    ),
    known_differences=(_RELU_SIGN_OF_ZERO, _RELU_SUBNORMALS,
                       _RELU_XLA_SECOND_ORDER_SIGN,
                       _RELU_TORCH_FORWARD_SECOND_ORDER_SIGN),
    example_kwargs={},
)

#: customlayers' own pairs, by name. Read-only: a user's case is passed to
#: ``verify.run(cases=[...])`` or the pytest plugin, never added here.
CASES = types.MappingProxyType({c.name: c for c in (DENSE, RELU)})
from customlayers.testing.cases_normalization import CASES as _NORMALIZATION  # noqa: E402,E501
CASES = types.MappingProxyType({**CASES, **_NORMALIZATION})
from customlayers.testing.cases_dropout import CASES as _DROPOUT  # noqa: E402
CASES = types.MappingProxyType({**CASES, **_DROPOUT})
from customlayers.testing.cases_embedding import CASES as _EMBEDDING  # noqa: E402,E501
CASES = types.MappingProxyType({**CASES, **_EMBEDDING})
from customlayers.testing.cases_batch_normalization import CASES as _BATCH_NORMALIZATION  # noqa: E402,E501
CASES = types.MappingProxyType({**CASES, **_BATCH_NORMALIZATION})
