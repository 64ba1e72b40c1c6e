"""torch's compiled mode is ``torch.compile``, compiled once per signature,
never silently eager; and the refusals that decide what it cannot run.

(customlayers/testing/torch_compile.py says how; README "torch.compile".)
Every claim the skips and docstrings make about torch 2.13 and Keras 3.15.1
is demonstrated here, so that a skip reason stops being true loudly: a
newer torch or Keras that lifts a refusal fails its test here.
"""

import numpy as np
import pytest

from customlayers._keras import BACKEND, KERAS_MAJOR

pytestmark = pytest.mark.skipif(
    BACKEND != "torch" or KERAS_MAJOR < 3,
    reason=f"torch.compile is torch's compiled mode; this run uses "
           f"{BACKEND} (Keras {KERAS_MAJOR})")

if BACKEND == "torch":
    import torch
    from torch._dynamo.utils import counters

import customlayers
from customlayers._keras import keras
from customlayers.testing import backends, compiled_cache, torch_compile
from customlayers.testing.equivalence import build_pair, random_weights


def _graphs():
    return int(counters["stats"]["unique_graphs"])


def _dense_pair(x, seed, units=3):
    custom, reference = customlayers.Dense(units), keras.layers.Dense(units)
    build_pair(custom, reference, x)
    weights = random_weights(custom, seed)
    custom.set_weights(weights)
    reference.set_weights(weights)
    return custom, reference


def test_a_signature_compiles_once_and_later_calls_reuse_it():
    """Two pairs with one signature (new weights, inputs, upstream
    gradients): one Dynamo graph, one cache entry on its code object, the
    second call under ``fail_on_recompile`` (no recompile, no fallback),
    and the output's ``grad_fn`` is AOTAutograd's compiled backward."""
    rng = np.random.default_rng(0)
    print("numpy seed 0")
    backends.clear_cache()
    compiled_cache.CACHE_STATS.clear()
    x = rng.standard_normal((4, 5)).astype("float32")
    before = _graphs(), torch_compile.COMPILE_STATS["compiled"]
    results = []
    for seed in (1, 2):
        custom, reference = _dense_pair(x, seed)
        g = rng.standard_normal((4, 3)).astype("float32")
        results.append(backends.forward_backward_pair(
            custom, reference, x * seed, g, "compiled"))
    assert _graphs() - before[0] == 1
    assert torch_compile.COMPILE_STATS["compiled"] - before[1] == 1
    assert dict(compiled_cache.CACHE_STATS) == {"misses": 1, "hits": 1}
    (entry,) = compiled_cache._CACHE.values()
    assert entry.compiled.calls == 2
    assert entry.compiled.cache_entries() == 1
    for got, want in results:  # Dense on both sides: bit for bit
        for a, b in ((got.output, want.output),
                     (got.input_grad, want.input_grad),
                     *zip(got.weight_grads, want.weight_grads)):
            assert a.tobytes() == b.tobytes()
    # The backward is compiled too: the forward's output is a
    # CompiledFunction's, differentiated by its compiled backward.
    call = torch_compile.traced([custom], x, None, {})
    (y, _, _), = call(x, None, [([v.value for v in custom.weights], [])])
    assert type(y.grad_fn).__name__ == "CompiledFunctionBackward"


def test_more_signatures_than_the_recompile_limit_are_all_compiled():
    """Dynamo keeps at most ``recompile_limit`` (8) entries per code object
    and runs the frame eagerly beyond it; every signature here has a code
    object of its own, so 12 shapes are 12 graphs, and the first one is
    still compiled (and not recompiled) after them."""
    limit = torch._dynamo.config.recompile_limit
    print(f"recompile_limit {limit}")
    backends.clear_cache()
    compiled_cache.CACHE_STATS.clear()
    relu = customlayers.ReLU(negative_slope=0.5)
    shapes = [(n, 3) for n in range(1, limit + 5)]
    before = _graphs()
    for shape in shapes + shapes[:1]:
        x = np.linspace(-1, 1, int(np.prod(shape)), dtype="float32")
        backends.forward_backward(relu, x.reshape(shape),
                                  np.ones(shape, "float32"), "compiled")
    assert _graphs() - before == len(shapes) > limit
    assert compiled_cache.CACHE_STATS["hits"] == 1
    assert compiled_cache.CACHE_STATS["fallbacks"] == 0
    assert all(e.compiled.cache_entries() == 1
               for e in compiled_cache._CACHE.values())


def test_a_guard_that_fails_later_raises_instead_of_recompiling():
    """A later call whose guards fail (here a global the function reads)
    raises under ``fail_on_recompile``; the cache then counts a fallback and
    compiles afresh, never eagerly."""
    state = {"scale": 2.0}
    fn = torch_compile.compile_once(lambda x: x * state["scale"], "probe")
    fn(torch.ones(3))
    state["scale"] = 3.0
    with pytest.raises(RuntimeError, match="recompile"):
        fn(torch.ones(3))


