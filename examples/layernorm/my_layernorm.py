"""A user's own layer, verified with customlayers.testing.

``MyLayerNorm`` is a hand-written layer normalisation over the last axis, of
the kind an ML engineer writes, and ``CASE`` declares it against
``keras.layers.LayerNormalization``. Run the whole battery three ways:

- pytest: ``pytest examples/layernorm`` (``test_my_layernorm.py``);
- the CLI: ``customlayers verify --case examples/layernorm/my_layernorm.py:CASE``;
- Python: ``customlayers.verify.run(cases=[CASE])``.

And a first check in one call::

    from customlayers.testing import run_equivalence_test
    run_equivalence_test(MyLayerNorm, keras.layers.LayerNormalization,
                         init_kwargs={"epsilon": 1e-3}, input_shape=(4, 16))
"""

import keras
from hypothesis import strategies as st
from keras import ops

from customlayers.testing import ErrorInput, LayerCase, Tolerance


@keras.saving.register_keras_serializable(package="my_layers")
class MyLayerNorm(keras.layers.Layer):
    """``(x - mean) / sqrt(var + epsilon) * gamma + beta`` over the last
    axis.

    Args:
        epsilon: Small float added to the variance.
        center: Whether to add the learned offset ``beta``.
        scale: Whether to multiply by the learned scale ``gamma``.
    """

    def __init__(self, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        if not epsilon > 0:
            raise ValueError(f"epsilon must be > 0; received "
                             f"epsilon={epsilon!r}")
        self.epsilon = epsilon
        self.center = center
        self.scale = scale

    def build(self, input_shape):
        dim = input_shape[-1]
        if self.scale or self.center:
            # Refuse another last dimension with Keras's own message (naming
            # the layer and both sizes), as the built-in does when it has
            # weights of that size.
            self.input_spec = keras.layers.InputSpec(axes={-1: dim})
        self.gamma = self.add_weight(name="gamma", shape=(dim,),
                                     initializer="ones") \
            if self.scale else None
        self.beta = self.add_weight(name="beta", shape=(dim,),
                                    initializer="zeros") \
            if self.center else None

    def call(self, x):
        # Integer and bool inputs are normalised in the compute dtype, as
        # the built-in does (customlayers' input-dtype property found this).
        x = ops.cast(x, self.compute_dtype)
        mean = ops.mean(x, axis=-1, keepdims=True)
        var = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
        y = (x - mean) * ops.rsqrt(var + self.epsilon)
        if self.gamma is not None:
            y = y * self.gamma
        if self.beta is not None:
            y = y + self.beta
        return y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale}


CASE = LayerCase(
    name="MyLayerNorm",
    custom=MyLayerNorm,
    reference=keras.layers.LayerNormalization,
    init_kwargs={"epsilon": st.sampled_from([1e-3, 1e-5]),
                 "center": st.booleans(), "scale": st.booleans()},
    input_shape=st.tuples(st.integers(1, 8), st.integers(2, 32)),
    # The built-in computes x * inv + (-mean * inv), which overflows to NaN
    # near |x| = 1e38 in float32; ours computes (x - mean) * inv.
    input_range=(-100.0, 100.0),
    # A 1e38 upstream gradient overflows either backward pass, and which
    # element becomes inf or NaN then depends on the order of operations.
    upstream_range=(-100.0, 100.0),
    allow_nonfinite=False,
    # Keras's LayerNormalization computes integer inputs in integer
    # arithmetic (uint8 [[1, 0, 1], [0, 1, 0]] gives [[0, 1, 0], [0, 255,
    # 0]]) and keeps float16 inputs in float16 (it does not autocast);
    # MyLayerNorm normalises in its compute dtype. Compared on these only:
    input_dtypes=("float32", "float64"),
    policies=("float32", "float64"),
    # MyLayerNorm normalises the last axis only and keeps no initializer,
    # regularizer or constraint arguments: the built-in's keys for those
    # are not ours.
    config_ignore_keys=frozenset({
        "axis", "rms_scaling", "beta_initializer", "gamma_initializer",
        "beta_regularizer", "gamma_regularizer", "beta_constraint",
        "gamma_constraint"}),
    check_tolerances={"numeric gradient": Tolerance(
        rtol=1e-4, atol=1e-6,
        reason="normalisation divides by a standard deviation that can be "
               "small; the float64 central difference of the built-in "
               "itself misses 1e-6 there")},
    skip_properties={"second_order": lambda: (
        "Keras's LayerNormalization on TensorFlow has a wrong second "
        "derivative: its Hessian-vector product disagrees with a float64 "
        "central difference of its own gradient (x=[[0.3, -1.2, 2.0]]: "
        "0.0692 vs 0.0830 in the first element), while MyLayerNorm's "
        "agrees; there is no correct reference to compare against"
        if keras.backend.backend() == "tensorflow" else None)},
    error_inputs=(ErrorInput({"epsilon": -1.0}, ValueError, "epsilon",
                             reference_raises=False,
                             why="a negative epsilon can make the variance "
                                 "term negative; Keras does not check"),),
)
