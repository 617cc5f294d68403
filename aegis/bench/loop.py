"""`aegis bench loop`: the quadrotor chain's full control tick at 1 kHz on the wall clock, through the realtime executor.

What runs: the shipped ``quadrotor_oracle_sim.yaml`` chain (policy -> safety filter -> supervisor -> attitude
cascade) with every control node at ``--rate`` (1 kHz), under :class:`aegis.executors.realtime.RealtimeExecutor`
for ``--duration`` wall seconds (60 by default). The policy is the shipped ONNX model with its
contract's control rate relabelled to ``--rate`` in a temporary copy (same weights, same work per
call: the node refuses a model run at another rate than its contract's, rightly for a flight).

The plant: recorded, not simulated. Before the timed runs the same config flies in lockstep
(shipped rates, simulator included) for the bench's duration, and every message the plant publishes
that the chain reads (/odom, /imu, /obstacles) is kept with its time. In the timed runs a replay
node, listed first where the plant was, publishes them at their recorded times (modulo the
recording's length), so the chain sees a real flight among the scenario's obstacles (the filter's
corrections and active sets) while the time measured is the control tick alone: PyBullet stepping
in real time would add its own 30-110 µs per physics step to the same thread on the same cores.

Rows, one per configuration: ``tick`` (the default scheduler) and ``tick_fifo`` (SCHED_FIFO at
``--priority``; when the OS refuses, the row says so in ``refused`` and has no numbers).
``median_us``, ``p99_us``: the tick, one wake-up's work (the replay and the chain with their inputs,
deliveries and bookkeeping); ``deadline_miss_rate``: the worst node's misses (skipped ticks
included) over its ticks; ``cpu_*``: the loop thread's CPU time for the same work (the wall time
less what other processes took meanwhile: on a busy machine, the code's own cost); ``jitter_*``: the wake-up's lateness (the first node's actual - scheduled
start); ``histogram_us``: the tick's [lower, upper, count] bins. The breakdown, a shorter run with
probes around the math, splits the tick's mean: the executor's share (the tick minus the steps:
inputs as Received, delivery, timing), each node's math (inference, observation, CBF QP, cascade)
and the rest of its step (reference, messages, reports: the node layer). The floor
(:mod:`aegis.bench.loop_floor`): the bare ONNX call and the bare QP solve caught from the chain and
timed alone, back to back (warm) and once per period after the executor's sleep (at rate): what
no node layer can go below. The steps (:mod:`aegis.bench.loop_steps`): each node's steps of a short run
replayed back to back on their recorded inputs, warm, checked against the run's outputs: what each
node's own code costs, steadier than anything timed at the rate.

The file is long (about 450 lines) because the timed runs, the breakdown's probes and the rich and JSON
report of all four parts stay together: one benchmark, one place. Targets from the issue (printed, met or not; never asserted): median <= 60 µs, p99 <= 150 µs and
deadline misses < 0.1 % at 1 kHz for 60 s on two cores.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aegis.bench import machine, write_document
from aegis.bench.loop_floor import measure_floor
from aegis.bench.loop_steps import PASSES, measure_steps
from aegis.bench.recorded_plant import close_nodes, record_plant, recorded_plant
from aegis.cli_options import positive_float
from aegis.config import RealtimeConfig, load_config
from aegis.executors.loop_stats import RealtimeStats
from aegis.executors.os_settings import apply_settings
from aegis.executors.realtime import SPIN_S, RealtimeExecutor, stop_on_signals
from aegis.launch_plan import LaunchPlan, make_plan
from aegis.node import Node
from aegis.paths import shipped_config
from aegis.registry import node_class

DEFAULT_CONFIG_NAME = "quadrotor_oracle_sim"
"""The ground-truth chain (the default quadrotor_sim adds the estimator and the lidar, which this bench does not time)."""
ROW_NAMES = ("tick", "tick_fifo")
ROW_KEYS = (
    "name", "median_us", "p99_us", "deadline_miss_rate", "scheduler", "mean_us", "max_us", "cpu_median_us", "cpu_p99_us", "jitter_p50_us",
    "jitter_p99_us", "jitter_max_us", "ticks", "deadline_misses", "skipped_ticks", "rate_hz", "duration_s",
    "settings", "refused", "histogram_us",
)  # fmt: skip
"""Every row's keys; a refused row has the OS's reason in ``refused`` and None for every number."""
TARGET_MEDIAN_US = 60.0
TARGET_P99_US = 150.0
TARGET_MISS_RATE = 0.001
DEFAULT_PRIORITY = 50
WARMUP_S = 0.5
BREAKDOWN_S = 5.0
FLOOR_S = 2.0
"""Seconds per floor part and way of timing (at most the bench's duration)."""
STEPS_S = 2.0
"""Seconds of the chain's steps recorded and replayed warm (at most the bench's duration)."""
PROBES: dict[str, tuple[tuple[str, str], ...]] = {
    "quadrotor_policy": (("runtime.act", "inference"), ("builder.build", "observation")),
    "safety_filter": (
        ("acceleration_model.advance", "plant model (lag, dead time, bias)"),
        ("acceleration_model.observe", "plant model (lag, dead time, bias)"),
        ("acceleration_model.predict", "plant model (lag, dead time, bias)"),
        ("filter.compute", "CBF QP"),
    ),
    "quadrotor_attitude_controller": (("cascade.compute_acceleration", "cascade"),),
    "quadrotor_position_controller": (("cascade.position_to_acceleration", "cascade"),),
}
"""Node type -> (attribute path of the math it calls each tick, label): what the breakdown times inside a step (a label's
probes are summed)."""

def default_config() -> Path:
    """The shipped quadrotor_oracle_sim.yaml of the aegis in use."""
    return shipped_config(DEFAULT_CONFIG_NAME)


def run_loop_benchmark(
    duration_s: float = 60.0,
    rate_hz: float = 1000.0,
    config: str | Path | None = None,
    priority: int = DEFAULT_PRIORITY,
    overrides: Sequence[str] = (),
    breakdown_s: float = BREAKDOWN_S,
    spin_s: float = SPIN_S,
    progress: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Record the plant, then time the tick per configuration and break one run down; returns :func:`report`'s document.

    ``overrides`` apply to the config (``--set``); its ``realtime`` section's cpu_affinity,
    lock_memory and deadline_miss_limit apply to every row, its priority (else ``priority``) to
    ``tick_fifo``. ``stop`` (set by Ctrl-C) ends the current run early; its numbers are kept.
    """
    if not (duration_s > 0 and math.isfinite(duration_s)):
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    if not (rate_hz > 0 and math.isfinite(rate_hz)):
        raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
    say = progress or (lambda _text: None)
    path = Path(config) if config is not None else default_config()
    shipped = load_config(path, list(overrides))
    settings = shipped.realtime
    fifo_priority = settings.priority if settings.priority is not None else priority
    base = RealtimeConfig(
        executor="realtime", cpu_affinity=settings.cpu_affinity, lock_memory=settings.lock_memory,
        deadline_miss_limit=settings.deadline_miss_limit,
    )  # fmt: skip
    plan = make_plan(shipped)
    say(f"recording {duration_s:g} s of the plant's messages from a lockstep flight of {path.name}")
    recording = record_plant(plan, duration_s)
    with tempfile.TemporaryDirectory(prefix="aegis-bench-loop-") as scratch:
        fast_plan = make_plan(load_config(path, [*overrides, *_at_rate(plan, rate_hz, Path(scratch))]))
        nodes = [recorded_plant(plan, recording, rate_hz), *(launch.instantiate() for launch in fast_plan.nodes[1:])]
    rows, breakdown, floor, steps = [], None, None, None
    try:
        for name, row_settings in (("tick", base), ("tick_fifo", base.model_copy(update={"priority": fifo_priority}))):
            refused = _refused_priority(row_settings.priority)
            if refused:
                say(f"{name}: SCHED_FIFO priority {row_settings.priority} refused ({refused}): no row")
                rows.append(_refused_row(name, rate_hz, duration_s, refused))
                continue
            say(f"{name}: {duration_s:g} s at {rate_hz:g} Hz ({_scheduler(row_settings)})")
            stats = _timed_run(nodes, row_settings, duration_s, stop, spin_s)
            rows.append(_row(name, stats, rate_hz, row_settings))
        if breakdown_s > 0 and not (stop is not None and stop.is_set()):
            seconds = min(breakdown_s, duration_s)
            say(f"breakdown: {seconds:g} s with probes around each node's math")
            breakdown = _breakdown(nodes, base, seconds, stop, spin_s)
        if breakdown_s > 0 and not (stop is not None and stop.is_set()):
            seconds = min(FLOOR_S, duration_s)
            say(f"floor: the bare inference and QP calls, {seconds:g} s each warm and at {rate_hz:g} Hz")
            floor = measure_floor(nodes, lambda run_s: _timed_run(nodes, base, run_s, stop, spin_s), rate_hz, seconds, spin_s, stop)
        if breakdown_s > 0 and not (stop is not None and stop.is_set()):
            seconds = min(STEPS_S, duration_s)
            say(f"steps: each node's steps of {seconds:g} s at {rate_hz:g} Hz, replayed warm {PASSES} times")
            run = lambda run_s, warmed: _timed_run(nodes, base, run_s, stop, spin_s, warmed)  # noqa: E731
            steps = measure_steps(nodes, run, seconds, stop=stop)
    finally:
        close_nodes(nodes)
    return report(rows, breakdown, path, rate_hz, duration_s, spin_s, floor, steps)


def _at_rate(plan: LaunchPlan, rate_hz: float, scratch: Path) -> list[str]:
    """Overrides running every node after the plant at ``rate_hz``, a policy on a copy of its model relabelled to that rate."""
    from aegis.inference.contract import read_contract
    from aegis.inference.stamping import write_contract
    from aegis.nodes.policy import POLICY_NODE_TYPES

    overrides = []
    for launch in plan.nodes[1:]:
        if launch.trigger is not None:
            continue
        overrides.append(f"nodes.{launch.name}.rate_hz={rate_hz!r}")
        if launch.type_name in POLICY_NODE_TYPES.values():
            model = node_class(launch.type_name).Params.model_validate(launch.params).model_path
            copy = scratch / f"{launch.name}_{model.stem}_{rate_hz:g}hz.onnx"
            contract = read_contract(model)
            write_contract(model, contract.model_copy(update={"control_rate_hz": rate_hz}), output=copy, check=False)
            overrides.append(f"nodes.{launch.name}.params.model={copy}")
    return overrides


# --- the timed runs --------------------------------------------------------------------------------


def _timed_run(
    nodes: list[Node],
    settings: RealtimeConfig,
    duration_s: float,
    stop: threading.Event | None,
    spin_s: float,
    warmed: Callable[[], None] | None = None,
) -> RealtimeStats:
    """A warm-up run, then ``warmed()`` (the breakdown forgets what its probes saw in it), then the timed run."""
    executor = RealtimeExecutor(nodes, settings=settings, spin_s=spin_s)
    executor.reset(0)
    executor.run(min(WARMUP_S, duration_s), stop)  # first calls allocate, onnxruntime warms up
    if warmed is not None:
        warmed()
    executor.reset(0)
    return executor.run(duration_s, stop)


def _refused_priority(priority: int | None) -> str | None:
    """Why the OS refuses SCHED_FIFO at ``priority`` (asked and undone at once), None when it grants it or none is asked."""
    if priority is None:
        return None
    applied = apply_settings(priority, None, False)
    applied.restore()
    outcome = applied.outcomes["priority"]
    return outcome.removeprefix("refused: ") if outcome.startswith("refused") else None


def _scheduler(settings: RealtimeConfig) -> str:
    return f"SCHED_FIFO {settings.priority}" if settings.priority is not None else "SCHED_OTHER"


def _row(name: str, stats: RealtimeStats, rate_hz: float, settings: RealtimeConfig) -> dict[str, Any]:
    loops = list(stats.loops.values())
    first = loops[0]
    ticks = max(loop.ticks for loop in loops)
    worst = max(loops, key=lambda loop: loop.deadline_miss_rate)
    return {
        "name": name,
        "median_us": stats.batches.percentile_us(50),
        "p99_us": stats.batches.percentile_us(99),
        "deadline_miss_rate": worst.deadline_miss_rate,
        "scheduler": _scheduler(settings),
        "mean_us": stats.batches.mean_us(),
        "max_us": stats.batches.max_ns / 1e3,
        "cpu_median_us": stats.batches_cpu.percentile_us(50),
        "cpu_p99_us": stats.batches_cpu.percentile_us(99),
        "jitter_p50_us": first.jitter.percentile_us(50),
        "jitter_p99_us": first.jitter.percentile_us(99),
        "jitter_max_us": first.jitter.max_ns / 1e3,
        "ticks": ticks,
        "deadline_misses": worst.deadline_misses,
        "skipped_ticks": max(loop.skipped_ticks for loop in loops),
        "rate_hz": rate_hz,
        "duration_s": stats.wall_time_s,
        "settings": dict(stats.settings),
        "refused": "; ".join(f"{k} {v}" for k, v in stats.refused.items()) or None,
        "histogram_us": stats.batches.bins(),
    }


def _refused_row(name: str, rate_hz: float, duration_s: float, reason: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(ROW_KEYS)
    row.update(name=name, scheduler="SCHED_FIFO (refused)", rate_hz=rate_hz, duration_s=0.0, refused=f"priority {reason}", histogram_us=[])
    return row


# --- where the tick's time goes --------------------------------------------------------------------


def _breakdown(nodes: list[Node], settings: RealtimeConfig, duration_s: float, stop: threading.Event | None, spin_s: float) -> dict[str, Any]:
    """Mean µs per tick: the executor's share, each node's math (probed) and the rest of its step."""
    probes: list[tuple[str, str, list[int]]] = []
    undo: list[Callable[[], None]] = []
    for node in nodes:
        for path, label in PROBES.get(node.type_name, ()):
            owner_path, _, method = path.rpartition(".")
            owner = _attribute(node, owner_path)
            if owner is None:  # a part this node's parameters leave out (a filter without a plant model)
                continue
            durations: list[int] = []
            setattr(owner, method, _probe(getattr(owner, method), durations))
            undo.append(lambda owner=owner, method=method: vars(owner).pop(method, None))
            probes.append((node.name, label, durations))
    try:
        # the probes' sums are over the timed run's ticks only: what they saw in the warm-up is forgotten
        stats = _timed_run(nodes, settings, duration_s, stop, spin_s, warmed=lambda: [durations.clear() for *_, durations in probes])
    finally:
        for restore in undo:
            restore()
    ticks = stats.batches.count or 1
    parts: list[dict[str, Any]] = []
    steps_total = 0.0
    for loop in stats.loops.values():
        step_us = loop.durations.total_ns / ticks / 1e3
        steps_total += step_us
        shares: dict[str, float] = {}
        for node_name, label, durations in probes:
            if node_name == loop.name:
                shares[label] = shares.get(label, 0.0) + sum(durations) / ticks / 1e3
        parts += [{"node": loop.name, "part": label, "mean_us": share} for label, share in shares.items()]
        math_us = sum(shares.values())
        parts.append({"node": loop.name, "part": "node layer (step minus the math)" if math_us else "step", "mean_us": step_us - math_us})
    tick_us = stats.batches.mean_us()
    parts.insert(0, {"node": "executor", "part": "inputs, delivery, timing (tick minus steps)", "mean_us": tick_us - steps_total})
    return {"duration_s": stats.wall_time_s, "ticks": stats.batches.count, "tick_mean_us": tick_us, "parts": parts}


def _attribute(obj: Any, path: str) -> Any:
    for name in path.split(".") if path else ():
        obj = getattr(obj, name, None)
    return obj


def _probe(function: Callable[..., Any], durations: list[int]) -> Callable[..., Any]:
    clock, keep = time.perf_counter_ns, durations.append

    def probed(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        try:
            return function(*args, **kwargs)
        finally:
            keep(clock() - started)

    return probed


# --- report ----------------------------------------------------------------------------------------


def targets(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets against every measured row: [{row, target, value, goal, met}] (information, not a verdict)."""
    found = []
    for row in rows:
        if row["median_us"] is None:
            continue
        for target, value, goal, met in (
            ("median", row["median_us"], f"<= {TARGET_MEDIAN_US:g} µs", row["median_us"] <= TARGET_MEDIAN_US),
            ("p99", row["p99_us"], f"<= {TARGET_P99_US:g} µs", row["p99_us"] <= TARGET_P99_US),
            ("deadline misses", row["deadline_miss_rate"], f"< {TARGET_MISS_RATE:.1%}", row["deadline_miss_rate"] < TARGET_MISS_RATE),
        ):
            found.append({"row": row["name"], "target": target, "value": value, "goal": goal, "met": bool(met)})
    return found


def report(
    rows: Sequence[dict[str, Any]],
    breakdown: dict[str, Any] | None,
    config: Path,
    rate_hz: float,
    duration_s: float,
    spin_s: float = SPIN_S,
    floor: dict[str, Any] | None = None,
    steps: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON document: rows, breakdown, floor, steps, targets, what was measured and the machine."""
    return {
        "benchmark": "loop",
        "config": str(config),
        "rate_hz": rate_hz,
        "duration_s": duration_s,
        "spin_us": spin_s * 1e6,
        "plant": "recorded: the config's plant messages from a lockstep flight, replayed at their recorded times",
        "rows": list(rows),
        "breakdown": breakdown,
        "floor": floor,
        "steps": steps,
        "targets": targets(rows),
        "machine": machine(),
    }


def print_report(document: dict[str, Any], console: Any = None) -> None:
    """Rich tables of the rows and the breakdown, then each target with its value and whether it is met."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"control tick at {document['rate_hz']:g} Hz, realtime executor, {document['duration_s']:g} s per row")
    for column in ("row", "scheduler", "median µs", "p99 µs", "max µs", "CPU median / p99 µs", "misses", "jitter p50 / p99 µs", "ticks"):
        table.add_column(column, justify="left" if column in ("row", "scheduler") else "right")
    for row in document["rows"]:
        if row["median_us"] is None:
            table.add_row(row["name"], row["scheduler"], "—", "—", "—", "—", "—", "—", "refused")
            continue
        table.add_row(
            row["name"], row["scheduler"], f"{row['median_us']:.1f}", f"{row['p99_us']:.1f}", f"{row['max_us']:.0f}",
            f"{row['cpu_median_us']:.1f} / {row['cpu_p99_us']:.1f}",
            f"{row['deadline_miss_rate']:.3%} ({row['deadline_misses']})",
            f"{row['jitter_p50_us']:.1f} / {row['jitter_p99_us']:.1f}", f"{row['ticks']:,}",
        )  # fmt: skip
    console.print(table)
    for row in document["rows"]:
        if row["refused"]:
            console.print(f"[yellow]{row['name']}: refused: {row['refused']}[/yellow]")
    breakdown = document.get("breakdown")
    if breakdown:
        parts = Table(title=f"where the tick's {breakdown['tick_mean_us']:.1f} µs (mean) go, {breakdown['ticks']:,} ticks with probes")
        parts.add_column("node")
        parts.add_column("part")
        parts.add_column("mean µs", justify="right")
        parts.add_column("share", justify="right")
        for part in breakdown["parts"]:
            parts.add_row(part["node"], part["part"], f"{part['mean_us']:.1f}", f"{part['mean_us'] / breakdown['tick_mean_us']:.0%}")
        console.print(parts)
    floor = document.get("floor")
    if floor:
        bare = Table(title=f"the floor: the tick's numerical calls alone, warm and once per period at {floor['rate_hz']:g} Hz")
        for column in ("call", "warm median µs", "at rate median µs", "at rate p99 µs"):
            bare.add_column(column, justify="left" if column == "call" else "right")
        for part in floor["parts"]:
            bare.add_row(part["part"], f"{part['warm_median_us']:.1f}", f"{part['at_rate_median_us']:.1f}", f"{part['at_rate_p99_us']:.1f}")
        console.print(bare)
    steps = document.get("steps")
    if steps:
        warm = Table(title=f"each node's steps replayed warm ({steps['passes']} passes over {steps['duration_s']:g} s of the run)")
        for column in ("node", "steps", "median µs", "mean µs"):
            warm.add_column(column, justify="left" if column == "node" else "right")
        for row in steps["nodes"]:
            warm.add_row(row["node"], f"{row['steps']:,}", f"{row['median_us']:.1f}", f"{row['mean_us']:.1f}")
        console.print(warm)
        same = "yes" if steps["same_outputs"] else f"no: first at {steps['first_difference']}"
        console.print(f"replayed steps gave the run's outputs (measured fields aside): {same}")
    console.print(f"plant: {document['plant']}")
    for target in document["targets"]:
        value = target["value"]
        shown = f"{value:.3%}" if target["target"] == "deadline misses" else f"{value:.1f} µs"
        verdict = "[green]met[/green]" if target["met"] else "[red]not met[/red]"
        console.print(f"target {target['row']} {target['target']} {target['goal']}: {shown} — {verdict}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=positive_float, default=60.0, metavar="S", help="wall seconds per row (default 60)")
    parser.add_argument("--rate", type=positive_float, default=1000.0, metavar="HZ", help="control rate of every node (default 1000)")
    parser.add_argument("--config", type=Path, default=None, help=f"hw_config (default: the shipped {DEFAULT_CONFIG_NAME}.yaml)")
    parser.add_argument(
        "--priority", type=int, choices=range(1, 100), default=DEFAULT_PRIORITY, metavar="1-99",
        help=f"SCHED_FIFO priority of the tick_fifo row, unless the config's realtime.priority is set (default {DEFAULT_PRIORITY})",
    )  # fmt: skip
    parser.add_argument(
        "--spin-us", type=float, default=SPIN_S * 1e6, metavar="US",
        help=f"busy-wait this long before each due time instead of sleeping (default {SPIN_S * 1e6:g}). A whole period keeps the "
        "caches warm, but under SCHED_FIFO it meets the kernel's RT throttling (sched_rt_runtime_us): pauses of ~50 ms a second",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the rows, breakdown, floor, targets and machine as JSON")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="config override, repeatable (realtime.cpu_affinity, lock_memory and deadline_miss_limit apply to every row)",
    )  # fmt: skip


def run_from_args(args: argparse.Namespace, console: Any = None) -> dict[str, Any]:
    """Run with parsed :func:`add_arguments` options: print the tables and the targets, write --json if given."""
    from rich.console import Console

    console = console or Console()
    with stop_on_signals(threading.Event()) as stop:
        document = run_loop_benchmark(
            args.duration, args.rate, args.config, args.priority, args.overrides, spin_s=args.spin_us / 1e6,
            progress=lambda text: console.print(f"[dim]{text}[/dim]"), stop=stop,
        )  # fmt: skip
    print_report(document, console)
    if args.json is not None:
        write_document(document, args.json)
    return document
