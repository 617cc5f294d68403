"""Closed-loop quadrotor sim throughput: the launch plan under the lockstep executor against plain loops over the same objects.

One launch plan (the shipped ``quadrotor_cascade_sim.yaml`` by default: a Crazyflie flying its scenario's
figure-8 among obstacles, 240 Hz physics, 48 Hz cascade) is instantiated once, and the same node objects, hence
the same PyBullet client and the same controller, are driven three ways, each repeat in turn (the
file is a little long, about 400 lines, because the hand-written loops it compares with must stay
beside the executor run they are measured against):

``executor``
    :class:`aegis.executors.lockstep.LockstepExecutor` over the plan's nodes, no bag recording:
    what ``aegis sim`` runs, less the recorder.
``nodes_inline``
    the same two nodes stepped by a hand-written Python loop that passes their messages along
    (``Received`` with the age of each message, as the executor would): everything the nodes
    do, nothing the executor does. ``executor`` against this row is the cost of the executor itself.
``inline``
    the issue's "plain inline loop": the sim bridge's ``QuadrotorWorld.step`` at the physics rate,
    and every 5th step the world's state, the controller node's reference and its
    ``QuadrotorCascade.compute`` called directly (the scenario's wind and impulses applied as the
    bridge applies them, when it has any); no nodes, no messages, no collision counting. The
    command acts from the next physics step on, as under the sim bridge, so all three fly the
    same trajectory (tests/test_bench.py checks that the final positions agree).

``inline`` is the baseline of ``overhead_vs_inline`` and so of the issue's executor overhead: it
does exactly the physics and control work the flight needs, and nothing a framework adds. It is
the fair comparison for the question "what does running the controller as a node graph cost",
which includes the sim bridge publishing odometry and IMU at 240 Hz (the controller reads one
in five), counting collisions with the scenario's obstacles every step and building and
validating messages; ``nodes_inline`` splits that cost between the nodes and the executor.

One probe times all three alike: for the benchmark, the world's ``step`` is shadowed (on that
one object) by a function that records ``time.perf_counter_ns()`` and calls the real one, so
``median_us`` and ``p99_us`` are the wall time from one physics step's start to the next's,
everything in between included (one step in five also carries the controller). ``steps_per_s``
and ``real_time_factor`` are medians over the repeats of each run's physics steps (and simulated
seconds) over its wall time; ``overhead_vs_inline`` is ``inline steps_per_s / this row's - 1``
(the ``executor`` row's is the issue's *executor overhead*).

Targets from the issue (printed as met or not, never asserted): >= 15,000 physics steps/s on one
core, >= 60x real time, executor overhead <= 15 %.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aegis.bench import machine, write_document
from aegis.cli_options import output_file, positive_float, positive_int
from aegis.config import load_config
from aegis.executors.lockstep import NS_PER_S, LockstepExecutor
from aegis.launch_plan import make_plan
from aegis.node import Node, Received
from aegis.paths import shipped_config

DEFAULT_CONFIG_NAME = "quadrotor_cascade_sim"
"""The shipped hw_config benchmarked when none is given (share/aegis/hw_configs/quadrotor_cascade_sim.yaml)."""

ROW_NAMES = ("executor", "nodes_inline", "inline")
ROW_KEYS = (
    "name",
    "median_us",
    "p99_us",
    "steps_per_s",
    "real_time_factor",
    "overhead_vs_inline",
    "physics_steps",
    "repeats",
    "duration_s",
    "final_position_m",
)
"""The keys of every row: wall time per physics step (µs), throughput, overhead over ``inline``, run size, where it ended."""

DESCRIPTIONS = {
    "executor": "launch plan under the LockstepExecutor (no bag)",
    "nodes_inline": "same nodes stepped by a plain loop",
    "inline": "world.step + cascade.compute, plain loop",
}

TARGET_STEPS_PER_S = 15_000.0
TARGET_REAL_TIME_FACTOR = 60.0
TARGET_EXECUTOR_OVERHEAD = 0.15


def default_config() -> Path:
    """The shipped quadrotor_cascade_sim.yaml of the aegis in use (installed or source checkout)."""
    return shipped_config(DEFAULT_CONFIG_NAME)


def run_sim_benchmark(
    duration_s: float = 10.0,
    repeats: int = 3,
    config: str | Path | None = None,
    seed: int = 0,
    overrides: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Fly ``config`` (default :func:`default_config`) ``repeats`` times for ``duration_s`` simulated seconds each way.

    Returns one row per way, in :data:`ROW_NAMES` order, each with :data:`ROW_KEYS`. A short
    warm-up run of each way precedes the timed ones. Raises ValueError when the plan is not one
    sim_bridge plant and one quadrotor_controller at a whole multiple of its rate.
    """
    if not (duration_s > 0 and math.isfinite(duration_s)):
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    path = Path(config) if config is not None else default_config()
    nodes = make_plan(load_config(path, [EXACT_SENSING, *overrides])).instantiate()
    loop = _ClosedLoop(nodes, path, seed)
    try:
        ways: dict[str, Callable[[float], _Run]] = {
            "executor": loop.run_executor,
            "nodes_inline": loop.run_nodes_inline,
            "inline": loop.run_inline,
        }
        warmup_s = min(duration_s, 1.0)
        for run in ways.values():
            run(warmup_s)
        runs: dict[str, list[_Run]] = {name: [] for name in ways}
        for _ in range(repeats):  # interleaved, so a slow moment of the machine hits every way alike
            for name, run in ways.items():
                runs[name].append(run(duration_s))
    finally:
        loop.close()
    inline_rate = statistics.median(r.steps / r.wall_s for r in runs["inline"])
    rows = []
    for name in ROW_NAMES:
        per_step_us = np.concatenate([r.step_ns for r in runs[name]]) / 1e3
        steps_per_s = statistics.median(r.steps / r.wall_s for r in runs[name])
        rows.append(
            {
                "name": name,
                "median_us": float(np.median(per_step_us)),
                "p99_us": float(np.percentile(per_step_us, 99)),
                "steps_per_s": float(steps_per_s),
                "real_time_factor": float(statistics.median(duration_s / r.wall_s for r in runs[name])),
                "overhead_vs_inline": float(inline_rate / steps_per_s - 1.0),
                "physics_steps": runs[name][-1].steps,
                "repeats": repeats,
                "duration_s": float(duration_s),
                "final_position_m": runs[name][-1].final_position.tolist(),
            }
        )
    return rows


