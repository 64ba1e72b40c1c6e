"""Role: TensorFlow steps for the three impls (bare: ``tf.nn.bias_add(
tf.matmul(x, W), b)`` / ``tf.nn.relu`` / ``tf.nn.moments`` and
``tf.nn.batch_normalization``), eager, ``tf.function`` or XLA."""

from __future__ import annotations

import keras

from bench_adapters.common import LEARNING_RATE, compute_dtype
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
        if t is None:
            return
        tf.reshape(t, [-1])[:1].numpy()

    def build(self, impl, layer_kind, layer_obj, pass_, mode, x_np, g_np,
              weights, policy):
        tf = self.tf
        cd = compute_dtype(policy)
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
