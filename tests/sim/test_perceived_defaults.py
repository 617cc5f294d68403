"""The default chains act on what the robot perceives and estimates (issue 13): wiring, and one short closed loop each.

``quadrotor_sim`` and ``husky_sim`` run sensors -> lidar_obstacles and state_estimator -> controller -> filter; the
simulator's ground truth (its obstacle list, its odometry) is read by no node of the stack, only by evaluation. The
ground-truth chains stay as ``*_oracle_sim`` for A/B. The quadrotor default's closed loop is also
tests/test_cli.py::test_default_sim_flies_the_quadrotor_scenario_and_reports_its_numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aegis.cli import main
from aegis.config import load_config
from aegis.launch_plan import make_plan
from aegis.msgs import RobotState, SafetyFilterReport
from aegis.runs.episode import EpisodeLog
from aegis.runs.perception import perception_counts, perception_log, perception_summary, true_min_h
from aegis.runs.plan_run import run_plan

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = {"quadrotor_sim": "quadrotor_oracle_sim", "husky_sim": "husky_oracle_sim"}


def _check(config: str, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(["check", config, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("default", "oracle"), DEFAULTS.items())
def test_the_defaults_run_the_perceived_estimated_chain_and_the_oracle_the_ground_truth(
    default: str, oracle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _check(default, capsys)
    nodes = {node["name"]: node for node in plan["nodes"]}
    types = {node["type_name"] for node in plan["nodes"]}
    assert {"lidar_obstacles", "state_estimator"} <= types  # the interface: `aegis check CONFIG --json` lists them
    sim, lidar, estimator, filt = nodes["sim"], nodes["lidar"], nodes["estimator"], nodes["filter"]
    assert filt["inputs"]["obstacles"] == lidar["outputs"]["obstacles"] and filt["inputs"]["state"] == estimator["outputs"]["state"]
    assert lidar["inputs"]["state"] == estimator["outputs"]["state"] and lidar["inputs"]["scan"] == sim["outputs"]["scan"]
    truth = {sim["outputs"]["obstacles"], sim["outputs"]["state"]}  # the simulator's obstacle list and its odometry
    readers = {topic: [n["name"] for n in plan["nodes"] if topic in n["inputs"].values()] for topic in truth}
    assert readers == {sim["outputs"]["obstacles"]: [], sim["outputs"]["state"]: ["estimator"]}
    # the filter grows each perceived obstacle by its uncertainty and by the estimator's position sigma
    assert filt["params"]["obstacle_uncertainty_sigmas"] > 0 and filt["params"]["state_uncertainty_sigmas"] > 0
    assert {n["process"] for n in plan["nodes"] if n["name"] != "sim"} == {"stack"}  # composed: only the plant's outputs cross DDS

    ground_truth = _check(oracle, capsys)
    assert not {"lidar_obstacles", "state_estimator"} & {node["type_name"] for node in ground_truth["nodes"]}
    oracle_nodes = {node["name"]: node for node in ground_truth["nodes"]}
    assert oracle_nodes["filter"]["inputs"]["obstacles"] == oracle_nodes["sim"]["outputs"]["obstacles"]


def test_the_default_husky_drives_on_its_lidar_and_estimator_without_touching_what_is_really_there() -> None:
    """10 s of husky_goal (seed 0): it heads for the goal, the filter fed by the lidar and the EKF; judged on the true obstacles."""
    plan = make_plan(load_config(REPO / "hw_configs" / "husky_sim.yaml"))
    log, seen = EpisodeLog(plan), perception_log(plan)
    reports: list[SafetyFilterReport] = []
    odom: list[tuple[float, np.ndarray]] = []

    def listen(topic: str, msg: object, t_ns: int) -> None:
        if isinstance(msg, SafetyFilterReport):
            reports.append(msg)
        elif topic == "/odom" and isinstance(msg, RobotState):
            odom.append((t_ns * 1e-9, np.array(msg.position)))

    run = run_plan(plan, 10.0, 0, [log, seen, listen])
    assert run.metrics["collisions"] == 0
    assert run.metrics["perception_scans_without_pose"] == 1  # the scan at t = 0 comes before the estimator's first /odom
    assert run.metrics["unusable_obstacles_ticks"] == 0 and run.metrics["unusable_odometry_ticks"] == 0
    times, positions = log.state.arrays()  # the simulator's true path
    assert positions[-1][0] > 3.0  # on its way to the goal at (6.5, 0.5)
    h_true = true_min_h(seen, run.obstacles)  # the filter's barrier on the true obstacles along the true path
    assert h_true is not None and h_true > 0.0
    summary = perception_summary(perception_counts(seen, times, positions, run.obstacles), [])
    assert summary["precision"] > 0.9 and summary["recall"] > 0.5 and summary["position_error_m"] < 0.05
    # the estimator's /odom stays within a few centimetres of the truth
    t_true = np.asarray(times)
    errors = [np.linalg.norm(p[:2] - np.asarray(positions)[np.argmin(np.abs(t_true - t))][:2]) for t, p in odom[50:]]
    assert max(errors) < 0.05
    assert all(r.layer in ("qp", "relaxed_qp") for r in reports[10:])  # fresh perception: never the backup layer


def test_stale_perception_in_the_default_quadrotor_chain_puts_the_filter_in_its_backup_layer() -> None:
    """The lidar at 2 Hz against the obstacles' 0.25 s bound: between scans the filter brakes (unknown space is not free)."""
    plan = make_plan(load_config(REPO / "hw_configs" / "quadrotor_sim.yaml", ["nodes.sim.params.lidar.rate_hz=2"]))
    reports: list[tuple[float, SafetyFilterReport]] = []

    def listen(topic: str, msg: object, t_ns: int) -> None:
        if isinstance(msg, SafetyFilterReport):
            reports.append((t_ns * 1e-9, msg))

    run = run_plan(plan, 3.0, 0, [listen])
    stale = [(t, r) for t, r in reports if r.layer == "backup"]
    # the scan at t = 0 has no pose yet (the estimator's first /odom comes later): none received until the one at 0.5 s
    first = [r for t, r in stale if t < 0.5]
    assert first and all("no obstacles received" in r.solver_status and "(grace 0.25 s)" in r.solver_status for r in first)
    old = [r for t, r in stale if t >= 0.5]
    assert old and all("s old (bound 0.25 s)" in r.solver_status and r.perception_age_s > 0.25 for r in old)
    assert {round(t % 0.5, 3) > 0.25 for t, _ in stale} == {True}  # only past the bound: each fresh scan puts the QP back
    assert any(r.layer in ("qp", "relaxed_qp") for t, r in reports if t > 1.0)
    assert len(stale) == run.metrics["unusable_obstacles_ticks"] and run.metrics["collisions"] == 0


def test_the_quadrotor_bridge_publishes_the_lidar_cloud_before_its_scan() -> None:
    """lidar_obstacles steps on /scan and fits the planes of the /points of the same instant: across processes (DDS) the
    cloud must go out first, or the node finds it not yet arrived and fits the flattened scan (52 of 95 scans in a 6 s
    `aegis run quadrotor_sim` when the scan went first)."""
    plan = make_plan(load_config(REPO / "hw_configs" / "quadrotor_sim.yaml"))
    sim = next(node for node in plan.instantiate() if node.name == "sim")
    sim.reset(seed=0)
    try:
        ordered = []
        for tick in range(40):
            outputs = sim.step(tick / 240.0, {})
            if "scan" in outputs:
                ordered.append([port for port in outputs if port in ("points", "scan")])
    finally:
        sim.close()
    assert len(ordered) >= 2 and all(ports == ["points", "scan"] for ports in ordered)
