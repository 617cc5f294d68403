"""Adversarial disturbances: per episode, a CMA-ES search of bounded wind and impulse sequences for the worst tracking and the lowest h.

The search space is the scenario's own ``disturbances.bounds`` (aegis.scenario.schema.DisturbanceBounds):
a wind profile of ``wind_knots`` knots spread evenly over the run (each axis within +-``wind_mps``)
and ``impulses`` pushes of ``impulse_duration_s`` (each axis within +-``impulse_force_n``, starting
anywhere in the run), added to the scenario's own wind and impulses. A candidate is a point of the
unit cube (:class:`DisturbanceSpace` maps it to a ``disturbances`` block), and it is judged by one
episode of the campaign's plan with the episode's own seed (the same randomisation, layout and
noise for every candidate: only the disturbance changes).

Score (higher is worse for the robot): tracking RMSE (m) minus the safety filter's lowest h, plus
:data:`FAILURE_SCORE` when the episode collided or crashed. First ``random_draws`` candidates are
drawn uniformly from the box (the random disturbances of the same bounds the result is compared
with); then CMA-ES (the ``cma`` package), started from the worst random draw, spends ``budget``
more episodes. CMA-ES rather than differential evolution: with a budget of a few dozen episodes in
a space of 10-30 dimensions, DE's population alone (15 per dimension in scipy) exceeds the budget,
while CMA-ES's (4 + 3 ln n, about 12) gives several generations of step-size and covariance
adaptation. Because the search starts from the random draws, what it reports is never milder
than the worst random draw.

Everything is seeded from the episode's seed (numpy's generator for the draws, CMA-ES's own
``seed`` option), so a search is reproduced by its seed; its row carries the disturbances that
gave the worst RMSE and the lowest h, as blocks a scenario file accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from aegis.launch_plan import LaunchPlan
from aegis.scenario.schema import Disturbances, Impulse

FAILURE_SCORE = 10.0
"""Added to a candidate's score when its episode collided or crashed: a failure is worse than any tracking error."""
SEARCH_STREAM = 0x61647672
"""The random stream of the search ("advr"), apart from the other uses of an episode's seed."""
CMA_SIGMA0 = 0.3
"""CMA-ES's initial step size, in the unit cube."""
CMA_MISSING = "--disturbance adversarial needs the cma package (CMA-ES): pip install 'aegis[adversarial]' (or pip install 'cma>=3.3')"


@dataclass(frozen=True)
class SearchBudget:
    """Episodes per search: uniform random draws first, then CMA-ES candidates."""

    budget: int = 24
    random_draws: int = 8


class DisturbanceSpace:
    """The unit cube of an adversarial search and the ``disturbances`` block each of its points stands for."""

    def __init__(self, base: Disturbances, duration_s: float) -> None:
        self.base, self.bounds, self.duration_s = base, base.bounds, duration_s
        self.wind_size = 3 * self.bounds.wind_knots if self.bounds.wind_mps > 0.0 else 0
        self.impulse_count = self.bounds.impulses if self.bounds.impulse_force_n > 0.0 else 0

    @property
    def dimension(self) -> int:
        return self.wind_size + 4 * self.impulse_count

    def disturbances(self, x: np.ndarray) -> Disturbances:
        """The scenario's disturbances with the wind profile and impulses that ``x`` (in [0, 1]^dimension) stands for."""
        x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
        bounds, wind = self.bounds, self.base.wind
        if self.wind_size:
            knots = (2.0 * x[: self.wind_size].reshape(-1, 3) - 1.0) * bounds.wind_mps
            period = self.duration_s / max(1, bounds.wind_knots - 1)
            wind = wind.model_copy(update={"profile_mps": tuple(tuple(round(float(v), 6) for v in k) for k in knots), "profile_period_s": period})
        impulses = list(self.base.impulses)
        latest = max(0.0, self.duration_s - bounds.impulse_duration_s)
        for row in x[self.wind_size :].reshape(-1, 4):
            force = tuple(round(float(v), 6) for v in (2.0 * row[1:] - 1.0) * bounds.impulse_force_n)
            impulses.append(Impulse(time_s=round(float(row[0]) * latest, 6), force_n=force, duration_s=bounds.impulse_duration_s))
        return self.base.model_copy(update={"wind": wind, "impulses": tuple(impulses)})


def score(row: dict[str, Any]) -> float:
    """How bad an episode went (higher is worse): RMSE (m) minus the lowest h, plus FAILURE_SCORE on a collision or a crash."""
    value = float(row.get("tracking_rmse_m") or 0.0)
    if row.get("min_barrier") is not None:
        value -= float(row["min_barrier"])
    if row.get("collisions") or row.get("crashes"):
        value += FAILURE_SCORE
    return value


