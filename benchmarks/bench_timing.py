"""Role: interleaved timing. The impls of one group run round-robin, the
order rotating each round, so slow drift of a shared machine hits all alike.

Each timed round runs a step ``k`` times and then waits for the device (the
adapter's ``sync``: TF ``sync_devices`` or ``.numpy()`` of a scalar, JAX
``block_until_ready``, torch ``torch.cuda.synchronize``).
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from dataclasses import dataclass, field

@dataclass
class Settings:
    rounds: int = 21
    warmup: int = 3
    round_time: float = 0.02
    max_calls: int = 1000


@dataclass
class Timings:
    calls_per_round: int
    per_call: dict = field(default_factory=dict)  # impl -> [seconds per call]


def _time_round(step, k, sync):
    gc_was = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        out = None
        for _ in range(k):
            out = step()
        sync(out)
        return time.perf_counter() - t0
    finally:
        if gc_was:
            gc.enable()


def measure_interleaved(steps, sync, settings, single_shot=False):
    """Time the impls of one group round-robin, rotating the order each round.

    Warm-up (compilation, first-call tracing) is excluded: each step runs once
    and then ``settings.warmup`` more times before anything is timed. ``k``
    (calls per round) is the same for every impl of the group and is chosen so
    that a round of the median impl lasts about ``settings.round_time``.
    """
    names = list(steps)
    for name in names:  # compile / trace
        sync(steps[name]())
    if settings.round_time <= 0 and not single_shot:
        k = 1  # one call per round (the model.fit epoch); no calibration
        return _rounds(steps, names, sync, settings.rounds, 1)
    single = {}
    for name in names:
        ts = [_time_round(steps[name], 1, sync) for _ in range(max(1, settings.warmup))]
        single[name] = min(ts)
    if single_shot:
        return Timings(1, {n: [single[n]] for n in names})
    t_med = statistics.median(single.values())
    k = int(min(settings.max_calls, max(1, math.ceil(settings.round_time / max(t_med, 1e-9)))))
    return _rounds(steps, names, sync, settings.rounds, k)


def _rounds(steps, names, sync, rounds, k):
    gc.collect()
    res = Timings(k, {n: [] for n in names})
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            res.per_call[name].append(_time_round(steps[name], k, sync) / k)
    return res
