"""``run_equivalence_test``: the whole battery for one layer pair, in one
call with plain values, in the shape of Keras's (private) ``run_layer_test``
but against a reference, gradients included.

::

    from customlayers.testing import run_equivalence_test
    report = run_equivalence_test(
        MyLayerNorm, keras.layers.LayerNormalization,
        init_kwargs={"epsilon": 1e-3}, input_shape=(4, 16))
    print(report)          # one row per check; raises on any failure

Everything is deterministic: one example per check, policy and mode, with
the input (unless given), the weights (never the fresh initialisation) and
the upstream gradient drawn from ``seed``, which the report and every
failure print. For many random examples, declare a
:class:`~customlayers.testing.LayerCase` instead and use the pytest plugin
or ``customlayers verify --case``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from customlayers.testing import properties as props
from customlayers.testing import strategies as cst
from customlayers.testing.declarations import LayerCase
from customlayers.testing.report import (TABLE_HEADER, Recorder,
                                         format_table, table_rows)
from customlayers.testing.tolerances import Tolerance

#: The checks ``run_equivalence_test`` can run.
CHECKS = ("equivalence", "lazy_build", "config", "saving",
          "numeric_gradient", "error_inputs", "state")
DEFAULT_CHECKS = ("equivalence", "lazy_build", "config", "saving",
                  "error_inputs")


@dataclasses.dataclass
class EquivalenceTestReport:
    """What :func:`run_equivalence_test` measured."""

    name: str
    seed: int
    recorder: Recorder

    @property
    def passed(self) -> bool:
        return not self.recorder.failures

    @property
    def failures(self):
        return self.recorder.failures

    @property
    def bit_exact(self) -> bool:
        return all(r["result"] in ("bit-exact", "ok")
                   for r in self.recorder.rows())

    def rows(self):
        return self.recorder.rows()

    def __str__(self) -> str:
        lines = [f"run_equivalence_test({self.name}), seed={self.seed}",
                 format_table(TABLE_HEADER,
                              table_rows(self.recorder.rows()))]
        for s in self.recorder.skipped:
            lines.append(f"skipped {s['property']}: {s['reason']}")
        return "\n".join(lines)


def _tolerances(tolerance):
    if tolerance is None:
        return {}
    if isinstance(tolerance, Tolerance):
        return {p: tolerance for p in ("output", "grad[*]", "losses",
                                       "saving/*")}
    return dict(tolerance)


def _input(seed, shape, dtype, guaranteed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    flat = x.reshape(-1)
    if flat.size:
        for v, i in zip(guaranteed, rng.integers(0, flat.size,
                                                 len(guaranteed))):
            flat[i] = v
    return x.astype(cst.np_dtype(dtype))


def run_equivalence_test(custom, reference, *, init_kwargs=None,
                         input_shape=None, input_data=None,
                         policies=("float32",), modes=("eager",),
                         checks=DEFAULT_CHECKS, tolerance=None,
                         exact=False, weight_map=None, known_differences=(),
                         error_inputs=(), kinks=None,
                         save_formats=("keras",), config_ignore_keys=(),
                         seed=0,
                         artifacts=None, raise_on_failure=True,
                         training=(), state_steps=0, positive_weights=()):
    """Check ``custom`` against ``reference`` once per check, dtype policy
    and mode, with plain values.

    Args:
        custom: The layer class (or factory) under test.
        reference: The reference class (or factory); same arguments.
        init_kwargs: Constructor arguments for both (plain values).
        input_shape: The input shape; the input is normal noise from
            ``seed`` holding ``0.0``, ``-0.0`` and each kink (+-1 ULP).
        input_data: A fixed input array instead (its dtype is kept for
            float32 policies, else cast to the policy's input dtype).
        policies: Dtype policies (``"float32"``, ``"mixed_bfloat16"``...).
        modes: ``"eager"``, ``"graph"``, ``"compiled"``.
        checks: Some of :data:`CHECKS`.
        tolerance: A :class:`~customlayers.testing.Tolerance` for the
            output and gradients, or ``{check pattern: Tolerance}``;
            default: the per-dtype table.
        exact: Demand bit-exact results.
        weight_map: ``f(custom_weights) -> reference_weights``.
        known_differences: :class:`~customlayers.testing.KnownDifference`
            declarations.
        error_inputs: :class:`~customlayers.testing.ErrorInput`
            declarations.
        kinks: Values where the function is not smooth (placed in the input
            and kept away from by the numeric gradient).
        save_formats: Save formats for the ``saving`` check.
        config_ignore_keys: Keys of the reference's config that the custom
            layer does not have.
        seed: Seed of the input, weights and upstream gradient; printed.
        artifacts: Folder for failure ``.npz`` files (default: the cache).
        raise_on_failure: Raise ``AssertionError`` when a check fails
            (default); else return the report.
        training, state_steps, positive_weights: As
            :class:`~customlayers.testing.LayerCase`'s (the ``state``
            check feeds ``state_steps`` inputs from ``seed``, ``seed + 1``,
            ...).

    Returns:
        An :class:`EquivalenceTestReport`.
    """
    if input_shape is None and input_data is None:
        raise ValueError("run_equivalence_test needs input_shape= or "
                         "input_data=")
    unknown = sorted(set(checks) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown checks {unknown}; expected some of "
                         f"{list(CHECKS)}")
    kwargs = dict(init_kwargs or {})
    kink_values = tuple(kinks or ())
    case = LayerCase(
        name=getattr(custom, "__name__", type(custom).__name__),
        custom=custom, reference=reference, init_kwargs=kwargs,
        input_shape=None if input_shape is None else tuple(input_shape),
        kinks=lambda kw: kink_values, exact=exact,
        check_tolerances=_tolerances(tolerance),
        known_differences=tuple(known_differences),
        error_inputs=tuple(error_inputs), weight_map=weight_map,
        save_formats=tuple(save_formats),
        config_ignore_keys=frozenset(config_ignore_keys), policies=tuple(policies),
        modes=tuple(modes), example_kwargs=kwargs, training=tuple(training),
        state_steps=state_steps, positive_weights=tuple(positive_weights))
    rec = Recorder()
    rec.ledger.declare(case.known_differences)

    def x_for(policy):
        dtype = cst.input_dtype(policy)
        if input_data is not None:
            x = np.asarray(input_data)
            return x if x.dtype.kind not in "fc" or policy == "float32" \
                else x.astype(cst.np_dtype(dtype))
        return _input(seed, input_shape, dtype,
                      props.guaranteed_values(case, kwargs, dtype))

    from customlayers.testing.battery import Item, describe_failure, items

    def attempt(item, fn):
        reason = item.skip_reason()
        if reason:
            rec.skipped.append({"property": item.label, "reason": reason})
            return
        try:
            fn()
        except AssertionError as exc:
            rec.failures += describe_failure(item, exc, rec)

    for item in items(case):
        if item.kind not in checks:
            continue
        p = item.policy
        if item.kind == "equivalence":
            attempt(item, lambda p=p, m=item.mode, t=item.training:
                    props.check_equivalence(case, p, m, kwargs, x_for(p),
                                            seed, None, rec, artifacts, t))
        elif item.kind == "state":
            def batches(p):
                dtype = cst.input_dtype(p)
                return [_input(seed + i, x_for(p).shape, dtype, ())
                        for i in range(state_steps)]
            attempt(item, lambda p=p, m=item.mode: props.check_state(
                case, p, m, kwargs, batches(p), seed, rec))
        elif item.kind == "lazy_build":
            x = x_for(p)
            shape = x.shape
            attempt(item, lambda p=p, s=shape, m=item.mode or "eager":
                    props.check_lazy_build(case, p, kwargs, s, [
                        (s[0] + 1,) + s[1:], *props.rank_probes(s)],
                        s[-1] + 1, rec, m))
        elif item.kind == "config":
            attempt(item, lambda p=p: props.check_config(
                case, p, kwargs, x_for(p), rec))
        elif item.kind == "saving":
            x = x_for(p)
            x = np.where(np.isfinite(x), x, 0).astype(x.dtype)
            attempt(item, lambda p=p, f=item.fmt, x=x: props.check_saving(
                case, p, f, kwargs, x, seed, rec))
        elif item.kind == "numeric_gradient":
            attempt(item, lambda: props.check_numeric_gradient(
                case, case.smooth_kwargs(kwargs), x_for("float64"), seed,
                rec))
        elif item.kind == "error_inputs":
            for e in case.error_inputs:
                attempt(Item("error_inputs", case),
                        lambda e=e: props.check_error_input(
                            case, kwargs, e, rec))
    report = EquivalenceTestReport(case.name, seed, rec)
    if raise_on_failure and rec.failures:
        raise AssertionError(
            f"{case.name} is not equivalent to "
            f"{getattr(reference, '__name__', reference)} (seed={seed}): "
            f"{len(rec.failures)} check(s) failed\n\n" + "\n\n".join(
                f.text() for f in rec.failures) + f"\n\n{report}")
    return report
