"""Version- and backend-compatibility code, all of it in one place.

Everything that differs between Keras releases or between Keras backends is
decided here, so that the layers read like plain Keras 3 code and dropping an
old TensorFlow later is one deletion in this file (the ``_Keras2Ops`` shim
and the ``if KERAS_MAJOR < 3`` branches).

Public names used by the rest of the package:

- ``keras``: the Keras module the layers subclass. Keras 3 normally; on
  TensorFlow 2.12-2.15 it is ``tf.keras`` (Keras 2), and with
  ``TF_USE_LEGACY_KERAS=1`` it is ``tf_keras`` (Keras 2 on TF >= 2.16).
- ``ops``: the tensor-operation namespace (``keras.ops`` on Keras 3, a small
  shim over TensorFlow on Keras 2).
- ``KERAS_MAJOR``, ``KERAS_VERSION`` and ``BACKEND``: what is running.
- ``register_serializable(package)``: the class decorator for saving.
- ``relu6_kernel``, ``clip_kernel``, ``leaky_relu_kernel``,
  ``threshold_kernel``: the backend activations written from elementary
  operations (maximum, minimum, where, comparisons, multiply, cast) with
  hand-written gradients where the backend's own kernel has one, so that
  values *and* gradients match the backend's own kernels bit for bit (exact
  zeros, kinks, subnormals, ``-0.0`` and ``NaN`` included; the declared
  exceptions are in customlayers/testing/cases.py). Each backend's
  reference formula is written down next to its kernel.
- ``relu_kernel``: plain ``max(x, 0)``, on the backend's own fused relu
  kernels where there are some (TensorFlow, torch), with its elementary
  formula beside it as ``relu_forward_elementary`` /
  ``relu_backward_elementary``; tests/property/test_kernels.py checks the
  two agree.
- ``to_numpy``, ``variable_name``, ``keras_file_suffix``,
  ``save_model_kwargs``: small helpers for the harness.
"""

from __future__ import annotations

import os

import numpy as np


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


# -- the activations, per backend ------------------------------------------
#
# Each reference below is what ``keras.layers.ReLU`` ends up running on that
# backend (keras/src/activations/activations.py ``ReLU.static_call``, or
# ``backend.relu`` in Keras 2). We rebuild it from elementary operations,
# with the same gradient, written by hand where the reference has a
# hand-written one. One exception, for speed: plain ``max(x, 0)``
# (``relu_kernel``) runs on the backend's fused relu kernels where there are
# some (TensorFlow, torch). Its elementary formula stays here as
# ``relu_forward_elementary`` / ``relu_backward_elementary``, and
# tests/property/test_kernels.py proves the fused kernels compute it.

def _with_gradient(forward, backward):
    """``forward(x)`` whose gradient is ``backward(x, y, upstream)``."""

    @ops.custom_gradient
    def kernel(x):
        y = forward(x)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return backward(x, y, upstream)

        return y, grad

    if BACKEND == "tensorflow":
        return _tf_eager_fast_path(kernel, forward, backward)
    if BACKEND == "jax":
        # ``jax.custom_gradient`` traces its function to a jaxpr on every
        # eager call (about 0.5 ms: eager ReLU ran at 0.47x the built-in).
        # jax.nn.relu is ``custom_jvp(jit(...))`` for the same reason: jit
        # caches the trace per shape and dtype (so, like jax.nn.relu, each
        # new input shape compiles once in eager use). This covers every
        # hand-written-gradient kernel on JAX (relu, relu6). Under an outer
        # jit the inner one is inlined; the property suite checks the values
        # and gradients are unchanged.
        import jax
        return jax.jit(kernel)
    return kernel


def _tf_eager_record():
    """TensorFlow's tape-recording functions (``record`` from TF 2.13,
    ``tape`` before), or ``None`` if neither has what we need."""
    try:
        from tensorflow.python.eager import record
    except ImportError:  # pragma: no cover - TF 2.12
        from tensorflow.python.eager import tape as record
    needed = ("could_possibly_record", "stop_recording", "record_operation")
    return record if all(hasattr(record, n) for n in needed) else None


