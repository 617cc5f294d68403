"""A policy and its expert on the same scenario and seed, side by side: `aegis sim --policy FILE`.

Both runs are ordinary `aegis sim` runs (bag, summary.json and plot each, in ``OUT/policy`` and
``OUT/expert``) of the same config, differing only in the node that proposes the nominal command;
``OUT/summary.json`` holds both summaries and which model and expert they were.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from aegis.launch_plan import LaunchPlan


def compare_with_expert(
    policy_plan: LaunchPlan,
    expert_plan: LaunchPlan,
    model: Path,
    expert: str,
    duration_s: float | None,
    seed: int,
    out_dir: Path,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Run the policy plan, then the expert plan, with the same seed; write and return the combined summary."""
    from aegis.runs.sim_run import run_sim

    policy = run_sim(policy_plan, duration_s, seed, out_dir / "policy", show_progress=show_progress)
    expert_summary = run_sim(expert_plan, duration_s, seed, out_dir / "expert", show_progress=show_progress)
    result = {
        "robot": policy["robot"],
        "scenario": policy["scenario"],
        "seed": seed,
        "model": str(Path(model).resolve()),
        "expert_type": expert,
        "policy": policy,
        "expert": expert_summary,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _cm(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f} cm"


def _number(fmt: str) -> Callable[[Any], str]:
    return lambda value: "-" if value is None else format(value, fmt)


ROWS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("tracking RMSE", "tracking_rmse_m", _cm),
    ("tracking max error", "tracking_max_m", _cm),
    ("collisions", "collisions", str),
    ("crashes", "crashes", _number("d")),
    ("outcome", "outcome", lambda v: "-" if v is None else str(v)),
    ("min clearance (m)", "min_clearance_m", _number(".3f")),
    ("goal reached", "goal_reached", lambda v: "-" if v is None else ("yes" if v else "no")),
    ("final distance to goal (m)", "final_goal_distance_m", _number(".3f")),
    ("inside geofence", "inside_geofence", lambda v: "-" if v is None else ("yes" if v else "no")),
    ("filter interventions (ticks)", "filter_interventions", _number("d")),
    ("filter fallbacks (ticks)", "fallbacks", _number("d")),
    ("filter min barrier h", "min_barrier", _number(".4f")),
    ("ticks without a nominal", "policy_no_nominal_ticks", _number("d")),
    ("MPC failures", "mpc_failures", _number("d")),
)
"""(label, summary key, format) of the comparison table; a key a run lacks shows as "-"."""


def print_comparison(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    scenario = f", scenario {result['scenario']}" if result.get("scenario") else ""
    table = Table(title=f"aegis sim --policy: {result['robot']}{scenario}, seed {result['seed']}")
    table.add_column("metric")
    table.add_column(f"policy ({Path(result['model']).name})", justify="right")
    table.add_column(f"expert ({result['expert_type']})", justify="right")
    policy, expert = result["policy"], result["expert"]
    for label, key, fmt in ROWS:
        if policy.get(key) is not None or expert.get(key) is not None:
            table.add_row(label, fmt(policy.get(key)), fmt(expert.get(key)))
    latency = policy.get("policy_latency_us")
    if latency:
        table.add_row("policy inference p50 / p99", f"{latency['p50_us']:.1f} / {latency['p99_us']:.1f} µs", "-")
    table.add_row("loop time p50 / p99 (µs)", *(f"{s['loop_time_us']['p50']:.1f} / {s['loop_time_us']['p99']:.1f}" for s in (policy, expert)))
    table.add_row("bag", policy["bag"], expert["bag"])
    console.print(table)
