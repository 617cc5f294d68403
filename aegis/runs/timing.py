"""Per-node timing in a run's summary: step duration p50/p99 always; period jitter and deadline misses on the wall clock only.

Both run commands put a ``timing`` mapping (node -> row) in their summary and print it as one
table. ``aegis run`` (the realtime executor) fills every field. ``aegis sim`` (lockstep) measures
each ``step`` call's wall duration too, but a lockstep node starts when the simulated clock says,
not at a wall time: it has no start jitter and no deadline to miss, so those fields are None
(printed "-"). The durations are measurements, reported and never compared: ``aegis replay``
compares messages, not summaries.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from aegis.executors.loop_stats import Histogram, NodeLoop

LOCKSTEP_NOTE = "lockstep: step durations measured on the wall clock; no start jitter or deadline in simulated time"
REALTIME_NOTE = "wall clock: jitter = actual - scheduled start; a miss = outputs out after start + period, or a skipped tick"


def lockstep_timing(plan: Any, stats: Any) -> dict[str, dict[str, Any]]:
    """The timing rows of a lockstep run (``stats``: a lockstep RunStats)."""
    rows = {}
    for launch in plan.nodes:
        durations = np.asarray(stats.timings[launch.name].durations_ns, dtype=float) / 1e3
        rows[launch.name] = {
            "process": launch.process,
            "rate_hz": launch.rate_hz,
            "steps": stats.steps[launch.name],
            "step_p50_us": float(np.percentile(durations, 50)) if durations.size else None,
            "step_p99_us": float(np.percentile(durations, 99)) if durations.size else None,
            "jitter_p50_us": None,
            "jitter_p99_us": None,
            "deadline_misses": None,
        }
    return rows


def realtime_timing(process: str, rate_hz: float | None, loop: NodeLoop) -> dict[str, Any]:
    """One node's timing row (its process group and rate as planned) from the realtime executor's record of it."""
    return {
        "process": process,
        "rate_hz": rate_hz,
        "steps": loop.steps,
        "step_p50_us": _finite(loop.durations.percentile_us(50)),
        "step_p99_us": _finite(loop.durations.percentile_us(99)),
        "jitter_p50_us": _finite(loop.jitter.percentile_us(50)) if loop.period_ns else None,
        "jitter_p99_us": _finite(loop.jitter.percentile_us(99)) if loop.period_ns else None,
        "deadline_misses": loop.deadline_misses,
        "skipped_ticks": loop.skipped_ticks,
        "ticks": loop.ticks,
    }


def merged(histograms: list[Histogram]) -> Histogram:
    """One histogram counting every sample of ``histograms``."""
    out = Histogram()
    for h in histograms:
        out.counts = [a + b for a, b in zip(out.counts, h.counts)]
        out.count += h.count
        out.total_ns += h.total_ns
        out.max_ns = max(out.max_ns, h.max_ns)
    return out


def _finite(value: float) -> float | None:
    return None if value != value else float(value)  # NaN (no sample) -> None, JSON-friendly


def print_timing(summary: dict[str, Any], console: Console) -> None:
    """The per-node timing table of a summary that has one."""
    rows = summary.get("timing")
    if not rows:
        return
    grouped = any(row["process"] != name for name, row in rows.items())  # the process column only where groups were made
    table = Table(title="per-node timing (µs)", caption=summary.get("timing_note"))
    columns = ("node", "process", "rate", "steps", "step p50", "step p99", "jitter p50", "jitter p99", "misses")
    for column in columns if grouped else tuple(c for c in columns if c != "process"):
        named = column in ("node", "process")
        table.add_column(column, justify="left" if named else "right", no_wrap=named)
    for name, row in rows.items():
        table.add_row(
            name,
            *([row["process"]] if grouped else []),
            f"{row['rate_hz']:g} Hz" if row["rate_hz"] else "triggered",
            str(row["steps"]),
            *(_us(row[key]) for key in ("step_p50_us", "step_p99_us", "jitter_p50_us", "jitter_p99_us")),
            "-" if row["deadline_misses"] is None else str(row["deadline_misses"]),
        )
    console.print(table)


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
