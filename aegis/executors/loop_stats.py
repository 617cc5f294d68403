"""What the realtime executor measures: per-node jitter and step-duration histograms, deadline misses, skipped ticks.

A :class:`Histogram` counts durations in fixed bins (1 µs wide below 2048 µs, then one bin per
power of two), so a run of any length keeps a few kilobytes per node and its percentiles are exact
to the microsecond where loops live. :class:`NodeLoop` is one node's record of a run (its period
and deadline, steps, misses, skipped ticks, both histograms, and the window of step durations since
its last LoopDiagnostics); :class:`RealtimeStats` is what ``RealtimeExecutor.run`` returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LINEAR_BINS = 2048
"""Bins 0..2047 are 1 µs wide ([i, i + 1) µs); bin 2048 + b holds [2048 * 2**b, 2048 * 2**(b + 1)) µs."""
_LOG_BINS = 40


class Histogram:
    """Counts of nanosecond durations in microsecond bins; percentiles by nearest rank (to the bin)."""

    __slots__ = ("counts", "count", "total_ns", "max_ns")

    def __init__(self) -> None:
        self.counts = [0] * (LINEAR_BINS + _LOG_BINS)
        self.count = 0
        self.total_ns = 0
        self.max_ns = 0

    def add(self, ns: int) -> None:
        """Count one duration (a negative one counts as 0)."""
        if ns < 0:
            ns = 0
        us = ns // 1000
        self.counts[us if us < LINEAR_BINS else min(LINEAR_BINS - 12 + us.bit_length(), LINEAR_BINS + _LOG_BINS - 1)] += 1
        self.count += 1
        self.total_ns += ns
        if ns > self.max_ns:
            self.max_ns = ns

    @staticmethod
    def bin_edges_us(index: int) -> tuple[float, float]:
        """[lower, upper) of bin ``index`` in µs."""
        if index < LINEAR_BINS:
            return float(index), float(index + 1)
        lower = LINEAR_BINS * 2 ** (index - LINEAR_BINS)
        return float(lower), float(2 * lower)

    def percentile_us(self, q: float) -> float:
        """The ``q``-th percentile (0-100) in µs: the middle of the bin holding the nearest-rank sample (NaN when empty).

        Exact to ±0.5 µs below 2048 µs; above, the bin's upper edge (an upper bound); never above the largest sample.
        """
        if self.count == 0:
            return math.nan
        rank = max(1, math.ceil(q / 100.0 * self.count))
        index = int(np.searchsorted(np.cumsum(self.counts), rank))
        lower, upper = self.bin_edges_us(index)
        return min(lower + 0.5 if index < LINEAR_BINS else upper, self.max_ns / 1e3)

    def mean_us(self) -> float:
        return self.total_ns / self.count / 1e3 if self.count else math.nan

    def share_above_us(self, limit_us: float) -> float:
        """The fraction of samples in bins at or above ``limit_us`` (0 when empty)."""
        if self.count == 0:
            return 0.0
        above = sum(c for i, c in enumerate(self.counts) if c and self.bin_edges_us(i)[0] >= limit_us)
        return above / self.count

    def bins(self) -> list[list[float]]:
        """The non-empty bins as [lower_us, upper_us, count], in order (what a JSON report keeps)."""
        return [[*self.bin_edges_us(i), c] for i, c in enumerate(self.counts) if c]

    def summary(self) -> dict[str, Any]:
        """count, p50, p90, p99, p99.9, max and mean in µs (JSON-ready)."""
        return {
            "count": self.count,
            "p50_us": self.percentile_us(50),
            "p90_us": self.percentile_us(90),
            "p99_us": self.percentile_us(99),
            "p99_9_us": self.percentile_us(99.9),
            "max_us": self.max_ns / 1e3 if self.count else math.nan,
            "mean_us": self.mean_us(),
        }


@dataclass
class NodeLoop:
    """One node's timing in a run. A triggered node has no period and no deadline: it never misses one."""

    name: str
    period_ns: int | None
    deadline_ns: int | None
    steps: int = 0
    deadline_misses: int = 0
    """Ticks that ended past their deadline, plus every skipped tick."""
    skipped_ticks: int = 0
    """Ticks never run because the node was still late for a later one (no catch-up bursts)."""
    windows_over_limit: int = 0
    """Diagnostics windows in which the node missed more deadlines than ``realtime.deadline_miss_limit``."""
    jitter: Histogram = field(default_factory=Histogram)
    """Actual start - scheduled start of each step (ns; includes waiting for the nodes before it at that instant)."""
    durations: Histogram = field(default_factory=Histogram)
    """Wall time of each ``step`` call (ns)."""
    last_duration_ns: int = 0
    window: list[int] = field(default_factory=list)
    """Step durations since the last LoopDiagnostics of this node."""
    window_misses: int = 0

    @property
    def ticks(self) -> int:
        """Ticks scheduled so far: those run and those skipped."""
        return self.steps + self.skipped_ticks

    @property
    def deadline_miss_rate(self) -> float:
        return self.deadline_misses / self.ticks if self.ticks else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "rate_hz": 1e9 / self.period_ns if self.period_ns else None,
            "deadline_us": self.deadline_ns / 1e3 if self.deadline_ns else None,
            "steps": self.steps,
            "ticks": self.ticks,
            "deadline_misses": self.deadline_misses,
            "skipped_ticks": self.skipped_ticks,
            "deadline_miss_rate": self.deadline_miss_rate,
            "windows_over_limit": self.windows_over_limit,
            "jitter_us": self.jitter.summary(),
            "step_us": self.durations.summary(),
        }


@dataclass
class RealtimeStats:
    """What a realtime run did: wall time, each node's loop, the batches (one per wake-up), how it ended, the OS settings."""

    wall_time_s: float
    loops: dict[str, NodeLoop]
    batches: Histogram
    """Wall time of each wake-up's work: every node due then, with inputs, outputs and the nodes they trigger (ns)."""
    batches_cpu: Histogram
    """The loop thread's CPU time for the same work (ns): the wall time less what other processes took meanwhile."""
    messages: int
    settings: dict[str, str]
    """Each real-time setting (priority, cpu_affinity, lock_memory) -> "off", "applied: ..." or "refused: ..."."""
    ended_by: str | None = None
    """The node that ended the run (raised EndRun), None otherwise."""
    end_reason: str | None = None
    stopped: bool = False
    """True when the caller's stop event ended the run."""
    bad_stamps: dict[str, int] = field(default_factory=dict)
    """Topic -> inputs handed over stale because the message's stamp was not finite or in the future (aegis.node.input_age_ns)."""

    @property
    def steps(self) -> dict[str, int]:
        return {name: loop.steps for name, loop in self.loops.items()}

    @property
    def deadline_misses(self) -> int:
        return sum(loop.deadline_misses for loop in self.loops.values())

    @property
    def refused(self) -> dict[str, str]:
        """The settings the OS refused, with why."""
        return {k: v for k, v in self.settings.items() if v.startswith("refused")}

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the run's numbers, per node, without the histograms' bins."""
        return {
            "wall_time_s": self.wall_time_s,
            "messages": self.messages,
            "bad_stamps": dict(self.bad_stamps),
            "ended_by": self.ended_by,
            "end_reason": self.end_reason,
            "stopped": self.stopped,
            "settings": dict(self.settings),
            "batch_us": self.batches.summary(),
            "batch_cpu_us": self.batches_cpu.summary(),
            "nodes": {name: loop.summary() for name, loop in self.loops.items()},
        }
