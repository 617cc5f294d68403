"""One recorded lockstep run of a launch plan: progress while it runs; a bag, a summary and a plot when it ends."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from aegis.bag import BagRecorder
from aegis.episode import EpisodeLog, episode_metrics, episode_outcome, episode_series, outcome_of
from aegis.executors.lockstep import LockstepExecutor, RunStats
from aegis.launch_plan import LaunchPlan

if TYPE_CHECKING:
    from aegis.node import Node


def load_plan_scenario(plan: LaunchPlan) -> Any:
    """The plan's scenario (validated when the config was loaded), or None."""
    if plan.scenario is None:
        return None
    from aegis.scenario import load_scenario

    return load_scenario(plan.scenario)


def run_sim(
    plan: LaunchPlan,
    duration_s: float | None,
    seed: int,
    out_dir: Path,
    show_progress: bool = False,
    plot: bool = True,
) -> dict[str, Any]:
    """Run ``plan`` (for the scenario's duration when ``duration_s`` is None); write out_dir/bag, summary.json, plot.png.

    A swarm plan (several robots, one plant: aegis.swarm) runs through aegis.swarm_run, whose
    summary adds each robot's numbers under ``robots`` and the inter-robot ones.
    """
    from aegis.swarm import swarm_layout

    layout = swarm_layout(plan)
    if layout is not None:
        from aegis.swarm_run import run_swarm_sim

        return run_swarm_sim(plan, layout, duration_s, seed, out_dir, show_progress, plot)
    scenario = load_plan_scenario(plan)
    log = EpisodeLog(plan)
    run, bag_path = record_run(plan, log, run_duration(scenario, duration_s), seed, out_dir, show_progress)
    stats, plant_metrics = run.stats, run.metrics
    obstacles = run.obstacles if run.obstacles is not None else (scenario.obstacles if scenario is not None else ())
    series = episode_series(log, obstacles, plant_metrics.get("body_radius_m"))
    summary = {
        "robot": plan.robot,
        "scenario": scenario.name if scenario is not None else None,
        "seed": seed,
        **episode_metrics(series, plant_metrics),
        **episode_outcome(scenario, series),
        **({"dynamics": run.dynamics} if run.dynamics else {}),
        **run_numbers(plan, stats),
        "final_states": {
            topic: {"position_m": state.position.tolist(), "speed_mps": float(np.linalg.norm(state.linear_velocity))}
            for topic, state in log.final_states.items()
        },
        "bag": str(bag_path),
    }
    summary["outcome"] = outcome_of(summary)
    if plot:
        from aegis.plot import plot_episode

        title = f"aegis sim: {plan.robot}" + (f", scenario {scenario.name}" if scenario else "") + f", seed {seed}"
        summary["plot"] = str(plot_episode(series, obstacles, out_dir / "plot.png", title, goal=scenario.goal if scenario else None))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def run_duration(scenario: Any, duration_s: float | None) -> float:
    """How long a run lasts: ``duration_s`` when given, else the scenario's, else 10 s."""
    if duration_s is not None:
        return duration_s
    return scenario.duration_s if scenario is not None else 10.0


@dataclass(frozen=True)
class PlanRun:
    """What a lockstep run of a plan leaves once its nodes are closed: timing, each node's counters, the plant's state.

    ``obstacles`` is the plant's (the first node's) obstacle list, None when it has none;
    ``randomization`` what the plant drew for this episode from its scenario (empty when it draws nothing),
    ``dynamics`` what it drew from its dynamics file (aegis.sim.dynamics; empty without one).
    """

    stats: RunStats
    node_metrics: list[dict[str, Any]]
    obstacles: Any
    randomization: dict[str, Any]
    dynamics: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, Any]:
        """Every node's own counters (the plant's collisions, the filter's interventions, ...), merged in plan order."""
        return {key: value for metrics in self.node_metrics for key, value in metrics.items()}


def run_plan(
    plan: LaunchPlan,
    duration_s: float,
    seed: int,
    listeners: Sequence[Callable[[str, Any, int], None]] = (),
    show_progress: bool = False,
    prepare: Callable[[list[Node]], None] | None = None,
) -> PlanRun:
    """Instantiate ``plan``, run it in lockstep for ``duration_s`` from ``reset(seed)`` with ``listeners`` seeing every
    message, collect what the nodes counted, and close them. ``prepare`` sees the nodes before the run."""
    nodes = plan.instantiate()
    try:
        if prepare is not None:
            prepare(nodes)
        executor = LockstepExecutor(nodes, listeners=list(listeners))
        executor.reset(seed)
        stats = _run_with_progress(executor, duration_s) if show_progress else executor.run(duration_s)
        node_metrics = [node.metrics() if hasattr(node, "metrics") else {} for node in nodes]
        obstacles = getattr(nodes[0], "obstacles", None)
        randomization = dict(getattr(nodes[0], "randomization", {}))
        dynamics = dict(getattr(nodes[0], "dynamics_drawn", {}))
    finally:
        for node in nodes:
            if hasattr(node, "close"):
                node.close()
    return PlanRun(stats, node_metrics, obstacles, randomization, dynamics)


