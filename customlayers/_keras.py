"""Which Keras is running, and what differs between Keras 2 and Keras 3.

Role: select the Keras the layers subclass (Keras 3; ``tf.keras`` on
TensorFlow 2.12-2.15; ``tf_keras`` with ``TF_USE_LEGACY_KERAS=1``), give the
tensor-operation namespace ``ops`` (``keras.ops``, or the ``_Keras2Ops`` shim
on Keras 2), and hold every Keras 2/3 difference the layers meet. Dropping
Keras 2 is one deletion here: the ``_Keras2Ops`` class and the
``if KERAS_MAJOR < 3`` branches. Nothing here is backend-specific; the
activation kernels live in :mod:`customlayers.backend`, the harness's
save/load and conversion helpers in :mod:`customlayers.testing.saving` and
:mod:`customlayers.testing.convert`.

Names: ``keras``, ``ops``, ``KERAS_MAJOR``, ``KERAS_VERSION``, ``BACKEND``
(the Keras backend's name, not checked here: :mod:`customlayers.backend`
refuses an unsupported one), ``register_serializable``, ``add_sum_variable``,
``relu_argument``, ``dense_config_extras``,
``DENSE_UNITS_ONLY_KERAS2_ACCEPTS``, ``shape_as_tuple``, ``variable_name``,
``dtype_policy``.
"""

from __future__ import annotations

import inspect
import os


def _legacy_keras_requested() -> bool:
    return os.environ.get("TF_USE_LEGACY_KERAS", "").strip().lower() in (
        "1", "true", "yes")


def _import_keras():
    """The Keras the layers should subclass, and its version string."""
    if _legacy_keras_requested():
        # TF >= 2.16 with tf_keras: tf.keras *is* tf_keras then, while
        # `import keras` would still give Keras 3.
        import tf_keras
        return tf_keras, tf_keras.__version__
    import keras as keras3_or_2
    version = keras3_or_2.__version__
    if int(version.split(".")[0]) >= 3:
        return keras3_or_2, version
    # TF 2.12-2.15: the `keras` package is Keras 2 and tf.keras is it.
    from tensorflow import keras as tf_keras_2
    return tf_keras_2, version


keras, KERAS_VERSION = _import_keras()
KERAS_MAJOR = int(KERAS_VERSION.split(".")[0])


# -- Keras 2 (TF <= 2.15, or tf_keras): a shim for the ops we use ----------

class _Keras2Ops:
    """Exactly the ``keras.ops`` functions customlayers uses, over TF, doing
    what Keras 2's own layers do (Dense: ``tensordot`` for rank > 2 and
    ``bias_add``). Delete with Keras 2 support."""

    def __init__(self):
        import tensorflow as tf
        self._tf = tf
        self.custom_gradient = tf.custom_gradient
        self.where = tf.where
        self.greater = tf.greater
        self.greater_equal = tf.greater_equal
        self.less = tf.less
        self.less_equal = tf.less_equal
        self.logical_and = tf.logical_and
        self.logical_or = tf.logical_or
        self.logical_not = tf.logical_not
        self.maximum = tf.maximum
        self.minimum = tf.minimum
        self.multiply = tf.multiply
        self.subtract = tf.subtract
        self.zeros_like = tf.zeros_like
        self.stop_gradient = tf.stop_gradient
        self.reshape = tf.reshape
        self.shape = tf.shape
        self.divide_no_nan = tf.math.divide_no_nan
        self.relu = tf.nn.relu  # only the planted bugs of the meta-tests
        self.leaky_relu = tf.nn.leaky_relu
        self.sign = tf.sign  # and these two: tests/meta_tests/test_forward_mode_bugs.py
        self.abs = tf.abs

    def convert_to_tensor(self, x, dtype=None):
        return self._tf.convert_to_tensor(x, dtype=dtype)

    def cast(self, x, dtype):
        return self._tf.cast(x, dtype)

    def full_like(self, x, fill_value, dtype=None):
        dtype = dtype or x.dtype
        return self._tf.fill(self._tf.shape(x),
                             self._tf.cast(fill_value, dtype))

    def swapaxes(self, x, axis1, axis2):
        x = self._tf.convert_to_tensor(x)
        perm = list(range(x.shape.rank))
        perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
        return self._tf.transpose(x, perm)

    def ones(self, shape, dtype=None):
        return self._tf.ones(shape, dtype=dtype or keras.backend.floatx())

    def sum(self, x, axis=None, keepdims=False):
        return self._tf.reduce_sum(x, axis=axis, keepdims=keepdims)

    def matmul(self, x1, x2):
        # Keras 2's Dense: matmul for rank 2, tensordot on the last axis
        # for rank > 2 (keras/layers/core/dense.py).
        rank = x1.shape.rank
        if rank is not None and rank > 2 and x2.shape.rank == 2:
            return self._tf.tensordot(x1, x2, [[rank - 1], [0]])
        return self._tf.matmul(x1, x2)

    def add(self, x1, x2):
        # Keras 2's Dense adds its bias with bias_add, whose gradient is
        # BiasAddGrad (not the Sum that a broadcasting add's gradient is).
        x1 = self._tf.convert_to_tensor(x1)
        if (getattr(x2, "shape", None) is not None and x2.shape.rank == 1
                and x1.shape.rank is not None and x1.shape.rank >= 2):
            return self._tf.nn.bias_add(x1, x2)
        return self._tf.add(x1, x2)


