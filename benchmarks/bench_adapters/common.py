"""Role: what every backend adapter shares: the layers under test with
identical weights, the data, and the learning rate of the train pass.

Every tensor a step reads is an argument or a variable, never a captured
constant, so XLA cannot constant-fold the work away.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from bench_matrix import CALL_KWARGS, DROPOUT_RATE, DROPOUT_SEED

LEARNING_RATE = 1e-6  # tiny: weights stay put, nothing overflows or denormalises
BN_EPSILON = 1e-3  # BatchNormalization's default, as LayerNormalization's
BN_MOMENTUM = 0.99


def call_kwargs(layer):
    """The layers' call arguments for a kind (``training`` for the
    BatchNormalization and Dropout kinds)."""
    return dict(CALL_KWARGS.get(layer, {}))


def integer_input(x_np):
    """Embedding ids: not cast to the compute dtype, and no gradient."""
    return x_np.dtype.kind in "iu"


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
    elif layer.startswith("batchnorm"):
        batch, features = shape
        gamma = (1.0 + 0.1 * rng.standard_normal((features,))).astype("float32")
        beta = (0.1 * rng.standard_normal((features,))).astype("float32")
        mean = (0.1 * rng.standard_normal((features,))).astype("float32")
        var = (1.0 + 0.1 * rng.random((features,))).astype("float32")
        custom = customlayers.BatchNormalization(dtype=policy,
                                                 name="custom_batchnorm")
        builtin = keras.layers.BatchNormalization(dtype=policy,
                                                  name="builtin_batchnorm")
        for lay in (custom, builtin):
            lay.build((None, features))
            lay.set_weights([gamma, beta, mean, var])
        x = rng.standard_normal(shape).astype("float32")
        g = rng.standard_normal(shape).astype("float32")
        weights = (gamma, beta, mean, var)
    elif layer == "dropout":
        kw = dict(rate=DROPOUT_RATE, seed=DROPOUT_SEED, dtype=policy)
        custom = customlayers.Dropout(name="custom_dropout", **kw)
        builtin = keras.layers.Dropout(name="builtin_dropout", **kw)
        x = rng.standard_normal(shape).astype("float32")
        g = rng.standard_normal(shape).astype("float32")
        weights = ()
    elif layer == "embedding":
        batch, seq, input_dim, output_dim = shape
        table = (0.05 * rng.standard_normal((input_dim, output_dim))
                 ).astype("float32")
        custom = customlayers.Embedding(input_dim, output_dim, dtype=policy,
                                        name="custom_embedding")
        builtin = keras.layers.Embedding(input_dim, output_dim, dtype=policy,
                                         name="builtin_embedding")
        for lay in (custom, builtin):
            lay.build((None, seq))
            lay.set_weights([table])
        x = rng.integers(0, input_dim, (batch, seq)).astype("int32")
        g = rng.standard_normal((batch, seq, output_dim)).astype("float32")
        weights = (table,)
    else:
        custom = customlayers.ReLU(dtype=policy, name="custom_relu")
        builtin = keras.layers.ReLU(dtype=policy, name="builtin_relu")
        x = rng.standard_normal(shape).astype("float32")
        g = rng.standard_normal(shape).astype("float32")
        weights = ()
    return custom, builtin, x, g, weights
