"""One recorded lockstep run of a swarm plan (several robots, one plant): bag, per-robot and total summary, plot, tables.

`aegis sim` calls :func:`run_swarm_sim` through aegis.runs.sim_run.run_sim when the plan is a swarm
(aegis.runs.swarm.swarm_layout); the bag, progress, timing numbers and output files are the one-robot
run's, the summary adds ``robots`` (one entry per robot) and the inter-robot numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from aegis.launch_plan import LaunchPlan
from aegis.runs.plan_run import final_states, load_plan_scenario, record_run, run_duration, run_numbers
from aegis.runs.swarm import SwarmLayout, SwarmLog, min_pair_distance, robot_series, swarm_metrics


def run_swarm_sim(
    plan: LaunchPlan,
    layout: SwarmLayout,
    duration_s: float | None,
    seed: int,
    out_dir: Path,
    show_progress: bool = False,
    plot: bool = True,
    video: Path | None = None,
) -> dict[str, Any]:
    """Run ``plan`` (for the scenario's duration when ``duration_s`` is None); write out_dir/bag, summary.json, plot.png,
    and with ``video`` a rendering of the run (aegis.runs.video: the first robot chased, every robot from above)."""
    scenario = load_plan_scenario(plan)
    log = SwarmLog(layout)
    run, bag_path = record_run(plan, log, run_duration(scenario, duration_s), seed, out_dir, show_progress)
    stats, node_metrics = run.stats, run.node_metrics
    obstacles = run.obstacles if run.obstacles is not None else ()
    plant = node_metrics[0]
    series = robot_series(log, obstacles, plant.get("body_radius_m"))
    tasks = {name: scenario.task(name) for name in layout.names if scenario is not None and name in scenario.robots}
    summary = {
        "robot": plan.robot,
        "scenario": scenario.name if scenario is not None else None,
        "seed": seed,
        **swarm_metrics(layout, series, plant, node_metrics, tasks),
        **run_numbers(plan, stats),
        "final_states": final_states(log, {*layout.state_topics, *layout.truth_topics}),
        "bag": str(bag_path),
    }
    title = f"aegis sim: {len(layout.names)} x {plan.robot}" + (f", scenario {scenario.name}" if scenario else "") + f", seed {seed}"
    goals = {name: task.goal for name, task in tasks.items()}
    if plot:
        from aegis.runs.swarm_plot import plot_swarm

        radius = plant.get("body_radius_m")
        summary["plot"] = str(
            plot_swarm(series, min_pair_distance(series), 2.0 * radius if radius else None, obstacles, goals, out_dir / "plot.png", title)
        )
    if video is not None:
        from aegis.runs.video import render_video, video_summary

        result = render_video(series, obstacles, video, title, goals, stats.sim_time_s, show_progress=show_progress)
        summary["video"] = video_summary(result)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def print_swarm_tables(summary: dict[str, Any], console: Console) -> None:
    """The swarm's own numbers: totals (collisions, closest approach) and one row per robot."""
    radius = summary.get("robot_radius_m")
    closest = summary.get("min_inter_robot_distance_m")
    totals = Table(title=f"swarm: {len(summary['robots'])} robots")
    totals.add_column("metric")
    totals.add_column("value", justify="right")
    totals.add_row("collisions (obstacles + robot pairs)", f"{summary['collisions']} ({summary['obstacle_collisions']} + {summary['inter_robot_collisions']})")
    collision_at = f" (collision below {2 * radius:.3f} m)" if radius else ""
    totals.add_row("min distance between robots", ("-" if closest is None else f"{closest:.3f} m") + collision_at)
    if summary.get("goals_reached") is not None:
        totals.add_row("goals reached", f"{summary['goals_reached']} / {len(summary['robots'])}")
    console.print(totals)
    filtered = "filter_interventions" in summary
    caption = "collisions: total (obstacles + robots)" + ("; filter: interventions / fallbacks (ticks)" if filtered else "")
    table = Table(title="per robot", caption=caption)
    columns = ["robot", "collisions", "closest robot", "RMSE", "to goal"]
    columns += ["filter", "min h"] if filtered else []
    for column in columns:
        table.add_column(column, justify="left" if column == "robot" else "right")
    for name, row in summary["robots"].items():
        cells = [
            name,
            f"{row['collisions']} ({row['obstacle_collisions']} + {row['inter_robot_collisions']})",
            _metres(row["min_inter_robot_distance_m"]),
            "-" if row["tracking_rmse_m"] is None else f"{row['tracking_rmse_m'] * 100:.1f} cm",
            _metres(row["final_goal_distance_m"]),
        ]
        if filtered:
            cells += [
                f"{row.get('filter_interventions', '-')} / {row.get('fallbacks', '-')}",
                "-" if row.get("min_barrier") is None else f"{row['min_barrier']:.4f}",
            ]
        table.add_row(*cells)
    console.print(table)


def _metres(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} m"
