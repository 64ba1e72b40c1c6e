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

import numpy as np

from customlayers._keras import BACKEND
from customlayers.testing import backends
from customlayers.testing.convert import (apply_constraint, input_tensor,
                                         to_numpy)
from customlayers.testing.expectations import Ledger, Scope, compare_expected
from customlayers.testing.failure_text import failure_message
from customlayers.testing.numerics import Comparison
from customlayers.testing.tolerances import tolerance_for

@dataclasses.dataclass
class EquivalenceReport:
    """Every comparison made by one :func:`assert_equivalent` call."""

    custom: str
    reference: str
    mode: str
    policy: str
    input_shape: tuple
    comparisons: list
    #: The seed the weights were randomised from (``None``: given or kept).
    weights_seed: int | None = None
    #: The ``training`` call argument (``None``: not passed).
    training: bool | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)

    @property
    def expected_differences(self) -> list:
        """Labels of the known differences some comparison needed."""
        return sorted({e for c in self.comparisons for e in c.expected})

    @property
    def bit_exact(self) -> bool:
        return all(c.bit_exact for c in self.comparisons)

    def failures(self) -> list:
        return [c for c in self.comparisons if not c.passed]


def _policy_name(layer) -> str:
    from customlayers._keras import dtype_policy
    policy = dtype_policy(layer)
    return getattr(policy, "name", None) or str(layer.dtype)


def _built(layer) -> bool:
    return bool(getattr(layer, "built", False))


def _identity(ws):
    return list(ws)


def build_pair(custom, reference, x: np.ndarray, *, weights=None,
               weight_map=None) -> None:
    """Build both layers on ``x`` (by calling them), optionally set the custom
    layer's weights, then copy them into the reference through
    ``weight_map`` (default: in order)."""
    custom(input_tensor(x))
    reference(input_tensor(x))
    copy_weights(custom, reference, weights=weights, weight_map=weight_map)


def copy_weights(custom, reference, *, weights=None, weight_map=None) -> None:
    """Optionally set the custom layer's weights, then copy them into the
    reference through ``weight_map`` (default: in order)."""
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


def random_weights(layer, seed: int, scale: float = 0.5,
                   positive=()) -> list:
    """Random normal values (times ``scale``) shaped like ``layer``'s
    weights, never exactly zero, from ``seed``: a dropped bias or a
    zero-initialised weight shows up, unlike with the fresh
    initialisation. Weights named in ``positive`` (the last part of their
    path, e.g. ``moving_variance``) get absolute values."""
    from customlayers.testing.strategies import random_weights as draw
    return draw(np.random.default_rng(seed), layer.get_weights(),
                scale=scale, positive=positive_indices(layer, positive))


def positive_indices(layer, names) -> tuple:
    """Indices (in ``layer.weights``) of the weights named in ``names``."""
    if not names:
        return ()
    return tuple(i for i, v in enumerate(layer.weights)
                 if (getattr(v, "path", None) or v.name).split("/")[-1]
                 .split(":")[0] in names)


