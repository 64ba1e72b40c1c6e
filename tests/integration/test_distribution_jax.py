"""Keras's own distribution API on JAX, over 4 logical CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=4``, set for a
subprocess: JAX fixes its devices when it starts).

- ``keras.distribution.DataParallel``: the batch is split over the 4
  devices, the weights replicated;
- ``keras.distribution.ModelParallel`` on a ``DeviceMesh((2, 2),
  ("batch", "model"))`` with a ``LayoutMap`` that shards every Dense kernel
  along ``"model"`` (``".*dense.*kernel": (None, "model")``).

A Sequential of customlayers layers (Dense, LayerNormalization, ReLU,
BatchNormalization, Dense) and its twin of ``keras.layers``, from the same
weights, are compared under each distribution: the loss, the output in
training and inference mode and the gradient of every trainable weight
(one jitted ``stateless_call`` on the distributed batch), then 3 SGD steps
of ``train_on_batch`` (per-step losses, every final weight, BatchNorm's
moving statistics included). Custom vs built-in must be bit-exact there
(same kernels, same sharded program); each model under a distribution vs
the same model on one device is within the float32 tolerance (see
``test_data_parallel``). ``test_mnist_data_parallel`` trains ``MyModel`` on
real MNIST under ``DataParallel`` with ``customlayers.training``.

Other backends skip the module: ``keras.distribution`` has a backend only
on JAX (TensorFlow's ``distribution_lib`` is a DTensor prototype marked "DO
NOT USE"; torch has none). TensorFlow's own scale-out is
test_distribution_tf.py and test_training_mirrored.py.
"""

from __future__ import annotations

import json
import os
import textwrap

import numpy as np
import pytest

from customlayers._keras import BACKEND

if BACKEND != "jax":
    pytest.skip("keras.distribution (DataParallel, ModelParallel) has a "
                f"backend on JAX only; this run uses {BACKEND}",
                allow_module_level=True)

from tests.integration.training_helpers import (  # noqa: E402
    F32, SEED, compare_runs, once_per_run, run_python)

pytestmark = pytest.mark.slow

N_DEVICES = 4
JAX_ENV = {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_"
                        f"host_platform_device_count={N_DEVICES}".strip()}
SHARDED_KERNEL = "P(None, 'model')"

_DISTRIBUTED = textwrap.dedent("""
    import contextlib, json, sys, time
    import numpy as np
    import jax, keras
    from keras import distribution as kd
    import customlayers as cl
    from tests.meta_tests.broken_layers import (RenamedKernelDense,
                                                ScaledKernelGradientDense)
    t0 = time.perf_counter()
    seed, n_devices = int(sys.argv[2]), int(sys.argv[3])
    devices = kd.list_devices()
    assert len(devices) == n_devices, devices
    mesh = kd.DeviceMesh((2, n_devices // 2), ("batch", "model"), devices)
    layout_map = kd.LayoutMap(mesh)
    layout_map[".*dense.*kernel"] = (None, "model")
    dists = {"none": None, "dp": kd.DataParallel(devices=devices),
             "mp": kd.ModelParallel(layout_map=layout_map,
                                    batch_dim_name="batch")}
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((32, 12)).astype("float32")
    y = rng.integers(0, 4, size=32).astype("int32")
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def build(variant):
        lib = keras.layers if variant == "builtin" else cl
        dense = {"bug_grad": ScaledKernelGradientDense,
                 "bug_layout": RenamedKernelDense}.get(variant, lib.Dense)
        return keras.Sequential([
            keras.Input((12,)), dense(16, name="dense_in"),
            lib.LayerNormalization(name="ln"), lib.ReLU(name="relu"),
            lib.BatchNormalization(name="bn"), dense(4, name="dense_out")],
            name=variant)

    def layout(array):
        sharding = array.sharding
        return {"spec": str(getattr(sharding, "spec", None)),
                "devices": len(sharding.device_set),
                "shard_shape": list(array.addressable_shards[0].data.shape)}

    keras.utils.set_random_seed(seed)
    initial = build("custom").get_weights()
    arrays, layouts = {}, {}
    for where, variant in [("none", "custom"), ("none", "builtin"),
                           ("dp", "custom"), ("dp", "builtin"),
                           ("mp", "custom"), ("mp", "builtin"),
                           ("dp", "bug_grad"), ("mp", "bug_layout")]:
        dist, run = dists[where], f"{where}/{variant}"
        with dist.scope() if dist else contextlib.nullcontext():
            model = build(variant)
            model.set_weights(initial)
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss_fn,
                          jit_compile=True)
            xs, ys = x, y
            if dist is not None:
                xs, ys = (jax.device_put(a, dist.get_data_layout(a.shape)
                                         .backend_layout) for a in (x, y))
            layouts[f"{run}/input"] = layout(jax.numpy.asarray(xs))

            @jax.jit
            def forward_and_grads(tv, ntv, xs, ys):
                def loss(tv):
                    out, _ = model.stateless_call(tv, ntv, xs, training=True)
                    return loss_fn(ys, out), out
                (value, out), grads = jax.value_and_grad(
                    loss, has_aux=True)(tv)
                infer, _ = model.stateless_call(tv, ntv, xs, training=False)
                return value, out, infer, grads
            loss, out, infer, grads = forward_and_grads(
                [v.value for v in model.trainable_variables],
                [v.value for v in model.non_trainable_variables], xs, ys)
            arrays.update({f"{run}/loss": loss, f"{run}/output": out,
                           f"{run}/output_inference": infer})
            for v, g in zip(model.trainable_variables, grads):
                arrays[f"{run}/grad/{v.path.split('/', 1)[1]}"] = g
            arrays[f"{run}/step_losses"] = np.array(
                [model.train_on_batch(x, y) for _ in range(3)], "float32")
            for v in model.variables:
                name = v.path.split("/", 1)[1]
                arrays[f"{run}/final/{name}"] = v.value
                layouts[f"{run}/{name}"] = layout(v.value)
    np.savez(sys.argv[1], **{k: np.asarray(a) for k, a in arrays.items()})
    print(json.dumps({"devices": [str(d) for d in jax.devices()],
                      "layouts": layouts,
                      "seconds": time.perf_counter() - t0}))
""")