def _tf_eager_fast_path(kernel, forward, backward):
    """The same kernel, cheaper in TensorFlow's eager mode.

    ``tf.custom_gradient`` costs about 200 us of Python per eager call
    (argument inspection, a variable watcher, an extra Identity op), which
    made eager ReLU 2-3x slower than the built-in (benchmarks/RESULTS.md).
    In eager mode this records the same forward and the same hand-written
    backward on the tape directly, and skips the recording entirely when no
    tape or accumulator is active (inference). Inside ``tf.function`` and
    XLA the ``custom_gradient`` kernel is used unchanged. Values and
    gradients are the same functions either way; the property suite
    compares them bit for bit in every mode."""
    import tensorflow as tf
    record = _tf_eager_record()
    if record is None:  # pragma: no cover - an unknown TensorFlow
        return kernel

    def fast(x):
        if not tf.executing_eagerly():
            return kernel(x)
        if not record.could_possibly_record():
            return forward(x)
        x = tf.convert_to_tensor(x)
        with record.stop_recording():
            y = forward(x)

        def grad(upstream):
            return [backward(x, y, upstream)]

        record.record_operation("customlayers_activation", [y], [x], grad)
        return y

    return fast


def _zeros(x):
    return _full(x, 0)


_TF_SCALARS = {}


def _full(x, value):
    if BACKEND == "tensorflow":
        # A scalar that the binary op broadcasts: TensorFlow's Relu kernel
        # itself computes cwiseMax against a scalar, and a full tensor would
        # cost a kernel (ZerosLike / Fill) on every call. In eager mode the
        # scalar is made once per dtype and reused.
        import tensorflow as tf
        if not tf.executing_eagerly():
            return tf.constant(value, dtype=x.dtype)
        key = (x.dtype, value)
        if key not in _TF_SCALARS:
            _TF_SCALARS[key] = tf.constant(value, dtype=x.dtype)
        return _TF_SCALARS[key]
    return ops.full_like(x, value)


def _select_gradient(forward, passes):
    """``forward(x)`` with the gradient ``where(passes(x), g, 0)``.

    The backends' own ReLU gradients *select* the upstream gradient. The
    tutorial's ``maximum(x, 0)`` has the right values but the wrong gradient
    at the kink (``Maximum``'s gradient goes to ``x`` on a tie), and a
    composite of selects would add up the gradient of each path, which
    TensorFlow's CPU kernels flush to zero for subnormal values (the property
    suite found both). So the gradient is written by hand, as one select.
    """
    return _with_gradient(
        forward, lambda x, y, g: ops.where(passes(x), g, _zeros(g)))


def _positive(x):
    return ops.greater(x, _zeros(x))


def _inside_0_6(x):
    return ops.logical_and(ops.greater(x, _zeros(x)),
                           ops.less(x, _full(x, 6)))


def _max0(x):
    # One elementwise op; on TensorFlow the same values as the Relu kernel,
    # NaN and the sign of zero included (checked in every dtype by
    # tests/property/test_kernels.py), subnormals aside: TensorFlow's CPU
    # kernels flush them to zero on some threads and not others. On JAX it
    # *is* jax.nn.relu's forward (``jnp.maximum(x, 0)``).
    return ops.maximum(x, _zeros(x))


def _min6(x):
    return ops.minimum(x, _full(x, 6))


def relu_forward_elementary(x):
    """The ReLU formula from elementary ops: ``maximum(x, 0)`` (TensorFlow
    and JAX; torch's, a select on ``x < 0``, is defined in its branch)."""
    return _max0(x)


