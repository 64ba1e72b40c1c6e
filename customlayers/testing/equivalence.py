"""``assert_equivalent``: does a custom layer compute what a reference does?

The check, for one input:

1. Build both layers on the input and copy the custom layer's weights into
   the reference, in order (or through ``weight_map``).
2. Run both in the same mode (eager, graph or compiled) and compare the
   output, the gradient with respect to the input and the gradient with
   respect to every trainable weight, for the same upstream gradient.
3. Also compare the output dtype, the variables' dtypes, the regularization
   losses and what the weights' constraints do to the weights.

A mismatch raises ``AssertionError`` with a message that names the check,
dtype, mode and shape, the worst element (index, both values, absolute and
relative error, ULP distance), both layers' configs and the data needed to
replay the failure.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tempfile

import numpy as np

from customlayers._compat import (BACKEND, KERAS_VERSION, apply_constraint,
                                  input_tensor, to_numpy)
from customlayers.testing import backends
from customlayers.testing.numerics import Comparison, compare_arrays
from customlayers.testing.tolerances import Tolerance, tolerance_for

#: Arrays with at most this many elements in all are printed inline in a
#: failure message; larger ones are saved to an ``.npz`` file it names.
INLINE_LIMIT = 96


@dataclasses.dataclass
class EquivalenceReport:
    """Every comparison made by one :func:`assert_equivalent` call."""

    custom: str
    reference: str
    mode: str
    policy: str
    input_shape: tuple
    comparisons: list

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)

    @property
    def bit_exact(self) -> bool:
        return all(c.bit_exact for c in self.comparisons)

    def failures(self) -> list:
        return [c for c in self.comparisons if not c.passed]


def _policy_name(layer) -> str:
    from customlayers._compat import dtype_policy
    policy = dtype_policy(layer)
    return getattr(policy, "name", None) or str(layer.dtype)


def _config(layer) -> dict:
    try:
        return layer.get_config()
    except Exception as exc:  # a user's layer may not implement it
        return {"<get_config failed>": repr(exc)}


def _replay_blob(arrays: dict) -> str:
    """Inline small arrays; save big ones to an .npz and name the file."""
    total = sum(int(np.asarray(a).size) for a in arrays.values())
    if total <= INLINE_LIMIT:
        np.set_printoptions(floatmode="unique")
        try:
            return "\n".join(
                f"  {k} = np.array({np.asarray(v).astype(np.float64).tolist()!r}, "
                f"dtype='{np.asarray(v).dtype.name}')"
                for k, v in arrays.items())
        finally:
            np.set_printoptions(floatmode="maxprec")
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v).astype(np.float64)
                     for k, v in arrays.items()})
    digest = hashlib.sha1(buf.getvalue()).hexdigest()[:16]
    folder = os.environ.get("CUSTOMLAYERS_FAILURE_DIR") or os.path.join(
        tempfile.gettempdir(), "customlayers-failures")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{digest}.npz")
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    dtypes = {k: np.asarray(v).dtype.name for k, v in arrays.items()}
    return (f"  arrays saved (as float64) to {path}; original dtypes "
            f"{dtypes}\n  load with: d = np.load({path!r})")


def _failure_message(report: EquivalenceReport, custom, reference,
                     replay: dict, tolerance: Tolerance | None) -> str:
    head = (f"{report.custom} is not equivalent to {report.reference}: "
            f"{len(report.failures())} of {len(report.comparisons)} checks "
            f"failed\n  dtype policy={report.policy} mode={report.mode} "
            f"input shape={report.input_shape} backend={BACKEND} "
            f"keras={KERAS_VERSION}")
    tol = ("bit-exact (declared exact: same kernels expected)"
           if tolerance is None else
           f"rtol={tolerance.rtol:g} atol={tolerance.atol:g}")
    parts = [head, f"  comparison: {tol}"]
    parts += [c.describe() for c in report.failures()]
    parts.append(f"  custom config: {_config(custom)}")
    parts.append(f"  reference config: {_config(reference)}")
    parts.append("  to replay: build both layers from these configs, set the "
                 "custom weights to `weights`, copy them to the reference, "
                 "and differentiate sum(layer(x) * upstream):")
    parts.append(_replay_blob(replay))
    return "\n".join(parts)


def _identity(ws):
    return list(ws)


def build_pair(custom, reference, x: np.ndarray, *, weights=None,
               weight_map=None) -> None:
    """Build both layers on ``x`` (by calling them), optionally set the custom
    layer's weights, then copy them into the reference through
    ``weight_map`` (default: in order)."""
    custom(input_tensor(x))
    reference(input_tensor(x))
    if weights is not None:
        custom.set_weights(weights)
    mapped = (weight_map or _identity)(custom.get_weights())
    ref_shapes = [tuple(w.shape) for w in reference.get_weights()]
    got_shapes = [tuple(np.shape(w)) for w in mapped]
    if ref_shapes != got_shapes:
        raise ValueError(
            f"cannot copy weights of {type(custom).__name__} into "
            f"{type(reference).__name__}: the reference expects shapes "
            f"{ref_shapes}, the (mapped) custom weights have {got_shapes}. "
            "Pass weight_map= to rearrange them.")
    reference.set_weights(mapped)


def assert_equivalent(custom, reference, inputs, *, mode: str = "eager",
                      upstream=None, weights=None, weight_map=None,
                      exact: bool = False,
                      tolerance: Tolerance | None = None,
                      signed_zeros: bool = True,
                      flush_subnormals: bool = False,
                      seed: int = 0) -> EquivalenceReport:
    """Assert that ``custom`` computes the same function as ``reference``.

    Args:
        custom: The layer under test (built or not).
        reference: The reference layer, constructed with the same arguments.
        inputs: A NumPy array (or array-like) to feed both layers.
        mode: ``"eager"``, ``"graph"`` or ``"compiled"``; both layers run in
            it (see :mod:`customlayers.testing.backends`).
        upstream: The gradient flowing into the output; default: standard
            normal values from ``seed``, in the output's dtype.
        weights: Values to give the custom layer's weights before copying
            (default: keep its initialisation).
        weight_map: ``f(custom_weights) -> reference_weights`` for pairs
            whose weights differ in order or layout. It is applied to the
            weight *gradients* too, so it must be a linear rearrangement
            (reorder, transpose, split, concatenate).
        exact: Demand bit-exact results (for pairs that run the same
            kernels). The report says "bit-exact" either way when it is.
        tolerance: Overrides the per-dtype entry of
            :data:`customlayers.testing.tolerances.TOLERANCES`.
        signed_zeros: Whether ``-0.0`` vs ``+0.0`` counts as a difference.
        flush_subnormals: Compare subnormal values as zero (see
            :func:`customlayers.testing.numerics.compare_arrays`).
        seed: Seed for the default ``upstream``.

    Returns:
        An :class:`EquivalenceReport` with every comparison, when all pass.

    Raises:
        AssertionError: When any comparison fails; the message explains the
            worst element of each failing check and how to replay it.
    """
    x = np.asarray(inputs)
    build_pair(custom, reference, x, weights=weights, weight_map=weight_map)
    policy = _policy_name(reference)
    if exact:
        tolerance = None
    elif tolerance is None:
        tolerance = tolerance_for(getattr(reference, "compute_dtype", None)
                                  or policy)

    comparisons: list[Comparison] = []
    if upstream is None:
        shape, dtype = _output_spec(reference, x)
        upstream = np.random.default_rng(seed).standard_normal(
            shape).astype(dtype)
    upstream = np.asarray(upstream)
    got = backends.forward_backward(custom, x, upstream, mode)
    want = backends.forward_backward(reference, x, upstream, mode)

    def add(check, a, b, tol=tolerance, zeros=signed_zeros):
        comparisons.append(compare_arrays(check, a, b, tolerance=tol,
                                          signed_zeros=zeros,
                                          flush_subnormals=flush_subnormals))

    add("output", got.output, want.output)
    add("grad[input]", got.input_grad, want.input_grad)
    if len(got.weight_grads) != len(want.weight_grads):
        comparisons.append(_same_check(
            "trainable weights", got.weight_names, want.weight_names))
    else:
        mapped = (weight_map or _identity)(got.weight_grads)
        for name, a, b in zip(want.weight_names, mapped, want.weight_grads):
            add(f"grad[{name.split('/')[-1]}]", a, b)
    comparisons.append(_same_check(
        "variable dtypes",
        [np.asarray(w).dtype.name
         for w in (weight_map or _identity)(custom.get_weights())],
        [np.asarray(w).dtype.name for w in reference.get_weights()]))
    if mode == "eager":
        add("losses", np.asarray(got.losses, np.float64),
            np.asarray(want.losses, np.float64))
        add("constraints", *_constrained(custom, reference, weight_map),
            tol=None)

    report = EquivalenceReport(
        custom=type(custom).__name__, reference=type(reference).__name__,
        mode=mode, policy=policy, input_shape=tuple(x.shape),
        comparisons=comparisons)
    if not report.passed:
        replay = {"x": x, "upstream": upstream}
        for i, w in enumerate(custom.get_weights()):
            replay[f"weights[{i}]"] = w
        raise AssertionError(_failure_message(report, custom, reference,
                                              replay, tolerance))
    return report


def _constrained(custom, reference, weight_map):
    """Each weight after its own constraint, flattened, for both layers."""
    def apply(layer):
        out = []
        for v in layer.weights:
            c = getattr(v, "constraint", None)
            value = v if c is None else apply_constraint(c, v)
            out.append(to_numpy(value).astype(np.float64))
        return out
    a = (weight_map or _identity)(apply(custom))
    b = apply(reference)
    flat = lambda ws: (np.concatenate([w.reshape(-1) for w in ws])  # noqa
                       if ws else np.zeros(0))
    return flat(a), flat(b)


def _same_check(check: str, a: list, b: list) -> Comparison:
    """An equality check on non-numeric facts (dtype names, counts)."""
    ok = list(a) == list(b)
    return Comparison(
        check=check, shape=(len(b),), dtype="-", passed=ok, bit_exact=ok,
        max_abs=0.0 if ok else np.inf, max_rel=0.0 if ok else np.inf,
        max_ulp=0.0 if ok else np.inf, n_bad=0 if ok else 1,
        n_total=max(len(b), 1),
        problem="" if ok else f"custom {list(a)} vs reference {list(b)}")


def _output_spec(layer, x):
    """Output shape and dtype without an extra forward pass when the layer
    can tell them."""
    try:
        shape = tuple(layer.compute_output_shape(x.shape))
        dtype = layer.compute_dtype
        if all(isinstance(d, int) for d in shape) and dtype:
            return shape, dtype
    except Exception:  # a user's layer may not implement it
        pass
    out = backends.forward_backward(layer, x, None, mode="eager").output
    return out.shape, out.dtype