@pytest.fixture(scope="module")
def distributed(tmp_path_factory):
    """``(arrays, info)`` of one subprocess per test run (``once_per_run``:
    also under ``-n 2``)."""
    def run(out):
        proc = run_python(_DISTRIBUTED, out / "runs.npz", SEED, N_DEVICES,
                          env=JAX_ENV)
        (out / "info.json").write_text(proc.stdout.strip().splitlines()[-1])

    out = once_per_run(tmp_path_factory, "distribution_jax", run)
    info = json.loads((out / "info.json").read_text())
    assert len(info["devices"]) == N_DEVICES, info["devices"]
    print(f"\nJAX distribution runs: {info['seconds']:.1f} s in the child")
    return np.load(out / "runs.npz"), info


def layout_problems(info, custom, reference):
    """Where ``custom``'s variables are laid out unlike ``reference``'s
    (a sharding spec, shard shape or device count; a variable one lacks)."""
    def of(run):
        return {k[len(run) + 1:]: v for k, v in info["layouts"].items()
                if k.startswith(run + "/")}
    mine, theirs = of(custom), of(reference)
    return [f"layout of {n!r}: {custom} {mine.get(n)}, {reference} "
            f"{theirs.get(n)}" for n in sorted(set(mine) | set(theirs))
            if mine.get(n) != theirs.get(n)]


def assert_equivalent_under(arrays, info, where):
    """Custom vs built-in under ``where`` bit for bit, layouts included;
    each vs itself on one device within float32 tolerance."""
    comps, problems = compare_runs(arrays, f"{where}/custom",
                                   f"{where}/builtin", tolerance=None)
    problems += layout_problems(info, f"{where}/custom", f"{where}/builtin")
    assert not problems, (f"seed {SEED}: under {where}, custom vs built-in "
                          "not bit-exact:\n" + "\n".join(problems))
    lines = [f"{where}: custom vs built-in bit-exact on {len(comps)} arrays"]
    for name in ("custom", "builtin"):
        comps, problems = compare_runs(arrays, f"{where}/{name}",
                                       f"none/{name}", tolerance=F32)
        assert not problems, (
            f"seed {SEED}: {name} under {where} vs on one device, outside "
            f"the float32 tolerance (rtol=atol={F32.rtol:g}):\n"
            + "\n".join(problems))
        lines.append(f"{where} vs one device ({name}): max abs "
                     f"{max(c.max_abs for c in comps):.3g}, max ULP "
                     f"{max(c.max_ulp for c in comps):g}, bit-exact "
                     f"{sum(c.bit_exact for c in comps)}/{len(comps)}")
    print("\n" + "\n".join(lines))


