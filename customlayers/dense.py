"""A hand-written drop-in for ``keras.layers.Dense``."""

from __future__ import annotations

import numbers

from customlayers import _compat
from customlayers._compat import keras, ops


def _validate_units(units):
    if isinstance(units, bool) or not isinstance(units, numbers.Integral) \
            or units <= 0:
        raise ValueError(
            "Received an invalid value for `units`, expected a positive "
            f"integer. Received: units={units!r} "
            f"(type {type(units).__name__})"
        )
    return int(units)


@_compat.register_serializable()
class Dense(keras.layers.Layer):
    """A densely-connected layer: ``activation(inputs @ kernel + bias)``.

    A drop-in for ``keras.layers.Dense``, written from ``matmul`` and ``add``
    as in the Keras custom-layer tutorial. It takes the same arguments, names
    its weights ``kernel`` and ``bias`` (so models that contain it can be
    saved), builds lazily from ``input_shape[-1]`` for inputs of any rank
    >= 2, and computes the same outputs and gradients as the built-in.

    Inputs of rank > 2 are contracted on their last axis, like the built-in:
    ``(batch, d0, ..., input_dim) -> (batch, d0, ..., units)``.

    Args:
        units: Positive integer, the dimensionality of the output space.
            Python and NumPy integers are accepted; ``bool`` is not.
        activation: Activation function to use (anything
            ``keras.activations.get`` accepts). ``None`` means linear.
        use_bias: Boolean, whether the layer adds a bias vector.
        kernel_initializer: Initializer for the ``kernel`` matrix.
        bias_initializer: Initializer for the bias vector.
        kernel_regularizer: Regularizer applied to the ``kernel`` matrix.
        bias_regularizer: Regularizer applied to the bias vector.
        activity_regularizer: Regularizer applied to the layer's output.
        kernel_constraint: Constraint applied to the ``kernel`` matrix.
        bias_constraint: Constraint applied to the bias vector.
        **kwargs: Base layer keyword arguments, such as ``name``, ``dtype``
            and ``trainable``.

    Example:

    >>> layer = Dense(32, activation="relu")
    >>> y = layer(np.ones((4, 16), "float32"))   # builds a (16, 32) kernel
    >>> tuple(y.shape)
    (4, 32)
    """

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        units = _validate_units(units)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.input_spec = keras.layers.InputSpec(min_ndim=2)
        self.supports_masking = True
        self.input_dim = None

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer),
                "bias_regularizer": keras.regularizers.serialize(
                    self.bias_regularizer),
                "kernel_constraint": keras.constraints.serialize(
                    self.kernel_constraint),
                "bias_constraint": keras.constraints.serialize(
                    self.bias_constraint),
                **_compat.dense_config_extras(self),
            }
        )
        return config

    def build(self, input_shape):
        shape = tuple(_compat.shape_as_tuple(input_shape))
        if len(shape) < 2:
            raise ValueError(
                f'Layer "{self.name}" (Dense) expects inputs of rank >= 2, '
                f"(batch, ..., features); received shape {shape}."
            )
        input_dim = shape[-1]
        if input_dim is None:
            raise ValueError(
                f'Layer "{self.name}" (Dense) needs a known last dimension to '
                f"create its kernel; received input shape {shape}. Give the "
                "input a fixed feature size."
            )
        self.input_dim = int(input_dim)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.input_dim, self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        self.built = True

    def call(self, inputs):
        self._check_input_shape(inputs.shape)
        x = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            x = ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def _check_input_shape(self, shape):
        shape = tuple(_compat.shape_as_tuple(shape))
        if len(shape) < 2 or (
                shape[-1] is not None and shape[-1] != self.input_dim):
            raise ValueError(
                f'Layer "{self.name}" (Dense) was built for inputs whose last '
                f"dimension is {self.input_dim}, but received an input of "
                f"shape {shape} (last dimension "
                f"{shape[-1] if shape else None}). Expected shape "
                f"(batch, ..., {self.input_dim})."
            )

    def compute_output_shape(self, input_shape):
        shape = list(_compat.shape_as_tuple(input_shape))
        shape[-1] = self.units
        return tuple(shape)
