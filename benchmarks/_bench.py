"""Backend-neutral benchmark machinery for ``benchmarks/``.

Three implementations are timed side by side in every group:

* ``custom``: ``customlayers.Dense`` / ``customlayers.ReLU``;
* ``builtin``: ``keras.layers.Dense`` / ``keras.layers.ReLU`` with the same
  weights and dtype policy;
* ``bare``: the backend's own op on pre-cast tensors, no Keras in the loop
  (Dense: TF ``tf.nn.bias_add(tf.matmul(x, W), b)``, JAX ``x @ W + b``,
  torch ``torch.addmm(b, x, W)``; ReLU: ``tf.nn.relu`` / ``jax.nn.relu`` /
  ``torch.relu``). For the train step the bare weights are float32 masters
  cast to the compute dtype inside the step, as a mixed-precision layer does.

Passes: ``forward``; ``fwdbwd`` (gradient of ``sum(y * g)`` with respect to the
input and, for Dense, the kernel and bias; ``g`` is a fixed random cotangent
passed as an argument, so no compiler can fold the backward pass into a
reduction); ``train`` (Dense only: the same loss, gradients with respect to
the weights, and an optimizer update; Keras SGD for the layers, a hand-written
SGD update for bare).

Modes: ``eager``; ``graph`` (TF ``tf.function``); ``compiled`` (TF
``tf.function(jit_compile=True)``, ``jax.jit``, and ``torch.compile`` only when
``--bench-torch-compile`` is given). JAX has no graph mode without XLA and
torch has none for Keras layers, so those groups are not generated.

Every tensor a step reads is an argument or a variable, never a captured
constant, so XLA cannot constant-fold the work away. Each timed round runs a
step ``k`` times and then waits for the device (TF: ``sync_devices`` or
``.numpy()`` of a scalar; JAX: ``block_until_ready``; torch:
``torch.cuda.synchronize``).
"""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

import keras

BACKEND = keras.backend.backend()

IMPLS = ("custom", "builtin", "bare")

# ---------------------------------------------------------------------------
# The benchmark matrix
# ---------------------------------------------------------------------------

#: Dense shapes as (batch, in_features, units); the flag says "GPU only".
DENSE_SHAPES = [
    ((8192, 4096, 4096), True),
    ((32, 784, 64), False),
    ((32, 64, 10), False),
    ((1024, 784, 64), False),
    ((1024, 64, 10), False),
    ((1024, 1024, 1024), False),
]
#: ReLU shapes: the activations of the Dense shapes above.
RELU_SHAPES = [
    ((8192, 4096), True),
    ((32, 64), False),
    ((1024, 64), False),
    ((1024, 1024), False),
]
#: dtype policy -> GPU only?
DTYPES = [("float32", False), ("mixed_bfloat16", False),
          ("mixed_float16", True)]
PASSES = ("forward", "fwdbwd", "train")
MODES = ("eager", "graph", "compiled")

#: The short CPU gate subset (``-m gate``): one MNIST-size shape per layer.
GATE_DENSE_SHAPE = (1024, 784, 64)
GATE_RELU_SHAPE = (1024, 64)


def shape_id(shape):
    if len(shape) == 3:
        return f"{shape[0]}x{shape[1]}-{shape[2]}"
    return "x".join(str(d) for d in shape)


def group_name(layer, shape, dtype, pass_, mode):
    if layer == "dense":
        s = f"{shape[0]}x{shape[1]}->{shape[2]}"
    else:
        s = "x".join(str(d) for d in shape)
    return f"{layer} {s} {dtype} {pass_} {mode}"


def mode_available(mode, torch_compile=False):
    if mode == "graph":
        return BACKEND == "tensorflow"
    if mode == "compiled" and BACKEND == "torch":
        return torch_compile
    return True


# ---------------------------------------------------------------------------
# Devices and versions
# ---------------------------------------------------------------------------

_gpu_cache = None


