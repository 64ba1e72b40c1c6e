"""customlayers: hand-written Keras layers with proof that they match the
built-ins.

- :class:`Dense`, a drop-in for ``keras.layers.Dense``;
- :class:`ReLU`, a drop-in for ``keras.layers.ReLU``;
- :class:`Embedding`, a drop-in for ``keras.layers.Embedding`` (Keras 3);
- :class:`LayerNormalization`, a drop-in for
  ``keras.layers.LayerNormalization`` (Keras 3);
- :class:`Dropout`, a drop-in for ``keras.layers.Dropout`` (Keras 3);
- :class:`BatchNormalization`, a drop-in for
  ``keras.layers.BatchNormalization`` (Keras 3);
- :class:`MyModel`, the tutorial's model built from them;
- :mod:`customlayers.testing`, the public equivalence harness.

``import customlayers`` imports the layers, which registers them for
loading saved models (``keras.models.load_model`` looks them up by name),
and imports Keras, and through it only the backend that ``KERAS_BACKEND``
names: TensorFlow is not imported under JAX or PyTorch. The light entry
points live outside the package for that reason: the ``customlayers``
command (:mod:`customlayers_cli`) and the pytest plugin
(:mod:`customlayers_pytest`) import nothing heavy until they run.
A backend without customlayers kernels (Keras's ``numpy``, ``openvino``)
raises :class:`customlayers.backend.UnsupportedBackendError` here.
"""

from customlayers import backend  # noqa: F401  (first: refuses a backend)
from customlayers.batch_normalization import BatchNormalization
from customlayers.dense import Dense
from customlayers.dropout import Dropout
from customlayers.embedding import Embedding
from customlayers.layer_normalization import LayerNormalization
from customlayers.model import MyModel
from customlayers.relu import ReLU

__version__ = "0.1.0"
__all__ = ["BatchNormalization", "Dense", "Dropout", "Embedding",
           "LayerNormalization", "ReLU", "MyModel", "__version__"]
