"""Why Keras Dense ran mixed_bfloat16 at float32 speed under JAX.

The project's baseline, measured on an H200 before any code existed, saw both
``keras.layers.Dense`` and a hand-written Dense run mixed_bfloat16 at float32
speed under JAX (about 56% of the bare bf16 GEMM), unexplained.

Times the forward+backward of one Dense layer under ``jax.jit`` three ways,
for ``customlayers.Dense`` and ``keras.layers.Dense`` alike:

* ``stateless_call``: ``layer.stateless_call(params, [], x)``, the way the
  baseline called it. ``Layer.stateless_call`` runs ``self.call``
  directly, so ``__call__``'s mixed-precision autocast never happens: the
  float32 kernel meets the bfloat16 input, JAX promotes, and the GEMM runs in
  float32 (TF32 on Ampere/Hopper) with a float32 output.
* ``scope __call__``: ``layer(x)`` inside ``keras.StatelessScope`` -- how a
  layer inside a model runs under Keras's JAX trainer, and how
  ``benchmarks/bench_adapters/jax_adapter.py`` calls it; the kernel is autocast to bfloat16.
* ``bare``: ``x @ W.astype(bf16) + b.astype(bf16)`` on the same arrays.

It prints the dtype of the GEMM in the lowered program (from the jaxpr), the
median time of ``--reps`` calls and TFLOP/s. Run:
``KERAS_BACKEND=jax python benchmarks/investigations/jax_autocast_gap.py [--shape 8192,4096,4096]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import keras  # noqa: E402

import customlayers  # noqa: E402


def gemm_dtypes(fn, *args):
    """dtypes of the operands of every dot_general in fn's jaxpr, nested
    jaxprs (pjit, custom_vjp, cond branches, ...) included."""
    found = []

    def visit(obj):
        if hasattr(obj, "eqns"):  # a Jaxpr
            for eqn in obj.eqns:
                if eqn.primitive.name == "dot_general":
                    found.append("x".join(str(v.aval.dtype) for v in eqn.invars))
                for p in eqn.params.values():
                    visit(p)
        elif hasattr(obj, "jaxpr"):  # a ClosedJaxpr
            visit(obj.jaxpr)
        elif isinstance(obj, (tuple, list)):
            for o in obj:
                visit(o)

    visit(jax.make_jaxpr(fn)(*args))
    return sorted(set(found))


def time_fn(fn, args, reps):
    jax.block_until_ready(fn(*args))  # compile
    for _ in range(3):
        jax.block_until_ready(fn(*args))
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts), max(ts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="8192,4096,4096",
                    help="batch,in_features,units (default %(default)s)")
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args(argv)
    batch, fin, units = (int(v) for v in args.shape.split(","))
    dev = jax.devices()[0]
    print(f"device {getattr(dev, 'device_kind', dev)}; jax {jax.__version__}; "
          f"keras {keras.__version__}; shape {batch}x{fin}->{units}, "
          f"mixed_bfloat16, forward+backward under jax.jit, median of {args.reps}")
    rng = np.random.default_rng(0)
    kernel = (rng.standard_normal((fin, units)) / np.sqrt(fin)).astype("float32")
    bias = (0.1 * rng.standard_normal(units)).astype("float32")
    x = jnp.asarray(rng.standard_normal((batch, fin)), "bfloat16")
    g = jnp.asarray(rng.standard_normal((batch, units)), "bfloat16")
    flops = 3 * 2 * batch * fin * units

    rows = []
    for cls in (customlayers.Dense, keras.layers.Dense):
        layer = cls(units, dtype="mixed_bfloat16")
        layer.build((None, fin))
        layer.set_weights([kernel, bias])
        tv = list(layer.trainable_variables)
        params = [v.value for v in tv]

        def via_stateless_call(p, x_, layer=layer):
            return layer.stateless_call(p, [], x_)[0]

        def via_scope_call(p, x_, layer=layer, tv=tv):
            with keras.StatelessScope(state_mapping=list(zip(tv, p))):
                return layer(x_)

        for how, fwd in (("stateless_call", via_stateless_call),
                         ("scope __call__", via_scope_call)):
            def loss(p, x_, g_, fwd=fwd):
                return jnp.sum(fwd(p, x_).astype("float32") * g_.astype("float32"))
            grad = jax.grad(loss, argnums=(0, 1))
            out_dtype = jax.eval_shape(fwd, params, x).dtype
            rows.append((f"{cls.__module__.split('.')[0]}.Dense", how,
                         gemm_dtypes(grad, params, x, g), str(out_dtype),
                         time_fn(jax.jit(grad), (params, x, g), args.reps)))

    def bare_loss(p, x_, g_):
        W, b = p
        y = x_ @ W.astype("bfloat16") + b.astype("bfloat16")
        return jnp.sum(y.astype("float32") * g_.astype("float32"))
    bare = jax.grad(bare_loss, argnums=(0, 1))
    bp = [jnp.asarray(kernel), jnp.asarray(bias)]
    rows.append(("bare", "x @ W.astype(bf16)", gemm_dtypes(bare, bp, x, g),
                 "bfloat16", time_fn(jax.jit(bare), (bp, x, g), args.reps)))

    t_bare = rows[-1][4][0]
    print("| layer | called via | GEMM operand dtypes | output dtype | median | "
          "min-max | TFLOP/s | / bare |")
    print("|---|---|---|---|---|---|---|---|")
    for name, how, dts, odt, (med, lo, hi) in rows:
        print(f"| {name} | {how} | {', '.join(dts)} | {odt} | {med * 1e3:.3f} ms | "
              f"{lo * 1e3:.3f}-{hi * 1e3:.3f} ms | {flops / med / 1e12:.1f} | "
              f"{t_bare / med:.2f} |")


if __name__ == "__main__":
    main()
