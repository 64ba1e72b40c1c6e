"""pytest parameters shared by the test suites: an execution mode or a float
dtype, skipped where this backend cannot run it.

Each skip carries the harness's own reason (``supported_modes()`` for a
mode, ``float64_unavailable()`` for float64), so ``-rs`` prints why, and a
mode or dtype this backend has is never skipped.
"""

from __future__ import annotations

import pytest

from customlayers.testing.backends import supported_modes
from customlayers.testing.convert import float64_unavailable


def mode_param(mode):
    """``mode`` as a pytest parameter (id ``mode``), skipped with the
    reason :func:`supported_modes` gives where this backend has no such
    mode (graph on JAX and PyTorch, compiled on PyTorch)."""
    reason = supported_modes()[mode]
    marks = [pytest.mark.skip(reason=reason)] if reason else []
    return pytest.param(mode, marks=marks, id=mode)


def dtype_param(dtype, what):
    """``dtype`` as a pytest parameter (id ``dtype``); float64 is skipped,
    the reason prefixed with ``what`` (which check needs it), where this
    backend cannot compute elementwise in float64."""
    reason = float64_unavailable(needs_matmul=False) \
        if dtype == "float64" else None
    marks = [pytest.mark.skip(reason=f"{what}: {reason}")] if reason else []
    return pytest.param(dtype, marks=marks, id=dtype)
