"""CBF safety-filter call time per solve path: the same ticks through osqp-direct, closed-form, cvxpygen, cvxpy-param and cvxpy-rebuild.

One scene per robot (:func:`benchmark_scene`): the quadrotor as a double integrator (3 inputs)
among a sphere, an upright cylinder, a yawed box and a second sphere, under a floor and a ceiling
and a 2 m/s speed limit (7 barrier rows); the diff-drive robot as a unicycle through a look-ahead
point (2 inputs) among four obstacles inside four geofence walls (8 rows). Two sources of ticks:

``flight`` (the default)
    :func:`flight_ticks`: consecutive ticks of a closed-loop run at 100 Hz toward random goals
    through the obstacles: what the filter sees in a loop (warm starts apply; most nominal
    commands are safe, corrections come when near something).
``random``
    :func:`sample_ticks`: independent states around the obstacles (outside their margins) with
    random nominal commands, some beyond the input bounds: about half need a correction and a
    warm start is of no use, the harder case. tests/test_cbf_filter.py checks the paths'
    agreement on 2000 of these per robot.

Each row times :meth:`aegis.controllers.cbf.CbfSafetyFilter.compute`, the whole filter call:
building the barrier rows from the state, the solve, the checks of the answer and the report.
``median_us`` and ``p99_us`` are over every tick (after a warm-up), ``speedup_vs_cvxpy_param`` is
cvxpy-param's median over the row's, ``max_deviation`` the largest difference of a command from
cvxpy-param's on the same ticks, ``qp_layer_share`` the fraction of ticks answered by the qp layer
(the rest: relaxed_qp, the slack was needed), ``closed_form_share`` for closed-form the fraction it
answered without OSQP. The cvxpy rows run ``slow_ticks`` ticks (each costs a millisecond or more).
A path that cannot run here (cvxpygen without a compiler) gets a row with ``skipped`` saying why.

Targets from the issue (printed as met or not, never asserted), for each fast path: median <= 25 µs,
p99 <= 60 µs, >= 30x faster than cvxpy-param.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aegis.bench import machine, write_document
from aegis.cli_options import output_file, positive_int, seed
from aegis.controllers.cbf import (
    NO_NEIGHBOURS,
    SOLVER_NAMES,
    CbfSafetyFilter,
    DoubleIntegratorModel,
    Environment,
    UnicycleLookaheadModel,
)
from aegis.controllers.cbf.cvxpygen_solver import CodegenUnavailable
from aegis.controllers.cbf.filter import BarrierModel
from aegis.controllers.cbf.rows import ConstraintRows
from aegis.controllers.cbf.solvers import SolverFactory, make_solver
from aegis.scenario.geometry import geofence_walls
from aegis.scenario.schema import Geofence, ObstacleSpec

ROW_NAMES = SOLVER_NAMES
FAST_PATHS = ("osqp-direct", "closed-form", "cvxpygen")
SLOW_PATHS = ("cvxpy-param", "cvxpy-rebuild")
REFERENCE = "cvxpy-param"
ROBOTS = ("quadrotor", "quadrotor_lagged", "diff_drive")
LAGGED_QUADROTOR = {"actuator_lag": (0.14, 0.14, 0.04), "model_error": 0.2, "alpha": 3.0, "speed_alpha": 3.0}
"""The shipped quadrotor filter's plant model (hw_configs/quadrotor_sim.yaml): third-order rows on [p, v, a, bias]."""
ROW_KEYS = (
    "name",
    "robot",
    "ticks_from",
    "median_us",
    "p99_us",
    "mean_us",
    "ticks",
    "speedup_vs_cvxpy_param",
    "max_deviation",
    "qp_layer_share",
    "closed_form_share",
    "skipped",
)
DESCRIPTIONS = {
    "osqp-direct": "OSQP, matrices set up once, values updated, warm start",
    "closed-form": "explicit if <= 1 row active and no bound binds, else OSQP",
    "cvxpygen": "C generated from the cvxpy problem, compiled once (cached)",
    "cvxpy-param": "cvxpy with Parameters (DPP), Clarabel: the reference",
    "cvxpy-rebuild": "cvxpy problem rebuilt from constants every tick",
}

TARGET_MEDIAN_US = 25.0
TARGET_P99_US = 60.0
TARGET_SPEEDUP = 30.0
MAX_ROWS = 8


