"""torch's ``compiled`` mode: ``torch.compile`` (TorchDynamo, AOTAutograd,
inductor), compiled once per signature and never silently eager.

Everything the harness runs in torch's compiled mode goes through
:func:`compile_once`, which returns a :class:`Compiled`:

- ``fullgraph=True``: the whole function is one graph; a graph break (a
  call Dynamo cannot trace, e.g. a ``torch.compiler.disable``'d function)
  raises :class:`GraphBreak` (an ``AssertionError``, naming the layers:
  a failed check) instead of running part of the call eagerly;
- ``dynamic=False``: shapes are static, as under XLA and ``jax.jit``;
- its own code object: Dynamo keeps compiled code per *code object* (at
  most ``torch._dynamo.config.recompile_limit``, 8, entries per code
  object; beyond that the frame runs eagerly), and every harness function
  comes from one ``def``, so each compiled function gets a fresh copy of
  its code object. One signature is one cache entry on its own code
  object, whatever else the run compiles
  (``tests/property/test_torch_compile.py`` counts them);
- the first call checks that Dynamo left exactly one compiled entry on
  the code object and raises otherwise (a global ``force_eager`` stance,
  say; a layer that is the identity, Dropout at inference, compiles to an
  entry without a graph: nothing to compute);
- later calls run under ``torch.compiler.set_stance("fail_on_recompile")``:
  a guard that fails for the same signature raises (then the cache's
  per-example path compiles afresh, counted in ``CACHE_STATS["fallbacks"]``)
  instead of recompiling or falling back to eager;
- ``fail_on_recompile_limit_hit`` is set around every call (belt and
  braces: the limit is never reached with one entry per code object).

Before its first compiled call a function runs once eagerly, statelessly,
with the same arguments (the *warm-up*, result dropped), and Keras's
thread-local scopes that a layer call reads (:data:`_KERAS_SCOPES`) are
created as ``None`` where absent: Keras creates them on first use (an
absent one reads as ``None``), and a guard traced before that (``not
hasattr(GLOBAL_STATE_TRACKER, 'autocast_scope')``, found when a
``mixed_float16`` layer ran between two calls of a ``float32`` signature)
would fail on a later call.

**Backward.** :func:`traced` compiles the layers' forward call on inputs
and weight values that require grad: AOTAutograd traces the joint
forward-backward graph, partitions it and inductor compiles both halves;
``torch.autograd.grad`` outside then runs the compiled backward (the
output's ``grad_fn`` is ``CompiledFunctionBackward``). The derivative
properties compile the whole ``torch.func`` transform instead
(:mod:`customlayers.testing.torch_derivatives`): AOTAutograd has no
double backward, and a ``torch.func`` transform of a compiled function is
refused (both demonstrated in ``tests/property/test_torch_compile.py``).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import time
import types

import numpy as np

#: ``compiled`` (functions compiled), ``compile_seconds`` (their first
#: calls: Dynamo, AOTAutograd and inductor's forward),
#: ``backward_seconds`` (first backward calls: inductor's backward),
#: ``calls``, for tests and the cost measurements in the README.
COMPILE_STATS: collections.Counter = collections.Counter()
_SERIAL = iter(range(1, 1 << 62))


def _fresh_code(fn, name: str):
    """``fn`` with a copy of its code object (so Dynamo's per-code-object
    cache holds this function's entries only), named ``name``."""
    code = fn.__code__.replace(co_name=name)
    out = types.FunctionType(code, fn.__globals__, name, fn.__defaults__,
                             fn.__closure__)
    out.__kwdefaults__ = fn.__kwdefaults__
    return out


#: Keras's thread-local scopes (``keras/src/backend/common/global_state.py``)
#: on a layer call's path, each read as ``get_global_attribute(name)``,
#: for which absent and ``None`` are the same.
_KERAS_SCOPES = ("stateless_scope", "autocast_scope", "symbolic_scope",
                 "current_call_ctx", "torch_device", "flash_attention")


def _settle_keras_state() -> None:
    """Create each of :data:`_KERAS_SCOPES` as ``None`` where absent."""
    from keras.src.backend.common import global_state
    for name in _KERAS_SCOPES:
        if not hasattr(global_state.GLOBAL_STATE_TRACKER, name):
            global_state.set_global_attribute(name, None)


@contextlib.contextmanager
def _no_recompile_limit_fallback():
    import torch._dynamo
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
        yield


def single_threaded_kernels():
    """A context in which inductor generates single-threaded C++ kernels
    (``cpp.threads = 1``), entered wherever it compiles: the first call of
    a :class:`Compiled` and the first backward (compiled lazily, see
    :func:`timed_backward`). Inductor lowers an accumulating scatter
    (``index_put(accumulate=True)``: the backward of Embedding's gather)
    to atomic adds in an OpenMP loop, whose summation order, with more
    than one thread, changes from call to call (measured: 23 distinct
    float32 gradients in 30 calls of one compiled embedding backward with
    96 repeated ids, 2 threads); with one thread it is the loop's order,
    the same for the custom layer and the built-in, every call. Eager
    code is not affected."""
    import torch._inductor.config as inductor
    return inductor.patch({"cpp.threads": 1})


class GraphBreak(AssertionError):
    """``torch.compile(fullgraph=True)`` could not compile a function as
    one graph (Dynamo's ``Unsupported``): in torch's compiled mode that is
    a failed check, not a reason to run part of it eagerly. ``reason``:
    the first line of Dynamo's message and the innermost user frame."""

    def __init__(self, what, exc):
        text = str(exc)
        head = text.splitlines()[0].strip() if text else type(exc).__name__
        frames = [line.strip() for line in text.splitlines()
                  if line.strip().startswith("File ")]
        self.reason = head + (f" (at {frames[-1]})" if frames else "")
        super().__init__(
            f"torch.compile(fullgraph=True) cannot compile {what} as one "
            f"graph: {self.reason}. torch's compiled mode runs nothing "
            "eagerly; a custom layer must compile where its reference "
            "does")


class Compiled:
    """A function compiled by ``torch.compile`` (see the module docstring):
    call it like the function."""

    def __init__(self, fn, name: str = "customlayers_compiled",
                 warm_up: bool = True, what: str = None):
        import torch
        self.name = f"{name}_{next(_SERIAL)}"
        self.what = what or self.name
        self.function = _fresh_code(fn, self.name)
        self._eager = fn
        self._compiled = torch.compile(self.function, fullgraph=True,
                                       dynamic=False)
        self._warm_up = warm_up
        self.calls = 0

    def cache_entries(self) -> int:
        """Dynamo's compiled entries on this function's code object (1 once
        called: one per signature)."""
        from torch._dynamo.eval_frame import _debug_get_cache_entry_list
        return len(_debug_get_cache_entry_list(self.function.__code__))

    def __call__(self, *args):
        import torch
        if self.calls == 0:
            _settle_keras_state()
            if self._warm_up:
                with torch.no_grad():
                    self._eager(*args)
            start = time.perf_counter()
            try:
                with _no_recompile_limit_fallback(), \
                        single_threaded_kernels():
                    out = self._compiled(*args)
            except torch._dynamo.exc.Unsupported as exc:
                raise GraphBreak(self.what, exc) from exc
            COMPILE_STATS["compile_seconds"] += time.perf_counter() - start
            COMPILE_STATS["compiled"] += 1
            if self.cache_entries() != 1:
                raise RuntimeError(
                    f"torch.compile left {self.cache_entries()} compiled "
                    f"entries for {self.name}, not 1 (a 'force_eager' "
                    "stance?): compiled mode would not be one compiled "
                    "program")
        else:
            with _no_recompile_limit_fallback(), \
                    torch.compiler.set_stance("fail_on_recompile"):
                out = self._compiled(*args)
        self.calls += 1
        COMPILE_STATS["calls"] += 1
        return out


def compile_once(fn, name: str = "customlayers_compiled",
                 warm_up: bool = True, what: str = None) -> Compiled:
    """``fn`` compiled by ``torch.compile(fullgraph=True, dynamic=False)``
    on its own code object (see the module docstring); a graph break
    raises :class:`GraphBreak` naming ``what``."""
    return Compiled(fn, name, warm_up, what)


def run_compiled(fn, *args, name: str = "customlayers_compiled"):
    """``fn(*args)`` through a one-off :func:`compile_once`."""
    return compile_once(fn, name)(*args)


def timed_backward(first: bool):
    """A context timing a first backward call (inductor compiles the
    backward half lazily, on the first ``autograd.grad``)."""
    @contextlib.contextmanager
    def timer():
        start = time.perf_counter()
        with single_threaded_kernels() if first else \
                contextlib.nullcontext():
            yield
        if first:
            COMPILE_STATS["backward_seconds"] += time.perf_counter() - start
    return timer()


def stateless_call(layer, x, values, frozen_values, kw):
    """``layer(x, **kw)`` with its trainable and non-trainable variables
    at ``values`` and ``frozen_values`` (a ``keras.StatelessScope``; a
    training-mode call's updates are dropped)."""
    import keras
    mapping = (list(zip(layer.trainable_variables, values))
               + list(zip(layer.non_trainable_variables, frozen_values)))
    with keras.StatelessScope(state_mapping=mapping):
        return layer(x, **kw)


def traced(templates, x, upstream, kw):
    """``call(x, upstream, [(values, frozen), ...]) -> [(y, dx, dvalues),
    ...]`` for layers with ``templates``' signatures: one compiled forward
    of every template (each on its own input leaf, so each gets its own
    input gradient), differentiated by the compiled backward in one
    ``torch.autograd.grad``. ``upstream`` ``None``: forward only."""
    import torch

    from customlayers.testing.backends import _torch_tensor, is_ids
    ids = is_ids(x)

    def forward(xs, values):
        return [stateless_call(t, xt, w, f, kw)
                for t, xt, (w, f) in zip(templates, xs, values)]

    names = " and ".join(f"{type(t).__module__}.{type(t).__name__}"
                         for t in templates)
    compiled = compile_once(forward, "customlayers_forward", what=names)

    def call(x, upstream, values):
        xs = []
        for _ in templates:
            xt = _torch_tensor(x).detach()
            xs.append(xt if ids else xt.requires_grad_(True))
        values = [([v.detach().requires_grad_(True) for v in w],
                   [v.detach() for v in f]) for w, f in values]
        first = compiled.calls == 0
        ys = compiled(xs, values)
        if upstream is None:
            return [(y, None, []) for y in ys]
        sources = [([] if ids else [xt]) + w
                   for xt, (w, _) in zip(xs, values)]
        flat = [s for group in sources for s in group]
        gs = [_torch_tensor(upstream).to(y.dtype) for y in ys]
        live = [(y, g) for y, g in zip(ys, gs) if y.requires_grad]
        grads = [None] * len(flat)
        if live:
            with timed_backward(first):
                grads = list(torch.autograd.grad(
                    [y for y, _ in live], flat,
                    grad_outputs=[g for _, g in live], allow_unused=True))
        grads = [torch.zeros_like(s) if g is None else g
                 for g, s in zip(grads, flat)]
        out, i = [], 0
        for y, group in zip(ys, sources):
            mine, i = grads[i:i + len(group)], i + len(group)
            out.append((y, None if ids else mine[0],
                        mine if ids else mine[1:]))
        return out

    call.compiled = compiled
    return call


def to_numpy(t):
    """A tensor (or ``None``) as a NumPy array."""
    from customlayers.testing.convert import to_numpy as convert
    return None if t is None else np.asarray(convert(t))


def graph_break(fn, *args):
    """``None`` if ``fn(*args)`` compiles as one graph
    (``torch.compile(fullgraph=True)``), else Dynamo's reason: the first
    line of its ``Unsupported`` message and the innermost frame of the
    user code it names. How a skip demonstrates its reason when it runs."""
    try:
        compile_once(fn, "customlayers_probe", warm_up=False)(*args)
    except GraphBreak as exc:
        return exc.reason
    return None


@functools.lru_cache(maxsize=None)
def random_draw_graph_break():
    """Dynamo's reason a seeded ``keras.random`` draw cannot be compiled
    in one graph on torch (``None`` if it can): Keras draws through
    ``torch_seed_generator``, which it wraps in ``torch.compiler.disable``
    (``torch.Generator`` is not traceable, pytorch#88576). Measured here,
    when asked, so the skip it feeds stays true."""
    import torch

    import keras
    generator = keras.random.SeedGenerator(1)

    def draw(x):
        with keras.StatelessScope():
            return x + keras.random.uniform((2,), seed=generator)

    return graph_break(draw, torch.zeros(2))


def randomness_reason():
    """Why the ``randomness`` property does not run in torch's compiled
    mode (``None`` where it would compile)."""
    why = random_draw_graph_break()
    if why is None:
        return None
    return ("torch.compile(fullgraph=True) cannot compile a seeded "
            "keras.random draw: Keras's torch backend creates the "
            "torch.Generator in torch_seed_generator, which it wraps in "
            "torch.compiler.disable (torch.Generator is not traceable, "
            f"pytorch#88576); measured now: {why}")
