"""TEMPORARY facade: the old home of every compatibility name.

``customlayers/_compat.py`` used to hold the Keras 2/3 selection, the
activation kernels of every backend and the harness's save/load and
conversion helpers in one 760-line module (issue 13). They now live in:

- :mod:`customlayers._keras`: ``keras``, ``ops``, ``KERAS_MAJOR``,
  ``KERAS_VERSION``, ``BACKEND``, ``register_serializable``,
  ``add_sum_variable``, ``relu_argument``, ``dense_config_extras``,
  ``DENSE_UNITS_ONLY_KERAS2_ACCEPTS``, ``shape_as_tuple``,
  ``variable_name``, ``dtype_policy``;
- :mod:`customlayers.backend`: ``relu_kernel``, ``relu6_kernel``,
  ``leaky_relu_kernel``, ``clip_kernel``, ``threshold_kernel``,
  ``relu_forward_elementary``, ``relu_backward_elementary``;
- :mod:`customlayers.testing.saving`: ``SAVE_FORMATS``, ``save_path``,
  ``save_format_unsupported``, ``save_model``, ``load_model``,
  ``keras_file_unsupported``;
- :mod:`customlayers.testing.convert`: ``to_numpy``, ``input_tensor``,
  ``apply_constraint``, ``float64_unavailable``.

This module re-exports each of those names so that code not yet switched
keeps working unchanged. Import from the new homes. Every importer has
switched except ``customlayers/testing/cases.py`` (``keras``, ``BACKEND``,
``DENSE_UNITS_ONLY_KERAS2_ACCEPTS``, all three in :mod:`customlayers._keras`);
once it has, this file is deleted (``git grep _compat`` then finds only the
history notes in saving.py, convert.py and benchmarks/RESULTS.md).

The harness names are resolved lazily (PEP 562 ``__getattr__``): importing
them here eagerly would import ``customlayers.testing``, whose modules import
this facade, before it is complete. Reading ``_compat.relu_kernel`` gives the
kernel chosen at import; to plant another one, patch
``customlayers.backend.relu_kernel``, which the layers look up at call time.
"""

from __future__ import annotations

import importlib

from customlayers._keras import (  # noqa: F401
    BACKEND, DENSE_UNITS_ONLY_KERAS2_ACCEPTS, KERAS_MAJOR, KERAS_VERSION,
    add_sum_variable, dense_config_extras, dense_inputs, dtype_policy, keras, ops,
    register_serializable, relu_argument, shape_as_tuple, variable_name)
from customlayers.backend import (  # noqa: F401
    clip_kernel, leaky_relu_kernel, relu6_kernel, relu_backward_elementary,
    relu_forward_elementary, relu_kernel, threshold_kernel)

_LAZY = {
    "SAVE_FORMATS": "customlayers.testing.saving",
    "save_path": "customlayers.testing.saving",
    "save_format_unsupported": "customlayers.testing.saving",
    "save_model": "customlayers.testing.saving",
    "load_model": "customlayers.testing.saving",
    "keras_file_unsupported": "customlayers.testing.saving",
    "to_numpy": "customlayers.testing.convert",
    "input_tensor": "customlayers.testing.convert",
    "apply_constraint": "customlayers.testing.convert",
    "float64_unavailable": "customlayers.testing.convert",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