def gpu_names():
    """Names of the accelerators the current backend sees ([] on CPU)."""
    global _gpu_cache
    if _gpu_cache is not None:
        return _gpu_cache
    names = []
    try:
        if BACKEND == "tensorflow":
            import tensorflow as tf
            for d in tf.config.list_physical_devices("GPU"):
                try:
                    det = tf.config.experimental.get_device_details(d)
                    names.append(det.get("device_name", d.name))
                except Exception:
                    names.append(d.name)
        elif BACKEND == "jax":
            import jax
            names = [str(getattr(d, "device_kind", d)) for d in jax.devices()
                     if d.platform == "gpu"]
        elif BACKEND == "torch":
            import torch
            if torch.cuda.is_available():
                names = [torch.cuda.get_device_name(i)
                         for i in range(torch.cuda.device_count())]
    except Exception:  # pragma: no cover - best effort
        names = []
    _gpu_cache = names
    return names


def has_gpu():
    return bool(gpu_names())


def backend_versions():
    info = {"keras": keras.__version__, "keras_backend": BACKEND,
            "numpy": np.__version__, "python": platform.python_version()}
    try:
        import customlayers
        info["customlayers"] = customlayers.__version__
    except Exception:
        pass
    try:
        import pytest_benchmark
        info["pytest_benchmark"] = pytest_benchmark.__version__
    except Exception:
        pass
    if BACKEND == "tensorflow":
        import tensorflow as tf
        info["tensorflow"] = tf.__version__
        try:
            info["tf32"] = bool(tf.config.experimental.tensor_float_32_execution_enabled())
        except Exception:
            pass
    elif BACKEND == "jax":
        import jax
        import jaxlib
        info["jax"] = jax.__version__
        info["jaxlib"] = jaxlib.__version__
        info["jax_default_matmul_precision"] = str(
            jax.config.jax_default_matmul_precision)
    elif BACKEND == "torch":
        import torch
        info["torch"] = torch.__version__
        info["torch_cuda"] = str(torch.version.cuda)
        try:
            info["torch_allow_tf32_matmul"] = bool(
                torch.backends.cuda.matmul.allow_tf32)
        except Exception:
            pass
    for var in ("XLA_FLAGS", "TF_XLA_FLAGS", "XLA_PYTHON_CLIENT_PREALLOCATE",
                "CUDA_VISIBLE_DEVICES", "TF_ENABLE_ONEDNN_OPTS"):
        if os.environ.get(var):
            info[var] = os.environ[var]
    return info


def device_description():
    gpus = gpu_names()
    if gpus:
        return ", ".join(gpus)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU: {cpu} ({os.cpu_count()} logical cores)"


# ---------------------------------------------------------------------------
# Backend adapters: each builds zero-argument step callables
# ---------------------------------------------------------------------------

LEARNING_RATE = 1e-6  # tiny: weights stay put, nothing overflows or denormalises


def _compute_dtype(policy):
    return keras.DTypePolicy(policy).compute_dtype


def _make_layers(layer, shape, policy, seed=0):
    """custom and builtin layers with identical weights, plus numpy data."""
    import customlayers

    rng = np.random.default_rng(seed)
    if layer == "dense":
        batch, fin, units = shape
        kernel = (rng.standard_normal((fin, units)) / math.sqrt(fin)).astype("float32")
        bias = (0.1 * rng.standard_normal((units,))).astype("float32")
        custom = customlayers.Dense(units, dtype=policy, name="custom_dense")
        builtin = keras.layers.Dense(units, dtype=policy, name="builtin_dense")
        for lay in (custom, builtin):
            lay.build((None, fin))
            lay.set_weights([kernel, bias])
        x = rng.standard_normal((batch, fin)).astype("float32")
        g = rng.standard_normal((batch, units)).astype("float32")
        weights = (kernel, bias)
    else:
        custom = customlayers.ReLU(dtype=policy, name="custom_relu")
        builtin = keras.layers.ReLU(dtype=policy, name="builtin_relu")
        x = rng.standard_normal(shape).astype("float32")
        g = rng.standard_normal(shape).astype("float32")
        weights = ()
    return custom, builtin, x, g, weights


