"""customlayers' normalization pairs, declared once, as data
(:data:`LAYER_NORMALIZATION`); :data:`customlayers.testing.cases.CASES`
lists them with the others."""

from __future__ import annotations

import numpy as np

import customlayers
from customlayers._keras import BACKEND, KERAS_MAJOR, keras
from customlayers.testing import strategies as cst
from customlayers.testing.declarations import (ErrorInput, KnownDifference,
                                               LayerCase)
from customlayers.testing.tolerances import Tolerance
from hypothesis import strategies as st

# Axes drawn for LayerNormalization: never the batch axis (the harness
# builds with an unknown batch size), mostly the last; lists contiguous,
# unsorted, mixed-sign and not contiguous. torch: the built-in hands a
# contiguous axis to F.layer_norm, which normalizes the *last* dimensions
# whatever the axis (axis=1 of a (2, 3, 3) input normalizes axis 2; of a
# (2, 3, 4) input it raises): compared only where that is right (contiguous
# axes ending at -1) or not taken (non-contiguous).
_AXES = (-1, -2, 1, 2, [-1], [-2, -1], [1, 2], [2, 1], [-1, 1], [1, 3],
         (-3, -1))
_TORCH_AXES = (-1, [-1], [-2, -1], [-1, -2], [-3, -2, -1], [-1, 1], [1, 3],
               (-3, -1))


def _ln_kwargs(data):
    axes = _TORCH_AXES if BACKEND == "torch" else _AXES
    axis = data.draw(st.one_of(st.just(-1), st.sampled_from(axes)),
                     label="LayerNormalization axis")
    center = data.draw(st.booleans(), label="center")
    scale = data.draw(st.booleans(), label="scale")
    return dict(
        axis=axis,
        epsilon=data.draw(st.sampled_from(
            (1e-3, 0.1, 1.0) if BACKEND == "torch"  # see _TORCH_TOLERANCES
            else (1e-3, 1e-5, 1e-6, 0.1, 1.0)), label="epsilon"),
        center=center, scale=scale,
        beta_initializer=data.draw(st.sampled_from(cst.INITIALIZERS[2:5]),
                                   label="beta_initializer"),
        gamma_initializer=data.draw(st.sampled_from(cst.INITIALIZERS[2:5]),
                                    label="gamma_initializer"),
        beta_regularizer=data.draw(st.sampled_from(cst.REGULARIZERS),
                                   label="beta_regularizer"),
        gamma_regularizer=data.draw(st.sampled_from(cst.REGULARIZERS),
                                    label="gamma_regularizer"),
        beta_constraint=data.draw(st.sampled_from(cst.CONSTRAINTS[:3]),
                                  label="beta_constraint"),
        gamma_constraint=data.draw(st.sampled_from(cst.CONSTRAINTS[:3]),
                                   label="gamma_constraint"),
    )


def _ln_shape(data, kwargs):
    """An input shape whose rank fits the drawn axis: every axis in range,
    none the batch axis, no axis named twice."""
    axis = kwargs["axis"]
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]

    def fits(rank):
        norm = [a % rank for a in axes if -rank <= a < rank]
        return len(norm) == len(axes) and 0 not in norm and \
            len(set(norm)) == len(norm)

    ranks = [r for r in range(2, cst.MAX_RANK + 1) if fits(r)]
    rank = data.draw(st.sampled_from(ranks), label="input shape: rank")
    # Small inputs: normalisation's cost is in the element count, and the
    # interesting cases (dimension 1, a short row) are small.
    return cst.draw_shape(data, min_rank=rank, max_rank=rank, max_dim=12,
                          max_size=512)


def _ln_smooth(kwargs):
    # Regularizers and constraints are not part of the differentiated
    # function; epsilon >= 1e-3 keeps sqrt(var + eps) away from its
    # singularity at 0 (a row of one element has variance 0).
    none = {k: None for k in ("beta_regularizer", "gamma_regularizer",
                              "beta_constraint", "gamma_constraint")}
    return {**kwargs, **none, "epsilon": max(kwargs.get("epsilon", 1e-3), 1e-3)}


