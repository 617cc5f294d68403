"""Running a launch plan in the lockstep executor: for how long, with which listeners, recorded to a bag; what the run leaves.

Shared by ``aegis sim`` (:mod:`aegis.runs.sim_run`), swarm runs, evaluation campaigns, policy
rollouts and training.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from aegis.executors.lockstep import LockstepExecutor, RunStats
from aegis.launch_plan import LaunchPlan
from aegis.runs.bag import BagRecorder
from aegis.runs.timing import LOCKSTEP_NOTE, lockstep_timing

if TYPE_CHECKING:
    from aegis.node import Node


def load_plan_scenario(plan: LaunchPlan) -> Any:
    """The plan's scenario (validated when the config was loaded), or None."""
    if plan.scenario is None:
        return None
    from aegis.scenario import load_scenario

    return load_scenario(plan.scenario)


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
    attach: Callable[[Any], None] | None = None,
) -> PlanRun:
    """Instantiate ``plan``, run it in lockstep for ``duration_s`` from ``reset(seed)`` with ``listeners`` seeing every
    message, collect what the nodes counted, and close them. ``prepare`` sees the nodes before the run, ``attach`` the
    executor (aegis.inference.mcu_session.McuRoute.bind: the one-frame MCU tick peeks at the filter's inputs)."""
    nodes = plan.instantiate()
    try:
        if prepare is not None:
            prepare(nodes)
        executor = LockstepExecutor(nodes, listeners=list(listeners))
        executor.reset(seed)
        if attach is not None:
            attach(executor)
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
    """Time, steps and loop timing of a run: the clock node's steps, every other node's step durations, the per-node
    ``timing`` rows (aegis.runs.timing: step durations; no jitter or deadlines in lockstep)."""
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
        "timing": lockstep_timing(plan, stats),
        "timing_note": LOCKSTEP_NOTE,
    }


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


def final_states(log: Any, topics: Any = None) -> dict[str, dict[str, Any]]:
    """The last state on each state topic ``log`` kept (those in ``topics`` when given): position and speed, for a summary."""
    return {
        topic: {"position_m": state.position.tolist(), "speed_mps": float(np.linalg.norm(state.linear_velocity))}
        for topic, state in log.final_states.items()
        if topics is None or topic in topics
    }
