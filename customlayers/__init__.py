"""customlayers: hand-written Keras layers with proof that they match the
built-ins.

- :class:`Dense`, a drop-in for ``keras.layers.Dense``;
- :class:`ReLU`, a drop-in for ``keras.layers.ReLU``;
- :class:`MyModel`, the tutorial's model built from them;
- :mod:`customlayers.testing`, the public equivalence harness.

Importing this package is cheap: ``Dense``, ``ReLU`` and ``MyModel`` are
imported on first use (PEP 562), so that ``customlayers --help`` and
``customlayers.datasets`` do not import Keras. Using one of them imports
Keras, and through it only the backend that ``KERAS_BACKEND`` names:
TensorFlow is not imported under JAX or PyTorch. ``import customlayers`` is
still enough to register the layers for loading saved models: loading one
looks the class up by name, which imports it.
"""

import importlib

__version__ = "0.1.0"
__all__ = ["Dense", "ReLU", "MyModel", "__version__"]

_LAZY = {"Dense": "customlayers.dense", "ReLU": "customlayers.relu",
         "MyModel": "customlayers.model"}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'customlayers' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