def record_run(plan: LaunchPlan, log: Any, duration_s: float, seed: int, out_dir: Path, show_progress: bool) -> tuple[PlanRun, Path]:
    """:func:`run_plan` with every message also going to out_dir/bag (rosbag2, MCAP) and to ``log`` (an EpisodeLog,
    a SwarmLog); the run and the bag's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    bag_path = out_dir / "bag"
    _remove_previous_bag(bag_path)
    with BagRecorder(bag_path, distro=plan.ros_distro) as recorder:
        run = run_plan(plan, duration_s, seed, [recorder.write, log], show_progress)
    return run, bag_path


def run_numbers(plan: LaunchPlan, stats: RunStats) -> dict[str, Any]:
    """Time, steps and loop timing of a run: the clock node's steps, every other node's step durations."""
    clock_node = plan.nodes[0].name  # the plant / sim bridge comes first in a sim plan and is the clock
    loop_nodes = [n.name for n in plan.nodes[1:]] or [clock_node]
    loop_durations = np.concatenate([np.asarray(stats.timings[n].durations_ns, dtype=float) for n in loop_nodes]) / 1e3
    return {
        "duration_s": stats.sim_time_s,
        "sim_steps": stats.steps[clock_node],
        "wall_time_s": stats.wall_time_s,
        "real_time_factor": stats.real_time_factor,
        "loop_time_us": _percentiles(loop_durations),
        "nodes": {
            name: {"steps": stats.steps[name], **_percentiles(np.asarray(t.durations_ns, dtype=float) / 1e3)}
            for name, t in stats.timings.items()
        },
        "messages": stats.messages,
    }


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    scenario = f", scenario {summary['scenario']}" if summary.get("scenario") else ""
    table = Table(title=f"aegis sim: {summary['robot']}{scenario}, seed {summary['seed']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("simulated time", f"{summary['duration_s']:.2f} s")
    table.add_row("sim steps", str(summary["sim_steps"]))
    table.add_row("real-time factor", f"{summary['real_time_factor']:.1f}x")
    table.add_row("loop time p50 / p99", f"{summary['loop_time_us']['p50']:.1f} / {summary['loop_time_us']['p99']:.1f} µs")
    if summary["tracking_rmse_m"] is not None:
        table.add_row("tracking RMSE / max", f"{summary['tracking_rmse_m'] * 100:.2f} / {summary['tracking_max_m'] * 100:.2f} cm")
    if summary["min_clearance_m"] is not None:
        table.add_row("min clearance", f"{summary['min_clearance_m']:.3f} m")
        table.add_row("collisions", str(summary["collisions"]))
    if "crashes" in summary:
        crashed = [name for name, row in summary.get("robots", {}).items() if row.get("crashes")]  # a swarm's
        reason = summary.get("crash_reason") or "; ".join(f"{name}: {summary['robots'][name]['crash_reason']}" for name in crashed)
        crash = f" ({reason} at {summary['crash_time_s']:.2f} s)" if reason else ""
        table.add_row("crashes", f"{summary['crashes']}{crash}")
    if "outcome" in summary:
        table.add_row("outcome", summary["outcome"])
    if "filter_interventions" in summary:
        min_barrier = summary["min_barrier"]
        table.add_row("safety filter: interventions / fallbacks", f"{summary['filter_interventions']} / {summary['fallbacks']} ticks")
        table.add_row("safety filter: min barrier h", "-" if min_barrier is None else f"{min_barrier:.4f}")
        if "unusable_odometry_ticks" in summary:  # what its inputs made it do (nodes/safety_filter.py)
            table.add_row(
                "filter: unusable odometry / obstacles",
                f"{summary['unusable_odometry_ticks']} / {summary['unusable_obstacles_ticks']} ticks",
            )
            table.add_row(
                "filter: stale nominal / geofence only",
                f"{summary['stale_nominal_ticks']} / {summary['geofence_only_ticks']} ticks",
            )
    else:
        table.add_row("safety filter", "off")
    if "policy_ticks" in summary:
        latency = summary["policy_latency_us"]
        table.add_row("policy: ticks without a nominal", f"{summary['policy_no_nominal_ticks']} of {summary['policy_ticks']}")
        table.add_row("policy: inference p50 / p99", f"{latency['p50_us']:.1f} / {latency['p99_us']:.1f} µs")
    for topic, state in summary["final_states"].items():
        position = ", ".join(f"{v:.3f}" for v in state["position_m"])
        table.add_row(f"final {topic}", f"({position}) m, {state['speed_mps']:.3f} m/s")
    table.add_row("messages recorded", str(summary["messages"]))
    table.add_row("bag (rosbag2, MCAP)", summary["bag"])
    if "plot" in summary:
        table.add_row("plot", summary["plot"])
    console.print(table)
    if "robots" in summary:  # a swarm: its totals and a row per robot
        from aegis.swarm_run import print_swarm_tables

        print_swarm_tables(summary, console)


def _percentiles(values_us: np.ndarray) -> dict[str, float]:
    if values_us.size == 0:
        return {"p50": float("nan"), "p99": float("nan")}
    return {"p50": float(np.percentile(values_us, 50)), "p99": float(np.percentile(values_us, 99))}


def _run_with_progress(executor: LockstepExecutor, duration_s: float) -> RunStats:
    columns = (TextColumn("simulating"), BarColumn(), TextColumn("{task.completed:.1f}/{task.total:.1f} s"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("sim", total=duration_s)
        return executor.run(duration_s, progress=lambda t: progress.update(task, completed=t))


def _remove_previous_bag(bag_path: Path) -> None:
    """Replace a bag this command wrote before; refuse to delete a folder that is not a bag."""
    if not bag_path.exists():
        return
    if not (bag_path / "metadata.yaml").is_file():
        raise FileExistsError(f"{bag_path} exists and is not a rosbag2 bag: move it or choose another --out")
    shutil.rmtree(bag_path)