def relu_backward_elementary(x, y, g):
    """The ReLU gradient from elementary ops: ``g if x > 0 else 0`` --
    **0 at x == 0**, unlike the tutorial's ``tf.math.maximum(x, 0)``, whose
    gradient goes to ``x`` on a tie (TensorFlow and JAX; torch's selects on
    the output, see its branch)."""
    return ops.where(_positive(x), g, _zeros(g))


if BACKEND == "torch":
    # PyTorch (ATen, CPU): relu(x) = clamp_min(x, 0), which keeps -0.0 and
    # NaN; its gradient is threshold_backward(g, relu(x), 0) =
    # ``0 if relu(x) <= 0 else g``, a select on the *output*, so NaN passes
    # the upstream gradient through. relu6(x) clamps to [0, 6] with the
    # gradient ``g if 0 < x < 6 else 0`` (NaN gets 0, unlike relu; measured
    # on torch 2.13 CPU). leaky_relu
    # computes ``x * slope`` and ``g * slope`` in float32 for float16 and
    # bfloat16 (ATen's opmath), with the slope as a float32, not rounded to
    # the tensor's dtype first. clip = clamp, gradient
    # ``g if lo <= x <= hi else 0`` (NaN gets 0).

    def _clamp_min0(x):
        return ops.where(ops.less(x, _zeros(x)), _zeros(x), x)

    def _clamp_0_6(x):
        x = _clamp_min0(x)
        return ops.where(ops.greater(x, _full(x, 6)), _full(x, 6), x)

    import torch as _torch

    #: The ReLU formula from elementary ops: ``x``, or ``0`` where
    #: ``x < 0`` (keeps -0.0 and NaN, as ATen's relu = clamp_min(x, 0)).
    relu_forward_elementary = _clamp_min0

    def relu_backward_elementary(x, y, g):
        """The ReLU gradient from elementary ops: ``0 if y <= 0 else g``."""
        return ops.where(ops.less_equal(y, _zeros(y)), _zeros(g), g)

    def relu_kernel(x):
        """The formula above on ATen's own kernels: ``torch.relu`` computes
        ``clamp_min(x, 0)`` with the C++ gradient ``threshold_backward(g, y,
        0)``. tests/property/test_kernels.py checks both against the
        elementary ops, bit for bit on CPU; ATen's CUDA relu maps -0.0 to
        +0.0 (found on an H200), so there the sign of zero is not compared.
        Written as a ``torch.autograd.Function`` the layer ran eager
        fwd+bwd at 0.79-0.89x the built-in on an H200 (Python forward and
        backward); through keras.ops and ``custom_gradient``, 0.45x on CPU
        (benchmarks/RESULTS.md)."""
        if not isinstance(x, _torch.Tensor):
            x = ops.convert_to_tensor(x)
        return _torch.relu(x)

    relu6_kernel = _select_gradient(_clamp_0_6, _inside_0_6)

    def _times_slope(t, slope):
        dtype = t.dtype
        if str(dtype).split(".")[-1] in ("float16", "bfloat16"):
            wide = ops.multiply(ops.cast(t, "float32"),
                                ops.cast(slope, "float32"))
            return ops.cast(wide, dtype)
        return ops.multiply(t, ops.cast(slope, dtype))

    def leaky_relu_kernel(x, negative_slope):
        """``x if x > 0 else x * slope``, gradient ``g if x > 0 else
        g * slope``, products in ATen's opmath (float32 for 16-bit)."""
        return _with_gradient(
            lambda x: ops.where(_positive(x), x,
                                _times_slope(x, negative_slope)),
            lambda x, y, g: ops.where(_positive(x), g,
                                      _times_slope(g, negative_slope)),
        )(x)

    def clip_kernel(x, min_value, max_value):
        """torch.clamp: NaN propagates, gradient ``g`` on ``[lo, hi]``."""
        lo = ops.cast(min_value, x.dtype)
        hi = ops.cast(max_value, x.dtype)

        def forward(x):
            x = ops.where(ops.less(x, lo), _full(x, min_value), x)
            return ops.where(ops.greater(x, hi), _full(x, max_value), x)

        def backward(x, y, g):
            inside = ops.logical_and(ops.greater_equal(x, lo),
                                     ops.less_equal(x, hi))
            return ops.where(inside, g, _zeros(g))

        return _with_gradient(forward, backward)(x)

