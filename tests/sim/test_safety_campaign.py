"""The safety campaign: adversarial scenarios where the nominal controller drives straight at obstacles.

With the safety filter, >= 20 randomized episodes per robot have zero collisions and the lowest
barrier value h >= -1e-3; the SAME episodes (same seeds, same jittered obstacles) without the
filter collide, every one of them: the filter is what saves them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aegis.config import load_config
from aegis.runs.evaluation import Campaign, run_campaign
from aegis.launch_plan import bypass_overrides

REPO = Path(__file__).resolve().parents[2]
EPISODES = 20

ROBOTS = {
    "quadrotor": ("quadrotor_oracle_sim.yaml", "quadrotor_adversarial"),
    "husky": ("husky_oracle_sim.yaml", "husky_adversarial"),
}


@pytest.mark.slow
@pytest.mark.parametrize("robot", ROBOTS)
def test_filter_prevents_every_collision_the_nominal_controller_causes(robot: str) -> None:
    config_name, scenario = ROBOTS[robot]
    config = REPO / "hw_configs" / config_name
    overrides = (f"scenario={scenario}",)
    filtered = run_campaign(Campaign(config, overrides, EPISODES, seed=100), workers=2)
    unfiltered_overrides = (*overrides, *bypass_overrides(load_config(config, overrides)))
    unfiltered = run_campaign(Campaign(config, unfiltered_overrides, EPISODES, seed=100), workers=2)

    agg = filtered["aggregate"]
    assert agg["episodes"] == EPISODES and agg["safety_filter"]
    assert agg["collisions"] == 0, [row["collisions"] for row in filtered["episodes"]]
    assert agg["min_barrier"] >= -1e-3
    assert agg["fallbacks"] == 0  # the QP layer produced every command

    assert unfiltered["aggregate"]["safety_filter"] is False
    assert all(row["collisions"] > 0 for row in unfiltered["episodes"])
    # same episodes: the randomisation (and obstacle jitter) drawn per seed is identical
    assert [r["randomization"] for r in filtered["episodes"]] == [r["randomization"] for r in unfiltered["episodes"]]