#: torch only: the built-in runs ATen's fused layer_norm (its own reduction
#: order and backward formula), so results are compared with tolerances,
#: on narrower draws. Both sides compute x * rstd - mean * rstd (or the
#: like) in float32, so their rounding errors scale with |x| * rstd * |g|,
#: not with the (possibly cancelled) result: a row of one element has
#: x - mean == 0 exactly on our side and ~u * |x| * rstd on ATen's, and the
#: input gradient is a difference of row sums of such terms. With |x|, |g|
#: <= 10 and epsilon >= 1e-3 (rstd <= 31.6), a reordered sum of n <= 512
#: terms moves by about sqrt(n) * u * 10 * 31.6 * 10 = 4e-3 in float32:
#: atol 1e-2 (the planted bugs are O(0.1-1) errors at these scales).
#: float64 gets the same: on torch Keras's result_type("float64", "float32")
#: is float32, so both layers normalize float64 inputs in float32 and cast
#: back. TensorFlow and JAX, bit-exact, draw everything.
_TORCH_TOLERANCES = {
    "float32": Tolerance(rtol=1e-3, atol=1e-2, reason=(
        "torch's fused layer_norm vs the same formula in separate ops: "
        "errors scale with |x| * rstd * |g| (cases_normalization.py)")),
    "float64": Tolerance(rtol=1e-3, atol=1e-2, reason=(
        "float64 inputs are normalized in float32 on torch (both layers): "
        "as float32")),
}

_TORCH_NONFINITE = KnownDifference(
    what="nan_placement",
    checks=("grad[*]",),
    backends=("torch",),
    why="ATen's fused layer_norm backward sums g * xhat over the batch for "
        "gamma in one kernel; with +-inf in the upstream gradient its sums "
        "meet inf - inf in another order than the separate ops' autograd, "
        "so one side has NaN where the other has +-inf (minimal example: "
        "shape (1, 3), grad[gamma] NaN vs -inf). Which non-finite value "
        "comes out is not compared on torch; finite values are.")


def _trailing_axes(kwargs, x) -> bool:
    """Whether the drawn ``axis`` names the last dimensions of the call's
    input ``x`` (where torch's built-in runs the fused layer_norm)."""
    axis = kwargs.get("axis", -1)
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    nd = np.ndim(x)
    if nd == 0 or any(not -nd <= a < nd for a in axes):
        return False
    norm = sorted(a % nd for a in axes)
    return norm == list(range(nd - len(norm), nd))


_TORCH_FUSED_REFUSAL = KnownDifference(
    what="refusal",
    checks=("lazy build",),
    backends=("torch",),
    when=_trailing_axes,
    why="torch's built-in hands axes that end the input's shape to ATen's "
        "fused layer_norm, which takes only weights of that trailing shape. "
        "So a layer built with axis=1 on (None, 8, 1) and called on (10, 1) "
        "raises a RuntimeError there, where the TensorFlow and JAX "
        "built-ins do not reshape the (8,) weights (the axis is the call's "
        "last) and broadcast them: (10, 8). Ours computes what those do, "
        "on every backend; tests/property/test_layernorm_details.py pins "
        "both (the torch built-in's refusal included, so a Keras change "
        "shows).")


_TF_HESSIANS_GRAPH = KnownDifference(
    what="tolerance",
    checks=("hessian[input]",),
    backends=("tensorflow",),
    modes=("graph",),
    tolerance=Tolerance(rtol=2e-5, atol=2e-5, reason=(
        "the float32 table's numbers (tolerances.py); the second-order "
        "property runs under float32")),
    why="tf.hessians builds the second derivative with tf.gradients inside "
        "a while_loop of a graph, which Grappler then optimises: for the "
        "two layers' (different but equal) gradient graphs it rewrites the "
        "sums differently. Measured: input (4, 11), axis -1, 137 of 1936 "
        "Hessian entries differ by up to 1e-6 relative (4 ULP); with "
        "Grappler's meta optimizer disabled (tf.config.optimizer."
        "set_experimental_options({'disable_meta_optimizer': True})) all "
        "are bit-exact, and they are in eager and compiled mode, and the "
        "reverse-over-reverse Hessian-vector products are in graph mode.")


def _torch_skip(why):
    return lambda: why if BACKEND == "torch" else None
_TORCH = BACKEND == "torch"


def _refused(kwargs, error=ValueError, match="", reference_raises=True,
             why="", input_shape=None):
    return ErrorInput(kwargs, error, match, input_shape=input_shape,
                      reference_raises=reference_raises, why=why)


