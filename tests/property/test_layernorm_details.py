"""What the generic properties do not pin down for
customlayers.LayerNormalization: when the weights are reshaped.

The built-in reshapes gamma and beta to the input's rank "when the axis is
not just the last dimension", by comparing its sorted axes with
``[ndims - 1]`` as written (so ``axis=-1`` reshapes too, and ``axis=1`` on
a rank-2 input does not). Where it does not reshape, weights of another
shape than the input's normalized dimensions broadcast: a layer built with
``axis=1`` on ``(10, 8, 1)`` (gamma ``(8,)``) and called on ``(10, 1)``
returns ``(10, 8)``. Ours skips the no-op reshape of ``axis=-1`` in
TensorFlow's eager mode only (a speed fix); everywhere else it must follow
the built-in's condition exactly.

Found by the JAX tox env (2026-12-07): the ``lazy_build`` property drew
that call, and ours reshaped the ``(8,)`` gamma into ``(1, 1)`` and raised
where the built-in returned ``(10, 8)`` -- on JAX and torch in every mode,
and in TensorFlow's graph and compiled modes (the ``lazy_build`` property
runs eagerly, where TensorFlow's fast path happened to be right).
"""

import numpy as np
import pytest

from customlayers._keras import BACKEND, KERAS_MAJOR

if KERAS_MAJOR < 3:  # pragma: no cover - Keras 2
    pytest.skip("customlayers.LayerNormalization needs Keras 3",
                allow_module_level=True)

import keras  # noqa: E402

import customlayers  # noqa: E402
from customlayers.testing.backends import (  # noqa: E402
    MODES, forward_backward)
from customlayers.testing.cases import CASES as _PAIRS  # noqa: E402
from tests.params import mode_param  # noqa: E402

#: How the built-in's result compares with ours: bit for bit, or (torch,
#: the fused layer_norm) within the pair's declared float32 tolerance.
LN_CASE = _PAIRS["LayerNormalization"]

SEED = 20261207

#: (axis, shape built on, shape called on, center, scale, output shape,
#: torch_fused): each a call where the built-in's reshape condition decides
#: the outcome. The output shape is the TensorFlow and JAX built-ins' (the
#: test checks it there). ``torch_fused``: on torch the built-in hands
#: these contiguous axes to ``F.layer_norm``, which takes only weights of
#: the normalized (trailing) shape and raises here (see below).
CASES = [
    # The JAX find: axis=1 is the last axis of a rank-2 call, so the
    # built-in does not reshape, and gamma (8,) broadcasts against (10, 1).
    (1, (10, 8, 1), (10, 1), True, True, (10, 8), True),
    (1, (10, 8, 1), (10, 1), True, False, (10, 8), True),
    (1, (10, 8, 1), (10, 1), False, True, (10, 8), True),
    # The same layer on its own rank: reshaped to (1, 8, 1).
    (1, (10, 8, 1), (3, 8, 1), True, True, (3, 8, 1), True),
    # axis=-1: reshaped by the built-in (a no-op; skipped eagerly on TF).
    (-1, (4, 6), (5, 6), True, True, (5, 6), False),
    (-1, (4, 6), (2, 3, 6), True, True, (2, 3, 6), False),
    # Several axes, the trailing ones: reshaped.
    ([1, 2], (2, 3, 4), (5, 3, 4), True, True, (5, 3, 4), False),
    # Several axes, not contiguous: reshaped (torch too: not fused).
    ([1, 3], (2, 3, 4, 5), (6, 3, 4, 5), True, True, (6, 3, 4, 5),
     False),
]

def _outcome(layer, x, upstream, mode):
    try:
        got = forward_backward(layer, x, upstream, mode)
    except Exception as exc:  # noqa: BLE001 - compared with the built-in
        return "error", f"{type(exc).__name__}: {str(exc)[:300]}"
    return "ok", got


def _assert_same(a, b, what, mode):
    assert a.shape == b.shape, f"{what}: shape {a.shape}, built-in {b.shape}"
    if LN_CASE.is_exact("float32", mode):
        np.testing.assert_array_equal(a, b, err_msg=what)
    else:
        tol = LN_CASE.tolerance("float32")
        np.testing.assert_allclose(a, b, rtol=tol.rtol, atol=tol.atol,
                                   err_msg=f"{what} ({tol.reason})")


@pytest.mark.parametrize("mode", [mode_param(m) for m in MODES])
@pytest.mark.parametrize(
    "axis, built, called, center, scale, out_shape, torch_fused", CASES,
    ids=[f"axis={c[0]}-{c[1]}->{c[2]}-center={c[3]}-scale={c[4]}"
         for c in CASES])
def test_weights_reshaped_exactly_where_the_builtin_reshapes(
        axis, built, called, center, scale, out_shape, torch_fused, mode):
    rng = np.random.default_rng(SEED)
    print(f"{BACKEND} {mode}: LayerNormalization(axis={axis}, center="
          f"{center}, scale={scale}) built on {built}, called on {called}; "
          f"weights and inputs from numpy.random.default_rng({SEED})")
    kw = dict(axis=axis, center=center, scale=scale)
    ours = customlayers.LayerNormalization(**kw)
    ref = keras.layers.LayerNormalization(**kw)
    ours.build(built)
    ref.build(built)
    weights = [rng.standard_normal(w.shape).astype("float32")
               for w in ref.weights]
    ours.set_weights(weights)
    ref.set_weights(weights)
    x = rng.standard_normal(called).astype("float32")
    if BACKEND == "torch" and torch_fused:
        # The torch built-in's F.layer_norm normalizes the trailing
        # dimensions whatever the axis and takes only weights of exactly
        # that shape: it raises here, where the TensorFlow and JAX
        # built-ins (and ours on every backend, one function everywhere)
        # broadcast or reshape. Checked, not skipped: if a Keras release
        # changes it, this fails, and the comparison below should apply.
        with pytest.raises(RuntimeError, match="normalized_shape"):
            ref(x)
        k, a = _outcome(ours, x, None, mode)
        assert k == "ok", a
        assert a.output.shape == out_shape
        return
    # Every case here is one the built-in computes (not always with the
    # input's shape: broadcasting), so both must return.
    upstream = rng.standard_normal(tuple(ref(x).shape)).astype("float32")
    (k, a), (rk, b) = (_outcome(ours, x, upstream, mode),
                       _outcome(ref, x, upstream, mode))
    assert rk == "ok", f"built-in: {b}"
    assert k == "ok", f"custom: {a}; the built-in returned a result"
    if BACKEND != "torch":
        assert b.output.shape == out_shape
    _assert_same(a.output, b.output, "output", mode)
    _assert_same(a.input_grad, b.input_grad, "input gradient", mode)
    assert len(a.weight_grads) == len(b.weight_grads)
    for name, ga, gb in zip(a.weight_names, a.weight_grads, b.weight_grads):
        _assert_same(ga, gb, f"gradient of {name}", mode)