def test_data_parallel(distributed):
    """DataParallel: the batch of 32 is split 8 per device (the input's
    layout says so), weights replicated on all 4; custom == built-in bit for
    bit. Against one device the sharded program sums in another order (the
    loss, BatchNorm's batch moments and every weight gradient reduce over a
    batch split in 4 and all-reduced): about 1e-6 apart after 3 steps, which
    the float32 row of TOLERANCES (rtol=atol=2e-5, for reordered sums) is
    for."""
    arrays, info = distributed
    assert info["layouts"]["dp/custom/input"] == {
        "spec": "P('batch', None)", "devices": 4, "shard_shape": [8, 12]}
    kernel = info["layouts"]["dp/custom/dense_in/kernel"]
    assert kernel == {"spec": "P(None, None)", "devices": 4,
                      "shard_shape": [12, 16]}, kernel
    assert_equivalent_under(arrays, info, "dp")


def test_model_parallel_shards_the_custom_kernel(distributed):
    """ModelParallel on the (2, 2) mesh: the LayoutMap's rule shards the
    custom Dense kernels as the built-ins' (12x16 -> 12x8 and 16x4 -> 16x2
    per device, after training too), the rest replicated, the batch split
    over "batch"; custom == built-in bit for bit; vs one device within the
    float32 tolerance (as for DataParallel, plus LayerNormalization's
    reduction over the model-sharded features)."""
    arrays, info = distributed
    layouts = info["layouts"]
    for name, shard in (("dense_in", [12, 8]), ("dense_out", [16, 2])):
        got = layouts[f"mp/custom/{name}/kernel"]
        assert got == {"spec": SHARDED_KERNEL, "devices": 4,
                       "shard_shape": shard}, (
            f"custom {name}.kernel is not sharded along 'model': {got}")
    assert layouts["mp/custom/input"]["spec"] == "P('batch', None)"
    assert layouts["mp/custom/ln/gamma"]["spec"] == "P(None,)"
    assert_equivalent_under(arrays, info, "mp")


def test_planted_bugs_are_reported(distributed):
    """The same comparisons on two planted bugs (tests/meta_tests/
    broken_layers.py): a Dense whose kernel gradient is 1 + 2**-8 too big
    (forward bit-identical) under DataParallel, and a Dense that names its
    kernel "w", which the LayoutMap rule misses, under ModelParallel."""
    arrays, info = distributed
    comps, problems = compare_runs(arrays, "dp/bug_grad", "dp/builtin",
                                   tolerance=None)
    failed = {c.check.split(": ")[1] for c in comps if not c.passed}
    assert {"grad/dense_in/kernel", "grad/dense_out/kernel",
            "step_losses", "final/dense_in/kernel"} <= failed, problems
    assert not failed & {"loss", "output", "grad/ln/gamma"}, failed
    problems = layout_problems(info, "mp/bug_layout", "mp/builtin")
    assert any("'dense_in/kernel'" in p for p in problems), problems
    assert info["layouts"]["mp/bug_layout/dense_in/w"]["spec"] \
        == "P(None, None)"
    print("\nplanted bugs reported:\n" + "\n".join(problems[:2]))


_MNIST = textwrap.dedent("""
    import sys
    import numpy as np
    from keras import distribution as kd
    from customlayers.training import prepare_mnist, train_side_by_side
    kw = dict(epochs=1, batch_size=128, seed=int(sys.argv[2]),
              limit=int(sys.argv[3]), jit_compile=True, progress=False,
              print_table=False, data=prepare_mnist())
    # train_side_by_side enters only a strategy's scope around building;
    # a keras.distribution must be current for fit too, so it wraps all.
    with kd.DataParallel(devices=kd.list_devices()).scope():
        runs = {"dp": train_side_by_side(**kw)}
    runs["none"] = train_side_by_side(**kw)
    arrays = {}
    for where, result in runs.items():
        for name, run in result.runs.items():
            arrays[f"{where}/{name}/loss"] = run.step_losses
            for i, (w, w0) in enumerate(zip(run.weights,
                                            run.initial_weights)):
                arrays[f"{where}/{name}/w{i}"] = w
                arrays[f"{where}/{name}/init{i}"] = w0
    np.savez(sys.argv[1], **arrays)
""")


def test_mnist_data_parallel(mnist, tmp_path):
    """MyModel and its twin on the first 12800 MNIST examples (100 Adam
    steps of 128, 32 per device) under DataParallel: bit-exact custom vs
    built-in, and within the float32 tolerance of one-device training."""
    out = tmp_path / "mnist.npz"
    run_python(_MNIST, out, SEED, 12800, env=JAX_ENV)
    arrays = np.load(out)
    assert len(arrays["dp/custom/loss"]) == 100
    assert_equivalent_under(arrays, {"layouts": {}}, "dp")
