"""Role: progress output that suits where it goes. On a terminal, one line
redrawn in place (a bar); otherwise (a log, a pipe, CI) plain lines, at most
one per ``every`` steps and never a carriage return."""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

__all__ = ["Progress"]


class Progress:
    """Report ``done`` of ``total`` steps of a task.

    Args:
        total: number of steps.
        label: what is being done, printed before the counts.
        stream: where to write (default ``sys.stdout``).
        tty: force the bar (True) or plain lines (False); default: whether
            ``stream`` is a terminal.
        every: plain-line mode prints every ``every`` steps (and the last);
            default: about ten lines per task.
    """

    def __init__(self, total: int, label: str = "", stream: Optional[TextIO] = None,
                 tty: Optional[bool] = None, every: Optional[int] = None):
        if total < 1:
            raise ValueError(f"total must be >= 1; got {total!r}")
        self.total, self.label = total, label
        self.stream = stream if stream is not None else sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.every = every or max(1, total // 10)
        self.done = 0
        self._start = time.perf_counter()

    def _text(self, extra: str) -> str:
        elapsed = time.perf_counter() - self._start
        text = f"{self.label} {self.done}/{self.total} ({elapsed:.1f} s)"
        return text + (f" {extra}" if extra else "")

    def update(self, n: int = 1, extra: str = "") -> None:
        """Advance by ``n`` steps; ``extra`` (e.g. ``"loss 0.31"``) is shown too."""
        self.done = min(self.total, self.done + n)
        if self.tty:
            width = 24
            filled = width * self.done // self.total
            bar = "#" * filled + "." * (width - filled)
            self.stream.write(f"\r[{bar}] " + self._text(extra) + "\033[K")
            if self.done == self.total:
                self.stream.write("\n")
        elif self.done % self.every == 0 or self.done == self.total:
            self.stream.write(self._text(extra) + "\n")
        self.stream.flush()
