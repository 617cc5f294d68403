"""Evaluation campaigns: N randomized episodes of a scenario in parallel worker processes, per-episode rows and aggregates.

Each episode is the config's plan run in lockstep with the plant's randomisation switched on and
its own seed (``seed + episode``), in a worker process that owns its own PyBullet client. No bag
and no plot are written; the rows carry the same numbers `aegis sim` reports, measured from the
simulator's ground truth (aegis.runs.episode). An episode succeeds when the robot did not crash,
touched no obstacle, stayed inside the scenario's geofence, and ended within the goal's tolerance
when the scenario has a goal; each row's ``outcome`` names the first of these that failed
(aegis.runs.episode.OUTCOMES), and the aggregate counts them. With ``dynamics`` (a dynamics file,
aegis.sim.dynamics) every episode also draws the plant's perturbations from its seed; a row's
``dynamics`` holds what was drawn, beside the scenario's ``randomization``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aegis.config import load_config
from aegis.runs.episode import OUTCOMES, EpisodeLog, episode_metrics, episode_outcome, episode_series, outcome_of
from aegis.launch_plan import LaunchPlan, make_plan
from aegis.runs.perception import aggregate_perception, perception_log, run_perception


@dataclass(frozen=True)
class Campaign:
    """What to evaluate: a config with overrides, how many episodes from which seed, for how long."""

    config: Path
    overrides: tuple[str, ...]
    episodes: int
    seed: int = 0
    duration_s: float | None = None


def campaign_plan(campaign: Campaign) -> LaunchPlan:
    """The campaign's plan with the plant's randomisation on (validated like any config)."""
    plant = next(iter(load_config(campaign.config, campaign.overrides).nodes))
    return make_plan(load_config(campaign.config, [*campaign.overrides, f"nodes.{plant}.params.randomize=true"]))


def run_episode(plan: LaunchPlan, episode: int, seed: int, duration_s: float | None) -> dict[str, Any]:
    """One randomized episode; the row of numbers it leaves."""
    from aegis.runs.plan_run import load_plan_scenario, run_duration, run_plan

    scenario = load_plan_scenario(plan)
    log = EpisodeLog(plan)
    seen = perception_log(plan)
    run = run_plan(plan, run_duration(scenario, duration_s), seed, [log] if seen is None else [log, seen])
    stats, plant_metrics, randomization = run.stats, run.metrics, run.randomization
    obstacles = run.obstacles if run.obstacles is not None else (scenario.obstacles if scenario is not None else ())
    series = episode_series(log, obstacles, plant_metrics.get("body_radius_m"))
    metrics = episode_metrics(series, plant_metrics)
    row = {"episode": episode, "seed": seed, **metrics, **episode_outcome(scenario, series), "randomization": randomization}
    if run.dynamics:
        row["dynamics"] = run.dynamics
    perception = run_perception(seen, log, obstacles, stats)
    if perception is not None:
        row["perception"] = perception
    row["duration_s"] = stats.sim_time_s
    row["real_time_factor"] = stats.real_time_factor
    row["outcome"] = outcome_of(row)
    row["success"] = row["outcome"] == "success"
    return row


def _worker(plan: LaunchPlan, episode: int, seed: int, duration_s: float | None) -> dict[str, Any]:
    return run_episode(plan, episode, seed, duration_s)


def run_campaign(
    campaign: Campaign, workers: int = 1, on_episode: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Run every episode (in ``workers`` processes when > 1); rows sorted by episode, and their aggregates."""
    plan = campaign_plan(campaign)
    jobs = [(plan, i, campaign.seed + i, campaign.duration_s) for i in range(campaign.episodes)]
    rows: list[dict[str, Any]] = []
    if workers <= 1:
        for job in jobs:
            rows.append(_worker(*job))
            if on_episode:
                on_episode(rows[-1])
    else:
        # spawn, not fork: a worker starts clean, with no PyBullet client or thread state inherited
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for future in as_completed([pool.submit(_worker, *job) for job in jobs]):
                rows.append(future.result())
                if on_episode:
                    on_episode(rows[-1])
    rows.sort(key=lambda row: row["episode"])
    return {
        "config": str(campaign.config),
        "overrides": list(campaign.overrides),
        "scenario": str(plan.scenario) if plan.scenario else None,
        "seed": campaign.seed,
        "aggregate": aggregate(rows),
        "episodes": rows,
    }


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Success rate, collision and crash counts, episodes per outcome, worst clearance, RMSE statistics over a campaign's rows."""

    def values(key: str) -> np.ndarray:
        return np.array([row[key] for row in rows if row[key] is not None], dtype=float)

    clearance, rmse = values("min_clearance_m"), values("tracking_rmse_m")
    barrier = np.array([row["min_barrier"] for row in rows if row.get("min_barrier") is not None], dtype=float)
    filtered = any("filter_interventions" in row for row in rows)
    policy = any("policy_no_nominal_ticks" in row for row in rows)
    perception = aggregate_perception(rows)
    return {
        "episodes": len(rows),
        "success_rate": float(np.mean([row["success"] for row in rows])) if rows else None,
        "collisions": int(sum(row["collisions"] for row in rows)),
        "episodes_with_collision": int(sum(row["collisions"] > 0 for row in rows)),
        "crashes": int(sum(row.get("crashes", 0) for row in rows)),
        "outcomes": {outcome: sum(row.get("outcome") == outcome for row in rows) for outcome in OUTCOMES},
        "min_clearance_m": float(clearance.min()) if clearance.size else None,
        "tracking_rmse_m": {"mean": float(rmse.mean()), "max": float(rmse.max())} if rmse.size else None,
        "command_timeouts": int(sum(row.get("command_timeouts", 0) for row in rows)),
        "safety_filter": filtered,
        "min_barrier": float(barrier.min()) if barrier.size else None,
        "filter_interventions": int(sum(row.get("filter_interventions", 0) for row in rows)) if filtered else None,
        "fallbacks": int(sum(row.get("fallbacks", 0) for row in rows)) if filtered else None,
        "policy_no_nominal_ticks": int(sum(row["policy_no_nominal_ticks"] for row in rows)) if policy else None,
        **({"perception": perception} if perception is not None else {}),
    }
