"""Adversarial disturbances: the search stays in the scenario's bounds, is reproduced by its seed, and finds at least the random draws' worst."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aegis.cli import main
from aegis.runs.adversarial import DisturbanceSpace, SearchBudget, adversarial_episode, score
from aegis.runs.evaluation import Campaign, campaign_plan, run_episode
from aegis.scenario import load_scenario, wind_at
from aegis.scenario.schema import Disturbances, Wind

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "hw_configs" / "quadrotor_oracle_sim.yaml"
WALL_CLOCK = ("real_time_factor", "policy_latency_us")

pytest.importorskip("cma", reason="pip install 'aegis[adversarial]'")


def test_a_wind_profile_is_linear_between_knots_and_held_after_the_last() -> None:
    wind = Wind(profile_mps=((0.0, 0.0, 0.0), (2.0, -1.0, 0.0)), profile_period_s=2.0)
    assert np.allclose(wind_at(wind, 1.0, seed=0), (1.0, -0.5, 0.0))
    assert np.allclose(wind_at(wind, 9.0, seed=0), (2.0, -1.0, 0.0))


def test_every_point_of_the_space_is_a_disturbance_inside_the_bounds_that_a_scenario_accepts() -> None:
    scenario = load_scenario(REPO / "scenarios" / "quadrotor_figure8.yaml")
    bounds = scenario.disturbances.bounds
    space = DisturbanceSpace(scenario.disturbances, 20.0)
    assert space.dimension == 3 * bounds.wind_knots + 4 * bounds.impulses
    for x in np.random.default_rng(3).uniform(0.0, 1.0, (20, space.dimension)):
        block = space.disturbances(x)
        assert np.abs(np.asarray(block.wind.profile_mps)).max() <= bounds.wind_mps
        assert len(block.impulses) == bounds.impulses
        assert all(np.abs(i.force_n).max() <= bounds.impulse_force_n and i.time_s + i.duration_s <= 20.0 for i in block.impulses)
        assert Disturbances.model_validate(block.model_dump(mode="json", exclude={"bounds"})).wind == block.wind  # pasteable


def _comparable(row: dict) -> str:
    return json.dumps({k: v for k, v in row.items() if k not in WALL_CLOCK}, sort_keys=True)


def test_the_search_is_reproduced_by_its_seed_and_is_no_milder_than_the_random_draws() -> None:
    plan = campaign_plan(Campaign(CONFIG, (), episodes=1, seed=4, duration_s=1.0))
    budget = SearchBudget(budget=5, random_draws=3)
    first = adversarial_episode(plan, 0, 4, 1.0, budget, run_episode)
    again = adversarial_episode(plan, 0, 4, 1.0, budget, run_episode)
    assert _comparable(first) == _comparable(again)
    found, random = first["adversarial"], first["random"]
    assert found["episodes"] == 8 and random["episodes"] == 3
    assert found["worst_rmse_m"] >= random["worst_rmse_m"] and found["lowest_h"] <= random["lowest_h"]
    assert score(first) == found["score"]
    calm = run_episode(plan, 0, 4, 1.0)  # the same episode without the searched disturbances: they reach the plant
    assert found["worst_rmse_m"] > calm["tracking_rmse_m"] and found["lowest_h"] < calm["min_barrier"]
    other = adversarial_episode(plan, 0, 5, 1.0, SearchBudget(budget=0, random_draws=1), run_episode)
    assert other["adversarial"]["disturbances"] != first["random"]["worst_rmse_disturbances"]  # another seed, other draws


def test_eval_refuses_adversarial_on_a_scenario_without_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "husky_oracle_sim", "--scenario", "husky_wall", "--episodes", "1", "--disturbance", "adversarial"]) == 2
    err = capsys.readouterr().err.strip()
    assert "disturbances.bounds gives nothing to search" in err and len(err.splitlines()) == 1
    assert main(["eval", "--episodes", "1", "--search-budget", "3"]) == 2  # a budget without a search
    assert "give --disturbance adversarial" in capsys.readouterr().err
