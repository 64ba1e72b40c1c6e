"""Non-trainable state: a few training-mode calls, and after each one the
output and every non-trainable variable against the reference's.

A layer such as BatchNormalization updates variables that no gradient
reaches (its moving mean and variance) when called with ``training=True``;
outputs and gradients in training mode do not depend on them, so the
equivalence property cannot see a wrong update. This property calls both
layers ``case.state_steps`` times on new drawn batches (same shape) and
compares, after each call, the output and every non-trainable variable,
matched by order and named by the reference's variable. It runs each
call in the item's mode through the layers' own variables, outside the
per-signature cache (which calls layers statelessly and drops updates):

- eager: ``layer(x, training=True)``;
- graph / compiled (TensorFlow): one ``tf.function`` per layer (XLA for
  compiled) wrapping that call, traced once and called for every step;
- compiled (JAX, torch): one ``jax.jit`` / ``torch.compile`` function
  per layer calling it inside a ``keras.StatelessScope`` (through
  ``__call__``, for its casting) that returns the output and the
  non-trainable variables' new values, which are then assigned to the
  layer's variables (torch: compiled once, the later steps under
  ``fail_on_recompile``; :mod:`customlayers.testing.torch_compile`).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from customlayers._keras import BACKEND
from customlayers.testing.convert import to_numpy
from customlayers.testing.equivalence import (build_pair, copy_weights,
                                              fact_check, random_weights)
from customlayers.testing.expectations import compare_expected
from customlayers.testing.report import PROCESS
from customlayers.testing.properties._base import (_make, _scope, _settings,
                                                   draw_input)


def _name(v) -> str:
    return (getattr(v, "path", None) or v.name).split("/")[-1].split(":")[0]


def training_step(layer, mode: str):
    """``step(x) -> output``: one ``training=True`` call of ``layer`` in
    ``mode``, its non-trainable variables updated in place."""
    if mode == "eager":
        return lambda x: layer(x, training=True)
    if BACKEND == "tensorflow":
        import tensorflow as tf
        fn = tf.function(lambda x: layer(x, training=True), autograph=False,
                         jit_compile=mode == "compiled")
        return fn
    if BACKEND in ("jax", "torch") and mode == "compiled":
        import keras
        trainable = list(layer.trainable_variables)
        state = list(layer.non_trainable_variables)

        def pure(x, values, frozen):
            mapping = list(zip(trainable, values)) + list(zip(state, frozen))
            with keras.StatelessScope(state_mapping=mapping) as scope:
                y = layer(x, training=True)
            new = [scope.get_current_value(v) for v in state]
            return y, [old if n is None else n
                       for n, old in zip(new, frozen)]

        if BACKEND == "jax":
            import jax
            jitted = jax.jit(pure)
        else:  # compiled once, reused by every step (same shapes)
            from customlayers.testing.torch_compile import compile_once
            compiled = compile_once(pure, "customlayers_training_step")

            def jitted(x, values, frozen):
                return compiled(x, [v.detach() for v in values],
                                [v.detach() for v in frozen])

        def step(x):
            y, new = jitted(x, [v.value for v in trainable],
                            [v.value for v in state])
            for v, n in zip(state, new):
                v.assign(n)
            return y
        return step
    raise NotImplementedError(f"mode {mode!r} on the {BACKEND} backend")


def _tensor(x):
    if BACKEND == "torch":
        from customlayers.testing.backends import _torch_tensor
        return _torch_tensor(x)
    from customlayers.testing.convert import input_tensor
    return input_tensor(x)


def check_state(case, policy, mode, kwargs, batches, seed, recorder=PROCESS):
    """One example: ``len(batches)`` training-mode calls of both layers
    (random weights from ``seed``, moving statistics included); after each,
    the output and every non-trainable variable equal the reference's."""
    custom = _make(case, kwargs, policy)
    reference = _make(case, kwargs, policy, case.reference)
    build_pair(custom, reference, batches[0], weight_map=case.weight_map)
    copy_weights(custom, reference, weight_map=case.weight_map,
                 weights=random_weights(custom, seed,
                                        positive=case.positive_weights))
    exact = case.is_exact(policy, mode)
    scope = _scope(policy, mode, kwargs, batches[0])
    recorder.ledger.declare(case.known_differences)
    steps = training_step(custom, mode), training_step(reference, mode)
    comps, failed = [], []

    def add(check, a, b, step):
        c = compare_expected(
            check, a, b,
            tolerance=None if exact else case.tolerance(policy, check),
            differences=case.known_differences, scope=scope,
            ledger=recorder.ledger)
        comps.append(c)
        if not c.passed:
            failed.append(f"after training step {step} of {len(batches)}:"
                          f"\n{c.describe()}")

    for step, x in enumerate(batches, 1):
        ys = [to_numpy(fn(_tensor(x))) for fn in steps]
        add("state output", ys[0], ys[1], step)
        got = list(custom.non_trainable_variables)
        want = list(reference.non_trainable_variables)
        names = [_name(v) for v in want]
        if len(got) != len(want):
            c = fact_check("state variables", False,
                           f"custom {[_name(v) for v in got]} vs reference "
                           f"{names}")
            comps.append(c)
            failed.append(c.describe())
            break
        for name, a, b in zip(names, got, want):
            add(f"state[{name}]", to_numpy(a), to_numpy(b), step)
        if failed:
            break
    if failed:
        error = AssertionError(
            f"{case.name}: non-trainable state differs from the reference's "
            f"(policy={policy}, mode={mode}, batch shape "
            f"{np.shape(batches[0])}, weights seed={seed}, kwargs={kwargs})"
            ":\n" + "\n".join(failed))
        error.record = (case.name, policy, mode, comps)
        raise error
    recorder.record(case.name, policy, mode, comps, "state")


def state_property(case, policy, mode, recorder=PROCESS):
    """``case.state_steps`` training-mode calls on new batches: the outputs
    and every non-trainable variable after each call equal the
    reference's."""

    @_settings(f"state/{mode}")
    @given(data=st.data())
    def state(data):
        kwargs = case.draw_kwargs(data)
        shape = None if case.input_data is not None else \
            case.draw_input_shape(data, kwargs)
        nonfinite = case.allow_nonfinite and data.draw(
            st.booleans(), label="include NaN/inf in the batches")
        batches = [draw_input(data, case, policy, kwargs, shape=shape,
                              nonfinite=nonfinite, label=f"batch {i + 1}")
                   for i in range(case.state_steps)]
        seed = data.draw(st.integers(0, 2 ** 32 - 1), label="weights seed")
        check_state(case, policy, mode, kwargs, batches, seed, recorder)

    state.__name__ = f"state[{case.name}-{policy}-{mode}]"
    return state