elif BACKEND == "jax":
    # JAX: jax.nn.relu = ``jnp.maximum(x, 0)`` with the custom JVP
    # ``select(x > 0, g, 0)``; jax.nn.relu6 = ``jnp.minimum(jnp.maximum(x,
    # 0), 6)`` with ``select(0 < x < 6, g, 0)``; jax.nn.leaky_relu =
    # ``jnp.where(x >= 0, x, slope * x)`` with *no* custom gradient (so
    # ``g`` at x == 0, and the transpose adds ``select + slope * select``);
    # jnp.clip(x, lo, hi) = ``jnp.minimum(hi, jnp.maximum(lo, x))``, whose
    # gradient splits ties (0.5 at x == hi). Where JAX differentiates the
    # formula itself, so do we: same primitives, same order.

    #: JAX has no fused ReLU kernels (jax.nn.relu is this same formula), so
    #: the kernel is the formula itself, jitted (see ``_with_gradient``).
    relu_kernel = _with_gradient(relu_forward_elementary,
                                 relu_backward_elementary)
    relu6_kernel = _select_gradient(lambda x: _min6(_max0(x)), _inside_0_6)

    def leaky_relu_kernel(x, negative_slope):
        """``where(x >= 0, x, slope * x)``, differentiated by JAX."""
        slope = ops.cast(negative_slope, x.dtype)
        return ops.where(ops.greater_equal(x, _zeros(x)), x,
                         ops.multiply(slope, x))

    def clip_kernel(x, min_value, max_value):
        """``minimum(hi, maximum(lo, x))``, differentiated by JAX."""
        x = ops.maximum(ops.cast(min_value, x.dtype), x)
        return ops.minimum(ops.cast(max_value, x.dtype), x)

else:
    # TensorFlow: Relu/Relu6 kernels with ReluGrad/Relu6Grad (``g * mask``:
    # -0.0 for a masked-out g < 0, NaN for a masked-out non-finite g),
    # LeakyRelu with LeakyReluGrad, clip_by_value = maximum(minimum(x, hi),
    # lo) differentiated by TF (gradient 1 at x == hi).

    import tensorflow as _tf

    # relu_kernel calls the generated op wrapper that tf.nn.relu itself
    # calls (tensorflow.python.ops.gen_nn_ops, present in every TF 2.x):
    # keras.ops, and tf.raw_ops' keyword-only wrapper, add Python to every
    # eager call, which the built-in's tf.nn.relu does not pay.
    from tensorflow.python.ops import gen_nn_ops as _gen_nn_ops

    def relu_kernel(x):
        """``relu_forward_elementary`` / ``relu_backward_elementary`` on
        TensorFlow's own kernels: ``Relu`` computes
        ``maximum(x, 0)`` and its registered gradient ``ReluGrad`` computes
        ``g * (x > 0)``, which is ``g if x > 0 else 0`` for a finite
        upstream gradient up to the sign of zero (a masked-out g < 0 gives
        -0.0; a masked-out NaN or inf gives NaN), exactly as the built-in
        does. tests/property/test_kernels.py checks both against the
        elementary ops, in eager, graph and XLA mode. ``Maximum`` + a
        hand-written ``Greater`` + ``Select`` gradient (the previous kernel)
        ran 0.75-0.90x the built-in in eager and graph fwd+bwd on CPU, and
        ``Maximum`` is slower than ``Relu`` in bfloat16 (0.82-0.89x
        forward); benchmarks/RESULTS.md has the numbers."""
        return _gen_nn_ops.relu(x)

    def _relu6_values(x):
        # XLA up to TF 2.20 lowers Relu6 to a clamp that gives +0.0 for
        # -0.0 and a number for NaN; so does its float32 max/min, but its
        # bfloat16 max/min keep -0.0 and NaN. Computing bfloat16 in float32
        # (exact: max and min only pick a value) matches the built-in in
        # eager, graph and XLA on every TF version of the matrix.
        if x.dtype == "bfloat16":
            wide = ops.cast(x, "float32")
            return ops.cast(_min6(_max0(wide)), x.dtype)
        return _min6(_max0(x))

    #: ``min(max(x, 0), 6)`` with TensorFlow's Relu6 gradient: ``g`` only
    #: strictly inside (0, 6), so 0 at both kinks.
    relu6_kernel = _select_gradient(_relu6_values, _inside_0_6)

    def leaky_relu_kernel(x, negative_slope):
        """``x if x > 0 else negative_slope * x`` as TensorFlow's LeakyRelu,
        with its gradient ``g if x > 0 else g * negative_slope``."""
        slope = ops.cast(negative_slope, x.dtype)
        return _with_gradient(
            lambda x: ops.where(_positive(x), x, ops.multiply(x, slope)),
            lambda x, y, g: ops.where(_positive(x), g,
                                      ops.multiply(g, slope)),
        )(x)

    def clip_kernel(x, min_value, max_value):
        """``maximum(minimum(x, max), min)``, the composition TensorFlow's
        ``clip_by_value`` uses: at ``x == max_value`` the gradient is 1."""
        x = ops.minimum(x, ops.cast(max_value, x.dtype))
        return ops.maximum(x, ops.cast(min_value, x.dtype))


