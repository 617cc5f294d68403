"""Where a training run's time goes: per stage, this process's CPU seconds, its local worker processes' CPU seconds and the wall time.

A stage runs from the moment it reports its start (``progress(stage, 0, ...)``) to the next stage's
start (the last one to :meth:`StageClock.stop`). This process's CPU is ``time.process_time``; the
workers' is the user + system time of this process's live child processes, read from
``/proc/PID/stat`` (Linux; elsewhere, and for Ray's workers, which are not children, it reads 0).
A stage that overlaps another (the held-out episodes while round 0 trains) is counted in the
interval where its time falls, so per-stage numbers are a profile and the totals are exact.

On a shared machine the wall column follows the load more than the code; :func:`critical_path_s`
estimates the wall time on W free cores from the CPU columns instead.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

Progress = Callable[[str, int, int, str], None]


@dataclass(frozen=True)
class StageTime:
    """One stage: this process's CPU, the workers' CPU and the wall time from its start to the next stage's."""

    stage: str
    main_cpu_s: float
    workers_cpu_s: float
    wall_s: float


def critical_path_s(stages: Sequence[StageTime], workers: int) -> float:
    """Estimated wall seconds on ``workers`` free cores (one per worker process): per stage the longer of this process's CPU
    and all the stage's CPU, this process's and the workers', spread evenly over the cores (the stages run one after
    another; within one, this process and the workers share the cores). A lower bound: it leaves out a stage's last
    episodes running on fewer workers than there are, and waits."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return float(sum(max(s.main_cpu_s, (s.main_cpu_s + s.workers_cpu_s) / workers) for s in stages))


def children_cpu_s() -> float:
    """User + system CPU seconds of this process's live children (0 where /proc is not there)."""
    me, total = os.getpid(), 0.0
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    proc = Path("/proc")
    if not proc.is_dir():
        return 0.0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile, or not ours to read
        if int(fields[1]) == me:  # fields[1]: the parent's pid; [11], [12]: utime, stime in clock ticks
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


class StageClock:
    """Marks stage starts as progress reports pass through it (:meth:`wrap`); :meth:`stop` closes the last stage."""

    def __init__(self, first: str = "set-up") -> None:
        self._marks: list[tuple[str, float, float, float]] = [(first, time.process_time(), 0.0, time.perf_counter())]
        self._seen: set[str] = set()
        self._lock = threading.Lock()  # stages may start on two threads (the held-out episodes beside round 0's fit)
        self._workers_high = 0.0  # children's CPU only grows while they live; a stage that saw them gone keeps the last reading
        self.stages: list[StageTime] = []

    def _workers(self) -> float:
        self._workers_high = max(self._workers_high, children_cpu_s())
        return self._workers_high

    def wrap(self, progress: Progress) -> Progress:
        """``progress`` with a mark at each stage's first report."""

        def marked(stage: str, done: int, total: int, note: str) -> None:
            with self._lock:
                if stage not in self._seen:
                    self._seen.add(stage)
                    self._marks.append((stage, time.process_time(), self._workers(), time.perf_counter()))
            progress(stage, done, total, note)

        return marked

    def stop(self) -> list[StageTime]:
        """Close the last stage; the stages in the order they started."""
        marks = [*self._marks, ("", time.process_time(), self._workers(), time.perf_counter())]
        self.stages = [
            StageTime(name, round(cpu2 - cpu, 3), round(max(0.0, work2 - work), 3), round(wall2 - wall, 3))
            for (name, cpu, work, wall), (_, cpu2, work2, wall2) in zip(marks, marks[1:])
        ]
        return self.stages
