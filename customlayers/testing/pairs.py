"""Built layer pairs reused across examples (issue 14: eager mode sheds the
per-example Python it does not need).

Every equivalence example used to construct both layers and build them by
calling each on the input, about a third of an eager Dense example's time.
Hypothesis repeats (constructor arguments, input shape) keys often, since
it mutates earlier examples, so :func:`built_pair` keeps the built pair per
key and hands it out again in the state it had right after building: every
variable (weights, non-trainable state, the random seed generators' state)
is restored to the values it held then. The example then sets its own random
weights, as a fresh pair's would be, so a reused pair computes exactly what
a freshly built one does.

What a pair is keyed by: the :class:`~customlayers.testing.LayerCase`
object itself, its constructor arguments (as JSON; arguments that only
print as an address are not keyed, and get a fresh pair), the dtype policy,
the input's shape and dtype, and the backend. A layer whose Python state
changes between calls, beyond its variables (a call counter, a cache built
on first call), would not be restored: declare it with
``LayerCase(reuse_layers=False)`` and every example builds a fresh pair.
Keras 2 is not keyed (its random layers keep state outside ``variables``).
"""

from __future__ import annotations

import collections
import dataclasses
import json

import numpy as np

from customlayers._keras import BACKEND, KERAS_MAJOR

#: Built pairs kept, least recently used dropped first.
PAIR_CACHE_SIZE = 32
_PAIRS: "collections.OrderedDict" = collections.OrderedDict()
#: ``hits``, ``misses`` and ``uncached`` (opted out, Keras 2, an unkeyable
#: argument), for benchmarks and tests.
PAIR_STATS: collections.Counter = collections.Counter()


@dataclasses.dataclass
class _Entry:
    case: object
    custom: object
    reference: object
    #: (variable, value right after building), for both layers.
    snapshot: list


def clear_pairs() -> None:
    """Forget every kept pair."""
    _PAIRS.clear()


def pair_key(case, kwargs, policy, x):
    """The key a built pair of ``case`` is kept under, or ``None`` when it
    is not kept (see the module docstring)."""
    if not getattr(case, "reuse_layers", True) or KERAS_MAJOR < 3:
        return None
    try:
        text = json.dumps(kwargs, sort_keys=True, default=repr)
    except Exception:  # noqa: BLE001 - an argument JSON cannot hold
        return None
    if " at 0x" in text:  # an object named by its address: not a key
        return None
    x = np.asarray(x)
    return (id(case), text, policy, tuple(x.shape), x.dtype.name, BACKEND)


def _snapshot(*layers):
    """Every variable of ``layers`` (Keras 3's ``variables``: weights and
    seed generators' state) with a copy of its value now."""
    from customlayers.testing.convert import to_numpy
    return [(v, np.array(to_numpy(v), copy=True))
            for layer in layers for v in layer.variables]


def _restore(entry: _Entry) -> None:
    for v, value in entry.snapshot:
        v.assign(value)


def fresh_pair(case, kwargs, policy, x):
    """A new ``(custom, reference)`` of ``case`` under ``policy``, built on
    ``x``, the custom layer's weights copied into the reference
    (:func:`~customlayers.testing.equivalence.build_pair`)."""
    from customlayers.testing.equivalence import build_pair
    from customlayers.testing.properties._base import _make
    custom = _make(case, kwargs, policy)
    reference = _make(case, kwargs, policy, case.reference)
    build_pair(custom, reference, np.asarray(x), weight_map=case.weight_map)
    return custom, reference


def built_pair(case, kwargs, policy, x):
    """:func:`fresh_pair`'s pair: a kept one restored to its just-built
    state, or a new one (kept when it has a :func:`pair_key`)."""
    key = pair_key(case, kwargs, policy, x)
    entry = None if key is None else _PAIRS.get(key)
    if entry is not None and entry.case is case:
        _PAIRS.move_to_end(key)
        _restore(entry)
        PAIR_STATS["hits"] += 1
        return entry.custom, entry.reference
    custom, reference = fresh_pair(case, kwargs, policy, x)
    if key is None:
        PAIR_STATS["uncached"] += 1
        return custom, reference
    PAIR_STATS["misses"] += 1
    _PAIRS[key] = _Entry(case, custom, reference,
                         _snapshot(custom, reference))
    while len(_PAIRS) > PAIR_CACHE_SIZE:
        _PAIRS.popitem(last=False)
    return custom, reference