LAYER_NORMALIZATION = LayerCase(
    name="LayerNormalization",
    custom=customlayers.LayerNormalization,
    reference=keras.layers.LayerNormalization,
    init_kwargs=_ln_kwargs,
    input_shape=_ln_shape,
    # Bit for bit on TensorFlow and JAX: the same mean, square, rsqrt,
    # multiply and add, in the built-in's order, with the same reductions
    # (tf.reduce_mean / jnp.mean: same kernels, same summation order), and
    # tf.nn.moments' stopped gradient mirrored on TensorFlow. On torch the
    # built-in's contiguous axes run ATen's fused layer_norm (its own
    # reduction order), so the per-dtype table applies there (a reordered
    # sum of <= 512 terms; the table's reasoning in tolerances.py).
    exact=BACKEND != "torch",
    tolerances=_TORCH_TOLERANCES if _TORCH else {},
    upstream_range=(-10.0, 10.0) if _TORCH else None,
    # Magnitudes up to 1e4: inputs of 1e38 square to inf in float32 and the
    # float64 central difference of a normalisation loses every digit
    # beside them. NaN and +-inf are still drawn.
    input_range=(-10.0, 10.0) if _TORCH else (-1e4, 1e4),
    smooth_kwargs=_ln_smooth,
    known_differences=(_TF_HESSIANS_GRAPH,) + (
        (_TORCH_NONFINITE, _TORCH_FUSED_REFUSAL) if _TORCH else ()),
    # Keras 3's legacy HDF5 loader (legacy/saving/saving_utils.py) drops a
    # list axis of two or more entries from every layer config (it puts
    # back only a number or a one-entry list): the built-in and ours come
    # back normalizing axis -1 (or fail to load their (d1, d2) weights).
    # Checked by hand on TensorFlow and torch, the same for both layers.
    save_formats=("keras", "savedmodel"),
    check_tolerances={"jvp/vjp consistency": Tolerance(
        rtol=1e-2, atol=1e-4, reason=(
            "each element of J v and J^T g is a row sum of up to 512 terms "
            "that cancel by up to rstd = 1/sqrt(var + eps) (1e3 for inputs "
            "of scale 1e-3 and eps = 1e-6): 512 * u * 1e3 = 3e-2 in the "
            "worst case; measured 3e-6 to 1.7e-4 of the result in float32, "
            "and 2e-6 absolute where the sum itself cancels to 5e-5. "
            "A wrong JVP (a missing mean or variance term) is an O(1) "
            "relative error; the JVP itself is compared with the "
            "built-in's bit for bit"))},
    skip_properties={
        "second_order": _torch_skip(
            "on torch the built-in's second derivative raises for center="
            "True, scale=False (ATen's layer_norm double backward with a "
            "bias and no weight: 'Expected a proper Tensor but got None', "
            "input (1, 1)); customlayers.LayerNormalization's works"),
        "numeric_gradient": _torch_skip(
            "on torch Keras's result_type('float64', 'float32') is float32: "
            "both layers normalize float64 inputs in float32, so a float64 "
            "central difference does not apply"),
    },
    error_inputs=(
        _refused({"axis": 1.5}, TypeError, r"axis=1\.5",
                 reference_raises=True),
        _refused({"axis": "last"}, TypeError, r"axis='last'"),
        _refused({"axis": [-1, 1.0]}, TypeError, r"axis=\[-1, 1\.0\]",
                 reference_raises=False,
                 why="a float axis would only fail at build; refused when "
                     "the layer is made, naming it"),
        _refused({"axis": []}, TypeError, r"axis=\[\]",
                 reference_raises=False,
                 why="no axis normalizes nothing; Keras fails at build"),
        _refused({"epsilon": -1.0}, ValueError, r"epsilon=-1\.0",
                 reference_raises=False,
                 why="a negative epsilon can make var + epsilon negative "
                     "(NaN outputs); Keras does not check"),
        _refused({"epsilon": float("nan")}, ValueError, r"epsilon=nan",
                 reference_raises=False,
                 why="a NaN epsilon makes every output NaN; Keras does not "
                     "check"),
        _refused({"axis": 4}, ValueError, r"Axis 4 .*axis=4",
                 input_shape=(2, 3)),
    ),
    example_kwargs={"axis": -1},
)

if KERAS_MAJOR < 3:  # pragma: no cover - the Keras 2 tox envs
    #: customlayers.LayerNormalization refuses Keras 2 (NotImplementedError);
    #: nothing is declared there.
    LAYER_NORMALIZATION = None

#: The pairs above, by name, for :data:`customlayers.testing.cases.CASES`.
CASES = {} if LAYER_NORMALIZATION is None else {
    LAYER_NORMALIZATION.name: LAYER_NORMALIZATION}
