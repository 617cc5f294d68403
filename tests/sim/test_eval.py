"""Evaluation campaigns: randomized, reproducible episodes in worker processes, rows and aggregates that add up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aegis.cli import main
from aegis.runs.evaluation import Campaign, aggregate, run_campaign

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "hw_configs" / "quadrotor_oracle_sim.yaml"


def test_parallel_and_serial_campaigns_give_the_same_rows() -> None:
    campaign = Campaign(CONFIG, (), episodes=3, seed=5, duration_s=2.0)
    serial = run_campaign(campaign, workers=1)
    parallel = run_campaign(campaign, workers=2)
    assert [r["seed"] for r in serial["episodes"]] == [5, 6, 7]

    def comparable(rows):
        return [{k: v for k, v in row.items() if k not in ("real_time_factor", "policy_latency_us")} for row in rows]  # wall clock

    assert comparable(serial["episodes"]) == comparable(parallel["episodes"])
    masses = [row["randomization"]["mass_scale"] for row in serial["episodes"]]
    assert len(set(masses)) == 3 and all(0.9 <= m <= 1.1 for m in masses)  # the scenario's range, drawn per seed


def test_aggregate_counts_collisions_and_success() -> None:
    rows = [
        {"collisions": 0, "success": True, "min_clearance_m": 0.3, "tracking_rmse_m": 0.02, "command_timeouts": 0},
        {"collisions": 2, "success": False, "min_clearance_m": -0.01, "tracking_rmse_m": 0.04, "command_timeouts": 1},
    ]
    agg = aggregate(rows)
    assert agg["collisions"] == 2 and agg["episodes_with_collision"] == 1
    assert agg["success_rate"] == 0.5 and agg["min_clearance_m"] == -0.01
    assert agg["tracking_rmse_m"] == {"mean": pytest.approx(0.03), "max": 0.04}


def test_eval_command_writes_json_with_a_collisions_total(tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    assert main(["eval", "--episodes", "2", "--duration", "3", "--workers", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["aggregate"]["episodes"] == 2 and result["aggregate"]["collisions"] == 0
    assert result["aggregate"]["success_rate"] == 1.0
    assert result["aggregate"]["crashes"] == 0 and result["aggregate"]["outcomes"]["success"] == 2
    assert sum(result["aggregate"]["outcomes"].values()) == 2
    row = result["episodes"][0]
    assert {"tracking_rmse_m", "min_clearance_m", "success", "randomization", "crashes", "outcome"} <= row.keys()
    assert row["outcome"] == "success" and row["crashes"] == 0 and row["crash_reason"] is None
