"""One ``model.fit`` epoch on real MNIST: ``MyModel`` vs its built-in twin.

Both models start from the same weights (``builtin_twin`` copies them), use
``SparseCategoricalCrossentropy(from_logits=True)`` and Adam, batch 128, and are
timed in interleaved rounds of one full epoch (60,000 images, 469 steps). The
first epoch of each is an untimed warm-up (tracing / XLA compilation, including
the short last batch). Data: ``customlayers.datasets.load_mnist()``, or the
Keras-style ``.npz`` named by ``$CUSTOMLAYERS_BENCH_MNIST`` (the GPU run carries
one, since the lent machine is offline).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from bench_timing import Settings

BATCH = 128


@pytest.fixture(scope="module")
def mnist():
    from customlayers.datasets import load_mnist
    path = os.environ.get("CUSTOMLAYERS_BENCH_MNIST") or None
    try:
        (x, y), _ = load_mnist(path=path) if path else load_mnist()
    except Exception as e:  # offline machine without a copy
        pytest.skip(f"MNIST unavailable: {e}")
    return x.reshape(-1, 784).astype("float32") / 255.0, y.astype("int32")


@pytest.mark.gate
@pytest.mark.parametrize("dtype", ["float32"])
def test_fit_epoch(dtype, mnist, run_group, request):
    import keras

    import customlayers

    x, y = mnist
    keras.utils.set_random_seed(0)
    model = customlayers.MyModel(num_classes=10, hidden_units=64, dtype=dtype)
    model(x[:2])
    twin = model.builtin_twin()
    models = {"custom": model, "builtin": twin}
    for m in models.values():
        m.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])

    def stepper(m):
        return lambda: m.fit(x, y, epochs=1, batch_size=BATCH, verbose=0,
                             shuffle=True)

    steps = {k: stepper(m) for k, m in models.items()}
    rounds = request.config.getoption("--bench-fit-rounds")
    settings = Settings(rounds=rounds, warmup=0, round_time=0.0)
    group = f"fit MyModel mnist 1 epoch b{BATCH} {dtype}"
    info = {"layer": "MyModel.fit", "dtype": dtype, "pass": "fit",
            "mode": "fit(jit_compile=auto)", "batch": int(x.shape[0]),
            "steps_per_epoch": int(np.ceil(x.shape[0] / BATCH))}
    run_group(group, steps, lambda out: None, info, settings=settings)
