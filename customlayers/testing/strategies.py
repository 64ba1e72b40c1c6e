"""Hypothesis strategies: shapes, dtypes, values and weights.

Every draw is labelled, so that a falsifying example reads like a sentence
(``Draw 3 (input shape: dim 0): 3``). The ``draw_*`` functions take a
``data`` object from ``st.data()`` and label each draw; the matching
strategies (``shapes()``, ``arrays()``, ...) wrap them for plain
composition. Large arrays are not drawn element
by element: a labelled ``seed`` and ``scale`` fill the array from NumPy's
generator, and a labelled list of ``specials`` puts exact zeros, ``-0.0``,
kinks, tiny and huge magnitudes and non-finite values at drawn positions.
Hypothesis shrinks the shape, the seed and the specials, so a minimal
counterexample is small and replays from what it prints.
"""

from __future__ import annotations

import math

import ml_dtypes  # noqa: F401  (registers bfloat16 with NumPy)
import numpy as np
from hypothesis import strategies as st

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")
#: Every dtype policy the property suite sweeps. A sweep sets both layers'
#: ``dtype=``: a default-policy Keras 3 layer would cast float16 inputs to
#: float32 and hide the dtype under test.
POLICIES = FLOAT_DTYPES + MIXED_POLICIES

MAX_RANK = 5
MAX_DIM = 256
#: The default input size bound (elements). 3072 since the value sets (issue
#: 14): an example's inputs share one compiled program, whose execution is
#: cheap next to its compile, so the examples got larger than before (mean
#: elements per equivalence example above the 2048-bound suite's, in every
#: mode; benchmarks/RESULTS.md).
MAX_INPUT_SIZE = 3072


def compute_dtype(policy: str) -> str:
    """The dtype a layer computes in under ``policy``."""
    return {"mixed_float16": "float16",
            "mixed_bfloat16": "bfloat16"}.get(policy, policy)


def variable_dtype(policy: str) -> str:
    """The dtype of a layer's variables under ``policy``."""
    return "float32" if policy.startswith("mixed_") else policy


def input_dtype(policy: str) -> str:
    """The dtype a user feeds: float32 for mixed policies (the layer casts),
    else the policy's own dtype."""
    return "float32" if policy.startswith("mixed_") else policy


def np_dtype(name: str) -> np.dtype:
    return np.dtype(name)  # 'bfloat16' resolves through ml_dtypes