def threshold_kernel(x, threshold):
    """``x`` where ``x > threshold``, else 0.

    Keras 3 (every backend): ``where(x > t, x, 0)``. Keras 2
    (``backend.relu``): ``x * cast(x > t)``, so NaN and infinities below the
    threshold give NaN, ``-0.0`` keeps its sign, and the gradient is
    ``g * mask``.
    """
    t = ops.cast(threshold, x.dtype)
    passes = ops.greater(x, t)
    if KERAS_MAJOR < 3:  # pragma: no cover
        return ops.multiply(x, ops.cast(passes, x.dtype))
    return ops.where(passes, x, _zeros(x))


def relu_argument(value):
    """A ReLU constructor number as the built-in stores (and computes with)
    it: unchanged on Keras 3; Keras 2's ReLU keeps
    ``backend.cast_to_floatx(value)``, a float32 NumPy scalar, and puts it
    in its config."""
    if KERAS_MAJOR < 3 and value is not None:  # pragma: no cover
        return keras.backend.cast_to_floatx(value)
    return value


# -- helpers for the harness -----------------------------------------------

def input_tensor(a):
    """A NumPy array to feed a layer. TensorFlow 2.12 predates ml_dtypes and
    cannot convert an ml_dtypes bfloat16 array ("Unsupported numpy type"),
    so on TensorFlow bfloat16 goes through float32 (exact) and a cast.
    Anything else is returned unchanged."""
    if BACKEND == "tensorflow" and getattr(a, "dtype", None) is not None \
            and isinstance(a, np.ndarray) and a.dtype.name == "bfloat16":
        import tensorflow as tf
        return tf.cast(tf.constant(a.astype(np.float32)), tf.bfloat16)
    return a


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
    if fmt == "savedmodel" and KERAS_MAJOR >= 3:
        import tensorflow as tf
        restored = tf.saved_model.load(path)

        def serve(x):
            # Holding ``restored`` here keeps its variables alive: the bare
            # ``restored.serve`` fails once the object is collected.
            return restored.serve(x)

        serve.restored = restored
        return serve
    return keras.models.load_model(path)


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