def test_a_force_eager_stance_is_refused():
    fn = torch_compile.compile_once(lambda x: x + 1, "probe")
    with torch.compiler.set_stance("force_eager"), \
            pytest.raises(RuntimeError, match="not 1"):
        fn(torch.ones(3))


# -- the refusals behind torch_derivatives' and the skips' choices ---------

def _functional_dense():
    from customlayers.testing.calls import functional
    layer = customlayers.Dense(3, activation="gelu")
    layer.build((2, 4))
    call, values = functional(layer)
    return call, [v.detach() for v in values]


def test_aot_autograd_has_no_double_backward():
    """Why compiled reverse over reverse is torch.func.grad of grad."""
    call, values = _functional_dense()
    f = torch_compile.compile_once(call, "probe")
    x = torch.ones(2, 4, requires_grad=True)
    values = [v.clone().requires_grad_(True) for v in values]
    y = f(x, values)
    first = torch.autograd.grad(y.sum(), [x] + values, create_graph=True)
    with pytest.raises(RuntimeError, match="does not currently support "
                                           "double backward"):
        torch.autograd.grad(sum((a * a).sum() for a in first), [x] + values,
                            allow_unused=True)


def test_a_torch_func_transform_of_a_compiled_function_is_refused():
    """Why torch_derivatives compiles the transform, not the layer."""
    call, values = _functional_dense()
    f = torch.compile(lambda x: call(x, values), fullgraph=True)
    with pytest.raises(Exception, match="torch.func.jvp"):
        torch.func.jvp(f, (torch.ones(2, 4),), (torch.ones(2, 4),))


def test_vectorized_autograd_jacobian_breaks_the_graph():
    """Why the compiled Jacobian is torch.func.jacrev."""
    call, values = _functional_dense()
    why = torch_compile.graph_break(
        lambda x: torch.autograd.functional.jacobian(
            lambda t: call(t, values), x, vectorize=True), torch.ones(2, 4))
    print(why)
    assert why is not None


def test_seeded_keras_random_draws_break_the_graph():
    """The randomness property's skip reason, measured."""
    why = torch_compile.randomness_reason()
    print(why)
    assert why is not None and "torch.compiler.disable" in why


def _compiles(layer, x, training):
    values = [v.value.detach() for v in layer.trainable_variables]
    frozen = [v.value.detach() for v in layer.non_trainable_variables]
    return torch_compile.graph_break(
        lambda x: torch_compile.stateless_call(
            layer, x, values, frozen, {"training": training}), x)


def test_builtin_batch_normalization_in_training_mode_breaks_the_graph():
    """BatchNormalization's training-mode skip, measured; the custom layer
    (axes as a plain list) compiles, in both modes."""
    x = torch.ones(4, 3)
    builtin, custom = (keras.layers.BatchNormalization(),
                       customlayers.BatchNormalization())
    builtin.build((4, 3))
    custom.build((4, 3))
    why = _compiles(builtin, x, True)
    print(why)
    assert why is not None and "convert args/kwargs to proxy" in why
    assert _compiles(builtin, x, False) is None
    assert _compiles(custom, x, True) is None
    assert _compiles(custom, x, False) is None


@pytest.mark.parametrize("cfg", [{"negative_slope": 0.5},
                                 {"max_value": 3.0},
                                 {"axis": [1, 2]}],
                         ids=["leaky", "clip", "layernorm-axes"])
def test_custom_layers_compile_where_the_builtins_do(cfg):
    """The two graph breaks torch's compiled mode found in customlayers
    (ReLU's autograd.Function with a custom jvp; LayerNormalization's
    TrackedList axes), fixed: both layers compile in one graph."""
    if "axis" in cfg:
        pair = (customlayers.LayerNormalization(**cfg),
                keras.layers.LayerNormalization(**cfg))
        shape = (2, 3, 4)
    else:
        pair = customlayers.ReLU(**cfg), keras.layers.ReLU(**cfg)
        shape = (2, 3)
    for layer in pair:
        layer.build(shape)
        assert _compiles(layer, torch.ones(shape), None) is None, layer


def test_a_scatter_add_backward_gives_the_same_bits_every_call():
    """Embedding's backward is an accumulating scatter, which inductor
    lowers to atomic adds in a parallel loop (an order that changes from
    call to call with 2 threads or more); the harness compiles with
    single-threaded kernels (``torch_compile.single_threaded_kernels``), so
    96 repeated ids sum in one order, every call."""
    rng = np.random.default_rng(0)
    print("numpy seed 0")
    layer = customlayers.Embedding(1, 11)
    layer.build((4, 2, 12))
    x = np.zeros((4, 2, 12), "int32")
    g = rng.standard_normal((4, 2, 12, 11)).astype("float32")
    call = torch_compile.traced([layer], x, g, {})
    values = [([v.value for v in layer.trainable_variables], [])]
    grads = {torch_compile.to_numpy(call(x, g, values)[0][2][0]).tobytes()
             for _ in range(20)}
    assert len(grads) == 1
