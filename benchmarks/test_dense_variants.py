"""Dense variants: LoRA and int8 / int4 / float8, custom vs built-in.

customlayers.Dense and keras.layers.Dense get the same float weights (from
``bench_adapters.make_layers``), then the same LoRA (rank 8, random A and
B) or the same ``quantize(mode)``, and run through the backend adapter
(``bench_adapters.adapter().build``) and timing (``run_group``). There is no bare
operation here. Keras 3 only; not marked ``gate`` (the CI gate subset is
plain Dense and ReLU).
"""

from __future__ import annotations

import numpy as np
import pytest

import bench_adapters
import bench_matrix as matrix

from customlayers import _keras

if _keras.KERAS_MAJOR < 3:  # pragma: no cover
    pytest.skip("LoRA and quantization need Keras 3", allow_module_level=True)

SHAPE = matrix.GATE_DENSE_SHAPE
VARIANTS = ("lora", "int8", "int4", "float8")


def _prepare(variant, layer, seed=1):
    rng = np.random.default_rng(seed)
    if variant == "lora":
        layer.enable_lora(8)
        layer.lora_kernel_a.assign(rng.standard_normal(
            tuple(layer.lora_kernel_a.shape)).astype("float32") * 0.01)
        layer.lora_kernel_b.assign(rng.standard_normal(
            tuple(layer.lora_kernel_b.shape)).astype("float32") * 0.01)
    else:
        layer.quantize(variant)


def _cases():
    cases = []
    for variant in VARIANTS:
        for pass_ in matrix.PASSES:
            for mode in matrix.MODES:
                if not matrix.mode_available(mode, False):
                    continue
                if variant == "float8" and mode == "eager" and \
                        pass_ != "forward":
                    continue  # the built-in's float8 gradient needs graph
                cases.append(pytest.param(
                    (variant, pass_, mode),
                    id=f"dense-{variant}-{matrix.shape_id(SHAPE)}-float32-"
                       f"{pass_}-{mode}"))
    return cases


@pytest.mark.parametrize("case", _cases())
def test_dense_variant(case, run_group):
    variant, pass_, mode = case
    if matrix.BACKEND != "tensorflow" and variant == "float8":
        pytest.skip("float8 Dense variants are benchmarked on TensorFlow "
                    "only here")
    custom, builtin, x, g, weights = bench_adapters.make_layers("dense", SHAPE,
                                                        "float32")
    for layer in (custom, builtin):
        _prepare(variant, layer)
    ad = bench_adapters.adapter()
    steps = {impl: ad.build(impl, "dense", layer, pass_, mode, x, g,
                            weights, "float32")
             for impl, layer in (("custom", custom), ("builtin", builtin))}
    b, i, o = SHAPE
    info = {"layer": f"dense-{variant}", "shape": list(SHAPE),
            "dtype": "float32", "pass": pass_, "mode": mode, "batch": b,
            "flops": 2 * b * i * o * {"forward": 1, "fwdbwd": 3,
                                      "train": 2}[pass_]}
    group = matrix.group_name(f"dense-{variant}", SHAPE, "float32", pass_,
                              mode)
    run_group(group, steps, ad.sync, info)
