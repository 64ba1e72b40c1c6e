"""The tutorial's subclassed model, built from the hand-written layers."""

from __future__ import annotations

import numbers

from customlayers import _keras
from customlayers._keras import keras
from customlayers.dense import Dense
from customlayers.relu import ReLU


@_keras.register_serializable()
class MyModel(keras.Model):
    """``Dense(hidden_units) -> ReLU -> Dense(num_classes)``, returning logits.

    The model of the Keras custom-layer tutorial, made of
    :class:`customlayers.Dense` and :class:`customlayers.ReLU`. Train it with
    ``SparseCategoricalCrossentropy(from_logits=True)``.

    Args:
        num_classes: Positive integer, the number of output logits.
        hidden_units: Positive integer, the width of the hidden layer.
        **kwargs: ``keras.Model`` keyword arguments such as ``name`` and
            ``dtype``: the dtype policy is passed on to every sublayer, so
            ``MyModel(dtype="bfloat16")`` computes in bfloat16 throughout,
            as its built-in twin does.

    Example:

    >>> model = MyModel(num_classes=10)
    >>> logits = model(np.zeros((2, 784), "float32"))
    >>> twin = model.builtin_twin()   # same weights, keras.layers inside
    """

    def __init__(self, num_classes=10, hidden_units=64, **kwargs):
        super().__init__(**kwargs)
        # NumPy integers (np.int64(8)) are plain ints from here on: in the
        # config, and for the built-in twin's Dense, which refuses them.
        self.num_classes = _as_int(num_classes)
        self.hidden_units = _as_int(hidden_units)
        # A Keras model does not hand its dtype policy to the layers it
        # creates: without this, MyModel(dtype="bfloat16") ran float32
        # sublayers while builtin_twin() ran bfloat16 ones.
        policy = _keras.dtype_policy(self)
        self.dense_1 = Dense(self.hidden_units, name="dense_1", dtype=policy)
        self.relu = ReLU(name="relu", dtype=policy)
        self.dense_2 = Dense(self.num_classes, name="dense_2", dtype=policy)

    def build(self, input_shape):
        """Create every sublayer's weights from ``input_shape``, so that
        ``model.build((None, 784))`` leaves the model ready to copy."""
        self.dense_1.build(input_shape)
        hidden = self.dense_1.compute_output_shape(input_shape)
        self.relu.build(hidden)
        self.dense_2.build(hidden)
        self.built = True

    def call(self, inputs):
        return self.dense_2(self.relu(self.dense_1(inputs)))

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_classes": self.num_classes,
             "hidden_units": self.hidden_units})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def builtin_twin(self, name=None):
        """The same model built from ``keras.layers``, with these weights.

        The twin is a ``keras.Sequential`` of ``keras.layers.Dense``,
        ``keras.layers.ReLU`` and ``keras.layers.Dense`` with the same units,
        dtype policy and a copy of this model's weights, so the two compute
        the same function and can be trained side by side.

        Raises:
            ValueError: if this model has not been built yet.

        Args:
            name: Name of the twin; defaults to ``"<this name>_builtin"``.
        """
        if not self.dense_1.built:
            raise ValueError(
                f"{self.name} has no weights yet, so its twin would not "
                "compute the same function; build it first, e.g. "
                "model.build((None, 784)) or call it on a batch.")
        policy = _keras.dtype_policy(self)
        twin = keras.Sequential(
            [
                # The input in the dtype this model takes it in: Keras 2's
                # Sequential.build otherwise makes a float32 Input, which
                # rounded a float64 input (found on TF 2.12).
                keras.Input((self.dense_1.input_dim,),
                            dtype=policy.variable_dtype),
                keras.layers.Dense(self.dense_1.units, name="dense_1",
                                   dtype=policy),
                keras.layers.ReLU(name="relu", dtype=policy),
                keras.layers.Dense(self.dense_2.units, name="dense_2",
                                   dtype=policy),
            ],
            name=name or f"{self.name}_builtin",
        )
        twin.set_weights(self.get_weights())
        return twin


def _as_int(value):
    """``value`` as a Python int if it is an integer (NumPy's included);
    anything else unchanged, for Dense to refuse with its own message."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return value
