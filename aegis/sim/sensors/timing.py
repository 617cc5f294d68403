"""Sensor timing: a DelayLine that holds measurements for a fixed latency, and the physics-step decimation of a sensor rate.

Times are seconds, as nodes see them, and are compared in integer nanoseconds (as the executors
count time), so a message pushed at 0.1 s with 0.03 s latency is released at exactly 0.13 s, not
one tick later because 0.1 + 0.03 > 0.13 in floating point. Executor ticks are rounded to the
nanosecond (tick k of a 240 Hz node is at round(k * 1e9 / 240) ns), so push time + latency can
land 1 ns after the tick it means; a message is therefore released ``RELEASE_SLACK_NS`` = 1 ns
early rather than one whole tick late.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Generic, TypeVar

from aegis.msgs.stamp import stamp_to_ns

M = TypeVar("M")

RELEASE_SLACK_NS = 1
"""How early (ns) a message may be released: covers the rounding of push time, latency and now to whole ns."""


class DelayLine(Generic[M]):
    """Messages held for ``latency_s`` after they were pushed, then released in order; stamps are not touched.

    A message's stamp stays the time it was measured; ``pop_ready(now)`` hands back every message
    pushed at or before ``now - latency_s`` (to the nanosecond, see RELEASE_SLACK_NS). Latency 0
    passes a message through at the time it is pushed. Deterministic: no clock, no randomness;
    the caller supplies every time.
    """

    def __init__(self, latency_s: float) -> None:
        if not (math.isfinite(latency_s) and latency_s >= 0):
            raise ValueError(f"DelayLine latency_s must be a finite number >= 0, got {latency_s!r}")
        self.latency_s = float(latency_s)
        self._latency_ns = stamp_to_ns(latency_s)
        self._queue: deque[tuple[int, M]] = deque()
        self._last_push_ns: int | None = None

    def push(self, msg: M, now: float) -> None:
        """Hold ``msg``, measured at ``now`` (s), until ``now + latency_s``; ValueError if ``now`` goes back in time."""
        now_ns = stamp_to_ns(now)
        if self._last_push_ns is not None and now_ns < self._last_push_ns:
            raise ValueError(f"DelayLine.push: time went backwards ({now!r} s after {self._last_push_ns / 1e9!r} s)")
        self._last_push_ns = now_ns
        self._queue.append((now_ns + self._latency_ns, msg))

    def pop_ready(self, now: float) -> list[M]:
        """The held messages whose release time is at or before ``now`` (s), oldest first; they leave the line."""
        now_ns = stamp_to_ns(now)
        ready: list[M] = []
        queue = self._queue
        while queue and queue[0][0] <= now_ns + RELEASE_SLACK_NS:
            ready.append(queue.popleft()[1])
        return ready

    def clear(self) -> None:
        """Drop every held message (for a reset)."""
        self._queue.clear()
        self._last_push_ns = None

    def __len__(self) -> int:
        return len(self._queue)


def decimation(rate_hz: float, physics_rate_hz: float, what: str = "sensor") -> int:
    """Physics steps per sample of a sensor at ``rate_hz``: an integer, or ValueError naming ``what`` and both rates.

    A sensor fires on every N-th physics step, so its rate must divide the physics rate (within
    1e-9 relative); a 240 Hz physics loop gives 10 Hz (N = 24) or 30 Hz (N = 8), not 7 Hz.
    """
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"{what}: rate_hz must be a finite number > 0, got {rate_hz!r}")
    if not (math.isfinite(physics_rate_hz) and physics_rate_hz > 0):
        raise ValueError(f"{what}: physics rate must be a finite number > 0, got {physics_rate_hz!r}")
    ratio = physics_rate_hz / rate_hz
    if ratio < 1.0 - 1e-9:
        raise ValueError(f"{what}: rate {rate_hz:g} Hz is above the physics rate {physics_rate_hz:g} Hz")
    steps = round(ratio)
    if abs(ratio - steps) > 1e-9 * ratio:
        lower, upper = math.floor(ratio), math.ceil(ratio)
        raise ValueError(
            f"{what}: rate {rate_hz:g} Hz does not divide the physics rate {physics_rate_hz:g} Hz "
            f"(nearest that do: {physics_rate_hz / upper:g} Hz or {physics_rate_hz / lower:g} Hz)"
        )
    return steps
