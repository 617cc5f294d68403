"""One recorded lockstep run of a launch plan: progress while it runs, a bag and a summary when it ends."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from aegis.bag import BagRecorder
from aegis.executors.lockstep import LockstepExecutor, RunStats
from aegis.launch_plan import LaunchPlan
from aegis.msgs import RobotState


def run_sim(plan: LaunchPlan, duration_s: float, seed: int, out_dir: Path, show_progress: bool = False) -> dict[str, Any]:
    """Run ``plan`` for ``duration_s`` simulated seconds, record out_dir/bag (MCAP), write out_dir/summary.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    bag_path = out_dir / "bag"
    _remove_previous_bag(bag_path)
    final_states: dict[str, RobotState] = {}

    def keep_final_state(topic: str, msg: Any, t_ns: int) -> None:
        if isinstance(msg, RobotState):
            final_states[topic] = msg

    with BagRecorder(bag_path, distro=plan.ros_distro) as recorder:
        executor = LockstepExecutor(plan.instantiate(), listeners=[recorder.write, keep_final_state])
        executor.reset(seed)
        if show_progress:
            stats = _run_with_progress(executor, duration_s)
        else:
            stats = executor.run(duration_s)
    summary = summarize(plan, stats, seed, bag_path, final_states)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def summarize(plan: LaunchPlan, stats: RunStats, seed: int, bag_path: Path, final_states: dict[str, RobotState]) -> dict[str, Any]:
    """The run's numbers: time, steps, loop timing per node, and where each robot state ended."""
    clock_node = plan.nodes[0].name  # the plant / sim bridge comes first in a sim plan and is the clock
    loop_nodes = [n.name for n in plan.nodes[1:]] or [clock_node]
    loop_durations = np.concatenate([np.asarray(stats.timings[n].durations_ns, dtype=float) for n in loop_nodes]) / 1e3
    return {
        "robot": plan.robot,
        "seed": seed,
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
        "final_states": {
            topic: {"position_m": state.position.tolist(), "speed_mps": float(np.linalg.norm(state.linear_velocity))}
            for topic, state in final_states.items()
        },
        "bag": str(bag_path),
    }


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"aegis sim: {summary['robot']}, seed {summary['seed']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("simulated time", f"{summary['duration_s']:.2f} s")
    table.add_row("sim steps", str(summary["sim_steps"]))
    table.add_row("real-time factor", f"{summary['real_time_factor']:.1f}x")
    table.add_row("loop time p50 / p99", f"{summary['loop_time_us']['p50']:.1f} / {summary['loop_time_us']['p99']:.1f} µs")
    for topic, state in summary["final_states"].items():
        position = ", ".join(f"{v:.3f}" for v in state["position_m"])
        table.add_row(f"final {topic}", f"({position}) m, {state['speed_mps']:.3f} m/s")
    table.add_row("messages recorded", str(summary["messages"]))
    table.add_row("bag (rosbag2, MCAP)", summary["bag"])
    console.print(table)


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
