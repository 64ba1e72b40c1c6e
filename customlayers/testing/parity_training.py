"""Cross-backend parity of a dropout-like layer's training mode (a case
with a :class:`~customlayers.testing.RandomSpec`): what
:mod:`customlayers.testing.parity` dumps and compares for it.

The masks are **not** compared across backends. Each backend draws them
with its own generator from the same seed (TensorFlow's stateless
Philox-based ``stateless_random_uniform``, JAX's threefry key, torch's CPU
generator), and customlayers' Dropout mirrors each backend's own built-in
mask, so two backends give different masks for one seed by design (the
property suite's ``randomness`` property checks, per backend, that a seed
gives the built-in's mask). What is meaningful across backends, and
compared:

- **each backend's own invariants** (the randomness property's
  :func:`~customlayers.testing.properties.randomness.mask_checks`, on that
  backend's arrays): every output element is ``0`` or ``x / (1 - rate)``
  and the input gradient ``0`` or ``g / (1 - rate)`` on the same mask,
  the dropped share of the mask within ``sigmas`` binomial standard
  deviations (+1) of ``rate``, the mask constant along ``noise_shape``'s
  1s; so every backend implements the same distribution of masks and the
  same scaling on the same input and upstream gradient;
- **the kept values across backends**: where both backends kept an
  element, their outputs and input gradients agree within the tolerance
  table (TensorFlow multiplies by ``1 / (1 - rate)`` rounded to the dtype,
  JAX and torch divide by ``1 - rate``: the same number up to rounding).

Inference mode (the default call) is the identity; it is dumped and
compared as every other layer's output and gradients are, by
:mod:`~customlayers.testing.parity`.

The upstream gradient of the training call is never zero (``|g|`` in
``[0.5, 2)``), so the mask is read from the input gradient, as the
randomness property reads it (the input may hold zeros).
"""

from __future__ import annotations

import numpy as np

#: The prefix of a training-mode check in a dump (``float32/train/output``).
PREFIX = "train/"


def spec_meta(case, kwargs):
    """What ``compare`` needs of the case's spec, as JSON (``None`` for a
    case without randomness): the rate, the declared ``noise_shape``, the
    binomial bound and the call arguments that switch randomness on."""
    spec = case.random
    if spec is None:
        return None
    noise = spec.noise_shape(kwargs)
    return {"rate": float(spec.rate(kwargs)),
            "noise_shape": None if noise is None else list(noise),
            "sigmas": float(spec.sigmas),
            "call_kwargs": dict(spec.call_kwargs)}


def seeded(case, kwargs, seed):
    """``kwargs`` with the case's seed argument set to ``seed`` when the
    caller left it out: a parity dump is reproducible (the seed is in the
    dump's ``kwargs``)."""
    if case.random is None or kwargs.get(case.random.seed_kwarg) is not None:
        return kwargs
    return {**kwargs, case.random.seed_kwarg: int(seed)}


def dump_training(case, layer, x, rng, variant, dtype) -> dict:
    """One training-mode call of ``layer`` (eager, the spec's call
    arguments) on ``x``, differentiated against a never-zero upstream
    gradient from ``rng`` in ``dtype`` (the output's): the arrays to store
    under ``variant``."""
    from customlayers.testing.properties.randomness import random_calls
    shape = np.shape(x)
    g = rng.uniform(0.5, 2.0, shape) * rng.choice((-1, 1), shape)
    upstream = g.astype(dtype)
    ((y, gx),) = random_calls(layer, x, upstream, "eager",
                              dict(case.random.call_kwargs))
    return {f"{variant}/{PREFIX}upstream": upstream,
            f"{variant}/{PREFIX}output": y,
            f"{variant}/{PREFIX}grad[input]": gx}


def _spec(meta):
    from customlayers.testing.random_spec import RandomSpec
    r = meta["random"]
    noise = None if r["noise_shape"] is None else tuple(r["noise_shape"])
    return RandomSpec(call_kwargs=r["call_kwargs"], rate=lambda kw: r["rate"],
                      noise_shape=lambda kw: noise, sigmas=r["sigmas"])


def invariant_rows(meta, arrays, variant) -> list:
    """The randomness property's value, share and broadcast checks on one
    backend's training-mode arrays: rows ``(backend, variant, check,
    comparison)``, facts (no error magnitudes)."""
    from customlayers.testing.equivalence import fact_check
    from customlayers.testing.properties.randomness import mask_checks
    a = {k: arrays[f"{variant}/{PREFIX}{k}"]
         for k in ("upstream", "output", "grad[input]")}
    checks = mask_checks(_spec(meta), meta["kwargs"],
                         arrays[f"{variant}/input"], a["upstream"],
                         a["output"], a["grad[input]"])
    return [(meta["backend"], variant, PREFIX + check.replace("random: ", ""),
             fact_check(f"{check} ({meta['backend']})", ok, problem))
            for check, ok, problem in checks]


def kept_rows(meta0, base, meta, arrays, variant, tolerance) -> list:
    """Where both backends kept an element (mask read from each one's input
    gradient), their training-mode outputs and input gradients agree
    within ``tolerance``; elsewhere both are compared as zeros. Rows as in
    :func:`invariant_rows`, numeric; plus a fact that the two masks kept
    some element in common where ``0 < rate < 1`` (else the comparison
    would compare nothing)."""
    from customlayers.testing.equivalence import fact_check
    from customlayers.testing.numerics import compare_arrays
    key = f"{variant}/{PREFIX}"
    both = (arrays[key + "grad[input]"] != 0) & (base[key + "grad[input]"]
                                                 != 0)
    who = f"{meta['backend']} vs {meta0['backend']}"
    rows = []
    rate = meta["random"]["rate"]
    if 0 < rate < 1:
        rows.append((meta["backend"], variant, PREFIX + "kept in both",
                     fact_check(f"{PREFIX}kept in both ({who})",
                                bool(both.any()),
                                "the two masks kept no element in common: "
                                "nothing to compare (choose a smaller rate "
                                "or a larger input)")))
    for name in ("output", "grad[input]"):
        a = np.where(both, arrays[key + name].astype(np.float64), 0.0)
        b = np.where(both, base[key + name].astype(np.float64), 0.0)
        check = f"{PREFIX}{name} where both kept"
        rows.append((meta["backend"], variant, check,
                     compare_arrays(f"{check} ({who})", a, b,
                                    tolerance=tolerance)))
    return rows


__all__ = ["PREFIX", "dump_training", "invariant_rows", "kept_rows",
           "seeded", "spec_meta"]
