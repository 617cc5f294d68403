"""Per-call latency statistics of a runtime: a ring buffer of the last calls' durations and its percentiles."""

from __future__ import annotations

import math

import numpy as np


class LatencyStats:
    """Per-call latency: the total count, and p50/p99/max/mean over the last ``window`` calls (a ring buffer of ns).

    The ring is a Python list and the count a one-element list, so that a hot loop can record inline
    (``i = counter[0]; ring[i % window] = ns; counter[0] = i + 1``, see :meth:`recorder`): about a
    fifth of a method call into a numpy array. Reading the statistics converts the ring (rare).
    """

    def __init__(self, window: int = 4096) -> None:
        if window < 1:
            raise ValueError(f"latency window must be >= 1, got {window}")
        self.window = window
        self._ring: list[int] = [0] * window
        self._counter = [0]

    def record(self, ns: int) -> None:
        i = self._counter[0]
        self._ring[i % self.window] = ns
        self._counter[0] = i + 1

    def recorder(self) -> tuple[list[int], list[int], int]:
        """(ring, counter, window) for recording inline as :meth:`record` does; they stay valid across :meth:`reset`."""
        return self._ring, self._counter, self.window

    @property
    def count(self) -> int:
        """Calls recorded since the last reset."""
        return self._counter[0]

    def reset(self) -> None:
        self._counter[0] = 0

    @property
    def samples_ns(self) -> np.ndarray:
        """The ring buffer (ns, int64; slots beyond :attr:`count` hold older or zero values)."""
        return np.asarray(self._ring, dtype=np.int64)

    @property
    def last_ns(self) -> int:
        """The latest call's latency (ns); 0 before the first."""
        return int(self._ring[(self.count - 1) % self.window]) if self.count else 0

    def recent_us(self) -> np.ndarray:
        """The latencies held (the last ``window`` calls, not in call order), in µs."""
        return np.asarray(self._ring[: min(self.count, self.window)], dtype=np.int64) / 1e3

    def percentile_us(self, q: float) -> float:
        recent = self.recent_us()
        return float(np.percentile(recent, q)) if recent.size else math.nan

    @property
    def p50_us(self) -> float:
        return self.percentile_us(50)

    @property
    def p99_us(self) -> float:
        return self.percentile_us(99)

    def summary(self) -> dict[str, float | int]:
        """count, window, p50_us, p99_us, max_us, mean_us (NaN while empty)."""
        recent = self.recent_us()
        empty = recent.size == 0
        return {
            "count": self.count,
            "window": self.window,
            "p50_us": math.nan if empty else float(np.percentile(recent, 50)),
            "p99_us": math.nan if empty else float(np.percentile(recent, 99)),
            "max_us": math.nan if empty else float(recent.max()),
            "mean_us": math.nan if empty else float(recent.mean()),
        }
