"""One-off probe: does a seed give the built-in's dropout mask on this
backend and device? (customlayers.Dropout vs keras.layers.Dropout, same
seed, training=True, two successive calls each.) Prints the count of
bit-identical outputs; used to decide ``identical_to_reference`` in
customlayers/testing/cases_dropout.py for a device the CPU runs cannot see
(torch on CUDA). Run: KERAS_BACKEND=torch python3 benchmarks/investigations/dropout_identity_probe.py
"""

import itertools

import keras
import numpy as np

import customlayers

same = total = 0
firsts = []
for policy, rate, noise, seed in itertools.product(
        ("float32", "mixed_float16", "bfloat16"), (0.1, 0.5, 0.9),
        (None, (1, 16)), (0, 1, 1234)):
    x = np.random.default_rng(seed).standard_normal((8, 16)).astype(
        "float32") + 1.0
    ours = customlayers.Dropout(rate, noise_shape=noise, seed=seed,
                                dtype=policy)
    theirs = keras.layers.Dropout(rate, noise_shape=noise, seed=seed,
                                  dtype=policy)
    for call in range(2):
        a = keras.ops.convert_to_numpy(
            keras.ops.cast(ours(x, training=True), "float32"))
        b = keras.ops.convert_to_numpy(
            keras.ops.cast(theirs(x, training=True), "float32"))
        total += 1
        if np.array_equal(a, b):
            same += 1
        elif len(firsts) < 3:
            firsts.append((policy, rate, noise, seed, call,
                           int((a != b).sum()), a.size))
print(f"backend {keras.backend.backend()}: {same} of {total} dropout "
      f"outputs bit-identical to the built-in's for the same seed")
for f in firsts:
    print("  differs:", dict(zip(("policy", "rate", "noise_shape", "seed",
                                  "call", "n_diff", "size"), f)))