def _worst(rows: list[dict[str, Any]], blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """The worst RMSE and the lowest h among ``rows``, each with the disturbances that gave it."""
    rmse = [(row["tracking_rmse_m"], i) for i, row in enumerate(rows) if row.get("tracking_rmse_m") is not None]
    barrier = [(row["min_barrier"], i) for i, row in enumerate(rows) if row.get("min_barrier") is not None]
    worst_rmse, lowest_h = max(rmse, default=None), min(barrier, default=None)
    return {
        "episodes": len(rows),
        "worst_rmse_m": worst_rmse[0] if worst_rmse else None,
        "worst_rmse_disturbances": blocks[worst_rmse[1]] if worst_rmse else None,
        "lowest_h": lowest_h[0] if lowest_h else None,
        "lowest_h_disturbances": blocks[lowest_h[1]] if lowest_h else None,
        "failures": sum(bool(row.get("collisions") or row.get("crashes")) for row in rows),
    }


def import_cma() -> Any:
    """The ``cma`` module; ImportError with the line to install it."""
    try:
        import cma
    except ImportError:
        raise ImportError(CMA_MISSING) from None
    return cma


EpisodeRunner = Callable[[LaunchPlan, int, int, "float | None", Disturbances], dict[str, Any]]
"""run(plan, episode, seed, duration_s, disturbances) -> the episode's row (aegis.runs.evaluation.run_episode)."""


def adversarial_episode(
    plan: LaunchPlan, episode: int, seed: int, duration_s: float | None, search: SearchBudget, run_episode: EpisodeRunner
) -> dict[str, Any]:
    """One episode's search: the row of the worst candidate found, with ``adversarial`` (what the search found) and
    ``random`` (the random draws of the same bounds) beside its numbers."""
    from aegis.runs.plan_run import load_plan_scenario, run_duration

    cma = import_cma()
    scenario = load_plan_scenario(plan)
    space = DisturbanceSpace(scenario.disturbances, run_duration(scenario, duration_s))
    rng = np.random.default_rng([seed, SEARCH_STREAM])
    rows: list[dict[str, Any]] = []
    blocks: list[dict[str, Any]] = []
    points: list[np.ndarray] = []

    def evaluate(x: np.ndarray) -> float:
        disturbances = space.disturbances(x)
        rows.append(run_episode(plan, episode, seed, duration_s, disturbances))
        blocks.append(disturbances.model_dump(mode="json", exclude={"bounds"}))
        points.append(np.asarray(x, dtype=float))
        return score(rows[-1])

    random_scores = [evaluate(rng.uniform(0.0, 1.0, space.dimension)) for _ in range(search.random_draws)]
    random_part = _worst(rows, blocks)
    if search.budget > 0 and space.dimension > 0:
        start = points[int(np.argmax(random_scores))] if random_scores else np.full(space.dimension, 0.5)
        options = {"bounds": [0.0, 1.0], "seed": int(rng.integers(1, 2**31 - 1)), "maxfevals": search.budget, "verbose": -9}
        strategy = cma.CMAEvolutionStrategy(start, CMA_SIGMA0, options)
        spent = 0
        while spent < search.budget:
            candidates = strategy.ask()[: search.budget - spent]
            scores = [-evaluate(x) for x in candidates]  # CMA-ES minimises
            spent += len(candidates)
            if len(candidates) == strategy.popsize:
                strategy.tell(candidates, scores)
    worst = int(np.argmax([score(row) for row in rows]))
    row = dict(rows[worst])
    row["adversarial"] = {"seed": seed, "dimension": space.dimension, "score": score(rows[worst]),
                          "disturbances": blocks[worst], **_worst(rows, blocks)}
    row["random"] = random_part
    return row


def adversarial_aggregate(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Over a campaign: the worst RMSE and lowest h the searches found, next to the random draws'; None without searches."""
    found = [row["adversarial"] for row in rows if "adversarial" in row]
    random = [row["random"] for row in rows if "random" in row]
    if not found:
        return None

    def extreme(parts: list[dict[str, Any]], key: str, pick: Any) -> float | None:
        values = [part[key] for part in parts if part[key] is not None]
        return pick(values) if values else None

    return {
        "episodes_per_search": found[0]["episodes"],
        "worst_rmse_m": extreme(found, "worst_rmse_m", max),
        "lowest_h": extreme(found, "lowest_h", min),
        "failures": sum(part["failures"] for part in found),
        "random_draws": random[0]["episodes"] if random else 0,
        "random_worst_rmse_m": extreme(random, "worst_rmse_m", max),
        "random_lowest_h": extreme(random, "lowest_h", min),
        "random_failures": sum(part["failures"] for part in random),
    }