def to_numpy(t) -> np.ndarray:
    """A backend tensor (or variable) as a NumPy array of the same dtype:
    torch tensors are detached first, and bfloat16 stays bfloat16."""
    if BACKEND == "torch":
        import torch
        value = getattr(t, "value", t)
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            if value.dtype == torch.bfloat16:
                import ml_dtypes
                return value.float().numpy().astype(ml_dtypes.bfloat16)
            return value.numpy()
    if BACKEND == "tensorflow" and getattr(t, "dtype", None) is not None \
            and not isinstance(t, np.ndarray) and str(getattr(
                t.dtype, "name", t.dtype)) == "bfloat16":
        # TF 2.12's .numpy() gives its own bfloat16 type, not ml_dtypes'.
        import ml_dtypes
        import tensorflow as tf
        wide = tf.cast(tf.convert_to_tensor(t), tf.float32).numpy()
        return wide.astype(ml_dtypes.bfloat16)
    if hasattr(t, "numpy"):
        return np.asarray(t.numpy())
    return np.asarray(t)


def apply_constraint(constraint, variable):
    """``constraint(variable)``. Keras 2's built-in constraints compute in
    ``floatx()`` (``NonNeg``: ``w * cast(w >= 0, floatx())``) and fail on a
    float16/bfloat16/float64 variable -- the built-in layer's too; the
    variable is then constrained in float32 and cast back, which is what the
    constraint means."""
    if KERAS_MAJOR < 3:  # pragma: no cover
        import tensorflow as tf
        floatx = keras.backend.floatx()
        if variable.dtype.base_dtype != floatx:
            value = tf.cast(tf.convert_to_tensor(variable), floatx)
            return tf.cast(constraint(value), variable.dtype.base_dtype)
    return constraint(variable)


def dense_config_extras(layer) -> dict:
    """Keys Keras's own Dense puts in its config beyond the arguments both
    versions list: Keras 2's Dense also lists ``activity_regularizer``;
    Keras 3's lists ``quantization_config`` (serialized, ``None`` too) and,
    when LoRA is on, ``lora_rank`` and ``lora_alpha``."""
    if KERAS_MAJOR < 3:  # pragma: no cover
        return {"activity_regularizer": keras.regularizers.serialize(
            layer.activity_regularizer)}
    extras = {"quantization_config": keras.saving.serialize_keras_object(
        layer.quantization_config)}
    if layer.lora_rank:
        extras.update(lora_rank=layer.lora_rank, lora_alpha=layer.lora_alpha)
    return extras


#: Values of ``units`` that Keras 2's Dense accepts (``int(units)``, then
#: only ``< 0`` is refused) while Keras 3's refuses them; customlayers.Dense
#: refuses them everywhere.
DENSE_UNITS_ONLY_KERAS2_ACCEPTS = (0, 2.5, "8") if KERAS_MAJOR < 3 else ()


def float64_unavailable(needs_matmul: bool = True) -> str | None:
    """Why this backend cannot compute a float64 layer in float64 (``None``
    if it can); checked at run time, not by version number.

    - JAX computes float64 in float32 unless x64 mode is on.
    - Keras 3.15.1's torch backend: ``ops.matmul`` of two float64 tensors
      returns float32 (its ``result_type('float64', 'float64')`` is float32
      there), so a float64 Dense -- ``keras.layers.Dense`` too -- rounds its
      output to float32. Elementwise ops keep float64.
    """
    if BACKEND == "jax":
        import jax
        if not jax.config.jax_enable_x64:
            return ("JAX computes float64 in float32 unless x64 mode is on "
                    "(JAX_ENABLE_X64=1); a float64 central difference "
                    "needs real float64")
    if needs_matmul and KERAS_MAJOR >= 3:
        a = ops.ones((1, 1), dtype="float64")
        got = to_numpy(ops.matmul(a, a)).dtype
        if got != np.float64:
            return (f"keras {KERAS_VERSION} on {BACKEND}: ops.matmul of two "
                    f"float64 tensors returns {got}, so a float64 Dense "
                    "(keras.layers.Dense too) rounds its output to "
                    f"{got}; a float64 central difference needs real "
                    "float64")
    return None


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
