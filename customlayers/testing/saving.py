"""Save and load models for the harness, on every Keras and backend.

Role: the formats a model can make a round trip through (``.keras``, HDF5,
SavedModel), where each goes, why one cannot work on this Keras/backend, and
how to save and load back. Used by the test harness and the integration
tests, not by the layers. (Moved here from ``customlayers/_compat.py``.)
"""

from __future__ import annotations

import os

import numpy as np

from customlayers._keras import BACKEND, KERAS_MAJOR, KERAS_VERSION, keras

__all__ = ["SAVE_FORMATS", "keras_file_unsupported", "load_model",
           "save_format_unsupported", "save_model", "save_path"]


#: The formats a model can be saved in: Keras 3's ``.keras`` zip (Keras
#: 2.12+ as ``keras_v3``), HDF5, and TensorFlow's SavedModel.
SAVE_FORMATS = ("keras", "h5", "savedmodel")


def save_path(directory: str, fmt: str) -> str:
    """Where a model saved in ``fmt`` goes inside ``directory``."""
    names = {"keras": "model.keras", "h5": "model.h5",
             "savedmodel": "model_savedmodel"}
    if fmt not in names:
        raise ValueError(f"unknown save format {fmt!r}; expected one of "
                         f"{SAVE_FORMATS}")
    return os.path.join(directory, names[fmt])


def save_format_unsupported(fmt: str, model=None, layer=None) -> str | None:
    """Why ``model`` (or a Sequential model holding ``layer``) cannot make a
    round trip through ``fmt`` on this Keras and backend; ``None`` if it can.

    - ``keras``: everywhere, except Keras 2.12 with NumPy scalars in the
      config (see :func:`keras_file_unsupported`).
    - ``h5``: Sequential and functional models only. A subclassed model's
      ``call`` is Python code: Keras 2 refuses to save it, Keras 3 saves it
      but cannot load it back. Keras 3 writes HDF5 through its legacy code
      on every backend.
    - ``savedmodel``: TensorFlow only. Keras 2 saves and reloads the model
      itself (``save_format="tf"``); Keras 3 exports an inference artifact
      (``model.export``) that ``tf.saved_model.load`` serves.
    """
    if fmt not in SAVE_FORMATS:
        raise ValueError(f"unknown save format {fmt!r}; expected one of "
                         f"{SAVE_FORMATS}")
    if fmt == "keras":
        layers = [layer] if layer is not None else []
        if model is not None:
            layers += list(model._flatten_layers(include_self=False)) \
                if hasattr(model, "_flatten_layers") else list(model.layers)
        reasons = [keras_file_unsupported(x) for x in layers]
        return next((r for r in reasons if r), None)
    if fmt == "h5":
        if model is not None and not isinstance(model, keras.Sequential) \
                and not getattr(model, "_is_graph_network", False):
            return (f"HDF5 cannot round-trip the subclassed "
                    f"{type(model).__name__}: Keras 2 refuses to save it "
                    "(NotImplementedError); Keras 3's legacy HDF5 code saves "
                    "it but cannot load it back ('Unknown layer', and with "
                    "custom_objects 'Layer count mismatch'; seen on 3.15.1)")
        return None
    if BACKEND != "tensorflow":
        return (f"SavedModel is TensorFlow's format; this run uses the "
                f"{BACKEND} backend")
    try:
        import tensorflow  # noqa: F401
    except ImportError:  # pragma: no cover
        return "SavedModel needs TensorFlow, which is not installed"
    return None


def save_model(model, path: str, fmt: str = "keras") -> None:
    """Save ``model`` to ``path`` in ``fmt`` (see :data:`SAVE_FORMATS`).
    Keras 2.12 writes HDF5 for any path unless asked for
    ``save_format="keras_v3"`` (2.13+ pick it from the suffix)."""
    if fmt == "savedmodel":
        if KERAS_MAJOR < 3:  # pragma: no cover
            model.save(path, save_format="tf")
        else:
            model.export(path, verbose=False)
        return
    if fmt == "h5":
        if KERAS_MAJOR < 3:  # pragma: no cover
            model.save(path, save_format="h5")
        else:
            model.save(path)  # Keras 3 picks legacy HDF5 from the suffix
        return
    if KERAS_MAJOR < 3:  # pragma: no cover
        model.save(path, save_format="keras_v3")
    else:
        model.save(path)


def load_model(path: str, fmt: str = "keras"):
    """Load what :func:`save_model` wrote. Returns the Keras model, except
    for a Keras 3 SavedModel export, which only serves: then a callable
    ``f(x) -> outputs`` (its ``serve`` endpoint)."""
    if loads_as_graph(fmt):
        import tensorflow as tf
        restored = tf.saved_model.load(path)

        def serve(x):
            # Holding ``restored`` here keeps its variables alive: the bare
            # ``restored.serve`` fails once the object is collected.
            return restored.serve(x)

        serve.restored = restored
        return serve
    return keras.models.load_model(path)


def loads_as_graph(fmt: str) -> bool:
    """Whether :func:`load_model` gives back a served graph, not a Keras
    model: a SavedModel on Keras 3 (``model.export``'s artifact)."""
    return fmt == "savedmodel" and KERAS_MAJOR >= 3


def served_graph(model, x):
    """``model``'s inference call traced as Keras 3's ``model.export``
    traces its ``serve`` endpoint (a ``tf.function`` of ``model(x,
    training=False)`` with the batch dimension left as ``None``): the
    reference a reloaded SavedModel is compared with."""
    import tensorflow as tf
    spec = tf.TensorSpec((None,) + tuple(x.shape[1:]), x.dtype)
    return tf.function(lambda t: model(t, training=False),
                       input_signature=[spec])


def keras_file_unsupported(layer) -> str | None:
    """Why a ``.keras`` round trip of ``layer`` cannot work on this Keras
    (``None`` if it can). Keras 2.12's ``keras_v3`` format writes a NumPy
    scalar in a config as ``{'class_name': '__numpy__', ...}`` and does not
    read it back, and Keras 2's ReLU keeps its arguments as float32 NumPy
    scalars: ``keras.layers.ReLU`` itself fails to load there."""
    if KERAS_MAJOR < 3 and KERAS_VERSION.startswith("2.12."):  # pragma: no cover
        numpy_keys = sorted(k for k, v in layer.get_config().items()
                            if isinstance(v, (np.ndarray, np.generic)))
        if numpy_keys:
            return (f"keras {KERAS_VERSION}: the keras_v3 (.keras) format "
                    f"cannot load back the NumPy scalars in "
                    f"{type(layer).__name__}'s config {numpy_keys} (it "
                    "writes them as '__numpy__' dicts); the built-in "
                    "fails the same way")
    return None