class _TF:
    def __init__(self):
        import tensorflow as tf
        self.tf = tf

    def sync(self, out):
        tf = self.tf
        if has_gpu() and hasattr(tf.test.experimental, "sync_devices"):
            tf.test.experimental.sync_devices()
            return
        # Fetch one scalar of the result: waits for the op that made it.
        t = out
        while isinstance(t, (list, tuple)):
            t = t[0]
        if t is None:
            return
        tf.reshape(t, [-1])[:1].numpy()

    def build(self, impl, layer_kind, layer_obj, pass_, mode, x_np, g_np,
              weights, policy):
        tf = self.tf
        cd = _compute_dtype(policy)
        x = tf.cast(tf.constant(x_np), cd)
        g = tf.cast(tf.constant(g_np), cd)

        if impl == "bare":
            if layer_kind == "dense":
                master = pass_ == "train"
                wdt = "float32" if master else cd
                W = tf.Variable(tf.cast(weights[0], wdt), name="bare_W")
                b = tf.Variable(tf.cast(weights[1], wdt), name="bare_b")
                variables = [W, b]

                def fwd(x_):
                    Wc = tf.cast(W, cd) if master else W
                    bc = tf.cast(b, cd) if master else b
                    return tf.nn.bias_add(tf.matmul(x_, Wc), bc)
            else:
                variables = []

                def fwd(x_):
                    return tf.nn.relu(x_)
            lr = tf.Variable(LEARNING_RATE, dtype="float32", name="bare_lr")

            def apply(grads):
                for v, gr in zip(variables, grads):
                    v.assign_sub(lr * tf.cast(gr, v.dtype))
        else:
            variables = list(layer_obj.trainable_variables)
            fwd = layer_obj
            if pass_ == "train":
                opt = keras.optimizers.SGD(learning_rate=LEARNING_RATE)
                opt.build(variables)

                def apply(grads):
                    opt.apply(grads, variables)

        if pass_ == "forward":
            def fn(x_, g_):
                return fwd(x_)
        elif pass_ == "fwdbwd":
            def fn(x_, g_):
                with tf.GradientTape() as tape:
                    tape.watch(x_)
                    y = fwd(x_)
                    loss = tf.reduce_sum(y * g_)
                return tape.gradient(loss, [x_] + variables)
        else:
            def fn(x_, g_):
                with tf.GradientTape() as tape:
                    y = fwd(x_)
                    loss = tf.reduce_sum(y * g_)
                grads = tape.gradient(loss, variables)
                apply(grads)
                return loss

        if mode == "graph":
            fn = tf.function(fn, jit_compile=False)
        elif mode == "compiled":
            fn = tf.function(fn, jit_compile=True)
        return lambda: fn(x, g)


class _JAX:
    def __init__(self):
        import jax
        import jax.numpy as jnp
        self.jax, self.jnp = jax, jnp

    def sync(self, out):
        self.jax.block_until_ready(out)

    def build(self, impl, layer_kind, layer_obj, pass_, mode, x_np, g_np,
              weights, policy):
        jax, jnp = self.jax, self.jnp
        cd = _compute_dtype(policy)
        x = jnp.asarray(x_np).astype(cd)
        g = jnp.asarray(g_np).astype(cd)

        if impl == "bare":
            master = pass_ == "train"
            if layer_kind == "dense":
                wdt = "float32" if master else cd
                params = [jnp.asarray(weights[0]).astype(wdt),
                          jnp.asarray(weights[1]).astype(wdt)]

                def fwd(p, x_):
                    W, b = p
                    return x_ @ W.astype(cd) + b.astype(cd)
            else:
                params = []

                def fwd(p, x_):
                    return jax.nn.relu(x_)
            opt_state = [jnp.asarray(LEARNING_RATE, "float32")]

            def apply(ostate, grads, p):
                lr = ostate[0]
                return ostate, [w - (lr * gr.astype(w.dtype)).astype(w.dtype)
                                for w, gr in zip(p, grads)]
        else:
            tv = list(layer_obj.trainable_variables)
            params = [v.value for v in tv]
            ntv = [(v, v.value) for v in layer_obj.non_trainable_variables]

            def fwd(p, x_):
                # Through ``__call__`` in a StatelessScope, as a layer inside a
                # model runs under Keras's JAX trainer. Not ``stateless_call``:
                # it calls ``self.call`` directly and so skips the mixed-
                # precision autocast -- the float32 kernel then meets the
                # bfloat16 input, JAX promotes, and the GEMM runs in float32
                # (Keras 3.15.1, layer.py). That was the pre-code baseline's unexplained
                # "mixed_bfloat16 at float32 speed" under JAX.
                with keras.StatelessScope(state_mapping=list(zip(tv, p)) + ntv):
                    return layer_obj(x_)
            if pass_ == "train":
                opt = keras.optimizers.SGD(learning_rate=LEARNING_RATE)
                opt.build(layer_obj.trainable_variables)
                opt_state = [v.value for v in opt.variables]

                def apply(ostate, grads, p):
                    p, ostate = opt.stateless_apply(ostate, grads, p)
                    return ostate, p

        if pass_ == "forward":
            if impl != "bare" and mode == "eager":
                return lambda: layer_obj(x)  # the natural eager call
            fn = fwd
            if mode == "compiled":
                fn = jax.jit(fn)
            return lambda: fn(params, x)
        if pass_ == "fwdbwd":
            def loss_fn(p, x_, g_):
                return jnp.sum(fwd(p, x_) * g_)
            fn = jax.grad(loss_fn, argnums=(0, 1))
            if mode == "compiled":
                fn = jax.jit(fn)
            return lambda: fn(params, x, g)

        def train(p, ostate, x_, g_):
            def loss_fn(p_):
                return jnp.sum(fwd(p_, x_) * g_)
            loss, grads = jax.value_and_grad(loss_fn)(p)
            ostate, p = apply(ostate, grads, p)
            return loss, p, ostate
        if mode == "compiled":
            train = jax.jit(train)
        state = {"p": params, "o": opt_state}

        def step():
            loss, state["p"], state["o"] = train(state["p"], state["o"], x, g)
            return loss, state["p"]
        return step


