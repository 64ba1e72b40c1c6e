"""Role: TensorFlow steps for the three impls (bare: ``tf.nn.bias_add(
tf.matmul(x, W), b)`` / ``tf.nn.relu`` / ``tf.nn.moments`` and
``tf.nn.batch_normalization`` / ``keras.random.dropout`` (TF's
``stateless_dropout`` on a seed drawn from a ``SeedGenerator``) /
``tf.gather``), eager, ``tf.function`` or XLA."""

from __future__ import annotations

import functools

import keras

from bench_adapters.common import (BN_EPSILON, BN_MOMENTUM, LEARNING_RATE,
                                   compute_dtype, integer_input)
from bench_matrix import DROPOUT_RATE, DROPOUT_SEED
from bench_env import has_gpu


class TensorFlowAdapter:
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
        if isinstance(t, tf.IndexedSlices):  # an embedding table's gradient
            t = t.values
        if t is None:
            return
        tf.reshape(t, [-1])[:1].numpy()

    def build(self, impl, layer_kind, layer_obj, pass_, mode, x_np, g_np,
              weights, policy, call_kwargs=None):
        tf = self.tf
        cd = compute_dtype(policy)
        ids = integer_input(x_np)
        x = tf.constant(x_np) if ids else tf.cast(tf.constant(x_np), cd)
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
            elif layer_kind == "layernorm":
                # tf.nn.moments + tf.nn.batch_normalization in float32
                # (as the built-in, half-precision inputs are normalized
                # in float32), cast back.
                gamma = tf.Variable(weights[0], name="bare_gamma")
                beta = tf.Variable(weights[1], name="bare_beta")
                variables = [gamma, beta]

                def fwd(x_):
                    x32 = tf.cast(x_, "float32")
                    mean, var = tf.nn.moments(x32, [-1], keepdims=True)
                    return tf.cast(tf.nn.batch_normalization(
                        x32, mean, var, beta, gamma, 1e-3), x_.dtype)
            elif layer_kind.startswith("batchnorm"):
                variables, fwd = self._bare_batchnorm(layer_kind, weights)
            elif layer_kind == "dropout":
                seed = keras.random.SeedGenerator(DROPOUT_SEED)
                variables = []

                def fwd(x_):
                    return keras.random.dropout(x_, DROPOUT_RATE, seed=seed)
            elif layer_kind == "embedding":
                table = tf.Variable(weights[0], name="bare_table")
                variables = [table]

                def fwd(x_):
                    return tf.cast(tf.gather(table, x_), cd)
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
            fwd = functools.partial(layer_obj, **(call_kwargs or {}))
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
                sources = variables if ids else [x_] + variables
                with tf.GradientTape() as tape:
                    if not ids:
                        tape.watch(x_)
                    y = fwd(x_)
                    loss = tf.reduce_sum(y * g_)
                return tape.gradient(loss, sources)
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

    def _bare_batchnorm(self, layer_kind, weights):
        """``tf.nn.batch_normalization`` in float32 (as the layers) with the
        moving statistics (inference) or ``tf.nn.moments`` over the batch
        and the moving-average update (training)."""
        tf = self.tf
        gamma, beta, mean, var = (
            tf.Variable(w, name=f"bare_{n}") for w, n in
            zip(weights, ("gamma", "beta", "moving_mean", "moving_var")))
        training = layer_kind == "batchnorm_training"

        def fwd(x_):
            x32 = tf.cast(x_, "float32")
            if training:
                m, v = tf.nn.moments(x32, [0])
                mean.assign(mean * BN_MOMENTUM + m * (1.0 - BN_MOMENTUM))
                var.assign(var * BN_MOMENTUM + v * (1.0 - BN_MOMENTUM))
            else:
                m, v = mean, var
            return tf.cast(tf.nn.batch_normalization(
                x32, m, v, beta, gamma, BN_EPSILON), x_.dtype)
        return [gamma, beta], fwd