def benchmark_scene(robot: str = "quadrotor") -> tuple[BarrierModel, Environment]:
    """(model, environment) of the benchmark for ``robot`` ("quadrotor" or "diff_drive"); see the module doc."""
    if robot in ("quadrotor", "quadrotor_lagged"):
        lagged = LAGGED_QUADROTOR if robot == "quadrotor_lagged" else {"alpha": 2.0}
        model: BarrierModel = DoubleIntegratorModel(max_acceleration=8.0, robot_radius=0.15, max_speed=2.0, **lagged)
        obstacles = [
            ObstacleSpec(shape="sphere", position=(1.5, 0.0, 1.0), size=(0.8, 0.8, 0.8)),
            ObstacleSpec(shape="cylinder", position=(-1.0, 1.2, 1.0), size=(0.5, 0.5, 2.0)),
            ObstacleSpec(shape="box", position=(0.0, -1.5, 1.0), size=(1.2, 0.4, 2.0), yaw_rad=0.6),
            ObstacleSpec(shape="sphere", position=(-1.2, -0.8, 1.6), size=(0.5, 0.5, 0.5)),
        ]
        walls = [w for w in geofence_walls(Geofence(min_m=(-3.0, -3.0, 0.0), max_m=(3.0, 3.0, 2.5))) if w.name in ("z_min", "z_max")]
        return model, Environment.build(obstacles, walls)
    if robot == "diff_drive":
        model = UnicycleLookaheadModel(lookahead_distance=0.2, robot_radius=0.5, max_speed=1.0, max_turn_rate=2.0, min_speed=-0.5, alpha=1.0)
        obstacles = [
            ObstacleSpec(shape="cylinder", position=(2.0, 0.5, 0.5), size=(0.6, 0.6, 1.0)),
            ObstacleSpec(shape="box", position=(-1.5, 2.0, 0.5), size=(2.0, 0.5, 1.0), yaw_rad=0.3),
            ObstacleSpec(shape="sphere", position=(0.0, -2.0, 0.5), size=(1.0, 1.0, 1.0)),
            ObstacleSpec(shape="box", position=(-2.5, -1.5, 0.5), size=(0.8, 0.8, 1.0)),
        ]
        walls = geofence_walls(Geofence(min_m=(-5.0, -5.0, -1.0), max_m=(5.0, 5.0, 2.0)))
        return model, Environment.build(obstacles, walls)
    raise ValueError(f"unknown robot {robot!r} (known: {', '.join(ROBOTS)})")