class _Torch:
    def __init__(self, torch_compile=False):
        import torch
        self.torch = torch
        self.torch_compile = torch_compile

    def sync(self, out):
        if self.torch.cuda.is_available():
            self.torch.cuda.synchronize()

    def build(self, impl, layer_kind, layer_obj, pass_, mode, x_np, g_np,
              weights, policy):
        torch = self.torch
        from keras import ops
        cd = _compute_dtype(policy)
        x = ops.cast(ops.convert_to_tensor(x_np), cd)
        g = ops.cast(ops.convert_to_tensor(g_np), cd)

        if impl == "bare":
            master = pass_ == "train"
            if layer_kind == "dense":
                wdt = "float32" if master else cd
                params = [ops.cast(ops.convert_to_tensor(w), wdt).detach()
                          .requires_grad_(True) for w in weights]
                tcd = x.dtype

                def fwd(x_):
                    W, b = params
                    return torch.addmm(b.to(tcd), x_, W.to(tcd))
            else:
                params = []

                def fwd(x_):
                    return torch.relu(x_)
            lr = LEARNING_RATE

            def apply(grads):
                with torch.no_grad():
                    for p, gr in zip(params, grads):
                        p.sub_(gr.to(p.dtype), alpha=lr)
        else:
            variables = layer_obj.trainable_variables
            params = [v.value for v in variables]
            fwd = layer_obj
            if pass_ == "train":
                opt = keras.optimizers.SGD(learning_rate=LEARNING_RATE)
                opt.build(variables)

                def apply(grads):
                    opt.apply(list(grads), variables)

        if mode == "compiled":
            fwd = torch.compile(fwd)

        if pass_ == "forward":
            def step():
                with torch.no_grad():
                    return fwd(x)
            return step
        xg = x.detach().clone().requires_grad_(True)
        if pass_ == "fwdbwd":
            def step():
                y = fwd(xg)
                loss = (y * g).sum()
                return torch.autograd.grad(loss, [xg] + params)
            return step

        def step():
            y = fwd(x)
            loss = (y * g).sum()
            grads = torch.autograd.grad(loss, params)
            apply(grads)
            return loss
        return step


_adapter = None


def adapter(torch_compile=False):
    global _adapter
    if _adapter is None:
        if BACKEND == "tensorflow":
            _adapter = _TF()
        elif BACKEND == "jax":
            _adapter = _JAX()
        elif BACKEND == "torch":
            _adapter = _Torch(torch_compile)
        else:
            raise RuntimeError(f"unsupported Keras backend {BACKEND!r}")
    return _adapter


