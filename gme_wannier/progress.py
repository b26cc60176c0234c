"""One-line progress bar (k points, rate, ETA) rewritten in place with ``\\r``.

:func:`~gme_wannier.parallel.chunked_sum` drives it on rank 0 only. Under MPI, rank 0 only
knows its own chunks, so the bar shows its own fraction as the global one.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """Progress of a sum over ``total_items`` k points.

    Parameters
    ----------
    total_items : int
        Number of k points in the whole sum.
    enabled : bool, optional
        ``None``: only if ``stream`` is a terminal (the CLI passes ``False`` for ``--quiet``).
    stream : text stream
        Where the bar is drawn (default ``sys.stderr``).
    min_interval : float
        Minimum seconds between redraws.
    unit : str
        Name of the items in the rate.
    """

    def __init__(self, total_items: int, enabled: bool | None = None,
                 stream: TextIO | None = None, *, min_interval: float = 0.25,
                 unit: str = "k-points") -> None:
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.total = float(total_items)
        self.count = 0.0
        self.unit = unit
        self.min_interval = min_interval
        self._skipped = 0.0
        self._start = time.monotonic()
        self._last_draw = -float("inf")
        self._width = 0

    def skip(self, n_items: float) -> None:
        """Count items as done without timing them (resumed from a checkpoint)."""
        self.count += n_items
        self._skipped += n_items
        self._start = time.monotonic()

    def advance(self, n_items: float) -> None:
        """Count ``n_items`` more items as done; redraw at most every ``min_interval`` s."""
        self.count += n_items
        now = time.monotonic()
        if self.enabled and now - self._last_draw >= self.min_interval:
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = (self.count - self._skipped) / elapsed
        frac = min(self.count / self.total, 1.0) if self.total else 1.0
        eta = _hms(max(self.total - self.count, 0.0) / rate) if rate > 0 else "?"
        line = (f"{frac:6.1%}  {self.count:.0f}/{self.total:.0f} {self.unit}  "
                f"{rate:.0f} {self.unit}/s  elapsed {_hms(elapsed)}  ETA {eta}")
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)
        self._last_draw = now

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False
