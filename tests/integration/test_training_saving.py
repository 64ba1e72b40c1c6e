"""Training on real MNIST, saving: the trained models saved as ``.keras``,
HDF5 and SavedModel and loaded in a fresh process predict exactly (bit for
bit) what they predicted before (the run is conftest.py's ``graph_run``)."""

from __future__ import annotations

import json
import os
import textwrap

import numpy as np
import pytest

from customlayers._keras import keras
from customlayers.testing.numerics import compare_arrays
from customlayers.testing.saving import (SAVE_FORMATS, save_format_unsupported,
                                        save_model, save_path)
from tests.integration.training_helpers import run_python

pytestmark = pytest.mark.slow


_LOAD_AND_PREDICT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import customlayers  # registers MyModel, Dense, ReLU for loading
    from customlayers._keras import keras
    from customlayers.testing.convert import to_numpy
    from customlayers.testing.saving import load_model
    x = np.load(sys.argv[1])
    fmt = sys.argv[3]
    out = {}
    for i, path in enumerate(sys.argv[4:]):
        model = load_model(path, fmt)
        if isinstance(model, keras.Model):
            pred = model.predict(x, batch_size=1000, verbose=0)
            kinds = [type(model).__module__ + "." + type(model).__name__]
            kinds += [type(layer).__module__ + "." + type(layer).__name__
                      for layer in getattr(model, "layers", [])]
        else:  # a Keras 3 SavedModel export: a serving function
            pred = np.concatenate([to_numpy(model(x[j:j + 1000]))
                                   for j in range(0, len(x), 1000)])
            kinds = ["serving function"]
        np.save(f"{sys.argv[2]}_{i}.npy", pred)
        out[path] = kinds
    print(json.dumps(out))
""")

_CUSTOM_KINDS = ["customlayers.dense.Dense", "customlayers.relu.ReLU",
                 "customlayers.dense.Dense"]


@pytest.mark.parametrize("fmt", SAVE_FORMATS)
def test_saved_models_reload_in_a_fresh_process(graph_run, mnist, tmp_path,
                                                fmt):
    """The trained models, saved in ``fmt`` and loaded in a new process,
    predict bit for bit what they predicted before: MyModel, a Sequential
    of our trained layers (HDF5 holds no subclassed model) and the twin."""
    _, (x_test, _) = mnist
    custom = graph_run.custom.model
    models = {
        "MyModel": custom,
        "Sequential of customlayers": keras.Sequential(
            [keras.Input((784,)), custom.dense_1, custom.relu,
             custom.dense_2]),
        "builtin twin": graph_run.builtin.model,
    }
    reasons = {name: save_format_unsupported(fmt, model=m)
               for name, m in models.items()}
    print(f"\n{fmt}: " + ", ".join(
        f"{n}: {'saved' if r is None else 'not saved (' + r + ')'}"
        for n, r in reasons.items()))
    models = {n: m for n, m in models.items() if reasons[n] is None}
    if "Sequential of customlayers" not in models:
        pytest.skip(f"{fmt}: {reasons['Sequential of customlayers']}")
    paths, before = [], []
    for i, (name, model) in enumerate(models.items()):
        path = save_path(str(tmp_path / str(i)), fmt)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        save_model(model, path, fmt)
        paths.append(path)
        before.append(model.predict(x_test, batch_size=1000, verbose=0))
    np.save(tmp_path / "x_test.npy", x_test)
    proc = run_python(_LOAD_AND_PREDICT, tmp_path / "x_test.npy",
                       tmp_path / "pred", fmt, *paths)
    kinds = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, path in zip(models, paths):
        if kinds[path] == ["serving function"] or name == "builtin twin":
            continue
        want = (["customlayers.model.MyModel"] if name == "MyModel" else
                [kinds[path][0]]) + _CUSTOM_KINDS
        assert kinds[path] == want, f"{name} reloaded as {kinds[path]}"
    for i, (name, ref) in enumerate(zip(models, before)):
        after = np.load(tmp_path / f"pred_{i}.npy")
        comp = compare_arrays(f"{name}: predictions after the {fmt} reload",
                              after, ref, tolerance=None)
        assert comp.passed, comp.describe()
    # The custom model and the twin also predict the same, bit for bit.
    assert compare_arrays("custom vs twin", before[0], before[-1],
                          tolerance=None).passed
