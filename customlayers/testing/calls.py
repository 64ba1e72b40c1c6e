"""How the derivative and mask checks call a layer: with its ``training``
argument, statelessly where that argument would update state, and inside
each backend's staging (``tf.function``, XLA, ``jax.jit``).

- :func:`caller`: ``call(x)`` for TensorFlow's tapes and accumulators,
  which differentiate the layer's own variables.
- :func:`functional`: the layer as a function of its trainable variables'
  values, for JAX's and torch's functional transforms.
- :func:`tf_wrap`, :func:`tf_tensor`, :func:`np_or_none`: TensorFlow's
  modes (eager, ``tf.function``, XLA) and conversions.

A call with ``training`` given runs inside a ``keras.StatelessScope``
holding the non-trainable variables at their values (Keras 3): a
training-mode BatchNormalization's updates of its moving statistics are
dropped, not assigned (torch's functional transforms cannot assign a dual
or batched tensor into a variable; the derivative checks differentiate the
output, and the ``state`` property compares the updates). A call without
``training`` is the plain ``layer(x)`` it always was.
"""

from __future__ import annotations

import numpy as np

from customlayers._keras import KERAS_MAJOR
from customlayers.testing.backends import call_kwargs


def caller(layer, training=None):
    """``call(x)``: ``layer(x)``, with ``training`` passed when it is not
    ``None`` and then statelessly (see the module docstring; Keras 2 calls
    the layer as it is)."""
    kw = call_kwargs(training)
    if not kw or KERAS_MAJOR < 3:
        return lambda x: layer(x, **kw)
    import keras

    def call(x):
        frozen = [(v, v.value) for v in layer.non_trainable_variables]
        with keras.StatelessScope(state_mapping=frozen):
            return layer(x, **kw)

    return call


def functional(layer, training=None):
    """``(call(x, values), values)``: ``layer`` as a function of the values
    of its trainable variables (in ``layer.trainable_variables``' order),
    called statelessly with the non-trainable variables at their current
    values (Keras 3: JAX and torch), and those values now."""
    import keras
    weights = list(layer.trainable_variables)
    frozen = [(v, v.value) for v in layer.non_trainable_variables]
    kw = call_kwargs(training)

    def call(x, values):
        mapping = list(zip(weights, values)) + frozen
        with keras.StatelessScope(state_mapping=mapping):
            return layer(x, **kw)

    return call, [w.value for w in weights]


def np_or_none(t):
    """A tensor as a NumPy array; ``None`` stays ``None``."""
    from customlayers.testing.convert import to_numpy
    return None if t is None else to_numpy(t)


def tf_wrap(fn, mode):
    """``fn`` in TensorFlow's ``mode``: itself (eager), a ``tf.function``
    (graph) or one compiled by XLA (compiled)."""
    import tensorflow as tf
    # Every example traces a new function on purpose (new layers, new
    # shapes): TensorFlow's "excessive retracing" warning is expected.
    tf.get_logger().setLevel("ERROR")
    if mode == "graph":
        return tf.function(fn, autograph=False)
    if mode == "compiled":
        return tf.function(fn, autograph=False, jit_compile=True)
    return fn


def tf_tensor(a):
    """A NumPy array as a TensorFlow tensor (bfloat16 exactly)."""
    import tensorflow as tf

    from customlayers.testing.convert import input_tensor
    return tf.convert_to_tensor(input_tensor(np.asarray(a)))


def tf_variables(weights) -> list:
    """The ``tf.Variable`` under each Keras 3 variable (Keras 2's are
    ``tf.Variable`` objects already), for a ``ForwardAccumulator``'s primals."""
    return [getattr(w, "value", w) if not callable(getattr(
        w, "value", None)) else w for w in weights]


def tf_dense(g):
    """A TensorFlow gradient as a dense tensor: a ``tf.IndexedSlices`` (a
    gather's gradient) through TensorFlow's own conversion, differentiable
    (a second derivative goes through it); ``None`` stays ``None``."""
    if type(g).__name__ == "IndexedSlices":
        import tensorflow as tf
        return tf.convert_to_tensor(g)
    return g
