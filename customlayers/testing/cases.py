"""Each (custom, reference) layer pair, declared once, as data.

The generic properties in :mod:`customlayers.testing.properties` loop over
:data:`CASES`. Adding a layer pair means adding one :class:`LayerCase`:
its constructor-argument drawer, its input drawer, its reference factory,
its kinks, and what is expected of it (bit-exactness, tolerances, known and
documented differences), attached here and not buried in test bodies.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import customlayers
from customlayers import _compat
from customlayers._compat import keras
from customlayers.testing import strategies as cst
from customlayers.testing.backends import torch_on_cuda
from customlayers.testing.tolerances import Tolerance


@dataclasses.dataclass(frozen=True)
class KnownDifference:
    """A documented, deliberate difference from the reference.

    ``applies(policy, mode)`` says where it holds; ``what`` is relaxed there
    (``"signed_zeros"``: ``-0.0`` vs ``+0.0`` is not counted).
    """

    what: str
    applies: Callable[[str, str], bool]
    why: str


@dataclasses.dataclass(frozen=True)
class LayerCase:
    """One layer pair under test.

    Attributes:
        name: Short name used in test ids and reports.
        custom: Factory (usually the class) of the layer under test.
        reference: Factory of the reference layer; same kwargs.
        draw_kwargs: ``f(data) -> dict`` of constructor arguments, labelled.
        draw_input_shape: ``f(data, kwargs) -> shape``.
        kinks: ``f(kwargs) -> values`` where the function is not smooth; the
            value strategy puts inputs exactly on them (and one ULP either
            side), the numeric gradient check keeps away from them.
        smooth_kwargs: ``f(kwargs) -> kwargs`` made smooth for the numeric
            gradient check (e.g. no ``relu`` activation inside Dense).
        invalid_kwargs: ``(kwargs, bad_name, bad_value)`` triples that the
            reference rejects; the custom layer must reject them too with a
            ``ValueError`` that names the argument and the value.
        stricter_kwargs: Triples the custom layer rejects on purpose although
            the reference accepts them (documented in its docstring).
        has_weights: Whether the layer has trainable weights (lazy build and
            the changed-last-dimension error apply).
        exact: ``f(policy, mode) -> bool``: are custom and reference expected
            to run the same kernels, hence agree bit for bit?
        tolerances: Per-dtype overrides of the tolerance table.
        known_differences: Documented deliberate differences.
        weight_map: Custom weights -> reference weights, when they differ.
        example_kwargs: Constructor arguments for one plain reference layer,
            used to ask which save formats apply (``save_unsupported``).
    """

    name: str
    custom: Callable
    reference: Callable
    draw_kwargs: Callable
    draw_input_shape: Callable
    kinks: Callable = lambda kwargs: ()
    smooth_kwargs: Callable = lambda kwargs: kwargs
    invalid_kwargs: tuple = ()
    stricter_kwargs: tuple = ()
    has_weights: bool = True
    exact: Callable = lambda policy, mode: True
    tolerances: Mapping[str, Tolerance] = dataclasses.field(
        default_factory=dict)
    known_differences: tuple = ()
    weight_map: Callable | None = None
    example_kwargs: Mapping = dataclasses.field(default_factory=dict)

    def save_unsupported(self, fmt: str) -> str | None:
        """Why a save/load round trip in ``fmt`` cannot apply to this pair
        on this Keras and backend (``None`` if it can)."""
        return _compat.save_format_unsupported(
            fmt, layer=self.reference(**self.example_kwargs))

    def signed_zeros(self, policy: str, mode: str) -> bool:
        """Whether the sign of zero is compared for this policy and mode."""
        return not any(d.what == "signed_zeros" and d.applies(policy, mode)
                       for d in self.known_differences)

    def flush_subnormals(self, policy: str, mode: str) -> bool:
        """Whether subnormals compare as zero for this policy and mode."""
        return any(d.what == "subnormals" and d.applies(policy, mode)
                   for d in self.known_differences)

    def tolerance(self, policy: str):
        """``None`` (bit-exact) or the per-dtype tolerance to use."""
        from customlayers.testing.tolerances import tolerance_for
        dtype = cst.compute_dtype(policy)
        return self.tolerances.get(dtype) or tolerance_for(dtype)


def _dense_shape(data, kwargs):
    return cst.draw_shape(data, max_size=cst.MAX_INPUT_SIZE)


def _relu_shape(data, kwargs):
    return cst.draw_shape(data, max_size=cst.MAX_INPUT_SIZE)


def _dense_smooth(kwargs):
    act = kwargs.get("activation")
    if act in ("relu", "elu", None):
        # relu has a kink at 0; elu's second derivative jumps there. Keep the
        # numeric check to functions whose central difference is O(h**2).
        act = "tanh"
    return {**kwargs, "activation": act}


def _relu_kinks(kwargs):
    kinks = [0.0, kwargs["threshold"]]
    if kwargs["max_value"] is not None:
        kinks.append(kwargs["max_value"])
    return tuple(kinks)


DENSE = LayerCase(
    name="Dense",
    custom=customlayers.Dense,
    reference=keras.layers.Dense,
    draw_kwargs=cst.draw_dense_kwargs,
    draw_input_shape=_dense_shape,
    kinks=lambda kwargs: (0.0,),
    smooth_kwargs=_dense_smooth,
    invalid_kwargs=tuple(
        ({"units": u}, "units", u) for u in (0, -1, -64, 2.5, None, "8")
        if u not in _compat.DENSE_UNITS_ONLY_KERAS2_ACCEPTS),
    stricter_kwargs=(({"units": True}, "units", True),) + tuple(
        ({"units": u}, "units", u)
        for u in _compat.DENSE_UNITS_ONLY_KERAS2_ACCEPTS),
    has_weights=True,
    example_kwargs={"units": 1},
)

def _tensorflow_eager_or_graph(policy: str, mode: str) -> bool:
    """Where TensorFlow's own (non-XLA) ReLU kernels run."""
    return _compat.BACKEND == "tensorflow" and mode in ("eager", "graph")


