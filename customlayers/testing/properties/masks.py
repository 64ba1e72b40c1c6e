"""Masks: what ``compute_mask`` returns, and the mask the layer hands on
in a model, equal the reference's (for a case that declares ``masks``)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from customlayers._keras import keras, ops
from customlayers.testing.convert import input_tensor, to_numpy
from customlayers.testing.equivalence import build_pair, fact_check
from customlayers.testing.expectations import compare_expected
from customlayers.testing.report import PROCESS

from customlayers.testing.properties._base import (_make, _scope, _settings,
                                                   draw_input)


class MaskEcho(keras.layers.Layer):
    """Returns the mask it receives as float32 (``-1`` of shape ``(1,)``
    when it receives none): the mask a model propagated, as a value."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.full((1,), -1.0)
        return ops.cast(mask, "float32")

    def compute_output_spec(self, inputs, mask=None):
        if mask is None:
            return keras.KerasTensor((1,), "float32")
        return keras.KerasTensor(mask.shape, "float32")


def _mask_value(m):
    return None if m is None else np.asarray(to_numpy(m)).astype(bool)


def _same_mask(check, a, b) -> object:
    """Two masks (``None`` or boolean arrays) are the same."""
    if a is None or b is None:
        return fact_check(check, a is None and b is None, (
            f"custom {'None' if a is None else f'a mask of shape {a.shape}'}"
            f"; reference {'None' if b is None else f'a mask of shape {b.shape}'}"))
    if a.shape != b.shape:
        return fact_check(check, False, f"mask shapes {a.shape} (custom) vs "
                                        f"{b.shape} (reference)")
    bad = np.argwhere(a != b)
    return fact_check(check, not len(bad), (
        f"{len(bad)} of {a.size} mask entries differ; first at "
        f"{tuple(bad[0]) if len(bad) else ()}: custom "
        f"{a[tuple(bad[0])] if len(bad) else ''}, reference "
        f"{b[tuple(bad[0])] if len(bad) else ''}"))


def _propagated(layer, x):
    """The mask that reaches the next layer of a Sequential model after
    ``layer`` (``None``: none), run on ``x``."""
    model = keras.Sequential([
        keras.Input(x.shape[1:], dtype=x.dtype.name), layer, MaskEcho()])
    out = np.asarray(to_numpy(model(input_tensor(x))))
    return None if out.shape == (1,) and out[0] == -1 else out.astype(bool)


def check_mask(case, policy, mode, kwargs, x, seed, mask=None,
               recorder=PROCESS):
    """One example: ``compute_mask(x, mask)``, the mask on the eager output
    (``keras_mask``), the mask a Sequential model hands to the next layer,
    and (with an input ``mask``) the output of ``layer(x, mask=mask)``,
    equal the reference's."""
    from customlayers.testing.equivalence import copy_weights, random_weights
    custom = _make(case, kwargs, policy)
    reference = _make(case, kwargs, policy, case.reference)
    build_pair(custom, reference, x, weight_map=case.weight_map)
    copy_weights(custom, reference, weight_map=case.weight_map,
                 weights=random_weights(custom, seed))
    xt = input_tensor(x)
    mt = None if mask is None else ops.convert_to_tensor(mask)
    comps = [_same_mask("mask", _mask_value(custom.compute_mask(xt, mt)),
                        _mask_value(reference.compute_mask(xt, mt)))]
    from keras.src.backend import get_keras_mask
    call_kwargs = {} if mask is None else {"mask": mt}
    y, ref_y = custom(xt, **call_kwargs), reference(xt, **call_kwargs)
    comps.append(_same_mask("mask[output]", _mask_value(get_keras_mask(y)),
                            _mask_value(get_keras_mask(ref_y))))
    if mask is not None:
        comps.append(compare_expected(
            "output", to_numpy(y), to_numpy(ref_y),
            tolerance=None if case.is_exact(policy, mode) else
            case.tolerance(policy, "output"),
            differences=case.known_differences,
            scope=_scope(policy, mode, kwargs, x), ledger=recorder.ledger))
    else:
        comps.append(_same_mask("mask[sequential]", _propagated(custom, x),
                                _propagated(reference, x)))
    failed = [c for c in comps if not c.passed]
    if failed:
        error = AssertionError(
            f"{case.name}: masks differ from the reference's (policy="
            f"{policy}, input shape {np.shape(x)}, seed={seed}"
            f"{', with an input mask' if mask is not None else ''}):\n"
            + "\n".join(f"  {c.check}: {c.problem or c.describe()}"
                        for c in failed))
        error.record = (case.name, policy, mode, comps)
        raise error
    recorder.record(case.name, policy, mode, comps, "mask")


def mask_property(case, policy, mode, recorder=PROCESS):
    """For a case that declares ``masks``: ``compute_mask``, the mask on
    the output and the mask a Sequential model propagates equal the
    reference's; with ``input_mask``, a drawn boolean mask is passed as
    ``mask=`` and the outputs are compared too. Eager calls (``mode`` other
    than eager is refused by the battery's item list)."""

    @_settings("mask")
    @given(data=st.data())
    def mask(data):
        kwargs = case.draw_kwargs(data)
        x = draw_input(data, case, policy, kwargs, max_specials=2)
        seed = data.draw(st.integers(0, 2 ** 31 - 1), label="weights seed")
        m = None
        spec = case.input_mask
        if spec and data.draw(st.booleans(), label="pass an input mask"):
            shape = spec(x.shape) if callable(spec) else x.shape
            m_seed = data.draw(st.integers(0, 2 ** 31 - 1),
                               label="input mask seed")
            m = np.random.default_rng(m_seed).random(shape) < 0.7
        check_mask(case, policy, mode, kwargs, x, seed, m, recorder)

    mask.__name__ = f"mask[{case.name}-{policy}-{mode}]"
    return mask
