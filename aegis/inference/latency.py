"""Per-call latency statistics of a runtime: a ring buffer of the last calls' durations and its percentiles."""

from __future__ import annotations

import math

import numpy as np


class LatencyStats:
    """Per-call latency: the total count, and p50/p99/max/mean over the last ``window`` calls (a ring buffer of ns)."""

    def __init__(self, window: int = 4096) -> None:
        if window < 1:
            raise ValueError(f"latency window must be >= 1, got {window}")
        self.window = window
        self.samples_ns = np.zeros(window, dtype=np.int64)
        self.count = 0

    def record(self, ns: int) -> None:
        self.samples_ns[self.count % self.window] = ns
        self.count += 1

    def reset(self) -> None:
        self.count = 0

    @property
    def last_ns(self) -> int:
        """The latest call's latency (ns); 0 before the first."""
        return int(self.samples_ns[(self.count - 1) % self.window]) if self.count else 0

    def recent_us(self) -> np.ndarray:
        """The latencies held (the last ``window`` calls, not in call order), in µs."""
        return self.samples_ns[: min(self.count, self.window)] / 1e3

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
