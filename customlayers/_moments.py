"""``tf.nn.moments`` op for op, shared by the normalization layers on
TensorFlow. No other backend imports it."""

from __future__ import annotations

import tensorflow as tf


def tf_moments(x, axes):
    """Mean and biased variance of ``x`` over ``axes`` (kept as size-1
    dimensions), as ``tf.nn.moments`` computes them: ``reduce_mean``, then
    ``reduce_mean`` of a ``SquaredDifference`` against the *stopped* mean,
    in a ``moments`` name scope.

    - The stopped mean leaves first derivatives unchanged but drops the
      mean's term from the second derivative; ``square(x - mean)`` would
      round the Hessian-vector products 1-1536 ULP differently.
    - The name scope matters in graph mode: Grappler orders its rewrites of
      a gradient (the input gradient's three terms) by op name; without it
      ``grad[input]`` came out up to 64 ULP off.
    - The ops are TensorFlow's own, not ``keras.ops``: ``x`` is at least
      float32 here, so ``ops.mean``'s casts around ``reduce_mean`` would be
      no-ops, and in eager mode they and the ``keras.ops`` dispatch cost as
      much Python as the reduction (``benchmarks/RESULTS.md``, 2026-12-06
      night). ``tf.name_scope``, not ``keras.name_scope``: the same op
      names, without Keras's variable-path stack.

    All three found by the property suite.
    """
    with tf.name_scope("moments"):
        mean = tf.reduce_mean(x, axis=axes, keepdims=True)
        return mean, tf.reduce_mean(
            tf.math.squared_difference(x, tf.stop_gradient(mean)),
            axis=axes, keepdims=True)
