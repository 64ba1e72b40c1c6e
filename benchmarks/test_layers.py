"""Per-layer throughput: layer x shape x dtype x pass x mode, one test per group.

See ``benchmarks/bench_matrix.py`` and ``benchmarks/bench_adapters/`` for what
each pass and mode runs and
``benchmarks/conftest.py`` for the timing, the ratio table and the gate.
"""

from __future__ import annotations

import pytest

import bench_adapters
import bench_env
import bench_matrix as matrix


def _cases(config):
    all_shapes = config.getoption("--bench-all-shapes")
    torch_compile = config.getoption("--bench-torch-compile")
    gpu = bench_env.has_gpu() or all_shapes
    cases = []
    for layer, (shapes, passes) in matrix.LAYERS.items():
        for shape, gpu_only in shapes:
            if gpu_only and not gpu:
                continue
            for dtype, dt_gpu_only in matrix.DTYPES:
                if dt_gpu_only and not gpu:
                    continue
                for pass_ in passes:
                    for mode in matrix.MODES:
                        if not matrix.mode_available(mode, torch_compile):
                            continue
                        gate = (dtype == "float32" and (
                            (layer == "dense" and shape == matrix.GATE_DENSE_SHAPE)
                            or (layer == "relu" and shape == matrix.GATE_RELU_SHAPE)))
                        pid = (f"{layer}-{matrix.shape_id(shape)}-{dtype}-"
                               f"{pass_}-{mode}")
                        marks = [pytest.mark.gate] if gate else []
                        cases.append(pytest.param(
                            (layer, shape, dtype, pass_, mode), id=pid,
                            marks=marks))
    return cases


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", _cases(metafunc.config))


def test_layer(case, run_group, request):
    layer, shape, dtype, pass_, mode = case
    torch_compile = request.config.getoption("--bench-torch-compile")
    steps, flops, sync = bench_adapters.build_steps(layer, shape, dtype, pass_, mode,
                                            torch_compile=torch_compile)
    group = matrix.group_name(layer, shape, dtype, pass_, mode)
    info = {"layer": layer, "shape": list(shape), "dtype": dtype,
            "pass": pass_, "mode": mode, "batch": shape[0], "flops": flops}
    run_group(group, steps, sync, info)
