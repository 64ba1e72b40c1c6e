"""Profile candidate rewrites of the custom layers before touching customlayers/.

    KERAS_BACKEND=tensorflow python benchmarks/investigations/profile_variants.py [--rounds 15]

For ReLU and Dense it (1) checks that each candidate matches the Keras built-in
bit for bit, values *and* gradients, on the awkward inputs (+-0, NaN, +-inf,
tiny and huge values), and (2) times the candidates interleaved, with the same
machinery as the benchmark suite. Candidates live only in this script.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/

import numpy as np  # noqa: E402

import bench_adapters  # noqa: E402
import bench_env  # noqa: E402
import bench_matrix  # noqa: E402
from bench_stats import ratio_stats  # noqa: E402
from bench_timing import Settings, measure_interleaved  # noqa: E402
import keras  # noqa: E402
from keras import ops  # noqa: E402

import customlayers  # noqa: E402


class ReLUWhere4(keras.layers.Layer):
    """where(x > 0, x, stop_gradient(where(x < 0, 0, x))): 4 ops, not 7.

    Value: x > 0 -> x; x < 0 -> +0; +-0 -> itself; NaN -> NaN.
    Gradient: the outer select passes the upstream where x > 0 and 0
    elsewhere (the inner branch is cut), as TF's ReluGrad does.
    """

    def call(self, x):
        x = ops.convert_to_tensor(x)
        zero = ops.zeros_like(x)
        neg_to_zero = ops.where(ops.less(x, zero), zero, x)
        return ops.where(ops.greater(x, zero), x,
                         ops.stop_gradient(neg_to_zero))


class ReLUOpsRelu(keras.layers.Layer):
    """The default configuration delegated to ops.relu (what the built-in runs)."""

    def call(self, x):
        return ops.relu(ops.convert_to_tensor(x))


class Identity(keras.layers.Layer):
    """The floor: a Keras layer whose call does nothing."""

    def call(self, x):
        return x


class DenseNoCheck(customlayers.Dense):
    """customlayers.Dense without the per-call input-shape check."""

    def call(self, inputs):
        x = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            x = ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x


SPECIAL = np.array([-np.inf, -1e30, -1.0, -1e-40, -0.0, 0.0, 1e-40, 1.0,
                    1e30, np.inf, np.nan], dtype="float32")


def _value_and_grad(layer, x_np, g_np):
    """(y, dL/dx) for L = sum(layer(x) * g), on the current backend."""
    b = bench_matrix.BACKEND
    if b == "tensorflow":
        import tensorflow as tf
        x = tf.constant(x_np)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * tf.constant(g_np))
        return np.asarray(y), np.asarray(tape.gradient(loss, x))
    if b == "jax":
        import jax
        import jax.numpy as jnp

        def f(x):
            return jnp.sum(layer(x) * jnp.asarray(g_np))
        x = jnp.asarray(x_np)
        return np.asarray(layer(x)), np.asarray(jax.grad(f)(x))
    import torch
    x = torch.tensor(x_np, requires_grad=True)
    y = layer(x)
    (gx,) = torch.autograd.grad((y * torch.tensor(g_np)).sum(), [x])
    return y.detach().cpu().numpy(), gx.cpu().numpy()


def bit_exact(layer, ref, x_np, g_np):
    y1, g1 = _value_and_grad(layer, x_np, g_np)
    y2, g2 = _value_and_grad(ref, x_np, g_np)
    same = (y1.tobytes() == y2.tobytes(), g1.tobytes() == g2.tobytes())
    return same


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--round-time", type=float, default=0.02)
    ap.add_argument("--modes", default="eager,graph,compiled")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--check-only", action="store_true",
                    help="only the bit-exactness check, no timings")
    args = ap.parse_args()
    settings = Settings(rounds=args.rounds, warmup=3,
                               round_time=args.round_time)
    modes = [m for m in args.modes.split(",") if bench_matrix.mode_available(m)]
    ad = bench_adapters.adapter()
    rng = np.random.default_rng(0)

    print(f"backend {bench_matrix.BACKEND}, keras {keras.__version__}, "
          f"{bench_env.device_description()}")
    relus = {"builtin": keras.layers.ReLU(), "custom": customlayers.ReLU(),
             "where4": ReLUWhere4(), "ops.relu": ReLUOpsRelu(),
             "identity": Identity()}
    print("\nReLU bit-exactness vs keras.layers.ReLU (value, gradient):")
    x_sp = np.concatenate([SPECIAL, rng.standard_normal(64).astype("float32")])
    g_sp = rng.standard_normal(x_sp.shape).astype("float32")
    g_sp[:4] = -1.0  # negative upstream meets 0 * g = -0.0 cases
    for name, lay in relus.items():
        if name in ("builtin", "identity"):
            continue
        print(f"  {name:10s} {bit_exact(lay, relus['builtin'], x_sp, g_sp)}")
    if args.check_only:
        return

    print("\nReLU timings (median per call; ratio = throughput vs builtin, "
          "paired median [q1-q3]):")
    for shape in [(1024, 64), (1024, 1024)]:
        x = rng.standard_normal(shape).astype("float32")
        g = rng.standard_normal(shape).astype("float32")
        for pass_ in ("forward", "fwdbwd"):
            for mode in modes:
                steps = {n: ad.build("custom", "relu", lay, pass_, mode, x, g,
                                     (), args.dtype)
                         for n, lay in relus.items()}
                t = measure_interleaved(steps, ad.sync, settings)
                _print(f"relu {shape} {pass_} {mode}", t)

    print("\nDense timings:")
    for shape in [(32, 784, 64), (1024, 784, 64)]:
        b, i, o = shape
        kern = rng.standard_normal((i, o)).astype("float32")
        bias = rng.standard_normal((o,)).astype("float32")
        dens = {"builtin": keras.layers.Dense(o), "custom": customlayers.Dense(o),
                "custom-nocheck": DenseNoCheck(o)}
        for lay in dens.values():
            lay.build((None, i))
            lay.set_weights([kern, bias])
        x = rng.standard_normal((b, i)).astype("float32")
        g = rng.standard_normal((b, o)).astype("float32")
        for pass_ in ("forward", "fwdbwd"):
            for mode in modes:
                steps = {n: ad.build("custom", "dense", lay, pass_, mode, x, g,
                                     (kern, bias), args.dtype)
                         for n, lay in dens.items()}
                t = measure_interleaved(steps, ad.sync, settings)
                _print(f"dense {shape} {pass_} {mode}", t)


def _print(label, t):
    per = t.per_call
    parts = []
    for n, ts in per.items():
        med = sorted(ts)[len(ts) // 2]
        if n == "builtin":
            parts.append(f"{n} {med * 1e6:.1f}us")
            continue
        st = ratio_stats(per["builtin"], ts)
        parts.append(f"{n} {med * 1e6:.1f}us x{st['median']:.2f}"
                     f"[{st['q1']:.2f}-{st['q3']:.2f}]")
    print(f"  {label:38s} " + " | ".join(parts), flush=True)


if __name__ == "__main__":
    main()