def sample_ticks(model: BarrierModel, environment: Environment, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(states (n, state_size), nominal commands (n, n_inputs)): random, seeded, every state outside all margins (h > 0)."""
    rng = np.random.default_rng(seed)
    rows = ConstraintRows(model.n_inputs)
    states, nominals = [], []
    span = np.asarray(model.upper) - np.asarray(model.lower)
    while len(states) < n:
        if isinstance(model, DoubleIntegratorModel):
            position = rng.uniform([-2.5, -2.5, 0.2], [2.5, 2.5, 2.3])
            direction = rng.normal(size=3)
            speed = rng.uniform(0.0, model.max_speed or 2.0)
            state = np.r_[position, speed * direction / np.linalg.norm(direction)]
            if model.state_size == 12:  # with a lag: an achieved acceleration and a bias estimate too
                state = np.r_[state, rng.uniform(-3.0, 3.0, 3), rng.uniform(-0.3, 0.3, 3)]
        else:
            state = np.r_[rng.uniform(-4.5, 4.5, size=2), rng.uniform(-math.pi, math.pi)]
        model.fill_rows(state, environment, NO_NEIGHBOURS, model.default_alpha, rows)
        if min(rows.h, default=1.0) <= 0.0:
            continue
        states.append(state)
        centre = 0.5 * (np.asarray(model.upper) + np.asarray(model.lower))
        nominals.append(centre + rng.normal(scale=0.4 * span, size=model.n_inputs))
    return np.array(states), np.array(nominals)


def flight_ticks(model: BarrierModel, environment: Environment, n: int, seed: int = 0, dt: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """(states, nominal commands) of ``n`` consecutive ticks of a closed-loop run at ``1 / dt`` Hz (seeded).

    A goal-seeking nominal controller heads for a new random goal every 3 s, through the obstacles'
    region; the filter (closed-form path) keeps the run safe, and the recorded ticks are what a
    filter sees in a loop: consecutive states, most nominal commands safe, corrections when near.
    Double integrator: ``a = 4 (goal - p) - 3 v`` (not clipped), exact zero-order-hold integration.
    Unicycle: ``v = 0.8 cos(e) min(1, d)``, ``omega = 2 e`` (e: heading error, d: distance), kinematics.
    """
    rng = np.random.default_rng(seed)
    safety_filter = CbfSafetyFilter(model, "closed-form")
    unicycle = not isinstance(model, DoubleIntegratorModel)
    state = np.array([0.0, 0.0, 0.0]) if unicycle else np.zeros(model.state_size)
    if not unicycle:
        state[2] = 1.2
    lag = None if unicycle else getattr(model, "actuator_lag", None)
    states, nominals = [], []
    goal = np.zeros(3)
    for k in range(n):
        if k % round(3.0 / dt) == 0:
            goal = rng.uniform([-4.5, -4.5, 0.0], [4.5, 4.5, 0.0]) if unicycle else rng.uniform([-2.5, -2.5, 0.3], [2.5, 2.5, 2.2])
        if unicycle:
            offset = goal[:2] - state[:2]
            error = math.remainder(math.atan2(offset[1], offset[0]) - state[2], math.tau)
            nominal = np.array([0.8 * math.cos(error) * min(1.0, float(np.hypot(*offset))), 2.0 * error])
        else:
            nominal = 4.0 * (goal - state[:3]) - 3.0 * state[3:6]
        states.append(state)
        nominals.append(nominal)
        command, _ = safety_filter.compute(state, nominal, environment)
        if unicycle:
            x, y, theta = state
            state = np.array([x + dt * command[0] * math.cos(theta), y + dt * command[0] * math.sin(theta), theta + dt * command[1]])
        elif lag is None:
            p, v = state[:3], state[3:]
            state = np.r_[p + v * dt + 0.5 * command * dt * dt, v + command * dt]
        else:  # the lagged plant, integrated in ten sub-steps, the bias estimate left at zero
            p, v, a = state[:3].copy(), state[3:6].copy(), state[6:9].copy()
            for _ in range(10):
                a += (command - a) * (1.0 - np.exp(-0.1 * dt / np.asarray(lag)))
                v += a * 0.1 * dt
                p += v * 0.1 * dt
            state = np.r_[p, v, a, state[9:]]
    return np.array(states), np.array(nominals)


TICK_SOURCES = ("flight", "random")


def run_filter_benchmark(
    n: int = 2000,
    robot: str = "quadrotor",
    seed: int = 0,
    slow_ticks: int = 300,
    paths: Sequence[str] = ROW_NAMES,
    solver_factories: dict[str, SolverFactory] | None = None,
    ticks_from: str = "flight",
) -> list[dict[str, Any]]:
    """Time the filter call on ``n`` ticks for each path in ``paths`` (cvxpy paths: the first ``slow_ticks``).

    ``ticks_from`` is "flight" (:func:`flight_ticks`: consecutive ticks of a closed-loop run) or
    "random" (:func:`sample_ticks`: independent states, more of them needing a correction, no
    useful warm start: the harder case). Returns one row per path, in ``paths`` order, each with
    :data:`ROW_KEYS`. ``solver_factories`` replaces how a path's solver is built (for example
    cvxpygen with another cache folder).
    """
    if n < 1 or slow_ticks < 1:
        raise ValueError(f"n and slow_ticks must be >= 1, got {n}, {slow_ticks}")
    unknown = [p for p in paths if p not in ROW_NAMES]
    if unknown:
        raise ValueError(f"unknown path(s) {unknown} (known: {', '.join(ROW_NAMES)})")
    if ticks_from not in TICK_SOURCES:
        raise ValueError(f"unknown tick source {ticks_from!r} (known: {', '.join(TICK_SOURCES)})")
    model, environment = benchmark_scene(robot)
    sampler = flight_ticks if ticks_from == "flight" else sample_ticks
    states, nominals = sampler(model, environment, n, seed)
    factories = dict(solver_factories or {})
    commands: dict[str, np.ndarray] = {}
    rows: dict[str, dict[str, Any]] = {}
    for path in (REFERENCE, *[p for p in paths if p != REFERENCE]):  # the reference first: the others compare to it
        ticks = min(n, slow_ticks) if path in SLOW_PATHS else n
        factory = factories.get(path) or (lambda spec, path=path: make_solver(path, spec))
        try:
            safety_filter = CbfSafetyFilter(model, factory, max_rows=MAX_ROWS)
        except Exception as exc:  # noqa: BLE001 - a path that cannot be built here is reported, not fatal
            reason = str(exc) if isinstance(exc, CodegenUnavailable) else f"{type(exc).__name__}: {exc}"
            rows[path] = _skipped_row(path, robot, ticks_from, reason.splitlines()[0])
            continue
        _warm_up(safety_filter, environment, states[:20], nominals[:20])
        solver = safety_filter.solver
        counted = (getattr(solver, "closed_form_solves", 0), getattr(solver, "osqp_solves", 0))
        times_ns, outputs, layers = _time_path(safety_filter, environment, states[:ticks], nominals[:ticks])
        commands[path] = outputs
        times_us = times_ns / 1e3
        share = None
        if hasattr(solver, "closed_form_solves"):
            explicit, fallthrough = solver.closed_form_solves - counted[0], solver.osqp_solves - counted[1]
            share = explicit / (explicit + fallthrough) if explicit + fallthrough else None
        rows[path] = {
            "name": path,
            "robot": robot,
            "ticks_from": ticks_from,
            "median_us": float(np.median(times_us)),
            "p99_us": float(np.percentile(times_us, 99)),
            "mean_us": float(np.mean(times_us)),
            "ticks": int(ticks),
            "speedup_vs_cvxpy_param": None,
            "max_deviation": None,
            "qp_layer_share": float(np.mean([layer == "qp" for layer in layers])),
            "closed_form_share": share,
            "skipped": None,
        }
    reference = rows.get(REFERENCE)
    for path, row in rows.items():
        if row["skipped"] is None and reference is not None and reference["skipped"] is None:
            row["speedup_vs_cvxpy_param"] = reference["median_us"] / row["median_us"]
            overlap = min(len(commands[path]), len(commands[REFERENCE]))
            row["max_deviation"] = float(np.max(np.abs(commands[path][:overlap] - commands[REFERENCE][:overlap])))
    return [rows[p] for p in paths]


def _warm_up(safety_filter: CbfSafetyFilter, environment: Environment, states: np.ndarray, nominals: np.ndarray) -> None:
    """Run the filter over a few ticks (first calls pay for imports and caches), then forget the warm start."""
    for state, nominal in zip(states, nominals):
        safety_filter.compute(state, nominal, environment)
    safety_filter.reset()


def _time_path(safety_filter: CbfSafetyFilter, environment: Environment, states: np.ndarray, nominals: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(per-tick ns, commands, layers) of the filter over the ticks."""
    compute, clock = safety_filter.compute, time.perf_counter_ns
    times = np.empty(len(states), dtype=np.int64)
    outputs = np.empty_like(nominals)
    layers = []
    for index, (state, nominal) in enumerate(zip(states, nominals)):
        started = clock()
        command, report = compute(state, nominal, environment)
        times[index] = clock() - started
        outputs[index] = command
        layers.append(report.layer)
    return times, outputs, layers


