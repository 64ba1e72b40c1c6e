"""customlayers' Dropout pair, declared once, as data (:data:`DROPOUT`);
:data:`customlayers.testing.cases.CASES` lists it with the others.

Without ``training`` (the default call) a dropout is the identity: the
generic equivalence properties (outputs, gradients, non-finite upstream,
second order, forward mode, numeric gradient) compare that with the
built-in bit for bit. With ``training=True`` the ``randomness`` property
(its :class:`~customlayers.testing.RandomSpec`) checks the mask and the
scaling, and that a seed gives the built-in's own mask.
"""

from __future__ import annotations

from hypothesis import strategies as st

import customlayers
from customlayers._keras import KERAS_MAJOR, keras
from customlayers.testing.declarations import ErrorInput, LayerCase
from customlayers.testing.random_spec import RandomSpec

#: Rates: 0 (the identity, also under training), 1 (all zeros), round and
#: arbitrary values, and values near 1. At most 0.9999: TensorFlow's
#: built-in multiplies by 1 / (1 - rate) rounded to the input's dtype,
#: which for rate >= 1 - 1/65504 is inf in float16, so a kept 0 becomes
#: NaN (0 * inf) -- the built-in's behaviour, mirrored, but not the
#: "0 or x / (1 - rate)" promise the randomness property checks.
_RATES = st.one_of(
    st.just(0.0),
    st.sampled_from((0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1.0)),
    st.floats(0.0, 0.9999),
)


#: noise_shape: None, or one entry per input axis: None (the input's
#: size), 1 (one mask entry shared along the axis) or a fixed size.
_NOISE_SHAPES = st.one_of(
    st.none(),
    st.lists(st.one_of(st.none(), st.just(1), st.integers(2, 6)),
             min_size=1, max_size=4).map(tuple))


def _dropout_kwargs(data):
    return dict(
        rate=data.draw(_RATES, label="rate"),
        noise_shape=data.draw(_NOISE_SHAPES, label="noise_shape"),
        seed=data.draw(st.one_of(st.none(), st.integers(0, 2 ** 31 - 1)),
                       label="seed"))


def _dropout_shape(data, kwargs):
    """An input shape matching ``noise_shape`` (its fixed entries other
    than 1 are the input's sizes; rank 1-4 without one); sizes 1-16, at
    most 6 * 16 ** 3 elements."""
    noise = kwargs.get("noise_shape")
    if noise is None:
        noise = (None,) * data.draw(st.integers(1, 4), label="input rank")
    return tuple(data.draw(st.integers(1, 16), label="input size")
                 if d in (None, 1) else d for d in noise)


def _identical(backend, policy, mode):
    """Where a seed gives the built-in's outputs and gradients bit for bit:
    measured everywhere on CPU. Not declared for torch on a GPU: there the
    built-in's ``torch.bernoulli`` and ``torch.rand`` run different CUDA
    kernels (not measured); the statistical checks still run."""
    from customlayers.testing.backends import torch_on_cuda
    return not (backend == "torch" and torch_on_cuda())


def _refused(kwargs, match):
    return ErrorInput(kwargs, ValueError, match)


DROPOUT = LayerCase(
    name="Dropout",
    custom=customlayers.Dropout,
    reference=keras.layers.Dropout,
    init_kwargs=_dropout_kwargs,
    input_shape=_dropout_shape,
    exact=True,
    random=RandomSpec(
        call_kwargs={"training": True},
        # Measured bit-identical on TensorFlow (eager, graph, XLA), JAX
        # (eager, jit) and torch (eager, CPU) in every policy: the same
        # keras.random.uniform draw from the same SeedGenerator state as
        # each backend's dropout, the same comparison and scaling
        # (customlayers/dropout.py; README "Dropout").
        identical_to_reference=_identical,
    ),
    error_inputs=(
        _refused({"rate": -0.1}, r"rate=-0\.1"),
        _refused({"rate": 1.5}, r"rate=1\.5"),
        _refused({"noise_shape": "abc"}, r"noise_shape=abc"),
        _refused({"noise_shape": 3}, r"noise_shape=3"),
        _refused({"noise_shape": (2, 0)}, r"index 1: 0"),
        _refused({"noise_shape": (2, 1.5)}, r"index 1: 1\.5"),
    ),
    example_kwargs={"rate": 0.5},
)

if KERAS_MAJOR < 3:  # pragma: no cover - the Keras 2 tox envs
    #: customlayers.Dropout refuses Keras 2 (NotImplementedError).
    DROPOUT = None

#: The pairs above, by name, for :data:`customlayers.testing.cases.CASES`.
CASES = {} if DROPOUT is None else {DROPOUT.name: DROPOUT}

