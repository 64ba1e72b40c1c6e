"""Cross-backend parity (customlayers/testing/parity.py): the same custom
layer, weights and inputs under TensorFlow, JAX and PyTorch, each in its
own process, compared within the tolerance table.

Backends: every one importable in this interpreter (the ``parity`` tox env
installs all three; under Keras 2, TensorFlow only: tf.keras ignores
``KERAS_BACKEND``, so a "jax" dump would be TensorFlow's again), or the interpreters named in
``CUSTOMLAYERS_PARITY_PYTHONS`` (``"tensorflow=/venv-tf/bin/python
jax=/venv-jax/bin/python ..."``). With fewer than two the test is skipped
with the reason, unless ``CUSTOMLAYERS_PARITY_REQUIRE=1`` (set by the
``parity`` tox env), which makes that a failure.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from customlayers.testing import parity

MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}

#: (case, constructor arguments): each path of each layer once.
CONFIGS = [
    ("Dense", {"units": 8, "activation": "relu"}),
    ("Dense", {"units": 5, "use_bias": False, "activation": "tanh"}),
    ("ReLU", {}),
    ("ReLU", {"max_value": 6.0}),
    ("ReLU", {"negative_slope": 0.2, "threshold": 0.5, "max_value": 4.0}),
    # Inference (the identity) compared as above; training mode: each
    # backend's mask invariants and the values both backends kept
    # (customlayers/testing/parity_training.py). Seeds fixed.
    ("Dropout", {"rate": 0.3, "seed": 1234}),
    ("Dropout", {"rate": 0.5, "noise_shape": [None, 1, None], "seed": 7}),
    # int32 and int64 ids; outputs and the weight gradients (the scatter-add
    # of repeated ids), the mask; grad[input] is n/a.
    ("Embedding", {"input_dim": 50, "output_dim": 8}),
    ("Embedding", {"input_dim": 3, "output_dim": 5, "mask_zero": True}),
    ("Embedding", {"input_dim": 20, "output_dim": 4, "lora_rank": 2}),
]


def _interpreters():
    named = os.environ.get("CUSTOMLAYERS_PARITY_PYTHONS", "").split()
    if named:
        pairs = dict(item.split("=", 1) for item in named)
        unknown = set(pairs) - set(MODULES)
        if unknown:
            raise ValueError(f"CUSTOMLAYERS_PARITY_PYTHONS names unknown "
                             f"backends {sorted(unknown)}; expected "
                             f"{sorted(MODULES)}")
        return pairs
    from customlayers._keras import KERAS_MAJOR
    if KERAS_MAJOR < 3:  # Keras 2 (tf.keras) has one backend: TensorFlow's
        return {"tensorflow": sys.executable}
    return {b: sys.executable for b, m in MODULES.items()
            if importlib.util.find_spec(m) is not None}


def _dump_all(backend, python, out_dir):
    """Every config's dump on ``backend``, in one process."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3",
               JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(
        [root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    spec = [[case, kwargs, str(out_dir / f"{i}-{backend}.npz")]
            for i, (case, kwargs) in enumerate(CONFIGS)]
    proc = subprocess.run(
        [python, "-m", "customlayers.testing.parity", "dump-many",
         json.dumps(spec)],
        env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (
        f"dumps on {backend} ({python}) failed:\n{proc.stderr[-3000:]}")


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    found = _interpreters()
    if len(found) < 2:
        why = (f"cross-backend parity needs two or more Keras backends; "
               f"found {sorted(found) or 'none'} here (run `tox -e parity`, "
               "or set CUSTOMLAYERS_PARITY_PYTHONS)")
        if os.environ.get("CUSTOMLAYERS_PARITY_REQUIRE") == "1":
            pytest.fail(why + " and CUSTOMLAYERS_PARITY_REQUIRE=1")
        pytest.skip(why)
    print(f"parity backends: {found}")
    out_dir = tmp_path_factory.mktemp("parity")
    for backend, python in found.items():
        _dump_all(backend, python, out_dir)
    return found, out_dir


@pytest.mark.parametrize("case,kwargs", CONFIGS,
                         ids=[f"{c}-{json.dumps(k, sort_keys=True)}"
                              for c, k in CONFIGS])
def test_backends_agree(case, kwargs, backends):
    found, out_dir = backends
    i = CONFIGS.index((case, kwargs))
    paths = [out_dir / f"{i}-{backend}.npz" for backend in found]
    rows = parity.compare(paths)
    assert rows, "nothing was compared"
    lines = [f"{b} {p} {c}: " + ("bit-exact" if r.bit_exact else "FAIL" if
                                 not r.passed else "expected: " + "; ".join(
                                     r.expected) if r.expected else "pass")
             for b, p, c, r in rows]
    print("\n".join(lines))
    failed = [r.describe() for _, _, _, r in rows if not r.passed]
    assert not failed, "\n".join(failed)


def test_declared_differences_are_still_needed(backends):
    """Each declaration in parity_known.py excused some comparison of the
    configs above (a strict xfail: when the backends agree, it goes)."""
    from customlayers.testing import parity_known
    found, out_dir = backends
    if "tensorflow" not in found or set(found) <= {"tensorflow"}:
        pytest.skip(f"the declared differences are between TensorFlow and "
                    f"JAX/torch; backends here: {sorted(found)}")
    needed = set()
    for i, _ in enumerate(CONFIGS):
        rows = parity.compare([out_dir / f"{i}-{b}.npz" for b in found])
        for *_, comp in rows:
            needed.update(comp.expected)
    assert not parity_known.stale(needed), (
        f"declared but not needed: {parity_known.stale(needed)}")


def _fake_dump(path, backend, output, **meta_changes):
    meta = dict(format=parity.FORMAT, backend=backend, keras="x",
                case="ReLU", kwargs={}, policies=["float32"], shape=[3],
                seed=0, bfloat16_keys=[])
    meta.update(meta_changes)
    np.savez(path, __meta__=np.frombuffer(json.dumps(meta).encode(),
                                          dtype=np.uint8),
             **{"float32/input": np.array([-1.0, 0.0, 2.0], np.float32),
                "float32/output": np.asarray(output, np.float32)})


def test_compare_catches_a_backend_that_differs(tmp_path):
    """The comparison can fail: a backend whose output is off by 1e-3 (far
    beyond float32's tolerance) is reported, with the check named."""
    _fake_dump(tmp_path / "a.npz", "tensorflow", [0.0, 0.0, 2.0])
    _fake_dump(tmp_path / "b.npz", "jax", [0.0, 0.0, 2.002])
    rows = parity.compare([tmp_path / "a.npz", tmp_path / "b.npz"])
    assert [r.passed for *_, r in rows] == [False]
    assert "output (jax vs tensorflow)" in rows[0][3].describe()


def test_compare_refuses_dumps_of_other_inputs(tmp_path):
    _fake_dump(tmp_path / "a.npz", "tensorflow", [0.0, 0.0, 2.0])
    _fake_dump(tmp_path / "b.npz", "jax", [0.0, 0.0, 2.0], seed=1)
    with pytest.raises(parity.ParityError, match="other arguments.*seed"):
        parity.compare([tmp_path / "a.npz", tmp_path / "b.npz"])
    (tmp_path / "c.npz").write_bytes(b"not a zip file")
    with pytest.raises(parity.ParityError, match="c.npz: not a readable"):
        parity.compare([tmp_path / "a.npz", tmp_path / "c.npz"])