def assert_equivalent(custom, reference, inputs, *, mode: str = "eager",
                      upstream=None, weights="random", weight_map=None,
                      exact: bool = False, tolerance=None,
                      signed_zeros: bool = True,
                      flush_subnormals: bool = False,
                      seed: int = 0, known_differences=(), kwargs=None,
                      ledger: Ledger | None = None,
                      artifacts_dir=None, training=None,
                      positive_weights=()) -> EquivalenceReport:
    """Assert that ``custom`` computes the same function as ``reference``.

    Args:
        custom: The layer under test (built or not).
        reference: The reference layer, constructed with the same arguments.
        inputs: A NumPy array (or array-like) to feed both layers.
        mode: ``"eager"``, ``"graph"`` or ``"compiled"``; both layers run in
            it (see :mod:`customlayers.testing.backends`).
        upstream: The gradient flowing into the output; default: standard
            normal values from ``seed``, in the output's dtype.
        weights: ``"random"`` (default: normal * 0.5 from ``seed``, never
            the fresh initialisation, which would hide a dropped zero-
            initialised bias), ``"keep"`` (the layers' own initialisation),
            or a list of arrays for the custom layer's weights. They are
            copied into the reference, in order or through ``weight_map``.
        weight_map: ``f(custom_weights) -> reference_weights`` for pairs
            whose weights differ in order or layout. It is applied to the
            weight *gradients* too, so it must be a linear rearrangement
            (reorder, transpose, split, concatenate).
        exact: Demand bit-exact results (for pairs that run the same
            kernels). The report says "bit-exact" either way when it is.
        tolerance: A :class:`Tolerance`, or ``f(check) -> Tolerance``;
            default: the per-dtype entry of
            :data:`customlayers.testing.tolerances.TOLERANCES`.
        signed_zeros: Whether ``-0.0`` vs ``+0.0`` counts as a difference
            (everywhere; prefer a scoped ``known_differences`` entry).
        flush_subnormals: Compare subnormal values as zero (everywhere).
        seed: Seed for the random weights and the default ``upstream``.
        known_differences: :class:`~customlayers.testing.KnownDifference`
            declarations; each relaxes only the checks and scope it names.
        kwargs: The constructor arguments, for the differences' ``when``
            predicates.
        ledger: Counts where each known difference applied and was needed.
        artifacts_dir: Where a failure's ``.npz`` goes (see
            :mod:`customlayers.testing.artifacts`).
        training: The ``training`` call argument for both layers (``None``:
            not passed). With ``True`` a stateful layer (BatchNormalization)
            updates its non-trainable variables; the outputs and gradients
            are compared here, the updated state by the ``state`` property
            (graph and compiled mode call the layers statelessly, through
            the per-signature cache, and drop the updates).
        positive_weights: Names of weights whose random values are drawn
            positive (``weights="random"``).

    Returns:
        An :class:`EquivalenceReport` with every comparison, when all pass.

    Raises:
        AssertionError: When any comparison fails; the message explains the
            worst element of each failing check and how to replay it.
    """
    x = np.asarray(inputs)
    weights_seed = None
    if isinstance(weights, str) and weights not in ("random", "keep"):
        raise ValueError(f"weights={weights!r}: expected 'random', 'keep' "
                         "or a list of arrays")
    if _built(custom) and _built(reference):
        # Built already (by the caller, or a pair reused across examples,
        # customlayers.testing.pairs): the building call would only repeat
        # a forward pass.
        copy_weights(custom, reference, weight_map=weight_map)
    else:
        build_pair(custom, reference, x, weight_map=weight_map)
    if isinstance(weights, str):
        if weights == "random":
            weights_seed = seed
            copy_weights(custom, reference, weight_map=weight_map,
                         weights=random_weights(custom, seed,
                                                positive=positive_weights))
    else:
        copy_weights(custom, reference, weights=weights,
                     weight_map=weight_map)
    policy = _policy_name(reference)
    dtype = getattr(reference, "compute_dtype", None) or policy
    if exact:
        tolerance_of = lambda check: None  # noqa: E731
    elif tolerance is None:
        table = tolerance_for(dtype)
        tolerance_of = lambda check: table  # noqa: E731
    elif callable(tolerance):
        tolerance_of = tolerance
    else:
        tolerance_of = lambda check: tolerance  # noqa: E731

    comparisons: list[Comparison] = []
    if upstream is None:
        shape, out_dtype = _output_spec(reference, x)
        upstream = np.random.default_rng(seed).standard_normal(
            shape).astype(out_dtype)
    upstream = np.asarray(upstream)
    got, want = backends.forward_backward_pair(custom, reference, x,
                                               upstream, mode,
                                               training=training)
    scope = Scope(backend=BACKEND, policy=policy, mode=mode,
                  device=backends.device(), kwargs=dict(kwargs or {}), x=x)
    if not signed_zeros or flush_subnormals:
        from customlayers.testing.declarations import KnownDifference
        extra = []
        if not signed_zeros:
            extra.append(KnownDifference(
                "signed_zeros", "signed_zeros=False", checks=("*",),
                name="assert_equivalent"))
        if flush_subnormals:
            extra.append(KnownDifference(
                "subnormals", "flush_subnormals=True", checks=("*",),
                name="assert_equivalent"))
        known_differences = tuple(known_differences) + tuple(extra)

    def add(check, a, b, tol=None, exact_check=False):
        comparisons.append(compare_expected(
            check, a, b,
            tolerance=None if exact_check else (tol or tolerance_of(check)),
            differences=known_differences, scope=scope, ledger=ledger))

    add("output", got.output, want.output)
    if backends.is_ids(x):
        comparisons.append(input_grad_not_applicable(x))
    else:
        add("grad[input]", got.input_grad, want.input_grad)
    if len(got.weight_grads) != len(want.weight_grads):
        comparisons.append(_same_check(
            "trainable weights", got.weight_names, want.weight_names))
    else:
        mapped = (weight_map or _identity)(got.weight_grads)
        for name, a, b in zip(want.weight_names, mapped, want.weight_grads):
            add(f"grad[{name.split('/')[-1]}]", a, b)
        if "sparse" in got.weight_grad_forms + want.weight_grad_forms:
            # A gather's gradient is sparse on TensorFlow (tf.IndexedSlices:
            # optimisers then update only the rows used); a custom layer
            # that gives a dense one computes the same values but not the
            # same update. Compared where either side is sparse.
            comparisons.append(_same_check(
                "grad form", got.weight_grad_forms, want.weight_grad_forms))
    comparisons.append(_same_check(
        "variable dtypes",
        [np.asarray(w).dtype.name
         for w in (weight_map or _identity)(custom.get_weights())],
        [np.asarray(w).dtype.name for w in reference.get_weights()]))
    if mode == "eager":
        add("losses", np.asarray(got.losses, np.float64),
            np.asarray(want.losses, np.float64))
        add("constraints", *_constrained(custom, reference, weight_map),
            exact_check=True)

    report = EquivalenceReport(
        custom=type(custom).__name__, reference=type(reference).__name__,
        mode=mode, policy=policy, input_shape=tuple(x.shape),
        comparisons=comparisons, weights_seed=weights_seed,
        training=training)
    if not report.passed:
        replay = {"x": x, "upstream": upstream}
        for i, w in enumerate(custom.get_weights()):
            replay[f"weights[{i}]"] = w
        error = AssertionError(failure_message(
            report, custom, reference, replay, tolerance_of, artifacts_dir))
        error.report = report  # the comparisons, for reports
        raise error
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
    # Trainable weights only: non-trainable ones have no constraint, and a
    # training=True call may have updated them (moving statistics), which
    # the ``state`` property compares, under its own name.
    keep = [bool(getattr(v, "trainable", True)) for v in reference.weights]
    if len(keep) == len(a) == len(b):
        a = [w for w, k in zip(a, keep) if k]
        b = [w for w, k in zip(b, keep) if k]
    flat = lambda ws: (np.concatenate([w.reshape(-1) for w in ws])  # noqa
                       if ws else np.zeros(0))
    return flat(a), flat(b)


def input_grad_not_applicable(x, check="grad[input]",
                              instead="the weight gradients are compared"
                              ) -> Comparison:
    """``check`` (by default ``grad[input]``), a derivative along an integer
    or boolean input: not compared (ids have no derivative), reported as
    n/a with the reason and what is compared ``instead``."""
    reason = (f"n/a: the input is {np.asarray(x).dtype.name} (ids), which "
              f"has no derivative; {instead}")
    return dataclasses.replace(fact_check(check, True), problem=reason)


def _same_check(check: str, a: list, b: list) -> Comparison:
    """An equality check on non-numeric facts (dtype names, counts)."""
    return fact_check(check, list(a) == list(b),
                      f"custom {list(a)} vs reference {list(b)}")


def fact_check(check: str, ok: bool, problem: str = "") -> Comparison:
    """A check of a fact, not of numbers (dtype names, counts, an error
    raised): reports show ``n/a`` for its errors."""
    return Comparison(
        check=check, shape=(), dtype="-", passed=bool(ok), bit_exact=False,
        max_abs=0.0, max_rel=0.0, max_ulp=0.0, n_bad=0 if ok else 1,
        n_total=1, problem="" if ok else problem, numeric=False)


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
