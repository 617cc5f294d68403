"""The shipped policies under the shipped dynamics sets, judged from the truth: a CI slice of docs/campaigns.md's campaign.

Per robot, 20 episodes spread over the perturbations that broke the stack before issue 9 (motor lag
doubled plus 10 ms of sensing and actuation latency and a heavier airframe, all at once; a lighter
one; latency alone; the random mix), on seeds the campaign in docs/campaigns.md (0..) does not use. Every
episode must end in success: no collision, no crash, the filter's h never below -1e-3.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aegis.config import load_config
from aegis.runs.evaluation import Campaign, run_campaign
from aegis.sim.dynamics import plant_overrides

REPO = Path(__file__).resolve().parents[2]
SETS = ("combined", "light", "latency_10ms", "random")
SEED = 1000


@pytest.mark.slow
@pytest.mark.parametrize("config", ["quadrotor_oracle_sim", "husky_policy_sim"])
def test_the_shipped_policy_holds_under_every_perturbation(config: str) -> None:
    path = REPO / "hw_configs" / f"{config}.yaml"
    for name in SETS:
        result = run_campaign(Campaign(path, tuple(plant_overrides(load_config(path), name)), 5, seed=SEED), workers=2)
        agg = result["aggregate"]
        assert agg["collisions"] == 0 and agg["crashes"] == 0, f"{config} --dynamics {name}: {agg['outcomes']}"
        assert agg["min_barrier"] >= -1e-3, f"{config} --dynamics {name}: h {agg['min_barrier']}"
        assert agg["success_rate"] == 1.0, f"{config} --dynamics {name}: {agg['outcomes']}"
