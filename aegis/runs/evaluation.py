"""Evaluation campaigns: N randomized episodes of a scenario in parallel worker processes, per-episode rows and aggregates.

Each episode is the config's plan run in lockstep with the plant's randomisation switched on and
its own seed (``seed + episode``), in a worker process that owns its own PyBullet client: a local
process pool or a Ray cluster (aegis.runs.backends), the same rows either way. No bag
and no plot are written; the rows carry the same numbers `aegis sim` reports, measured from the
simulator's ground truth (aegis.runs.episode). An episode succeeds when the robot did not crash,
touched no obstacle, stayed inside the scenario's geofence, and ended within the goal's tolerance
when the scenario has a goal; each row's ``outcome`` names the first of these that failed
(aegis.runs.episode.OUTCOMES), and the aggregate counts them. With ``dynamics`` (a dynamics file,
aegis.sim.dynamics) every episode also draws the plant's perturbations from its seed; a row's
``dynamics`` holds what was drawn, beside the scenario's ``randomization``. With a ``search``, each
episode is an adversarial search of the scenario's disturbance bounds (aegis.runs.adversarial): its
row is the worst candidate's, with what the search and the random draws found beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aegis.config import load_config
from aegis.runs.adversarial import SearchBudget, adversarial_aggregate, adversarial_episode
from aegis.runs.backends import Backend, run_jobs
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
    search: SearchBudget | None = None
    """Per episode, an adversarial search of the scenario's disturbance bounds (aegis.runs.adversarial) instead of one run."""
    privileged_expert: bool = False
    """Each episode's expert is told that episode's true plant (aegis.runs.privileged)."""


def campaign_plan(campaign: Campaign) -> LaunchPlan:
    """The campaign's plan with the plant's randomisation on (validated like any config)."""
    plant = next(iter(load_config(campaign.config, campaign.overrides).nodes))
    return make_plan(load_config(campaign.config, [*campaign.overrides, f"nodes.{plant}.params.randomize=true"]))


def run_episode(
    plan: LaunchPlan, episode: int, seed: int, duration_s: float | None, disturbances: Any = None
) -> dict[str, Any]:
    """One randomized episode; the row of numbers it leaves. ``disturbances`` (aegis.scenario.Disturbances) replace the scenario's."""
    from aegis.runs.plan_run import load_plan_scenario, run_duration, run_plan

    scenario = load_plan_scenario(plan)
    log = EpisodeLog(plan)
    seen = perception_log(plan)
    prepare = None
    if disturbances is not None:
        def prepare(nodes: list) -> None:  # the plant (listed first) applies its scenario's disturbances every step
            nodes[0].scenario = nodes[0].scenario.model_copy(update={"disturbances": disturbances})
    run = run_plan(plan, run_duration(scenario, duration_s), seed, [log] if seen is None else [log, seen], prepare=prepare)
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


def _told_plan(campaign: Campaign, told: list[str]) -> LaunchPlan:
    return campaign_plan(Campaign(campaign.config, (*campaign.overrides, *told), campaign.episodes))


def _worker(plan: LaunchPlan, episode: int, seed: int, duration_s: float | None) -> dict[str, Any]:
    return run_episode(plan, episode, seed, duration_s)


def _search_worker(plan: LaunchPlan, episode: int, seed: int, duration_s: float | None, search: SearchBudget) -> dict[str, Any]:
    return adversarial_episode(plan, episode, seed, duration_s, search, run_episode)


def run_campaign(
    campaign: Campaign,
    workers: int = 1,
    on_episode: Callable[[dict[str, Any]], None] | None = None,
    backend: Backend | None = None,
) -> dict[str, Any]:
    """Run every episode on ``backend`` (default: a local pool of ``workers`` processes, in this process when 1);
    rows sorted by episode, and their aggregates: the same document on every backend."""
    plan = campaign_plan(campaign)
    jobs = [(plan, i, campaign.seed + i, campaign.duration_s) for i in range(campaign.episodes)]
    if campaign.privileged_expert:
        from aegis.runs.privileged import expert_node, privileged_overrides

        told = expert_node(plan, str(campaign.config))
        jobs = [(_told_plan(campaign, privileged_overrides(told, plan, seed)), i, seed, d) for _, i, seed, d in jobs]
    worker: Callable[..., dict[str, Any]] = _worker
    if campaign.search is not None:
        jobs, worker = [(*job, campaign.search) for job in jobs], _search_worker
    rows: list[dict[str, Any]] = run_jobs(worker, jobs, backend or Backend("local", workers), on_episode)
    rows.sort(key=lambda row: row["episode"])
    summary = aggregate(rows)
    if campaign.search is not None:
        summary["adversarial"] = adversarial_aggregate(rows)
    return {
        "config": str(campaign.config),
        "overrides": list(campaign.overrides),
        "scenario": str(plan.scenario) if plan.scenario else None,
        "seed": campaign.seed,
        **({"privileged_expert": True} if campaign.privileged_expert else {}),
        "aggregate": summary,
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
