"""Equivalence of a quantizing layer with Keras's own, quantized the same way.

::

    from customlayers.testing.quantized import assert_quantized_equivalent
    report = assert_quantized_equivalent(
        MyDense(8), keras.layers.Dense(8), x, mode="int8",
        execution="compiled")
    print(report)

Both layers are built on ``x``, given the *same float weights* (``weights``,
default: the custom layer's, copied to the reference), optionally given
LoRA (``lora=(rank, alpha)`` with ``lora_weights``) before or after
quantization, then quantized with ``quantize(mode, config=...)``. Then:

1. **State, bit for bit**: every variable (integer kernels, scales, zero
   points, group indices, float8 scales and amax histories, LoRA
   matrices) must have the same name, dtype, shape and bytes, and the
   variables must come in the same order; so must what
   ``save_own_variables`` writes (LoRA merged and re-quantized).
2. **Outputs and gradients** (TensorFlow: a ``GradientTape`` with a random
   upstream gradient from ``seed``; the input gradient and one gradient per
   trainable variable, which for float8's scales and histories are their
   next values): compared with the reference run the same way, in
   ``execution`` ``"eager"``, ``"graph"`` (``tf.function``) or
   ``"compiled"`` (``tf.function(jit_compile=True)``). Keras 3.15.1's own
   float8 Dense cannot be differentiated under an eager ``GradientTape``
   (``tf.custom_gradient`` passes ``variables=`` and its gradient function
   returns three values: ``ValueError: too many values to unpack``); Keras
   tests it under XLA. So float8 is checked in graph and compiled mode.

   Tolerance, measured rather than assumed: the reference is also run in a
   second mode (compiled, or for a compiled check eager -- graph for
   float8) and the largest absolute difference *the built-in shows against
   itself* between the two modes is the allowance for that output or
   gradient. On CPU with TF 2.21 that allowance is nonzero for int8/int4
   (XLA fuses the dequantizing division differently), yet customlayers.Dense
   is bit-exact with the built-in in every mode; the report says which
   comparisons were bit-exact.

On other backends than TensorFlow only the state and the forward pass are
compared (the report says so).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from customlayers._keras import BACKEND, keras
from customlayers.testing.convert import to_numpy


@dataclasses.dataclass
class Row:
    check: str
    bit_exact: bool
    max_abs: float
    allowed: float
    passed: bool
    detail: str = ""


@dataclasses.dataclass
class QuantizedReport:
    mode: str | None
    execution: str
    rows: list

    @property
    def bit_exact(self) -> bool:
        return all(r.bit_exact for r in self.rows)

    def __str__(self):
        lines = [f"quantized equivalence, mode={self.mode}, "
                 f"{self.execution}:"]
        for r in self.rows:
            state = "bit-exact" if r.bit_exact else (
                "pass" if r.passed else "FAIL")
            lines.append(f"  {r.check:<40} {state:<9} max|d|={r.max_abs:.3g}"
                         f" allowed={r.allowed:.3g} {r.detail}")
        return "\n".join(lines)


def _same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and \
        a.tobytes() == b.tobytes()


def _max_abs(a, b) -> float:
    a = np.atleast_1d(np.asarray(a, dtype=np.float64))
    b = np.atleast_1d(np.asarray(b, dtype=np.float64))
    if a.shape != b.shape:
        return float("inf")
    d = np.abs(a - b)
    d[np.isnan(a) & np.isnan(b)] = 0.0
    d[np.isnan(d)] = np.inf  # NaN on one side only
    d[(a == b)] = 0.0       # equal infinities
    return float(d.max()) if d.size else 0.0


def _worst(a, b) -> str:
    a = np.atleast_1d(np.asarray(a, dtype=np.float64))
    b = np.atleast_1d(np.asarray(b, dtype=np.float64))
    if a.shape != b.shape:
        return f"shapes {a.shape} vs {b.shape}"
    if not a.size:
        return ""
    d = np.where(a == b, 0.0, np.abs(a - b))
    d = np.where(np.isnan(d), np.inf, d)
    i = np.unravel_index(int(np.argmax(d)), a.shape)
    return f"worst at {tuple(int(k) for k in i)}: custom {a[i]!r}, " \
           f"reference {b[i]!r}"


def _describe(config):
    if config is None:
        return "None"
    try:
        inner = keras.saving.serialize_keras_object(config)["config"]
        return f"{type(config).__name__}({inner})"
    except Exception:  # noqa: BLE001 - a description only
        return repr(config)


def _state(layer):
    return {v.name: to_numpy(v) for v in layer.variables}


def _saved(layer):
    store = {}
    layer.save_own_variables(store)
    return {k: to_numpy(v) for k, v in store.items()}


def _prepare(layer, x, weights, lora, lora_weights, lora_first, mode,
             config, quantize_kwargs):
    if not layer.built:
        layer.build(x.shape)
    layer.set_weights(weights)

    def add_lora():
        rank, alpha = lora
        layer.enable_lora(rank, lora_alpha=alpha)
        if lora_weights is not None:
            layer.lora_kernel_a.assign(lora_weights[0])
            layer.lora_kernel_b.assign(lora_weights[1])

    if lora and lora_first:
        add_lora()
    if mode is not None:
        layer.quantize(mode, config=config, **(quantize_kwargs or {}))
    if lora and not lora_first:
        add_lora()


def _run(layer, x, upstream, training, execution):
    """Output and gradients (input first, then per trainable variable, by
    name). TensorFlow only for the gradients."""
    if BACKEND != "tensorflow":
        return {"output": to_numpy(layer(x, training=training))}
    import tensorflow as tf

    names = [v.name for v in layer.trainable_variables]

    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training)
        grads = tape.gradient(y, [x] + list(layer.trainable_variables),
                              output_gradients=tf.cast(upstream, y.dtype))
        return y, grads

    if execution != "eager":
        step = tf.function(step, jit_compile=execution == "compiled")
    y, grads = step(tf.constant(x))
    out = {"output": to_numpy(y), "d input": to_numpy(grads[0])
           if grads[0] is not None else None}
    for name, g in zip(names, grads[1:]):
        out[f"d {name}"] = None if g is None else to_numpy(
            tf.convert_to_tensor(g))
    return out


def assert_quantized_equivalent(custom, reference, x, *, mode, config=None,
                                weights=None, lora=None, lora_weights=None,
                                lora_first=True, execution="eager",
                                training=True, seed=0,
                                quantize_kwargs=None) -> QuantizedReport:
    """Assert that ``custom`` quantized with ``mode`` (``"int8"``,
    ``"int4"``, ``"float8"``, or ``None`` for LoRA alone) is the reference
    quantized the same way; see the module docstring.

    Args:
        custom, reference: unquantized layers with the same float weight
            layout (built or not; both are built on ``x.shape``).
        x: NumPy input.
        mode, config: what ``quantize(mode, config=config)`` gets.
        weights: float weights for both (``get_weights`` order); default
            the custom layer's after build.
        lora: ``(rank, alpha)`` to ``enable_lora`` on both, or ``None``.
        lora_weights: ``(A, B)`` to assign after ``enable_lora`` (the
            default B is zero: a LoRA bug would not show).
        lora_first: enable LoRA before quantizing (else after).
        execution: ``"eager"``, ``"graph"`` or ``"compiled"`` (XLA).
        training: the ``training`` argument of the calls.
        seed: seed of the upstream gradient.
        quantize_kwargs: extra arguments for the custom layer's
            ``quantize`` (e.g. ``{"type_check": False}`` for a subclass).

    Returns:
        The :class:`QuantizedReport` (``bit_exact`` says whether every
        comparison was bit for bit).

    Raises:
        AssertionError: naming every failed check with its worst element.
    """
    x = np.asarray(x)
    if not custom.built:
        custom.build(x.shape)
    if weights is None:
        weights = custom.get_weights()
    for layer, kw in ((custom, quantize_kwargs), (reference, None)):
        _prepare(layer, x, weights, lora, lora_weights, lora_first, mode,
                 config, kw)

    rows, failures = [], []

    def check(name, a, b, allowed=None):
        """``allowed=None``: bit for bit only; else a max-abs allowance."""
        if a is not None and b is not None and (
                np.asarray(a).dtype.kind in "USO" or allowed is None):
            exact = _same_bits(a, b)
            numeric = np.asarray(a).dtype.kind not in "USO" and \
                np.shape(a) == np.shape(b)
            row = Row(name, exact, 0.0 if exact else (
                _max_abs(a, b) if numeric else float("inf")), 0.0,
                      exact, "" if exact else (
                          _worst(a, b) + f" ({np.asarray(a).dtype} vs "
                          f"{np.asarray(b).dtype})" if numeric else
                          f"custom {a!r}, reference {b!r}"))
            rows.append(row)
            if not exact:
                failures.append(row)
            return
        allowed = allowed or 0.0
        if a is None or b is None:
            ok = a is None and b is None
            row = Row(name, ok, 0.0 if ok else float("inf"), allowed, ok,
                      "" if ok else f"gradient None on one side only "
                      f"(custom {a is None}, reference {b is None})")
        else:
            exact = _same_bits(a, b)
            err = 0.0 if exact else _max_abs(a, b)
            same_kind = np.asarray(a).dtype == np.asarray(b).dtype and \
                np.shape(a) == np.shape(b)
            ok = exact or (same_kind and err <= allowed)
            row = Row(name, exact, err, allowed, ok,
                      "" if ok else _worst(a, b) + (
                          "" if same_kind else f" (dtype/shape "
                          f"{np.asarray(a).dtype}{np.shape(a)} vs "
                          f"{np.asarray(b).dtype}{np.shape(b)})"))
        rows.append(row)
        if not row.passed:
            failures.append(row)

    check("variable order (get_weights/set_weights)",
          np.array([v.name for v in custom.variables]),
          np.array([v.name for v in reference.variables]))
    mine, theirs = _state(custom), _state(reference)
    check("variable names", np.array(sorted(mine)),
          np.array(sorted(theirs)))
    for name in sorted(set(mine) & set(theirs)):
        check(f"state {name}", mine[name], theirs[name])
    mine_saved, theirs_saved = _saved(custom), _saved(reference)
    check("saved variable count", np.array(len(mine_saved)),
          np.array(len(theirs_saved)), None)
    for key in sorted(set(mine_saved) & set(theirs_saved), key=int):
        check(f"saved #{key}", mine_saved[key], theirs_saved[key])

    if BACKEND == "tensorflow":
        probe = reference(x, training=training)
        upstream = np.random.default_rng(seed).standard_normal(
            tuple(probe.shape)).astype(np.float32)
    else:
        upstream = None
    if execution not in ("eager", "graph", "compiled"):
        raise ValueError(f"execution must be 'eager', 'graph' or "
                         f"'compiled'; received execution={execution!r}")
    other = "compiled" if execution != "compiled" else (
        "graph" if mode == "float8" else "eager")
    ref = _run(reference, x, upstream, training, execution)
    ref_other = (_run(reference, x, upstream, training, other)
                 if BACKEND == "tensorflow" else ref)
    got = _run(custom, x, upstream, training, execution)
    check("output/gradient names", np.array(sorted(got)),
          np.array(sorted(ref)))
    for key in ref:
        if key not in got:
            continue
        a, b = ref[key], ref_other[key]
        allowed = 0.0 if a is None or b is None else _max_abs(a, b)
        check(key, got[key], ref[key], allowed)

    report = QuantizedReport(mode, execution, rows)
    if failures:
        raise AssertionError(
            f"{type(custom).__name__} differs from "
            f"{type(reference).__name__} quantized with mode={mode!r}, "
            f"config={_describe(config)}, lora={lora!r} "
            f"({'before' if lora_first else 'after'} quantizing), input "
            f"shape {x.shape}, {execution}, "
            f"training={training}, upstream seed {seed}:\n" + "\n".join(
                f"  {r.check}: max|d|={r.max_abs:.6g} (allowed "
                f"{r.allowed:.3g}) {r.detail}" for r in failures)
            + f"\n{report}")
    return report
