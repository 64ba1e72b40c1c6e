"""customlayers.BatchNormalization against keras.layers.BatchNormalization,
declared once, as data (:data:`BATCH_NORMALIZATION`);
:data:`customlayers.testing.cases.CASES` lists it with the others.

BatchNormalization is the first pair with a ``training`` call argument and
non-trainable state: the equivalence property runs in both modes
(``training=(False, True)``: ``...-inference`` and ``...-training`` items),
and the ``state`` property makes three training-mode calls and compares
the moving mean and variance after each one. The non-finite upstream,
second-order, forward-mode and mask properties run in both modes too.

On TensorFlow the built-in's second derivative in training mode is wrong
(``tf.nn.moments`` stops the gradient of the mean inside the variance):
measured in float64, input (4, 3) from seed 0, gamma 1.3, beta 0.2,
epsilon 1e-3, its Hessian-vector product differs from a central
difference of its own gradient by up to 0.20 (of 2.3); with
``synchronized=True`` (``E[x^2] - E[x]^2``) they agree to 3e-10. The
custom layer mirrors it bit for bit (a drop-in trains identically), so
nothing is declared: the second-order items compare it with the built-in.
"""

from __future__ import annotations

import functools

import customlayers
from customlayers._keras import BACKEND, KERAS_MAJOR, keras
from customlayers.testing import strategies as cst
from customlayers.testing.declarations import ErrorInput, LayerCase
from hypothesis import strategies as st

# Never axis 0: the harness builds layers on an unknown batch size.
_AXES = (-1, 1, -2, 2, 3)


def _bn_kwargs(data):
    def draw(name, values):
        return data.draw(st.sampled_from(values), label=name)

    return dict(
        axis=data.draw(st.one_of(st.just(-1), st.sampled_from(_AXES)),
                       label="BatchNormalization axis"),
        momentum=draw("momentum", (0.99, 0.9, 0.5, 0.1, 0.0, 1.0)),
        epsilon=draw("epsilon", (1e-3, 1e-5, 0.1, 1.0)),
        center=data.draw(st.booleans(), label="center"),
        scale=data.draw(st.booleans(), label="scale"),
        beta_initializer=draw("beta_initializer", cst.INITIALIZERS[2:5]),
        gamma_initializer=draw("gamma_initializer", cst.INITIALIZERS[2:5]),
        moving_mean_initializer=draw("moving_mean_initializer",
                                     cst.INITIALIZERS[2:5]),
        moving_variance_initializer=draw("moving_variance_initializer",
                                         ("ones", "zeros")),
        beta_regularizer=draw("beta_regularizer", cst.REGULARIZERS),
        gamma_regularizer=draw("gamma_regularizer", cst.REGULARIZERS),
        beta_constraint=draw("beta_constraint", cst.CONSTRAINTS[:3]),
        gamma_constraint=draw("gamma_constraint", cst.CONSTRAINTS[:3]),
        # TensorFlow only (Keras refuses it elsewhere): the built-in's
        # cross-replica moments, E[x^2] - E[x]^2 (one replica here).
        synchronized=data.draw(st.booleans(), label="synchronized")
        if BACKEND == "tensorflow" else False,
    )


def _bn_shape(data, kwargs):
    """An input shape whose rank holds the drawn axis (not the batch
    axis); small, as normalisation's cost is in the element count."""
    axis = kwargs["axis"]
    ranks = [r for r in range(2, cst.MAX_RANK + 1)
             if -r <= axis < r and axis % r != 0]
    rank = data.draw(st.sampled_from(ranks), label="input shape: rank")
    return cst.draw_shape(data, min_rank=rank, max_rank=rank, max_dim=12,
                          max_size=512)


def _bn_smooth(kwargs):
    # Regularizers and constraints are not part of the differentiated
    # function; epsilon >= 1e-3 keeps rsqrt(var + eps) away from 0.
    none = {k: None for k in ("beta_regularizer", "gamma_regularizer",
                              "beta_constraint", "gamma_constraint")}
    return {**kwargs, **none,
            "epsilon": max(kwargs.get("epsilon", 1e-3), 1e-3)}


def _bn_input_mask(shape, kwargs=None):
    """The ``mask=`` the layer takes: the input's shape without its last
    axis (the built-in broadcasts it along the last axis, whatever
    ``axis``). ``None`` (the mask property then passes no mask) on JAX and
    torch where the feature axis has one channel: Keras 3.15.1's masked
    moments squeeze a single channel to a scalar, and its
    ``ops.batch_normalization`` there reads ``mean.shape[0]`` (IndexError;
    tests/property/test_batch_normalization_mask.py shows it).
    customlayers keeps the channel."""
    shape = tuple(shape)
    if BACKEND in ("jax", "torch") and kwargs is not None and \
            shape[kwargs["axis"]] == 1:
        return None
    return shape[:-1]


def _torch_skip(why):
    return lambda: why if BACKEND == "torch" else None


@functools.lru_cache(maxsize=None)
def _builtin_training_graph_break():
    """Dynamo's reason the built-in's training-mode call cannot be one
    ``torch.compile`` graph (``None`` if it can), measured when asked."""
    import torch

    from customlayers.testing.torch_compile import (graph_break,
                                                    stateless_call)
    layer = keras.layers.BatchNormalization()
    layer.build((4, 3))
    values = [v.value.detach() for v in layer.trainable_variables]
    frozen = [v.value.detach() for v in layer.non_trainable_variables]
    return graph_break(lambda x: stateless_call(
        layer, x, values, frozen, {"training": True}), torch.ones(4, 3))


