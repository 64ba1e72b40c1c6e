"""Cross-backend parity: the same custom layer, weights and inputs under
TensorFlow, JAX and PyTorch, compared within the tolerance table.

A Keras process has one backend, so each backend runs in its own process
(``python -m customlayers.testing.parity dump``, with ``KERAS_BACKEND`` set)
and writes what it computed to an ``.npz`` file; ``compare`` then reads the
files and compares every backend with the first, array by array:

- the input is drawn away from the case's kinks (see ``_inputs``: at a
  kink each backend's built-in has its own derivative convention);
- the inputs must be *identical* (input, upstream gradient, weights: the
  same seed and arguments must give the same bits on every backend, else
  the comparison would mean nothing, and that is reported as an error);
- the output, the input gradient and each weight gradient must agree
  within :func:`~customlayers.testing.tolerances.tolerance_for` the
  compute dtype (backends run different GEMM kernels, so bit-exactness is
  not expected; the table's reasons say why each number is what it is),
  with NaN in the same places; where the backends' built-ins compute
  differently, a scoped declaration in
  :mod:`customlayers.testing.parity_known` names what each computes, and
  the comparison is ``expected`` only if each equals that bit for bit.

Integer ids (a case with ``input_ids``, Embedding): the input is ids in
the case's range, drawn from ``seed``, holding both ends of the range and
0, and half of them one repeated id (the rows the weight gradient's
scatter-add sums), once per id dtype of the case (int32, int64): the
arrays of ``float32`` with int64 ids are stored under ``float32:int64``.
The output and every weight gradient are compared; ``grad[input]`` is n/a
(ids have no derivative) and not stored. With ``mask_zero`` the mask
(``compute_mask``) is stored and compared too.

Dropout-like layers (a case with ``random``): the dump holds the default
(inference) call, compared as above, and one training-mode call, whose
masks differ between backends by design; what is compared of it, and why,
is in :mod:`customlayers.testing.parity_training`. The case's seed
argument is set to ``seed`` when not given, so every dump is reproducible.

Policies: ``float32`` and ``mixed_bfloat16`` by default. Not ``float64``:
Keras 3.15.1's torch ``matmul`` returns float32 for float64 inputs, so a
float64 Dense is float32 arithmetic there (``convert.float64_unavailable``).

Usage (what ``tests/integration/test_parity.py`` and the ``parity`` tox env
run)::

    KERAS_BACKEND=tensorflow python -m customlayers.testing.parity dump \\
        --case DENSE --kwargs '{"units": 8}' --out tf.npz
    KERAS_BACKEND=jax python -m customlayers.testing.parity dump ... --out jax.npz
    python -m customlayers.testing.parity compare tf.npz jax.npz torch.npz

``dump-many '[["Dense", {"units": 8}, "d.npz"], ["ReLU", {}, "r.npz"]]'``
writes several dumps from one process (one Keras start-up).

``--case`` takes a name in ``customlayers.testing.cases.CASES`` or
``module:NAME`` / ``path/file.py:NAME`` for a user's case. Exit status of
``compare``: 0 all within tolerance, 1 a difference, 2 unusable files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# Training-mode checks (a dropout-like case): ``float32/train/output``.
from customlayers.testing.parity_training import PREFIX as PREFIX_TRAIN

DEFAULT_POLICIES = ("float32", "mixed_bfloat16")
DEFAULT_SHAPE = (4, 3, 16)
FORMAT = "customlayers-parity-1"


class ParityError(ValueError):
    """Files that cannot be compared (not parity dumps, other inputs)."""


#: How far inputs are kept from each kink (absolute; more than a bfloat16
#: ULP at the largest kinks drawn, so rounding cannot put them back on it).
KINK_MARGIN = 0.1


def _inputs(case, kwargs, policy, shape, seed):
    """Input from ``seed``, kept ``KINK_MARGIN`` away from each kink.

    At a kink the backends' *built-ins* define the derivative differently
    (JAX's ``clip`` splits the gradient at a tie, TensorFlow flushes a
    subnormal neighbour to zero), and each custom layer follows its own
    backend's built-in there, which the property suite checks per backend
    with the kinks in every example. Parity is about the function itself,
    so it is compared where the function is differentiable."""
    from customlayers.testing import strategies as cst
    dtype = cst.input_dtype(policy)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 3
    for k in case.kinks(kwargs):
        near = np.abs(x - k) < KINK_MARGIN
        x = np.where(near, k + np.where(x >= k, 2, -2) * KINK_MARGIN, x)
    return x.astype(cst.np_dtype(dtype)), rng


def _ids(case, kwargs, shape, id_dtype, seed):
    """Ids in the case's range from ``seed``: :func:`~customlayers.testing.
    strategies.id_edges` first, half of the rest one repeated id."""
    from customlayers.testing import strategies as cst
    low, high = case.id_range(kwargs)
    rng = np.random.default_rng(seed)
    x = rng.integers(low, high, size=shape)
    flat = x.reshape(-1)
    flat[rng.random(flat.size) < 0.5] = int(rng.integers(low, high))
    edges = cst.id_edges(low, high)
    flat[:len(edges)] = edges
    return x.astype(cst.np_dtype(id_dtype)), rng


def _variants(case, kwargs, policy, shape, seed):
    """``(variant, input, rng)`` for ``policy``: the policy itself for a
    float input, ``policy:id_dtype`` per id dtype of an ids case."""
    if case.id_range(kwargs) is None:
        return [(policy, *_inputs(case, kwargs, policy, shape, seed))]
    return [(f"{policy}:{d}", *_ids(case, kwargs, shape, d, seed))
            for d in case.id_dtypes]


def _policy(variant):
    """The dtype policy of a variant (``float32:int64`` -> ``float32``)."""
    return variant.split(":", 1)[0]


def _with_defaults(case, kwargs):
    """``kwargs`` plus the custom constructor's defaults for the arguments
    left out, so that the case's ``kinks`` see every argument they read."""
    import inspect
    out = {}
    for name, p in inspect.signature(case.custom.__init__).parameters.items():
        if name != "self" and p.default is not inspect.Parameter.empty \
                and p.kind is not p.VAR_KEYWORD:
            out[name] = p.default
    out.update(kwargs)
    return {k: v for k, v in out.items()
            if k in kwargs or k not in ("dtype", "name")}


def dump(case, kwargs, path, *, policies=DEFAULT_POLICIES,
         shape=DEFAULT_SHAPE, seed=0) -> Path:
    """Run ``case.custom(**kwargs)`` on this process's backend, eager, for
    each policy, and write inputs, weights, output and gradients to
    ``path``."""
    from customlayers._keras import BACKEND, KERAS_VERSION
    from customlayers.testing import parity_training as training
    from customlayers.testing import strategies as cst
    from customlayers.testing.backends import forward_backward
    from customlayers.testing.convert import to_numpy
    from customlayers.testing.properties._base import _make
    shape = tuple(case.input_shape) if isinstance(case.input_shape, tuple) \
        else tuple(shape)
    kwargs = training.seeded(case, _with_defaults(case, kwargs), seed)
    arrays = {}
    for policy in policies:
        for variant, x, rng in _variants(case, kwargs, policy, shape, seed):
            layer = _make(case, kwargs, policy)
            layer(x)
            weights = cst.random_weights(rng, layer.get_weights())
            layer.set_weights(weights)
            out = forward_backward(layer, x, None).output
            g = rng.standard_normal(out.shape).astype(out.dtype)
            fb = forward_backward(layer, x, g)
            arrays[f"{variant}/input"] = x
            arrays[f"{variant}/upstream"] = g
            for i, w in enumerate(weights):
                arrays[f"{variant}/weight/{i}"] = np.asarray(w)
            arrays[f"{variant}/output"] = fb.output
            if fb.input_grad is not None:  # None: ids, n/a
                arrays[f"{variant}/grad[input]"] = fb.input_grad
            for i, (name, gw) in enumerate(zip(fb.weight_names,
                                               fb.weight_grads)):
                # By position and the weight's own name, not the layer's
                # auto-generated one (dense_1/kernel), which is a counter.
                arrays[f"{variant}/grad[{i}:{name.split('/')[-1]}]"] = gw
            mask = layer.compute_mask(x) if case.masks else None
            if mask is not None:  # a missing one: other arrays, refused
                arrays[f"{variant}/mask"] = to_numpy(mask)
            if case.random is not None:
                arrays.update(training.dump_training(
                    case, layer, x, rng, variant, fb.output.dtype))
    from customlayers.testing.backends import device
    meta = dict(format=FORMAT, backend=BACKEND, device=device(),
                keras=KERAS_VERSION,
                case=case.name, kwargs=kwargs, policies=list(policies),
                shape=list(shape), seed=seed,
                random=training.spec_meta(case, kwargs))
    # bfloat16 does not survive np.savez portably: store its bits.
    stored = {k: (v.view(np.uint16) if v.dtype.name == "bfloat16" else v)
              for k, v in arrays.items()}
    bf16 = [k for k, v in arrays.items() if v.dtype.name == "bfloat16"]
    meta["bfloat16_keys"] = bf16
    path = Path(path)
    np.savez(path, __meta__=np.frombuffer(json.dumps(meta).encode(),
                                          dtype=np.uint8), **stored)
    return path


def load(path):
    """``(meta, arrays)`` of a dump, bfloat16 restored; a file that is not
    a parity dump raises :class:`ParityError` naming it."""
    import ml_dtypes
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(bytes(f["__meta__"]).decode())
            arrays = {k: f[k] for k in f.files if k != "__meta__"}
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise ParityError(f"{path}: not a readable parity dump ({exc})") \
            from None
    if meta.get("format") != FORMAT:
        raise ParityError(f"{path}: format {meta.get('format')!r}, expected "
                          f"{FORMAT!r}")
    for k in meta.get("bfloat16_keys", []):
        arrays[k] = arrays[k].view(ml_dtypes.bfloat16)
    return meta, arrays


def compare(paths):
    """Compare every dump with the first. Returns the rows
    ``(backend, variant, check, comparison)`` (variant: the policy, or
    ``policy:id_dtype``); raises :class:`ParityError` where the dumps did
    not start from the same inputs or hold other arrays."""
    from customlayers.testing import parity_known as known
    from customlayers.testing import parity_training as training
    from customlayers.testing.numerics import compare_arrays
    from customlayers.testing.tolerances import tolerance_for
    if len(paths) < 2:
        raise ParityError(f"need two or more dumps to compare, got "
                          f"{len(paths)}")
    loaded = [load(p) for p in paths]
    (meta0, base), rows = loaded[0], []
    variants = sorted({k.split("/", 1)[0] for k in base
                       if k.split("/", 1)[1] == PREFIX_TRAIN + "output"})
    for variant in variants:  # the first dump's own invariants, once
        rows += training.invariant_rows(meta0, base, variant)
    for path, (meta, arrays) in zip(paths[1:], loaded[1:]):
        same = ("case", "kwargs", "policies", "shape", "seed", "random")
        diff = {k: (meta0.get(k), meta.get(k)) for k in same
                if meta0.get(k) != meta.get(k)}
        if diff:
            raise ParityError(f"{path} was dumped with other arguments than "
                              f"{paths[0]}: {diff}")
        if sorted(arrays) != sorted(base):
            raise ParityError(
                f"{path} holds other arrays than {paths[0]}: "
                f"{sorted(set(arrays) ^ set(base))}")
        for variant in variants:
            rows += training.invariant_rows(meta, arrays, variant)
            rows += training.kept_rows(meta0, base, meta, arrays, variant,
                                       tolerance_for(_policy(variant)))
        for key in sorted(base):
            variant, check = key.split("/", 1)
            a, b = arrays[key], base[key]
            if check.startswith(PREFIX_TRAIN) and check != \
                    PREFIX_TRAIN + "upstream":
                continue  # compared above: the masks differ by design
            if check in ("input", "upstream", PREFIX_TRAIN + "upstream") \
                    or check.startswith("weight/"):
                if a.dtype != b.dtype or a.shape != b.shape or \
                        a.tobytes() != b.tobytes():
                    raise ParityError(
                        f"{key} differs between {paths[0]} "
                        f"({meta0['backend']}) and {path} "
                        f"({meta['backend']}): the same seed must give the "
                        "same inputs on every backend")
                continue
            comp = compare_arrays(
                f"{check} ({meta['backend']} vs {meta0['backend']})",
                a.astype(np.float64), b.astype(np.float64),
                tolerance=tolerance_for(_policy(variant)))
            if not comp.passed:  # a declared difference (parity_known.py)?
                comp, _ = known.excuse(comp, meta0, base, meta, arrays,
                                       variant, check)
            rows.append((meta["backend"], variant, check, comp))
    return rows


def _case(spec):
    """A case by name (``Dense``, ``ReLU``) or ``MODULE:NAME``."""
    from customlayers.testing.cases import CASES
    if spec in CASES:
        return CASES[spec]
    from customlayers.verify import UsageError, load_case_spec
    try:
        cases = load_case_spec(spec)
    except UsageError as exc:
        raise SystemExit(f"error: {exc} (or one of {sorted(CASES)})")
    if len(cases) != 1:
        raise SystemExit(f"error: --case {spec!r} names {len(cases)} cases; "
                         "name one")
    return cases[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m customlayers.testing.parity",
        description="Cross-backend parity of a custom layer (module doc).")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="run the case on this backend, write .npz")
    d.add_argument("--case", required=True)
    d.add_argument("--kwargs", default=None,
                   help="constructor arguments as JSON (default: the "
                        "case's plain arguments)")
    d.add_argument("--policies", default=",".join(DEFAULT_POLICIES))
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", required=True)
    m = sub.add_parser(
        "dump-many", help="several dumps in one process (one start-up)")
    m.add_argument("spec", help='JSON list of [case, kwargs, out] triples')
    c = sub.add_parser("compare", help="compare dumps with the first")
    c.add_argument("dumps", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "dump":
        case = _case(args.case)
        try:
            kwargs = json.loads(args.kwargs) if args.kwargs else \
                case.plain_kwargs()
        except json.JSONDecodeError as exc:
            parser.error(f"--kwargs is not JSON ({exc}): {args.kwargs!r}")
        path = dump(case, kwargs, args.out,
                    policies=tuple(args.policies.split(",")), seed=args.seed)
        print(f"wrote {path}")
        return 0
    if args.command == "dump-many":
        try:
            spec = json.loads(args.spec)
            triples = [(str(c), dict(k), str(o)) for c, k, o in spec]
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            parser.error(f"dump-many: expected a JSON list of [case, kwargs, "
                         f"out] triples ({exc}): {args.spec[:200]!r}")
        for name, kwargs, out in triples:
            print(f"wrote {dump(_case(name), kwargs, out)}")
        return 0
    try:
        rows = compare(args.dumps)
    except ParityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed, expected = 0, set()
    for backend, policy, check, comp in rows:
        verdict = "bit-exact" if comp.bit_exact else "expected" if \
            comp.passed and comp.expected else (
                ("pass" if comp.numeric else "ok") if comp.passed else "FAIL")
        expected.update(comp.expected)
        failed += not comp.passed
        size = f"max abs {comp.max_abs:.3g}" if comp.numeric else ""
        print(f"{backend:10} {policy:21} {check:36} {verdict:9} {size}")
        if not comp.passed:
            print(comp.describe())
    n = len(rows)
    print(f"{n - failed} of {n} comparisons within tolerance")
    for label in sorted(expected):
        print(f"expected (declared in parity_known.py): {label}")
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["ParityError", "compare", "dump", "load", "main"]