if KERAS_MAJOR < 3:  # pragma: no cover - exercised by the Keras 2 tox envs
    ops = _Keras2Ops()
    BACKEND = "tensorflow"
else:
    from keras import ops  # noqa: E402
    BACKEND = keras.backend.backend()


def add_sum_variable(metric, name: str):
    """A scalar, zero-initialised, sum-aggregated variable of ``metric``.
    Keras 3: ``add_variable(aggregation="sum")`` (its ``add_weight`` takes
    no aggregation). Keras 2: ``add_weight`` with
    ``tf.VariableAggregation.SUM`` (the string ``"sum"`` raises "Invalid
    variable aggregation mode", and ``add_variable`` is deprecated)."""
    if KERAS_MAJOR < 3:  # pragma: no cover
        import tensorflow as tf
        return metric.add_weight(name=name, shape=(), initializer="zeros",
                                 aggregation=tf.VariableAggregation.SUM)
    return metric.add_variable(shape=(), initializer="zeros",
                               aggregation="sum", name=name)


def register_serializable(package: str = "customlayers"):
    """Register a class so that saved models can load it by name."""
    if KERAS_MAJOR < 3:  # pragma: no cover
        return keras.utils.register_keras_serializable(package=package)
    return keras.saving.register_keras_serializable(package=package)



def relu_argument(value):
    """A ReLU constructor number as the built-in stores (and computes with)
    it: unchanged on Keras 3; Keras 2's ReLU keeps
    ``backend.cast_to_floatx(value)``, a float32 NumPy scalar, and puts it
    in its config."""
    if KERAS_MAJOR < 3 and value is not None:  # pragma: no cover
        return keras.backend.cast_to_floatx(value)
    return value



#: Whether Keras's own Dense takes ``quantization_config`` (and lists it in
#: its config): Keras 3.15.1's does, 3.12.1's (the newest Keras on Python
#: 3.10, tox env py310) does not. Asked of the signature, not of a version
#: number, so that the Keras release that added it need not be known.
DENSE_TAKES_QUANTIZATION_CONFIG = KERAS_MAJOR >= 3 and (
    "quantization_config"
    in inspect.signature(keras.layers.Dense.__init__).parameters)


def dense_config_extras(layer) -> dict:
    """Keys Keras's own Dense puts in its config beyond the arguments both
    versions list: Keras 2's Dense also lists ``activity_regularizer``;
    Keras 3's lists ``quantization_config`` (serialized, ``None`` too;
    where it takes one, see DENSE_TAKES_QUANTIZATION_CONFIG) and, when LoRA
    is on, ``lora_rank`` and ``lora_alpha``."""
    if KERAS_MAJOR < 3:  # pragma: no cover
        return {"activity_regularizer": keras.regularizers.serialize(
            layer.activity_regularizer)}
    extras = {}
    if DENSE_TAKES_QUANTIZATION_CONFIG:
        extras["quantization_config"] = keras.saving.serialize_keras_object(
            layer.quantization_config)
    if layer.lora_rank:
        extras.update(lora_rank=layer.lora_rank, lora_alpha=layer.lora_alpha)
    return extras


def dense_inputs(layer, inputs):
    """What Dense multiplies: Keras 2's Dense casts any input (integers and
    bool too) to its compute dtype first; Keras 3's leaves non-float inputs
    to the ops' type promotion (its ``__call__`` casts float inputs)."""
    if KERAS_MAJOR < 3:  # pragma: no cover
        import tensorflow as tf
        dtype = layer._compute_dtype_object
        if inputs.dtype.base_dtype != dtype.base_dtype:
            return tf.cast(inputs, dtype)
    return inputs


#: Values of ``units`` that Keras 2's Dense accepts (``int(units)``, then
#: only ``< 0`` is refused) while Keras 3's refuses them; customlayers.Dense
#: refuses them everywhere.
DENSE_UNITS_ONLY_KERAS2_ACCEPTS = (0, 2.5, "8") if KERAS_MAJOR < 3 else ()



def variable_name(v) -> str:
    """A variable's own name (``kernel``), without Keras 2's layer scope and
    ``:0`` suffix (``dense_3/kernel:0``)."""
    name = v.name
    if KERAS_MAJOR < 3:  # pragma: no cover
        name = name.split("/")[-1].split(":")[0]
    return name


def dtype_policy(layer):
    """The layer's dtype policy object (``dtype_policy`` on Keras 2.12+ and
    Keras 3)."""
    return getattr(layer, "dtype_policy", None) or getattr(
        layer, "_dtype_policy", None)


def shape_as_tuple(shape):
    """A shape as a tuple of ints and ``None``s, whatever Keras passed.

    Keras 3 passes tuples to ``build``; Keras 2 passes ``TensorShape``.
    """
    if hasattr(shape, "as_list"):
        try:
            return tuple(shape.as_list())
        except ValueError:  # unknown rank
            return ()
    return tuple(None if d is None else int(d) for d in shape)
