"""The perceived Husky chain in PyBullet: the lidar_obstacles node finds the scenario's obstacles from /scan and /odom alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aegis.config import load_config
from aegis.launch_plan import make_plan
from aegis.msgs import Obstacles, SafetyFilterReport
from aegis.runs.episode import EpisodeLog
from aegis.runs.perception import PerceptionLog, perception_counts, perception_log, perception_summary, true_min_h
from aegis.runs.plan_run import run_plan

REPO = Path(__file__).resolve().parents[2]
PERCEIVED = REPO / "hw_configs" / "husky_perceived_sim.yaml"


def test_the_lidar_node_detects_the_scenarios_obstacles_in_closed_loop() -> None:
    plan = make_plan(load_config(PERCEIVED))
    assert [n.name for n in plan.nodes if n.type_name == "lidar_obstacles"] == ["lidar"]
    log, seen = EpisodeLog(plan), perception_log(plan)
    reports: list[SafetyFilterReport] = []
    truth_list: list[Obstacles] = []

    def listen(topic, msg, t_ns) -> None:
        if isinstance(msg, SafetyFilterReport):
            reports.append(msg)
        if topic == "/sim/obstacles":
            truth_list.append(msg)

    run = run_plan(plan, 3.0, 0, [log, seen, listen])
    assert len(seen.messages) == 30  # one per scan, 10 Hz, every one with a pose
    assert run.metrics["perception_scans_without_pose"] == 0
    assert all(m.frame_id == "odom" and not m.problems() for m in seen.messages)
    times, positions = log.state.arrays()
    detected = {}
    for obstacle in run.obstacles:  # scan by scan, which true obstacle was found (all four are within the 10 m range)
        alone = PerceptionLog(seen.topics, seen.nodes, seen.range_m, seen.messages)
        detected[obstacle.position] = perception_counts(alone, times, positions, [obstacle])["detected"]
    # every scan finds the near box, both pillars; the far box (5.3, -1.6) hides behind the near one from the start
    assert detected == {(2.0, -0.6, 0.5): 30, (4.2, 1.2, 0.6): 30, (0.6, 1.9, 0.6): 30, (5.3, -1.6, 0.4): detected[(5.3, -1.6, 0.4)]}
    assert detected[(5.3, -1.6, 0.4)] < 15
    summary = perception_summary(perception_counts(seen, times, positions, run.obstacles), [])
    assert summary["recall"] == (90 + detected[(5.3, -1.6, 0.4)]) / 120  # recall counts what was hidden as missed
    assert summary["precision"] > 0.9 and summary["position_error_m"] < 0.05
    h_true = true_min_h(seen, run.obstacles)  # the filter's barrier on the true obstacles along the true path
    assert h_true is not None and h_true > 0.0
    # the filter ran on them: fresh (a scan every 0.1 s), never the backup layer, its age on every report
    ages = np.array([r.perception_age_s for r in reports[5:]])
    assert np.all(ages <= 0.1 + 1e-9) and all(r.layer in ("qp", "relaxed_qp") for r in reports)
    assert run.metrics["unusable_obstacles_ticks"] == 0
    assert truth_list, "the simulator's own list goes to /sim/obstacles, which the filter does not read"