def executor_overhead(rows: Sequence[dict[str, Any]]) -> float:
    """The issue's executor overhead: executor time per physics step over the plain inline loop's, minus one."""
    return float(_row(rows, "executor")["overhead_vs_inline"])


def targets(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets against the ``executor`` row: [{target, value, goal, met}] (information, not a verdict)."""
    executor = _row(rows, "executor")
    overhead = executor_overhead(rows)
    return [
        {"target": "physics steps/s", "value": executor["steps_per_s"], "goal": f">= {TARGET_STEPS_PER_S:,.0f}", "met": executor["steps_per_s"] >= TARGET_STEPS_PER_S},
        {"target": "real-time factor", "value": executor["real_time_factor"], "goal": f">= {TARGET_REAL_TIME_FACTOR:.0f}x", "met": executor["real_time_factor"] >= TARGET_REAL_TIME_FACTOR},
        {"target": "executor overhead", "value": overhead, "goal": f"<= {TARGET_EXECUTOR_OVERHEAD:.0%}", "met": overhead <= TARGET_EXECUTOR_OVERHEAD},
    ]


def report(rows: Sequence[dict[str, Any]], config: str | Path | None = None) -> dict[str, Any]:
    """The JSON document: the rows, the executor overhead, the targets and the machine that measured them."""
    return {
        "benchmark": "sim",
        "config": str(config if config is not None else default_config()),
        "rows": list(rows),
        "executor_overhead": executor_overhead(rows),
        "targets": targets(rows),
        "machine": machine(),
    }


def write_json(rows: Sequence[dict[str, Any]], path: str | Path, config: str | Path | None = None) -> Path:
    """Write :func:`report` to ``path`` (parent folders created); returns the path."""
    return write_document(report(rows, config), path)


def print_report(rows: Sequence[dict[str, Any]], console: Any = None) -> None:
    """A rich table of the rows, then each target with its value and whether it is met."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    first = rows[0]
    table = Table(title=f"closed-loop quadrotor sim, {first['duration_s']:g} s x {first['repeats']}: time per physics step")
    table.add_column("loop")
    table.add_column("median µs", justify="right")
    table.add_column("p99 µs", justify="right")
    table.add_column("steps/s", justify="right")
    table.add_column("real time", justify="right")
    table.add_column("vs inline", justify="right")
    for row in rows:
        table.add_row(
            row["name"],
            f"{row['median_us']:.1f}",
            f"{row['p99_us']:.1f}",
            f"{row['steps_per_s']:,.0f}",
            f"{row['real_time_factor']:.1f}x",
            f"{row['overhead_vs_inline']:+.1%}",
        )
    console.print(table)
    for row in rows:
        console.print(f"  {row['name']}: {DESCRIPTIONS.get(row['name'], '')}")
    for target in targets(rows):
        value = target["value"]
        shown = f"{value:.1%}" if target["target"] == "executor overhead" else (f"{value:.1f}x" if "real-time" in target["target"] else f"{value:,.0f}")
        verdict = "[green]met[/green]" if target["met"] else "[red]not met[/red]"
        console.print(f"target {target['target']} {target['goal']}: {shown} — {verdict}")


EXACT_SENSING = "nodes.sim.params.noise={}"
"""Applied first, always: the plain loops read the world's exact state, so the bridge senses exactly too and every
loop flies the same flight (the shipped config's nominal sensor noise is for closed-loop evaluation, not for this)."""

DEFAULT_OVERRIDES = ("nodes.sim.params.sensor_decimation=5", "nodes.sim.params.imu=false")
"""The benchmarked configuration: odometry at the 48 Hz control rate (what the controller reads), no IMU."""


def _console() -> Any:
    from rich.console import Console

    return Console()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the sim benchmark, shared by bench/sim_throughput.py and the ``aegis`` command line."""
    parser.add_argument("--duration", type=positive_float, default=10.0, metavar="S", help="simulated seconds per run (default 10)")
    parser.add_argument("--repeats", type=positive_int, default=3, metavar="N", help="timed runs of each loop (default 3)")
    parser.add_argument("--config", type=Path, default=None, help=f"hw_config file (default: the shipped {DEFAULT_CONFIG_NAME}.yaml)")
    parser.add_argument("--json", type=output_file, default=None, metavar="FILE", help="also write the rows, targets and machine as JSON")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=None, metavar="KEY.PATH=VALUE",
        help="config override, repeatable (default: " + " ".join(DEFAULT_OVERRIDES) + ": sensing at the control rate)",
    )


def run_from_args(args: argparse.Namespace, console: Any = None) -> list[dict[str, Any]]:
    """Run with parsed :func:`add_arguments` options: print the table and the targets, write --json if given."""
    overrides = tuple(args.overrides) if args.overrides is not None else DEFAULT_OVERRIDES
    rows = run_sim_benchmark(args.duration, args.repeats, args.config, overrides=overrides)
    print_report(rows, console)
    (console or _console()).print("overrides: " + (" ".join(overrides) or "none"))
    if args.json is not None:
        write_json(rows, args.json, args.config)
    return rows


# --- the three ways of flying ----------------------------------------------------------------------


class _Run:
    """One timed run: physics steps, wall time around the loop, per-step wall times, where the body ended."""

    __slots__ = ("steps", "wall_s", "step_ns", "final_position")

    def __init__(self, steps: int, wall_s: float, marks_ns: list[int], final_position: np.ndarray) -> None:
        if len(marks_ns) != steps:
            raise RuntimeError(f"expected {steps} physics steps, the probe saw {len(marks_ns)}")
        self.steps = steps
        self.wall_s = wall_s
        self.step_ns = np.diff(np.asarray(marks_ns, dtype=np.int64))
        self.final_position = final_position


class _ClosedLoop:
    """The plan's plant (sim_bridge) and controller (quadrotor_controller), and the three loops over them."""

    def __init__(self, nodes: list[Node], path: Path, seed: int) -> None:
        from aegis.nodes.quadrotor_controller import QuadrotorController
        from aegis.nodes.quadrotor_sim_bridge import SimBridge

        plants = [n for n in nodes if isinstance(n, SimBridge)]
        controllers = [n for n in nodes if isinstance(n, QuadrotorController)]
        if len(nodes) != 2 or len(plants) != 1 or len(controllers) != 1 or nodes[0] is not plants[0]:
            raise ValueError(
                f"{path}: the sim benchmark needs exactly a sim_bridge (listed first) and a quadrotor_controller, "
                f"got {', '.join(f'{n.name} ({n.type_name})' for n in nodes)}"
            )
        self.sim, self.controller = plants[0], controllers[0]
        ratio = self.sim.rate_hz / self.controller.rate_hz
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(f"{path}: physics rate {self.sim.rate_hz} Hz is not a whole multiple of the control rate {self.controller.rate_hz} Hz")
        self.decimation = round(ratio)
        self.seed = seed
        self.marks: list[int] = []
        self.executor = LockstepExecutor(nodes)
        self.executor.reset(seed)  # builds the PyBullet world, outside any timed run
        self._mark_physics_steps()

    def _mark_physics_steps(self) -> None:
        """Shadow the world's ``step`` with one that first records perf_counter_ns: the same probe in all three loops."""
        world = self.sim.world
        physics_step, mark, clock = world.step, self.marks.append, time.perf_counter_ns

        def step(*args: Any) -> None:
            mark(clock())
            physics_step(*args)

        world.step = step

    def close(self) -> None:
        if self.sim.world is not None:
            vars(self.sim.world).pop("step", None)
        self.sim.close()

    def _finish(self, steps: int, wall_s: float) -> _Run:
        run = _Run(steps, wall_s, self.marks, self.sim.world.state().position)
        self.marks.clear()
        return run

    def _ticks(self, duration_s: float) -> int:
        """Physics steps the executor runs in [0, duration_s): ticks k with round(k / rate) before the end."""
        end_ns, rate = round(duration_s * NS_PER_S), self.sim.rate_hz
        n = max(0, math.floor(end_ns * rate / NS_PER_S) - 1)  # just below the count, then the executor's own test
        while round(n * NS_PER_S / rate) < end_ns:
            n += 1
        return n

    def run_executor(self, duration_s: float) -> _Run:
        self.executor.reset(self.seed)
        self.marks.clear()
        stats = self.executor.run(duration_s)
        return self._finish(stats.steps[self.sim.name], stats.wall_time_s)

    def run_nodes_inline(self, duration_s: float) -> _Run:
        self.executor.reset(self.seed)
        sim, controller, decimation = self.sim, self.controller, self.decimation
        command_max_age = sim.max_ages["command"] or math.inf
        state_max_age = controller.max_ages["state"] or math.inf
        rate, n = sim.rate_hz, self._ticks(duration_s)
        sim_inputs: dict[str, Received | None] = {"command": None}
        controller_inputs: dict[str, Received | None] = {"state": None}
        command, command_ns = None, 0
        state, state_ns = None, 0
        self.marks.clear()
        started = time.perf_counter()
        for k in range(n):
            now_ns = round(k * NS_PER_S / rate)
            now = now_ns / NS_PER_S
            if command is not None:
                age = (now_ns - command_ns) / NS_PER_S
                sim_inputs["command"] = Received(command, age, age > command_max_age)
            published = sim.step(now, sim_inputs)
            odometry = published.get("state")
            if odometry is not None:
                state, state_ns = odometry, now_ns
            if k % decimation == 0:
                if state is not None:
                    age = (now_ns - state_ns) / NS_PER_S
                    controller_inputs["state"] = Received(state, age, age > state_max_age)
                command, command_ns = controller.step(now, controller_inputs)["command"], now_ns
        return self._finish(n, time.perf_counter() - started)

    def run_inline(self, duration_s: float) -> _Run:
        self.executor.reset(self.seed)
        world, cascade, reference = self.sim.world, self.controller.cascade, self.controller.reference
        yaw, decimation, rate, n = self.controller.params.yaw_rad, self.decimation, self.sim.rate_hz, self._ticks(duration_s)
        disturbances = _scenario_disturbances(self.sim.scenario)
        command = world.motor_speeds.copy()  # the initial rotor speeds are the command at t = 0, as in the bridge
        fresh = command
        self.marks.clear()
        started = time.perf_counter()
        for k in range(n):
            control = k % decimation == 0
            if control:
                s = world.state()
                position, velocity, acceleration = reference(round(k * NS_PER_S / rate) / NS_PER_S)
                fresh = cascade.compute(s.position, s.velocity_world, s.orientation, s.body_rates, position, velocity, acceleration, yaw)
            if disturbances is None:
                world.step(command)
            else:
                world.step(command, *disturbances(round(k * NS_PER_S / rate) / NS_PER_S))
            command = fresh  # a new command flies from the step after it was computed on: the bridge's latency
        return self._finish(n, time.perf_counter() - started)


def _scenario_disturbances(scenario: Any) -> Callable[[float], tuple[np.ndarray | None, np.ndarray | None]] | None:
    """(wind, external force) at a time, as the sim bridge applies a scenario's; None when it has none to apply."""
    if scenario is None:
        return None
    from aegis.scenario import impulse_force_at, wind_at

    wind, impulses, seed = scenario.disturbances.wind, scenario.disturbances.impulses, scenario.seed
    blows = any(v != 0.0 for v in wind.velocity_mps) or wind.gust_std_mps > 0.0 or bool(wind.profile_mps)
    if not blows and not impulses:
        return None
    return lambda t: (wind_at(wind, t, seed) if blows else None, impulse_force_at(impulses, t) if impulses else None)


def _row(rows: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    for row in rows:
        if row["name"] == name:
            return row
    raise KeyError(f"no {name!r} row (have: {', '.join(r['name'] for r in rows)})")


