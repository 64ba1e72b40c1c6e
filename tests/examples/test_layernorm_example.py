"""The user's layer in ``examples/layernorm`` through the three entry points
(one call, pytest, the CLI), and a planted bug in it -- a dropped ``beta``
-- caught through each, with the check named.

The runs are narrowed to float32 and eager mode (``--cl-*``/``--dtypes``/
``--modes``) to keep the suite's time; the example's own declaration sweeps
float32 and float64 in every mode.
"""

import os
import subprocess
import sys
import textwrap

import keras
import pytest

from customlayers import _keras

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples",
                       "layernorm")
EXAMPLE = os.path.abspath(EXAMPLE)

pytestmark = pytest.mark.skipif(
    _keras.KERAS_MAJOR < 3,
    reason="the example layer is written for Keras 3 (keras.ops, "
           "keras.saving); this env runs Keras 2")

BUGGY = textwrap.dedent('''
    import dataclasses
    from keras import ops
    from my_layernorm import CASE, MyLayerNorm
    from customlayers.testing import layer_test_suite

    class DroppedBetaLayerNorm(MyLayerNorm):
        """Creates beta but never adds it."""
        def call(self, x):
            x = ops.cast(x, self.compute_dtype)
            mean = ops.mean(x, axis=-1, keepdims=True)
            var = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
            y = (x - mean) * ops.rsqrt(var + self.epsilon)
            return y * self.gamma if self.gamma is not None else y

    BUGGY_CASE = dataclasses.replace(CASE, name="DroppedBeta",
                                     custom=DroppedBetaLayerNorm)
    TestDroppedBeta = layer_test_suite(BUGGY_CASE)
''')


@pytest.fixture()
def buggy_module(tmp_path):
    path = tmp_path / "test_buggy_layernorm.py"
    path.write_text(BUGGY)
    return path


def _env():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [EXAMPLE, os.path.dirname(os.path.dirname(EXAMPLE))]
        + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
           if p]), TF_CPP_MIN_LOG_LEVEL="3")
    return env


def _run(args, cwd):
    return subprocess.run([sys.executable, *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=900)


@pytest.fixture()
def example_on_path(monkeypatch):
    monkeypatch.syspath_prepend(EXAMPLE)
    import my_layernorm
    return my_layernorm


def test_one_call_passes_and_catches_a_dropped_beta(example_on_path, tmp_path):
    from customlayers.testing import run_equivalence_test
    m = example_on_path
    ignore = m.CASE.config_ignore_keys
    report = run_equivalence_test(
        m.MyLayerNorm, keras.layers.LayerNormalization,
        init_kwargs={"epsilon": 1e-3}, input_shape=(4, 16),
        config_ignore_keys=ignore, artifacts=tmp_path)
    assert report.passed
    ns = {}
    exec(BUGGY.replace("TestDroppedBeta = layer_test_suite(BUGGY_CASE)", ""),
         ns)
    with pytest.raises(AssertionError) as info:
        run_equivalence_test(
            ns["DroppedBetaLayerNorm"], keras.layers.LayerNormalization,
            init_kwargs={"epsilon": 1e-3}, input_shape=(4, 16),
            config_ignore_keys=ignore, artifacts=tmp_path)
    text = str(info.value)
    # Random weights (beta is not zero) make the output differ, and beta's
    # gradient is zero where the reference's is not.
    assert "check 'output'" in text and "check 'grad[beta]'" in text, text
    assert "seed=0" in text


def test_pytest_plugin_passes_and_catches_a_dropped_beta(buggy_module):
    flags = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--cl-policies",
             "float32", "--cl-modes", "eager", "-k", "not saving-h5 and not "
             "savedmodel"]
    good = _run(flags + [os.path.join(EXAMPLE, "test_my_layernorm.py")],
                EXAMPLE)
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-2000:]
    assert "equivalence-float32-eager" in good.stdout or " passed" in \
        good.stdout
    bad = _run(flags + ["-rf", str(buggy_module)], EXAMPLE)
    assert bad.returncode == 1, bad.stdout[-3000:] + bad.stderr[-2000:]
    assert "test_property[equivalence-float32-eager]" in bad.stdout
    assert "check 'output'" in bad.stdout, bad.stdout[-3000:]


def test_cli_passes_and_catches_a_dropped_beta(buggy_module, tmp_path):
    flags = ["-m", "customlayers", "verify", "--dtypes", "float32",
             "--modes", "eager", "--artifacts", str(tmp_path)]
    good = _run(flags + ["--case", os.path.join(
        EXAMPLE, "my_layernorm.py") + ":CASE", "--json",
        str(tmp_path / "good.json"), "--junit", str(tmp_path / "good.xml")],
        EXAMPLE)
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-2000:]
    assert (tmp_path / "good.xml").read_text().count("<testcase") >= 5
    bad = _run(flags + ["--case", f"{buggy_module}:BUGGY_CASE"], EXAMPLE)
    assert bad.returncode == 1, bad.stdout[-3000:] + bad.stderr[-2000:]
    assert "FAILED equivalence DroppedBeta float32 eager" in bad.stdout
    assert "check 'output'" in bad.stdout
    # Printed once: the minimal example appears a single time.
    assert bad.stdout.count("Failing test case") <= bad.stdout.count(
        "FAILED ")


def test_cli_unknown_case_is_a_usage_error():
    out = _run(["-m", "customlayers", "verify", "--cases", "Nope"], EXAMPLE)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "unknown layer pair 'Nope'" in out.stderr
    out = _run(["-m", "customlayers", "verify", "--case", "no_such_mod:X"],
               EXAMPLE)
    assert out.returncode == 2 and "cannot import no_such_mod" in out.stderr


def test_python_entry_point_touches_no_global_state(example_on_path):
    import io

    from customlayers import verify
    from customlayers.testing.cases import CASES
    before = dict(CASES)
    buf = io.StringIO()
    code = verify.run(cases=[example_on_path.CASE], policies=["float32"],
                      modes=["eager"], out=buf)
    assert code == 0, buf.getvalue()[-3000:]
    assert dict(CASES) == before
    assert "MyLayerNorm" in buf.getvalue()
