"""Issue 12's findings (the differences a user met using the layers side by
side with the built-ins), each as a FIXED/BROKEN line, on TensorFlow.

Run it against two trees to see before and after, e.g. the commit before
the issue-12 work and today's:

    git worktree add /tmp/old12 c1db878
    PYTHONPATH=/tmp/old12 python benchmarks/investigations/issue12_findings.py
    python benchmarks/investigations/issue12_findings.py

Each finding has its test in the suite (tests/property/test_relu_*_details.py,
test_dense_details.py, test_model.py); this script only replays them in one
place. The two the suite could not see (a NaN-swallowing ReLU layer, 2-ULP
"neighbours" of bfloat16 kinks) are harness findings, checked by
tests/meta_tests/test_helpers.py and the guaranteed values of every example.
"""
import os, warnings
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")
import numpy as np, tensorflow as tf, keras, customlayers
from customlayers import ReLU, Dense, MyModel

def res(name, ok, detail=""):
    print(f"{'FIXED ' if ok else 'BROKEN'} | {name} | {detail}")

def gradgrad(layer, x):
    x = tf.constant(x)
    with tf.GradientTape() as t2:
        t2.watch(x)
        with tf.GradientTape() as t1:
            t1.watch(x)
            y = tf.reduce_sum(layer(x))
        g = t1.gradient(y, x)
    return t2.gradient(g, x)

x = np.array([-2., 0.5, 3., 7.], "float32")
for cfg in ({"max_value": 6}, {"negative_slope": 0.3}):
    try:
        h = gradgrad(ReLU(**cfg), x)
        res(f"second derivative of ReLU({cfg}) is zeros, not None", h is not None, repr(None if h is None else h.numpy().tolist()))
    except Exception as e:
        res(f"second derivative of ReLU({cfg}) is zeros, not None", False, type(e).__name__)
try:
    @tf.function
    def hs(x):
        return tf.hessians(tf.reduce_sum(ReLU(max_value=6)(x)), x)[0]
    hs(tf.constant(x)); res("tf.hessians through ReLU(max_value=6) runs", True)
except Exception as e:
    res("tf.hessians through ReLU(max_value=6) runs", False, f"{type(e).__name__}: {str(e)[:60]}")
def penalty_none(relu):
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), relu, keras.layers.Dense(2)])
    xx = tf.constant(np.random.default_rng(0).standard_normal((5, 3)).astype("float32"))
    with tf.GradientTape() as o:
        with tf.GradientTape() as i:
            i.watch(xx); y = m(xx)
        d = i.gradient(y, xx); p = tf.reduce_sum(d * d)
    return [g is None for g in o.gradient(p, m.trainable_variables)]
a, b = penalty_none(ReLU(negative_slope=0.2)), penalty_none(keras.layers.ReLU(negative_slope=0.2))
res("gradient penalty: a weight gradient is None exactly where the built-in's is", a == b, f"None: custom {a} built-in {b}")
y = ReLU(negative_slope=0.5)(np.array([-3, -1, 0, 2], "int32"))
res("int32 input to leaky ReLU gives the built-in's float32 [-1.5,-0.5,0,2]", y.dtype == tf.float32 and np.allclose(y, [-1.5, -0.5, 0, 2]), f"{y.dtype.name} {np.asarray(y).tolist()}")
try:
    Dense.from_config(keras.layers.Dense(4).get_config()); res("Dense.from_config(keras Dense config)", True)
except Exception as e:
    res("Dense.from_config(keras Dense config)", False, f"{type(e).__name__}: {str(e)[:60]}")
try:
    Dense(4, lora_rank=None, quantization_config=None); res("Dense(lora_rank=None, quantization_config=None)", True)
except Exception as e:
    res("Dense(lora_rank=None, quantization_config=None)", False, f"{type(e).__name__}: {str(e)[:60]}")
try:
    base = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    c = keras.models.clone_model(base, clone_function=lambda l: Dense.from_config(l.get_config()) if isinstance(l, keras.layers.Dense) else l.__class__.from_config(l.get_config()))
    res("clone_model swaps keras Dense for customlayers.Dense", isinstance(c.layers[-1], Dense))
except Exception as e:
    res("clone_model swaps keras Dense for customlayers.Dense", False, f"{type(e).__name__}: {str(e)[:60]}")
xv = tf.constant(np.array([-1., 1., 3., 7.], "float32"))
g = tf.constant(np.array([np.nan, np.inf, np.nan, -np.inf], "float32"))
def grad(layer):
    with tf.GradientTape() as t:
        t.watch(xv); yv = layer(xv)
    return t.gradient(yv, xv, output_gradients=g).numpy()
a, b = grad(ReLU(max_value=6)), grad(keras.layers.ReLU(max_value=6))
res("relu6 with NaN/inf upstream gradient: the built-in's NaNs", np.array_equal(np.isnan(a), np.isnan(b)), f"custom {a.tolist()} built-in {b.tolist()}")
import ml_dtypes
xb = np.array([-0.0] * 8, ml_dtypes.bfloat16)
yb = ReLU(max_value=6, dtype="bfloat16")(xb); yk = keras.layers.ReLU(max_value=6, dtype="bfloat16")(xb)
sb, sk = np.signbit(np.asarray(yb, np.float32)), np.signbit(np.asarray(yk, np.float32))
res("bfloat16 relu6 keeps -0.0 as the built-in (8 elements)", np.array_equal(sb, sk), f"custom signbit {sb.tolist()[:2]} built-in {sk.tolist()[:2]}")
mm = MyModel(dtype="bfloat16"); xm = np.random.default_rng(1).standard_normal((4, 12)).astype("float32")
mm(xm); tw = mm.builtin_twin(); tw(xm); tw.set_weights(mm.get_weights())
diff = float(np.max(np.abs(np.asarray(mm(xm), np.float32) - np.asarray(tw(xm), np.float32))))
res("MyModel(dtype='bfloat16') and builtin_twin() bit-exact", diff == 0.0, f"max diff {diff:g}")
d = Dense(3); d(np.ones((2, 5), "float32"))
spec = d.input_spec
axes = getattr(spec, "axes", None) if spec is not None and not isinstance(spec, list) else None
res("Dense.input_spec has axes {-1: 5} after build", axes == {-1: 5}, repr(axes))
try:
    d(np.ones((2, 6), "float32")); res("changed last dim: Keras's 'incompatible with the layer'", False, "no error")
except Exception as e:
    res("changed last dim: Keras's 'incompatible with the layer'", "incompatible with the layer" in str(e), str(e).splitlines()[0][:70])
try:
    Dense(3).call(tf.ones((1, 2)), training=True) if False else None
    dd = Dense(3); dd(np.ones((1, 2), "float32"))
    dd.call(tf.ones((1, 2)), training=True); res("Dense.call(inputs, training=...)", True)
except Exception as e:
    res("Dense.call(inputs, training=...)", False, f"{type(e).__name__}: {str(e)[:60]}")
