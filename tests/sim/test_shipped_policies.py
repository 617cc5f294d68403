"""The shipped policies in closed loop under the safety filter: no collision in the adversarial scenarios, and they do their job.

Run through the evaluation machinery (aegis eval): randomized episodes of each policy's hw_config,
the plant's randomisation on, seeds fixed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aegis.config import load_config
from aegis.runs.evaluation import Campaign, run_campaign
from aegis.runs.policy_swap import expert_overrides
from aegis.scenario import resolve_scenario_for

REPO = Path(__file__).resolve().parents[2]
POLICIES = {"quadrotor": "quadrotor_oracle_sim.yaml", "diff_drive": "husky_policy_sim.yaml"}
EPISODES = 10


@pytest.mark.slow
@pytest.mark.parametrize("kind", POLICIES)
def test_shipped_policy_never_collides_in_the_adversarial_scenario(kind: str) -> None:
    overrides = (f"scenario={resolve_scenario_for('adversarial', kind)}",)
    result = run_campaign(Campaign(REPO / "hw_configs" / POLICIES[kind], overrides, EPISODES, seed=100), workers=2)
    agg = result["aggregate"]
    assert agg["episodes"] == EPISODES and agg["safety_filter"]
    assert agg["collisions"] == 0, [row["collisions"] for row in result["episodes"]]
    assert agg["min_barrier"] >= -1e-3  # measured (100 / 50 episodes): 0.0023 quadrotor, 0.0372 Husky
    assert all(row["policy_no_nominal_ticks"] == 0 for row in result["episodes"])  # the policy proposed every tick


def _campaign(config: Path, overrides: tuple[str, ...], episodes: int) -> dict:
    return run_campaign(Campaign(config, overrides, episodes, seed=0), workers=2)["aggregate"]


@pytest.mark.slow
def test_shipped_quadrotor_policy_tracks_the_figure8_about_as_well_as_its_expert() -> None:
    config = REPO / "hw_configs" / POLICIES["quadrotor"]
    policy = _campaign(config, (), 4)
    expert = _campaign(config, tuple(expert_overrides(load_config(config), "quadrotor_mpc")), 4)
    assert policy["collisions"] == 0 and policy["success_rate"] == 1.0
    assert policy["tracking_rmse_m"]["max"] < 1.25 * expert["tracking_rmse_m"]["max"]


@pytest.mark.slow
def test_shipped_husky_policy_reaches_the_goal() -> None:
    policy = _campaign(REPO / "hw_configs" / POLICIES["diff_drive"], (), 4)
    assert policy["collisions"] == 0 and policy["success_rate"] == 1.0  # success: the goal reached, no contact, in the geofence