def build_steps(layer, shape, policy, pass_, mode, torch_compile=False):
    """{impl: zero-argument step} for one group, and the FLOPs of one step."""
    ad = adapter(torch_compile)
    custom, builtin, x, g, weights = _make_layers(layer, shape, policy)
    steps = {
        "custom": ad.build("custom", layer, custom, pass_, mode, x, g, weights, policy),
        "builtin": ad.build("builtin", layer, builtin, pass_, mode, x, g, weights, policy),
        "bare": ad.build("bare", layer, None, pass_, mode, x, g, weights, policy),
    }
    if layer == "dense":
        b, i, o = shape
        flops = 2 * b * i * o * {"forward": 1, "fwdbwd": 3, "train": 2}[pass_]
    else:
        flops = 0
    return steps, flops, ad.sync


# ---------------------------------------------------------------------------
# Interleaved timing
# ---------------------------------------------------------------------------


@dataclass
class Settings:
    rounds: int = 21
    warmup: int = 3
    round_time: float = 0.02
    max_calls: int = 1000


@dataclass
class Timings:
    calls_per_round: int
    per_call: dict = field(default_factory=dict)  # impl -> [seconds per call]


def _time_round(step, k, sync):
    gc_was = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        out = None
        for _ in range(k):
            out = step()
        sync(out)
        return time.perf_counter() - t0
    finally:
        if gc_was:
            gc.enable()


def measure_interleaved(steps, sync, settings, single_shot=False):
    """Time the impls of one group round-robin, rotating the order each round.

    Warm-up (compilation, first-call tracing) is excluded: each step runs once
    and then ``settings.warmup`` more times before anything is timed. ``k``
    (calls per round) is the same for every impl of the group and is chosen so
    that a round of the median impl lasts about ``settings.round_time``.
    """
    names = list(steps)
    for name in names:  # compile / trace
        sync(steps[name]())
    if settings.round_time <= 0 and not single_shot:
        k = 1  # one call per round (the model.fit epoch); no calibration
        return _rounds(steps, names, sync, settings.rounds, 1)
    single = {}
    for name in names:
        ts = [_time_round(steps[name], 1, sync) for _ in range(max(1, settings.warmup))]
        single[name] = min(ts)
    if single_shot:
        return Timings(1, {n: [single[n]] for n in names})
    t_med = statistics.median(single.values())
    k = int(min(settings.max_calls, max(1, math.ceil(settings.round_time / max(t_med, 1e-9)))))
    return _rounds(steps, names, sync, settings.rounds, k)


def _rounds(steps, names, sync, rounds, k):
    gc.collect()
    res = Timings(k, {n: [] for n in names})
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            res.per_call[name].append(_time_round(steps[name], k, sync) / k)
    return res


# ---------------------------------------------------------------------------
# Ratio statistics and the gate rule
# ---------------------------------------------------------------------------


def quantile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def ratio_stats(ref_times, custom_times):
    """Throughput ratio custom/ref from paired rounds.

    Returns ``median`` (of the per-round ratios ref_i / custom_i), ``q1``,
    ``q3``, ``min``, ``max``, ``n``, ``ci_hi`` (upper end of the ~95% notch
    interval of the median: median + 1.58 * IQR / sqrt(n)) and ``of_medians``
    (median(ref) / median(custom)).
    """
    rs = [r / c for r, c in zip(ref_times, custom_times) if c > 0]
    if not rs:
        return None
    med = statistics.median(rs)
    q1, q3 = quantile(rs, 0.25), quantile(rs, 0.75)
    n = len(rs)
    return {
        "median": med, "q1": q1, "q3": q3, "min": min(rs), "max": max(rs),
        "n": n, "ci_hi": med + 1.58 * (q3 - q1) / math.sqrt(n),
        "ci_lo": med - 1.58 * (q3 - q1) / math.sqrt(n),
        "of_medians": statistics.median(ref_times) / statistics.median(custom_times),
    }


def gate_verdict(stats, gate):
    """'pass', 'noise' (below the gate but within measured noise) or 'FAIL'.

    FAIL only when every estimate is below the gate: the median of the paired
    per-round ratios, the ratio of the two medians, and the upper end of the
    ~95% interval of the paired median (``ci_hi``).
    """
    if stats is None or gate is None:
        return ""
    if min(stats["median"], stats["of_medians"]) >= gate:
        return "pass"
    if max(stats["ci_hi"], stats["of_medians"]) >= gate:
        return "noise"
    return "FAIL"