def _torch_compiled_training(mode, training=True):
    """Why a training-mode item does not run in torch's compiled mode."""
    if BACKEND != "torch" or mode != "compiled" or not training:
        return None
    why = _builtin_training_graph_break()
    if why is None:
        return None
    return ("torch.compile(fullgraph=True) cannot compile "
            "keras.layers.BatchNormalization's training-mode call (keras "
            "3.15.1, torch 2.13): its moments pass the reduction axes, a "
            "Keras TrackedList (a list subclass), to torch.mean, and Dynamo "
            f"cannot pass a list subclass on; measured now: {why}. "
            "customlayers.BatchNormalization passes a plain list and "
            "compiles (tests/property/test_torch_compile.py)")


#: The training-mode items skipped in torch's compiled mode (the state
#: property's calls are all training-mode).
_TORCH_COMPILED_SKIPS = {
    **{kind: (lambda mode, training: _torch_compiled_training(
        mode, training)) for kind in ("equivalence", "nonfinite_upstream",
                                      "second_order", "forward_mode",
                                      "mask")},
    "state": lambda mode: _torch_compiled_training(mode),
}


def _refused(kwargs, error=ValueError, match="", reference_raises=True,
             why="", input_shape=None):
    return ErrorInput(kwargs, error, match, input_shape=input_shape,
                      reference_raises=reference_raises, why=why)


_ERRORS = (
    _refused({"axis": "last"}, TypeError, r"axis='last'"),
    _refused({"axis": [1]}, TypeError, r"axis=\[1\]"),
    _refused({"axis": None}, TypeError, r"axis=None"),
    _refused({"momentum": "high"}, ValueError, r"momentum='high'"),
    _refused({"momentum": 1.5}, ValueError, r"momentum=1\.5",
             reference_raises=False,
             why="a momentum above 1 makes the moving averages diverge "
                 "(moving * 1.5 - batch * 0.5); Keras does not check"),
    _refused({"momentum": -0.1}, ValueError, r"momentum=-0\.1",
             reference_raises=False,
             why="a negative momentum is not an average; Keras does not "
                 "check"),
    _refused({"epsilon": -1.0}, ValueError, r"epsilon=-1\.0",
             reference_raises=False,
             why="a negative epsilon can make var + epsilon negative (NaN "
                 "outputs); Keras does not check"),
    _refused({"epsilon": float("nan")}, ValueError, r"epsilon=nan",
             reference_raises=False,
             why="a NaN epsilon makes every output NaN; Keras does not "
                 "check"),
    _refused({"renorm": True}, NotImplementedError, r"renorm=True",
             reference_raises=False,
             why="batch renormalization is not implemented by "
                 "customlayers.BatchNormalization: refused by name rather "
                 "than computed differently"),
    # The built-in fails at build with a bare IndexError.
    _refused({"axis": 4}, ValueError, r"Axis 4 .*axis=4",
             input_shape=(2, 3)),
) + (() if BACKEND == "tensorflow" else (
    _refused({"synchronized": True}, ValueError,
             r"synchronized=True is only supported"),))


BATCH_NORMALIZATION = LayerCase(
    name="BatchNormalization",
    custom=customlayers.BatchNormalization,
    reference=keras.layers.BatchNormalization,
    init_kwargs=_bn_kwargs,
    input_shape=_bn_shape,
    # Bit for bit on every backend: the same mean, square, rsqrt, multiply
    # and add in each backend's built-in order (tf.nn.moments' stopped
    # mean and tf.nn.batch_normalization's x * inv + (beta - mean * inv) on
    # TensorFlow; jnp.mean/jnp.var and x * inv + (-mean * inv + beta) on
    # JAX; E[x^2] - E[x]^2 and (x - mean) * inv + beta on torch), the same
    # reductions (same kernels, same summation order), the same update
    # formula for the moving statistics.
    exact=True,
    # Magnitudes up to 1e4 (squares stay far from float32's overflow; the
    # float64 central difference keeps its digits). NaN and inf still drawn.
    input_range=(-1e4, 1e4),
    training=(False, True),
    state_steps=3,
    # The mask property, in both training values and every mode: in
    # training mode the masked-out positions do not count in the batch
    # moments (outputs and the updated moving statistics compared).
    masks=True,
    input_mask=_bn_input_mask,
    # rsqrt(moving_variance + epsilon): random moving variances are drawn
    # positive, as training makes them.
    positive_weights=("moving_variance",),
    smooth_kwargs=_bn_smooth,
    # No SavedModel difference declared (LayerNormalization has one): the
    # exported graph's outputs came back bit-identical to eager here.
    skip_properties={
        **_TORCH_COMPILED_SKIPS,
        "numeric_gradient": _torch_skip(
            "on torch Keras's result_type('float64', 'float32') is float32: "
            "both layers normalize float64 inputs in float32, so a float64 "
            "central difference does not apply"),
    },
    error_inputs=_ERRORS,
    example_kwargs={"axis": -1},
)

if KERAS_MAJOR < 3:  # pragma: no cover - the Keras 2 tox envs
    #: customlayers.BatchNormalization refuses Keras 2; nothing declared.
    BATCH_NORMALIZATION = None

#: The pair above, by name, for :data:`customlayers.testing.cases.CASES`.
CASES = {} if BATCH_NORMALIZATION is None else {
    BATCH_NORMALIZATION.name: BATCH_NORMALIZATION}
