"""Masks: what ``compute_mask`` returns, the mask on the output, the
masked outputs and the mask the layer hands on in a model equal the
reference's (for a case that declares ``masks``), in every mode."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from customlayers._keras import BACKEND, keras, ops, variable_name
from customlayers.testing.backends import call_kwargs
from customlayers.testing.convert import input_tensor, to_numpy
from customlayers.testing.equivalence import build_pair, fact_check
from customlayers.testing.expectations import compare_expected
from customlayers.testing.report import PROCESS

from customlayers.testing.properties._base import (_make, _scope, draw_input,
                                                   settings_for,
                                                   training_suffix)


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


@dataclasses.dataclass
class MaskedCall:
    """What one layer gave in :func:`masked_call`, as NumPy arrays."""

    #: ``compute_mask(x, mask)`` (``None``: no mask).
    mask: object
    output: np.ndarray
    #: The mask Keras set on the output (``None``: none).
    output_mask: object
    #: The non-trainable variables after the call (a training-mode call
    #: updates them: BatchNormalization's moving statistics).
    state: list


def masked_call(layer, x, mask, mode, training=None) -> MaskedCall:
    """``layer.compute_mask(x, mask)`` and ``layer(x, mask=mask,
    training=training)`` (each argument passed only when not ``None``) in
    ``mode``: eager calls, or one ``tf.function`` / XLA / ``jax.jit`` /
    ``torch.compile`` function of the input, the mask and the variables' values (the layer
    called statelessly, the updated non-trainable values read back from
    the scope)."""
    from keras.src.backend import get_keras_mask
    kw = call_kwargs(training)
    frozen = list(layer.non_trainable_variables)
    if mode == "eager":
        xt = input_tensor(x)
        mt = None if mask is None else ops.convert_to_tensor(mask)
        cm = layer.compute_mask(xt, mt)
        y = layer(xt, **kw, **({} if mt is None else {"mask": mt}))
        return MaskedCall(_mask_value(cm), to_numpy(y),
                          _mask_value(get_keras_mask(y)),
                          [to_numpy(v) for v in frozen])
    variables = list(layer.trainable_variables) + frozen

    def fn(x, m, values):
        with keras.StatelessScope(
                state_mapping=list(zip(variables, values))) as scope:
            cm = layer.compute_mask(x, m)
            y = layer(x, **kw, **({} if m is None else {"mask": m}))
            state = [scope.get_current_value(v) for v in frozen]
        return cm, y, get_keras_mask(y), state

    values = [v.value for v in variables]
    if BACKEND == "torch":
        if mode != "compiled":
            raise NotImplementedError(f"mode {mode!r} on torch")
        from customlayers.testing.backends import _torch_tensor
        from customlayers.testing.torch_compile import run_compiled
        cm, y, ym, state = run_compiled(
            fn, _torch_tensor(x),
            None if mask is None else ops.convert_to_tensor(mask),
            [v.detach() for v in values], name="customlayers_masked_call")
    elif BACKEND == "jax":
        import jax
        import jax.numpy as jnp
        if mode != "compiled":
            raise NotImplementedError(f"mode {mode!r} on JAX")
        cm, y, ym, state = jax.jit(fn)(
            jnp.asarray(x), None if mask is None else jnp.asarray(mask),
            values)
    else:
        from customlayers.testing.calls import tf_tensor, tf_wrap
        cm, y, ym, state = tf_wrap(fn, mode)(
            tf_tensor(x), None if mask is None else tf_tensor(mask), values)
    return MaskedCall(_mask_value(cm), to_numpy(y), _mask_value(ym),
                      [to_numpy(v) for v in state])


def _no_mask_for(case, x, kwargs) -> bool:
    """The case's ``input_mask(x_shape)`` (or ``input_mask(x_shape,
    kwargs=...)``, given the constructor arguments when it takes them)
    says ``None``: no mask for this input (a combination where the
    reference cannot take one)."""
    import inspect
    spec = case.input_mask
    if not callable(spec):
        return False
    if "kwargs" in inspect.signature(spec).parameters:
        return spec(np.shape(x), kwargs=kwargs) is None
    return spec(np.shape(x)) is None


def check_mask(case, policy, mode, kwargs, x, seed, mask=None,
               recorder=PROCESS, training=None):
    """One example, in ``mode``, both layers called with ``training``
    (``None``: not passed): ``compute_mask(x, mask)``, the mask on the
    output (``keras_mask``) and, with an input ``mask``, the output of
    ``layer(x, mask=mask)`` equal the reference's; in a training-mode call
    the non-trainable variables after it too (``state[<name>]``: moving
    statistics from masked moments). The mask a Sequential model hands to
    the next layer (without an input mask) is compared in eager mode only,
    in the items without ``training=True``: building a model and reading
    what it hands on is a question about the eager model, the same in any
    mode (the traced values above are each mode's own)."""
    from customlayers.testing.equivalence import copy_weights, random_weights
    if mask is not None and _no_mask_for(case, x, kwargs):
        mask = None
    custom = _make(case, kwargs, policy)
    reference = _make(case, kwargs, policy, case.reference)
    build_pair(custom, reference, x, weight_map=case.weight_map)
    copy_weights(custom, reference, weight_map=case.weight_map,
                 weights=random_weights(custom, seed,
                                        positive=case.positive_weights))
    got = masked_call(custom, x, mask, mode, training)
    want = masked_call(reference, x, mask, mode, training)
    comps = [_same_mask("mask", got.mask, want.mask),
             _same_mask("mask[output]", got.output_mask, want.output_mask)]
    scope = _scope(policy, mode, kwargs, x)

    def compare(check, a, b):
        comps.append(compare_expected(
            check, a, b, tolerance=None if case.is_exact(policy, mode) else
            case.tolerance(policy, check),
            differences=case.known_differences, scope=scope,
            ledger=recorder.ledger))

    if mask is not None:
        compare("output", got.output, want.output)
    if training:
        names = [variable_name(v).split("/")[-1]
                 for v in reference.non_trainable_variables]
        for name, a, b in zip(names, got.state, want.state):
            compare(f"state[{name}]", a, b)
    elif mask is None and mode == "eager":
        comps.append(_same_mask("mask[sequential]", _propagated(custom, x),
                                _propagated(reference, x)))
    failed = [c for c in comps if not c.passed]
    if failed:
        error = AssertionError(
            f"{case.name}: masks differ from the reference's (policy="
            f"{policy}, mode={mode}"
            f"{'' if training is None else f', training={training}'}, "
            f"input shape {np.shape(x)}, seed={seed}"
            f"{', with an input mask' if mask is not None else ''}):\n"
            + "\n".join(f"  {c.check}: {c.problem or c.describe()}"
                        for c in failed))
        error.record = (case.name, policy, mode, comps)
        raise error
    recorder.record(case.name, policy, mode, comps, "mask")


def _check_mask_with(training):
    """:func:`check_mask` with ``training`` bound."""
    return functools.partial(check_mask, training=training)


def mask_property(case, policy, mode, recorder=PROCESS, training=None):
    """For a case that declares ``masks``, in ``mode``, called with
    ``training`` (``None``: not passed): ``compute_mask``, the mask on the
    output (and, in eager items, the mask a Sequential model propagates)
    equal the reference's; with ``input_mask``, a drawn boolean mask is
    passed as ``mask=`` and the outputs (and a training-mode call's
    updated state) are compared too (see :func:`check_mask`)."""
    # The inner function's source seeds Hypothesis's derandomized draws
    # (see properties/equivalence.py): the mode's example count and
    # ``training`` reach it through these two local names, so that every
    # mode and value runs the same draws (the eager items the examples
    # they ran before these arguments existed).
    _settings = settings_for(mode, training)
    check_mask = _check_mask_with(training)

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

    mask.__name__ = (f"mask[{case.name}-{policy}-{mode}"
                     f"{training_suffix(training)}]")
    return mask
