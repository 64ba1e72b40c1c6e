"""Role: what the benchmarks ran on: accelerator names, backend and library
versions, a one-line device description."""

from __future__ import annotations

import os
import platform

import keras
import numpy as np

from bench_matrix import BACKEND

_gpu_cache = None


def gpu_names():
    """Names of the accelerators the current backend sees ([] on CPU)."""
    global _gpu_cache
    if _gpu_cache is not None:
        return _gpu_cache
    names = []
    try:
        if BACKEND == "tensorflow":
            import tensorflow as tf
            for d in tf.config.list_physical_devices("GPU"):
                try:
                    det = tf.config.experimental.get_device_details(d)
                    names.append(det.get("device_name", d.name))
                except Exception:
                    names.append(d.name)
        elif BACKEND == "jax":
            import jax
            names = [str(getattr(d, "device_kind", d)) for d in jax.devices()
                     if d.platform == "gpu"]
        elif BACKEND == "torch":
            import torch
            if torch.cuda.is_available():
                names = [torch.cuda.get_device_name(i)
                         for i in range(torch.cuda.device_count())]
    except Exception:  # pragma: no cover - best effort
        names = []
    _gpu_cache = names
    return names


def has_gpu():
    return bool(gpu_names())


def backend_versions():
    info = {"keras": keras.__version__, "keras_backend": BACKEND,
            "numpy": np.__version__, "python": platform.python_version()}
    try:
        import customlayers
        info["customlayers"] = customlayers.__version__
    except Exception:
        pass
    try:
        import pytest_benchmark
        info["pytest_benchmark"] = pytest_benchmark.__version__
    except Exception:
        pass
    if BACKEND == "tensorflow":
        import tensorflow as tf
        info["tensorflow"] = tf.__version__
        try:
            info["tf32"] = bool(tf.config.experimental.tensor_float_32_execution_enabled())
        except Exception:
            pass
    elif BACKEND == "jax":
        import jax
        import jaxlib
        info["jax"] = jax.__version__
        info["jaxlib"] = jaxlib.__version__
        info["jax_default_matmul_precision"] = str(
            jax.config.jax_default_matmul_precision)
    elif BACKEND == "torch":
        import torch
        info["torch"] = torch.__version__
        info["torch_cuda"] = str(torch.version.cuda)
        try:
            info["torch_allow_tf32_matmul"] = bool(
                torch.backends.cuda.matmul.allow_tf32)
        except Exception:
            pass
    for var in ("XLA_FLAGS", "TF_XLA_FLAGS", "XLA_PYTHON_CLIENT_PREALLOCATE",
                "CUDA_VISIBLE_DEVICES", "TF_ENABLE_ONEDNN_OPTS"):
        if os.environ.get(var):
            info[var] = os.environ[var]
    return info


def device_description():
    gpus = gpu_names()
    if gpus:
        return ", ".join(gpus)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU: {cpu} ({os.cpu_count()} logical cores)"
