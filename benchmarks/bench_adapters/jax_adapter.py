"""Role: JAX steps for the three impls (bare: ``x @ W + b`` /
``jax.nn.relu`` / ``jnp.mean``, ``jnp.var`` and ``lax.rsqrt`` (LayerNorm,
BatchNorm) / ``jax.random.bernoulli`` and ``jnp.where`` / ``jnp.take``),
eager or ``jax.jit``; the layers run through ``__call__`` in a
``StatelessScope`` (the moving-statistics update and the next dropout seed
are dropped with the scope, and under ``jax.jit`` XLA removes their work: the
bare BatchNorm computes no update either)."""

from __future__ import annotations

import keras

from bench_adapters.common import (BN_EPSILON, LEARNING_RATE, compute_dtype,
                                   integer_input)
from bench_matrix import DROPOUT_RATE, DROPOUT_SEED


class JaxAdapter:
    def __init__(self):
        import jax
        import jax.numpy as jnp
        self.jax, self.jnp = jax, jnp

    def sync(self, out):
        self.jax.block_until_ready(out)

    def build(self, impl, layer_kind, layer_obj, pass_, mode, x_np, g_np,
              weights, policy, call_kwargs=None):
        jax, jnp = self.jax, self.jnp
        cd = compute_dtype(policy)
        kw = call_kwargs or {}
        ids = integer_input(x_np)
        x = jnp.asarray(x_np) if ids else jnp.asarray(x_np).astype(cd)
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
            elif layer_kind == "layernorm":
                params = [jnp.asarray(w) for w in weights]  # float32

                def fwd(p, x_):
                    gamma, beta = p
                    x32 = x_.astype("float32")
                    mean = jnp.mean(x32, -1, keepdims=True)
                    var = jnp.var(x32, -1, keepdims=True)
                    y = (x32 - mean) * jax.lax.rsqrt(var + 1e-3)
                    return (y * gamma + beta).astype(x_.dtype)
            elif layer_kind.startswith("batchnorm"):
                params = [jnp.asarray(w) for w in weights[:2]]  # float32
                moving = [jnp.asarray(w) for w in weights[2:]]
                training = layer_kind == "batchnorm_training"

                def fwd(p, x_):
                    gamma, beta = p
                    x32 = x_.astype("float32")
                    if training:
                        mean, var = jnp.mean(x32, 0), jnp.var(x32, 0)
                    else:
                        mean, var = moving
                    y = (x32 - mean) * jax.lax.rsqrt(var + BN_EPSILON)
                    return (y * gamma + beta).astype(x_.dtype)
            elif layer_kind == "dropout":
                params = []
                key = jax.random.key(DROPOUT_SEED)

                def fwd(p, x_):
                    keep = jax.random.bernoulli(key, 1.0 - DROPOUT_RATE,
                                                x_.shape)
                    return jnp.where(keep, x_ / (1.0 - DROPOUT_RATE),
                                     jnp.zeros_like(x_))
            elif layer_kind == "embedding":
                params = [jnp.asarray(weights[0])]  # float32

                def fwd(p, x_):
                    return jnp.take(p[0], x_, axis=0).astype(cd)
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
                    return layer_obj(x_, **kw)
            if pass_ == "train":
                opt = keras.optimizers.SGD(learning_rate=LEARNING_RATE)
                opt.build(layer_obj.trainable_variables)
                opt_state = [v.value for v in opt.variables]

                def apply(ostate, grads, p):
                    p, ostate = opt.stateless_apply(ostate, grads, p)
                    return ostate, p

        if pass_ == "forward":
            if impl != "bare" and mode == "eager":
                return lambda: layer_obj(x, **kw)  # the natural eager call
            fn = fwd
            if mode == "compiled":
                fn = jax.jit(fn)
            return lambda: fn(params, x)
        if pass_ == "fwdbwd":
            def loss_fn(p, x_, g_):
                return jnp.sum(fwd(p, x_) * g_)
            # Embedding ids are integers: the table's gradient only.
            fn = jax.grad(loss_fn, argnums=0 if ids else (0, 1))
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
