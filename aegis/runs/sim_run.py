"""One recorded lockstep run of a launch plan (``aegis sim``): progress while it runs; a bag, a summary and a plot when it ends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from aegis.launch_plan import LaunchPlan
from aegis.runs.episode import EpisodeLog, episode_metrics, episode_outcome, episode_series, outcome_of
from aegis.runs.timing import print_timing
from aegis.runs.perception import perception_log, perception_rows, run_perception
from aegis.runs.plan_run import final_states, load_plan_scenario, record_run, run_duration, run_numbers


def run_sim(
    plan: LaunchPlan,
    duration_s: float | None,
    seed: int,
    out_dir: Path,
    show_progress: bool = False,
    plot: bool = True,
    video: Path | None = None,
) -> dict[str, Any]:
    """Run ``plan`` (for the scenario's duration when ``duration_s`` is None); write out_dir/bag, summary.json, plot.png,
    and with ``video`` (.mp4 or .gif) a rendering of the run (aegis.runs.video).

    A swarm plan (several robots, one plant: aegis.runs.swarm) runs through aegis.runs.swarm_run, whose
    summary adds each robot's numbers under ``robots`` and the inter-robot ones.
    """
    from aegis.runs.swarm import swarm_layout

    layout = swarm_layout(plan)
    if layout is not None:
        from aegis.runs.swarm_run import run_swarm_sim

        return run_swarm_sim(plan, layout, duration_s, seed, out_dir, show_progress, plot, video)
    scenario = load_plan_scenario(plan)
    log = EpisodeLog(plan)
    seen = perception_log(plan)
    listen = log if seen is None else _both(log, seen)
    run, bag_path = record_run(plan, listen, run_duration(scenario, duration_s), seed, out_dir, show_progress)
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
        "final_states": final_states(log),
        "bag": str(bag_path),
    }
    perception = run_perception(seen, log, obstacles, stats)
    if perception is not None:
        summary["perception"] = perception
    summary["outcome"] = outcome_of(summary)
    title = f"aegis sim: {plan.robot}" + (f", scenario {scenario.name}" if scenario else "") + f", seed {seed}"
    goal = scenario.goal if scenario else None
    if plot:
        from aegis.runs.plot import plot_episode

        summary["plot"] = str(plot_episode(series, obstacles, out_dir / "plot.png", title, goal=goal))
    if video is not None:
        from aegis.runs.video import render_video, video_summary

        result = render_video({plan.robot: series}, obstacles, video, title, {plan.robot: goal}, stats.sim_time_s, show_progress=show_progress)
        summary["video"] = video_summary(result)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _both(first: Any, second: Any) -> Any:
    """One listener handing every message to two."""

    def listen(topic: str, msg: Any, t_ns: int) -> None:
        first(topic, msg, t_ns)
        second(topic, msg, t_ns)

    return listen


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    scenario = f", scenario {summary['scenario']}" if summary.get("scenario") else ""
    wall = summary.get("executor") == "realtime"  # aegis run's summary (aegis.runs.wall_run)
    command = ("hil" if "link" in summary else "run") if wall else "sim"  # aegis hil's summary has the link's section
    table = Table(title=f"aegis {command}: {summary['robot']}{scenario}, seed {summary['seed']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("simulated time", f"{summary['duration_s']:.2f} s")
    table.add_row("sim steps", str(summary["sim_steps"]))
    if wall:
        table.add_row("wall time", f"{summary['wall_time_s']:.2f} s" + (" (stopped)" if summary["stopped"] else ""))
        table.add_row("real-time factor", f"{summary['real_time_factor']:.3f}x")
        table.add_row("processes", ", ".join(f"{name} ({len(p['nodes'])})" for name, p in summary["processes"].items()))
        table.add_row("deadline misses", str(summary["deadline_misses"]))
    else:
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
    if summary.get("perception"):
        for label, text in perception_rows(summary["perception"]):
            table.add_row(label, text)
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
        if summary.get("left_out_row_missed_ticks") or summary.get("qp_swap_solves"):  # more rows than max_rows, and it showed
            table.add_row(
                "filter: answers missing a row left out / swap solves",
                f"{summary['left_out_row_missed_ticks']} ticks / {summary['qp_swap_solves']} solves",
            )
        if "actuator_lag_fits" in summary:  # the plant's lag and dead time fitted in flight (controllers/cbf/lag_estimator.py)
            lag, delay = summary["actuator_lag_fitted_s"][0], summary["actuator_delay_fitted_s"][0]
            table.add_row("filter: plant lag / dead time fitted", f"{lag:.3f} / {delay:.3f} s ({summary['actuator_lag_fits']} fits)")
    else:
        table.add_row("safety filter", "off")
    if "supervisor_gated_ticks" in summary:  # the gate to the actuators (nodes/supervisor.py)
        states = ", ".join(
            f"{state} {summary[f'supervisor_{state}_ticks']}" for state in ("init", "armed", "running", "degraded", "estop")
            if summary.get(f"supervisor_{state}_ticks")
        )
        table.add_row("supervisor: gated ticks", f"{summary['supervisor_gated_ticks']} ({states or '-'})")
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
    if "video" in summary:
        video = summary["video"]
        table.add_row("video", f"{video['path']} ({video['frames']} frames at {video['fps']} fps, rendered in {video['render_s']:.1f} s)")
    console.print(table)
    if "robots" in summary:  # a swarm: its totals and a row per robot
        from aegis.runs.swarm_run import print_swarm_tables

        print_swarm_tables(summary, console)
    print_timing(summary, console)