def _skipped_row(path: str, robot: str, ticks_from: str, reason: str) -> dict[str, Any]:
    row: dict[str, Any] = {key: None for key in ROW_KEYS}
    row.update(name=path, robot=robot, ticks_from=ticks_from, ticks=0, skipped=reason)
    return row


def targets(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets for each fast path that ran: [{target, path, value, goal, met}] (information, not a verdict)."""
    out = []
    for row in rows:
        if row["name"] not in FAST_PATHS or row["skipped"] is not None:
            continue
        out.append({"target": "median", "path": row["name"], "value": row["median_us"], "goal": f"<= {TARGET_MEDIAN_US:g} µs", "met": row["median_us"] <= TARGET_MEDIAN_US})
        out.append({"target": "p99", "path": row["name"], "value": row["p99_us"], "goal": f"<= {TARGET_P99_US:g} µs", "met": row["p99_us"] <= TARGET_P99_US})
        speedup = row["speedup_vs_cvxpy_param"]
        if speedup is not None:
            out.append({"target": "speedup vs cvxpy-param", "path": row["name"], "value": speedup, "goal": f">= {TARGET_SPEEDUP:g}x", "met": speedup >= TARGET_SPEEDUP})
    return out


def report(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The JSON document: the robot, the rows, the targets and the machine that measured them."""
    import cvxpy
    import osqp

    return {
        "benchmark": "filter",
        "robot": rows[0]["robot"] if rows else None,
        "ticks_from": rows[0]["ticks_from"] if rows else None,
        "rows": list(rows),
        "targets": targets(rows),
        "machine": machine(osqp=osqp.__version__, cvxpy=cvxpy.__version__),
    }


def write_json(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write :func:`report` to ``path`` (parent folders created); returns the path."""
    return write_document(report(rows), path)


def print_report(rows: Sequence[dict[str, Any]], console: Any = None) -> None:
    """A rich table of the rows, a line per path, then each target with its value and whether it is met."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    ticks = max((row["ticks"] for row in rows), default=0)
    robot, source = (rows[0]["robot"], rows[0]["ticks_from"]) if rows else ("?", "?")
    kind = "consecutive ticks of a closed-loop flight" if source == "flight" else "independent random states"
    table = Table(title=f"CBF safety filter, {robot}, up to {ticks} {kind}: time per filter call (rows + solve + checks + report)")
    for column, justify in (("path", "left"), ("median µs", "right"), ("p99 µs", "right"), ("vs cvxpy-param", "right"), ("max |Δu|", "right"), ("qp layer", "right"), ("ticks", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        if row["skipped"] is not None:
            table.add_row(row["name"], "—", "—", "—", "—", "—", "skipped")
            continue
        speedup = row["speedup_vs_cvxpy_param"]
        deviation = row["max_deviation"]
        table.add_row(
            row["name"],
            f"{row['median_us']:.1f}",
            f"{row['p99_us']:.1f}",
            "—" if speedup is None else f"{speedup:.1f}x",
            "—" if deviation is None else f"{deviation:.1e}",
            f"{row['qp_layer_share']:.1%}",
            str(row["ticks"]),
        )
    console.print(table)
    for row in rows:
        extra = f" (closed form on {row['closed_form_share']:.1%} of ticks)" if row.get("closed_form_share") is not None else ""
        skipped = f" — skipped: {row['skipped']}" if row["skipped"] is not None else ""
        console.print(f"  {row['name']}: {DESCRIPTIONS.get(row['name'], '')}{extra}{skipped}")
    for target in targets(rows):
        value = target["value"]
        shown = f"{value:.1f}x" if target["target"].startswith("speedup") else f"{value:.1f} µs"
        verdict = "[green]met[/green]" if target["met"] else "[red]not met[/red]"
        console.print(f"target {target['target']} {target['goal']} ({target['path']}): {shown} — {verdict}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the filter benchmark, for the ``aegis bench filter`` command line."""
    parser.add_argument("--ticks", type=positive_int, default=2000, metavar="N", help="ticks per fast path (default 2000)")
    parser.add_argument("--slow-ticks", type=positive_int, default=300, metavar="N", help="ticks for the cvxpy paths (default 300)")
    parser.add_argument("--robot", choices=ROBOTS, default="quadrotor", help="quadrotor: double integrator, 3 inputs; quadrotor_lagged: the same with the shipped plant model (third-order rows); diff_drive: unicycle, 2 inputs")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the sampled ticks (default 0)")
    parser.add_argument(
        "--ticks-from", choices=TICK_SOURCES, default="flight",
        help="flight: consecutive ticks of a closed-loop run (default); random: independent states, the harder case",
    )
    parser.add_argument("--cvxpygen-cache", type=Path, default=None, metavar="DIR", help="where the generated solver is built and cached (default ~/.cache/aegis/cvxpygen)")
    parser.add_argument("--json", type=output_file, default=None, metavar="FILE", help="also write the rows, targets and machine as JSON")


def run_from_args(args: argparse.Namespace, console: Any = None) -> list[dict[str, Any]]:
    """Run with parsed :func:`add_arguments` options: print the table and the targets, write --json if given."""
    factories: dict[str, SolverFactory] = {}
    if args.cvxpygen_cache is not None:
        from aegis.controllers.cbf.cvxpygen_solver import CvxpygenQp

        cache = args.cvxpygen_cache
        factories["cvxpygen"] = lambda spec: CvxpygenQp(spec, cache_dir=cache)
    rows = run_filter_benchmark(args.ticks, args.robot, args.seed, args.slow_ticks, solver_factories=factories, ticks_from=args.ticks_from)
    print_report(rows, console)
    if args.json is not None:
        write_json(rows, args.json)
    return rows