def draw_shape(data, *, min_rank=2, max_rank=MAX_RANK, max_dim=MAX_DIM,
           max_size=MAX_INPUT_SIZE, last_dim=None, label="input shape"):
    """A shape of rank ``min_rank..max_rank``, dims ``1..max_dim``, at most
    ``max_size`` elements. ``last_dim`` pins the last dimension."""
    rank = data.draw(st.integers(min_rank, max_rank), label=f"{label}: rank")
    dims = []
    budget = max_size
    n_free = rank if last_dim is None else rank - 1
    if last_dim is not None:
        budget //= last_dim
    for i in range(n_free):
        hi = max(1, min(max_dim, budget))
        d = data.draw(st.integers(1, hi), label=f"{label}: dim {i}")
        dims.append(d)
        budget = max(1, budget // d)
    if last_dim is not None:
        dims.append(last_dim)
    return tuple(dims)


def ulp_neighbours(value: float, dtype: str) -> tuple:
    """The representable numbers just below and just above ``value`` in
    ``dtype`` (``np.nextafter``, which works on ml_dtypes' bfloat16 too):
    exactly one ULP either side."""
    dt = np_dtype(dtype)
    v = np.asarray(value, dt)
    return (float(np.nextafter(v, np.asarray(-np.inf, dt))),
            float(np.nextafter(v, np.asarray(np.inf, dt))))


def special_values(dtype: str, kinks=(), *, nonfinite: bool) -> list:
    """The values a property must see: zeros of both signs, the kinks of the
    function, one ULP either side of each kink, the smallest subnormal and
    normal, huge magnitudes and (optionally) ``nan`` and ``+-inf``."""
    dt = np_dtype(dtype)
    info = ml_dtypes.finfo(dt) if dtype == "bfloat16" else np.finfo(dt)
    values = [0.0, -0.0, 1.0, -1.0]
    for k in kinks:
        kk = np.asarray(k, dt)
        values += [float(kk), float(-kk), *ulp_neighbours(float(kk), dtype)]
    values += [float(info.smallest_subnormal), -float(info.smallest_subnormal),
               float(info.tiny), float(info.max) / 4, -float(info.max) / 4]
    if nonfinite:
        values += [math.inf, -math.inf, math.nan]
    return values


def draw_array(data, shape, dtype: str, *, kinks=(), nonfinite=False,
               label="input", scales=(1.0, 1e-3, 100.0), max_specials=8,
               must_include=(), value_range=None):
    """An array of ``shape`` and ``dtype``: normal noise times a drawn scale,
    with drawn special values at drawn positions (see module docstring).
    Each value of ``must_include`` is placed at least once (at a drawn
    position), so exact zeros and kinks are never left to chance.
    ``value_range=(low, high)`` keeps every finite value inside it (noise
    outside is folded back in; special values outside are left out)."""
    seed = data.draw(st.integers(0, 2 ** 32 - 1), label=f"{label}: seed")
    scale = data.draw(st.sampled_from(scales), label=f"{label}: scale")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale
    if value_range is not None:
        lo, hi = value_range
        x = np.where((x < lo) | (x > hi), lo + np.mod(x - lo, hi - lo), x)
        inside = lambda v: not np.isfinite(v) or lo <= v <= hi  # noqa
        must_include = tuple(v for v in must_include if inside(v))
    size = int(np.prod(shape))
    flat = x.reshape(-1)
    pool = special_values(dtype, kinks, nonfinite=nonfinite)
    if value_range is not None:
        pool = [v for v in pool if inside(v)]
    if size and max_specials and pool:
        specials = data.draw(
            st.lists(
                st.tuples(st.integers(0, size - 1), st.sampled_from(pool)),
                max_size=min(max_specials, size)),
            label=f"{label}: specials (flat index, value)")
        for i, v in specials:
            flat[i] = v
    # Every kink (and both zeros) appears at least once, after the specials
    # so that none is overwritten.
    _place(data, flat, must_include, label)
    return x.astype(np_dtype(dtype))


def _place(data, flat, values, label) -> None:
    """Write each of ``values`` into ``flat`` at distinct drawn positions
    (labelled); an array smaller than the list holds as many as fit, in
    order."""
    size = flat.size
    if not size or not values:
        return
    n = min(len(values), size)
    where = data.draw(
        st.lists(st.integers(0, size - 1), min_size=n, max_size=n,
                 unique=True),
        label=f"{label}: positions of {list(values[:n])}")
    for i, v in zip(where, values):
        flat[i] = v


def id_edges(low: int, high: int) -> tuple:
    """The ids every id input holds: both ends of ``[low, high)`` and 0
    (the padding id of ``mask_zero``) when inside it."""
    out = [low, high - 1] + ([0] if low <= 0 < high else [])
    return tuple(dict.fromkeys(out))


def draw_ids(data, shape, low: int, high: int, dtype: str, *,
             label="input ids"):
    """Integer ids of ``shape`` and ``dtype`` in ``[low, high)``: uniform,
    or mostly one repeated id (duplicates are what a scatter-add gradient
    sums), with :func:`id_edges` placed at drawn positions."""
    seed = data.draw(st.integers(0, 2 ** 32 - 1), label=f"{label}: seed")
    repeats = data.draw(st.booleans(), label=f"{label}: mostly repeated")
    rng = np.random.default_rng(seed)
    x = rng.integers(low, high, size=shape)
    size = int(np.prod(shape))
    flat = x.reshape(-1)
    if repeats and size:
        flat[rng.random(size) < 0.75] = int(rng.integers(low, high))
    _place(data, flat, id_edges(low, high), label)
    return x.astype(np_dtype(dtype))


def random_weights(rng: np.random.Generator, template, *, scale=0.5,
                   positive=()):
    """Random arrays like ``template`` (a list of arrays): normal * scale,
    never all zeros, so a dropped bias or a zero-initialised weight shows;
    ``|normal| * scale`` for the indices in ``positive``."""
    out = []
    for i, w in enumerate(template):
        w = np.asarray(w)
        r = rng.standard_normal(w.shape) * scale
        r = np.where(r == 0, 0.125, r)
        if i in positive:
            r = np.abs(r)
        out.append(r.astype(w.dtype))
    return out


# -- constructor arguments ------------------------------------------------

ACTIVATIONS = (None, "linear", "relu", "tanh", "sigmoid", "elu", "softplus",
               "gelu", "softmax")
# "orthogonal" is left out: TensorFlow has no bfloat16 QR kernel, so both
# layers fail to build in bfloat16 (the property tests randomise the weights
# after the build anyway; the initializer only has to be passed through).
INITIALIZERS = ("glorot_uniform", "he_normal", "zeros", "ones",
                "random_normal", "lecun_uniform")
REGULARIZERS = (None, "l1", "l2")
CONSTRAINTS = (None, "non_neg", "max_norm", "unit_norm")


def draw_dense_kwargs(data, *, max_units=64):
    """Constructor arguments for a Dense pair (everything but ``dtype``)."""
    return dict(
        units=data.draw(st.integers(1, max_units), label="Dense units"),
        activation=data.draw(st.sampled_from(ACTIVATIONS), label="activation"),
        use_bias=data.draw(st.booleans(), label="use_bias"),
        kernel_initializer=data.draw(st.sampled_from(INITIALIZERS),
                                label="kernel_initializer"),
        bias_initializer=data.draw(st.sampled_from(INITIALIZERS[2:5]),
                              label="bias_initializer"),
        kernel_regularizer=data.draw(st.sampled_from(REGULARIZERS),
                                label="kernel_regularizer"),
        bias_regularizer=data.draw(st.sampled_from(REGULARIZERS),
                              label="bias_regularizer"),
        activity_regularizer=data.draw(st.sampled_from(REGULARIZERS),
                                  label="activity_regularizer"),
        kernel_constraint=data.draw(st.sampled_from(CONSTRAINTS),
                               label="kernel_constraint"),
        bias_constraint=data.draw(st.sampled_from(CONSTRAINTS),
                             label="bias_constraint"),
    )


_NICE = (0.0, 0.5, 1.0, 2.0, 3.5, 6.0)


def draw_relu_kwargs(data):
    """Constructor arguments for a ReLU pair, weighted toward the built-in's
    special paths: ``max_value == 6`` (relu6), ``threshold == 0``,
    leaky (``negative_slope`` with no max and no threshold)."""
    # One_of picks a branch about uniformly: 6 (the built-in's relu6 fast
    # path) gets two of five branches, threshold 0 three of five.
    max_value = data.draw(
        st.one_of(st.none(), st.just(6), st.just(6.0), st.sampled_from(_NICE),
                  st.floats(0.0, 10.0, allow_nan=False, width=16)),
        label="ReLU max_value")
    negative_slope = data.draw(
        st.one_of(st.just(0.0), st.sampled_from((0.1, 0.2, 0.3, 1.0)),
                  st.floats(0.0, 2.0, allow_nan=False, width=16)),
        label="ReLU negative_slope")
    threshold = data.draw(
        st.one_of(st.just(0.0), st.just(0.0), st.just(0.0),
                  st.sampled_from((0.5, 1.0)),
                  st.floats(0.0, 4.0, allow_nan=False, width=16)),
        label="ReLU threshold")
    return dict(max_value=max_value, negative_slope=negative_slope,
                threshold=threshold)


class _Unlabelled:
    """Adapts a composite ``draw`` to the ``data.draw(s, label=)`` API."""

    def __init__(self, draw):
        self._draw = draw

    def draw(self, strategy, label=None):
        return self._draw(strategy)


@st.composite
def shapes(draw, **kwargs):
    """Strategy form of :func:`draw_shape`."""
    return draw_shape(_Unlabelled(draw), **kwargs)


@st.composite
def arrays(draw, shape, dtype, **kwargs):
    """Strategy form of :func:`draw_array`."""
    return draw_array(_Unlabelled(draw), shape, dtype, **kwargs)


@st.composite
def dense_kwargs(draw, **kwargs):
    """Strategy form of :func:`draw_dense_kwargs`."""
    return draw_dense_kwargs(_Unlabelled(draw), **kwargs)


@st.composite
def relu_kwargs(draw):
    """Strategy form of :func:`draw_relu_kwargs`."""
    return draw_relu_kwargs(_Unlabelled(draw))
