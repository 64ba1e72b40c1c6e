"""Declared cross-backend differences of the parity tool
(:mod:`customlayers.testing.parity`): where the backends' *built-ins*
compute differently, so the custom layers, which follow each backend's
built-in bit for bit, differ across backends too.

Each declaration is scoped (case, compute dtypes, checks, CPU) and does not
loosen a tolerance: it names what each backend computes, as a *model* of
the dumped inputs, and a comparison that fails the tolerance table passes
as ``expected`` only if each of the two backends equals its own model bit
for bit. A declaration that no comparison needed is reported by
:func:`stale` (the parity test fails on it, as a strict xfail would).

:data:`GATHER_GRAD_ACCUMULATION`, found by ``tox -e parity``: under a
float16 or bfloat16 compute dtype, Keras's Embedding (the built-in's
``ops.take`` of the autocast table, which customlayers.Embedding mirrors)
gets the table's gradient as the sum of the upstream rows of repeated
ids, and the backends sum in different precisions:

- TensorFlow: the gather's gradient is an ``IndexedSlices`` that passes
  through the autocast's ``Cast``, which casts each *row* to float32; the
  rows are then summed in float32 (``unsorted_segment_sum`` when
  densified): the float32 sum in id order, bit for bit;
- JAX (the gather's transpose, a scatter-add in the operand's dtype) and
  PyTorch (``embedding_dense_backward``): the sum is accumulated in the
  compute dtype, then cast to float32: on CPU the running sum in id order
  in float16/bfloat16, bit for bit.

Measured on CPU (keras 3.15.1, TF 2.21, jax 0.10.2, torch 2.13): the
bfloat16 sum of 192 standard-normal rows is off the float32 sum by up to
1.8 (7000 random dumps of the parity shape; the table's bfloat16
tolerance failed in 30-58% of them), float16 by up to 0.26;
``benchmarks/investigations/embedding_bf16_grad_sum.py`` shows it with
``keras.layers.Embedding`` alone.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from customlayers.testing.differences import check_matches

HALF = ("float16", "bfloat16")


@dataclasses.dataclass(frozen=True)
class ParityDifference:
    """One declared difference: where it applies, and what each backend
    computes there (``model(backend, inputs) -> array or None``; ``inputs``
    maps ``input``, ``upstream`` and ``compute_dtype``; ``None``: no model
    for that backend, so the declaration cannot excuse it)."""

    label: str
    case: str
    compute_dtypes: tuple
    checks: tuple
    why: str
    model: Callable

    def applies(self, case, compute_dtype, check, device) -> bool:
        return (case == self.case and compute_dtype in self.compute_dtypes
                and device == "cpu"
                and any(check_matches(check, p) for p in self.checks))


def _segment_sum(ids, upstream, dtype):
    """The rows of ``upstream`` summed per id, in id order, each addition
    rounded to ``dtype``; as float32."""
    ids = np.asarray(ids).reshape(-1).astype(np.int64)
    rows = np.asarray(upstream).reshape(ids.size, -1).astype(dtype)
    out = np.zeros((int(ids.max()) + 1, rows.shape[1]), dtype)
    for i, r in enumerate(ids):  # sequential: the order matters
        out[r] = (out[r].astype(np.float32) + rows[i].astype(np.float32)
                  ).astype(dtype)
    return out.astype(np.float32)


def _gather_grad(backend, inputs):
    if backend == "tensorflow":
        dtype = np.float32
    elif backend in ("jax", "torch"):
        dtype = np.dtype(inputs["compute_dtype"])
    else:
        return None
    return _segment_sum(inputs["input"], inputs["upstream"], dtype)


GATHER_GRAD_ACCUMULATION = ParityDifference(
    label="Embedding: the table's gradient is summed in float32 on "
          "TensorFlow, in the compute dtype on JAX and torch",
    case="Embedding", compute_dtypes=HALF, checks=("grad[*:embeddings]",),
    why="under float16/bfloat16 compute the built-in Embedding's table "
        "gradient (a scatter-add of the upstream rows of repeated ids) is "
        "summed in float32 on TensorFlow (the gather's IndexedSlices pass "
        "through the autocast Cast row by row) and in the compute dtype on "
        "JAX and torch; customlayers.Embedding follows each (module doc)",
    model=_gather_grad)

#: The declarations :func:`~customlayers.testing.parity.compare` applies.
DIFFERENCES = (GATHER_GRAD_ACCUMULATION,)


def excuse(comp, meta0, base, meta, arrays, variant, check):
    """``comp`` (a failed comparison of ``check`` between the first dump
    and another) marked ``expected`` where a declaration applies and each
    backend equals its own model bit for bit; otherwise ``comp`` with the
    models' verdicts added to its problem. Returns ``(comp, label or
    None)``."""
    from customlayers.testing.numerics import compare_arrays
    from customlayers.testing.strategies import compute_dtype
    dtype = compute_dtype(variant.split(":", 1)[0])
    for d in DIFFERENCES:
        if not all(d.applies(m["case"], dtype, check, m.get("device", "cpu"))
                   for m in (meta0, meta)):
            continue
        verdicts = []
        for m, a in ((meta0, base), (meta, arrays)):
            inputs = {"input": a[f"{variant}/input"],
                      "upstream": a[f"{variant}/upstream"],
                      "compute_dtype": dtype}
            want = d.model(m["backend"], inputs)
            got = a[f"{variant}/{check}"]
            ok = want is not None and compare_arrays(
                check, got.astype(np.float32), want, tolerance=None).passed
            verdicts.append(f"{m['backend']} {'equals' if ok else 'is not'} "
                            "its model")
        if all(v.endswith(" equals its model") for v in verdicts):
            return dataclasses.replace(comp, passed=True, expected=(
                d.label,), problem=f"{comp.problem}; expected: "
                f"{', '.join(verdicts)} ({d.label})"), d.label
        return dataclasses.replace(comp, problem=(
            f"{comp.problem}; declared difference {d.label!r} does not "
            f"explain it: {', '.join(verdicts)}")), None
    return comp, None


def stale(needed) -> list:
    """The declarations whose label is not in ``needed``."""
    return [d.label for d in DIFFERENCES if d.label not in set(needed)]


__all__ = ["DIFFERENCES", "GATHER_GRAD_ACCUMULATION", "ParityDifference",
           "excuse", "stale"]
