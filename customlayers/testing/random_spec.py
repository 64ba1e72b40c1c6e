"""What a dropout-like layer declares about its randomness:
:class:`RandomSpec` (the ``random=`` field of
:class:`~customlayers.testing.LayerCase`).

This module imports neither Keras nor a backend.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping


def _default_rate(kwargs) -> float:
    return float(kwargs.get("rate", 0.0))


def _default_noise_shape(kwargs):
    return kwargs.get("noise_shape")


@dataclasses.dataclass(frozen=True)
class RandomSpec:
    """How a dropout-like layer's randomness is switched on and what it
    promises: the ``randomness`` property
    (:mod:`customlayers.testing.properties.randomness`) reads it.

    The promise: called with ``call_kwargs``, the layer draws a binary mask
    of shape ``noise_shape`` (``None`` entries: the input's size; ``None``:
    the input's shape), broadcast over the input, keeping each entry with
    probability ``1 - rate``; a kept element is ``x / (1 - rate)``, a
    dropped one ``0``, and the input gradient follows the same mask. The
    mask comes from the seed passed as constructor argument ``seed_kwarg``
    (same seed, same masks) and changes from call to call.

    Args:
        call_kwargs: The call arguments that turn randomness on.
        rate: ``f(kwargs) -> float``, the drop probability for the drawn
            constructor arguments (default: ``kwargs["rate"]``).
        noise_shape: ``f(kwargs) -> tuple or None``, the declared mask
            shape (default: ``kwargs.get("noise_shape")``).
        seed_kwarg: The constructor argument taking an integer seed; the
            property sets it (drawn, printed) when the case drew ``None``.
        identical_to_reference: ``True``, ``False`` or
            ``f(backend, policy, mode) -> bool``: where the custom layer
            and the reference give bit-identical outputs and gradients for
            one seed (same random draws, same arithmetic); checked
            strictly where declared.
        sigmas: The binomial bound on the dropped count:
            ``|dropped - rate * n| <= sigmas * sqrt(n rate (1 - rate)) + 1``.
    """

    call_kwargs: Mapping = dataclasses.field(
        default_factory=lambda: {"training": True})
    rate: Callable = _default_rate
    noise_shape: Callable = _default_noise_shape
    seed_kwarg: str = "seed"
    identical_to_reference: Any = False
    sigmas: float = 6.0

    def identical(self, backend: str, policy: str, mode: str) -> bool:
        value = self.identical_to_reference
        return bool(value(backend, policy, mode) if callable(value)
                    else value)

