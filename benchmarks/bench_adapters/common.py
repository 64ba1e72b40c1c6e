"""Role: what every backend adapter shares: the layers under test with
identical weights, the data, and the learning rate of the train pass.

Every tensor a step reads is an argument or a variable, never a captured
constant, so XLA cannot constant-fold the work away.
"""

from __future__ import annotations

import math

import keras
import numpy as np

LEARNING_RATE = 1e-6  # tiny: weights stay put, nothing overflows or denormalises


def compute_dtype(policy):
    return keras.DTypePolicy(policy).compute_dtype


def make_layers(layer, shape, policy, seed=0):
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
    elif layer == "layernorm":
        batch, features = shape
        gamma = (1.0 + 0.1 * rng.standard_normal((features,))).astype("float32")
        beta = (0.1 * rng.standard_normal((features,))).astype("float32")
        custom = customlayers.LayerNormalization(dtype=policy,
                                                 name="custom_layernorm")
        builtin = keras.layers.LayerNormalization(dtype=policy,
                                                  name="builtin_layernorm")
        for lay in (custom, builtin):
            lay.build((None, features))
            lay.set_weights([gamma, beta])
        x = rng.standard_normal(shape).astype("float32")
        g = rng.standard_normal(shape).astype("float32")
        weights = (gamma, beta)
    else:
        custom = customlayers.ReLU(dtype=policy, name="custom_relu")
        builtin = keras.layers.ReLU(dtype=policy, name="builtin_relu")
        x = rng.standard_normal(shape).astype("float32")
        g = rng.standard_normal(shape).astype("float32")
        weights = ()
    return custom, builtin, x, g, weights
