"""customlayers' normalization pairs, declared once, as data
(:data:`LAYER_NORMALIZATION`); :data:`customlayers.testing.cases.CASES`
lists them with the others."""

from __future__ import annotations

import customlayers
from customlayers._keras import BACKEND, KERAS_MAJOR, keras
from customlayers.testing import strategies as cst
from customlayers.testing.declarations import (ErrorInput, KnownDifference,
                                               LayerCase)
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
        epsilon=data.draw(st.sampled_from((1e-3, 1e-5, 1e-6, 0.1, 1.0)),
                          label="epsilon"),
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
    # Magnitudes up to 1e4: inputs of 1e38 square to inf in float32 and the
    # float64 central difference of a normalisation loses every digit
    # beside them. NaN and +-inf are still drawn.
    input_range=(-1e4, 1e4),
    smooth_kwargs=_ln_smooth,
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