_RELU_SIGN_OF_ZERO = KnownDifference(
    what="signed_zeros",
    applies=_tensorflow_eager_or_graph,
    why="TensorFlow's non-XLA activation-gradient kernels (ReluGrad, "
        "Relu6Grad) compute g * mask, so a masked-out g < 0 gives -0.0, "
        "where XLA selects +0.0. customlayers.ReLU's hand-written gradients "
        "(relu6 at max_value == 6, threshold, leaky) are one select each "
        "(+0.0, as XLA; mode 'compiled' is compared with signs of zero), "
        "while its plain max(x, 0) -- the default configuration, and the "
        "relu step inside the others -- runs on the same Relu/ReluGrad "
        "kernels as the built-in (tests/property/test_kernels.py checks them "
        "against the elementary formula). Values are still compared exactly; "
        "only -0.0 vs +0.0 is not counted in eager and graph mode.",
)


_RELU_CUDA_SIGN_OF_ZERO = KnownDifference(
    what="signed_zeros",
    applies=lambda policy, mode: torch_on_cuda(),
    why="Found on an NVIDIA H200 (torch 2.11.0+cu130), not fixed yet: "
        "ATen's CUDA relu6 (hardtanh = clamp) returns +0.0 for -0.0, where "
        "its CPU kernels -- and customlayers.ReLU's elementary, where-based "
        "relu6 and clip -- keep -0.0 (minimal example: max_value=6, "
        "x=[[6.0, -0.13]]). Values and gradients are otherwise equal. The "
        "likely fix, taking those values from the same ATen clamp, needs a "
        "GPU session to verify; until then the sign of zero is not compared "
        "for ReLU on torch with CUDA. On CPU torch is compared strictly "
        "(benchmarks/RESULTS.md, 'Checked on the device').",
)


_RELU_SUBNORMAL_GRADIENTS = KnownDifference(
    what="subnormals",
    applies=_tensorflow_eager_or_graph,
    why="TensorFlow's non-XLA ReluGrad multiplies the upstream gradient by "
        "the mask, and TensorFlow runs its CPU kernels with flush-to-zero "
        "on its worker threads but not always on the calling thread, so "
        "whether a subnormal upstream gradient survives depends on which "
        "thread ran the kernel (seen both ways in one process). "
        "customlayers.ReLU runs the same Relu/ReluGrad kernels as the "
        "built-in for max(x, 0) (tests/property/test_kernels.py proves they "
        "compute the elementary formula), and the two calls can land on "
        "different threads. In eager and graph mode subnormals (|v| < the "
        "smallest normal) therefore compare as zero; everything else is "
        "compared bit for bit, and 'compiled' "
        "compares subnormals too. JAX and torch (on CPU) are compared "
        "strictly in every mode.",
)

RELU = LayerCase(
    name="ReLU",
    custom=customlayers.ReLU,
    reference=keras.layers.ReLU,
    draw_kwargs=cst.draw_relu_kwargs,
    draw_input_shape=_relu_shape,
    kinks=_relu_kinks,
    invalid_kwargs=(
        ({"max_value": -1.0}, "max_value", -1.0),
        ({"negative_slope": -0.5}, "negative_slope", -0.5),
        ({"negative_slope": None}, "negative_slope", None),
        ({"threshold": -2.0}, "threshold", -2.0),
        ({"threshold": None}, "threshold", None),
    ),
    stricter_kwargs=(
        ({"threshold": float("nan")}, "threshold", float("nan")),
        ({"max_value": float("nan")}, "max_value", float("nan")),
    ),
    has_weights=False,
    known_differences=(_RELU_SIGN_OF_ZERO, _RELU_SUBNORMAL_GRADIENTS,
                       _RELU_CUDA_SIGN_OF_ZERO),
)

#: Every declared pair. Generic properties loop over these.
CASES: dict[str, LayerCase] = {c.name: c for c in (DENSE, RELU)}
