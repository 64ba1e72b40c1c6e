"""Role: the exceptions every MNIST source and parser raises."""

from __future__ import annotations

from typing import Sequence, Tuple

__all__ = ["DataIntegrityError", "MNISTUnavailableError"]


class DataIntegrityError(ValueError):
    """Data exists but is corrupt, truncated, tampered with or not MNIST."""


class MNISTUnavailableError(RuntimeError):
    """No source could provide MNIST.

    Attributes:
        failures: list of ``(source, reason)`` pairs, one per source tried.
    """

    def __init__(self, message: str, failures: Sequence[Tuple[str, str]] = ()):
        super().__init__(message)
        self.failures = list(failures)
