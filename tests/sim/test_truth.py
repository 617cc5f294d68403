"""Evaluation from the truth: the bridge's ground-truth port, crash detection that ends the run, outcomes, deadlock."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pybullet
import pytest

from aegis.config import load_config
from aegis.runs.episode import DEADLOCK_WINDOW_S, EpisodeLog, episode_outcome, episode_series, outcome_of, stopped_for_good
from aegis.runs.evaluation import aggregate, run_episode
from aegis.launch_plan import make_plan
from aegis.msgs import MotorSpeeds
from aegis.node import EndRun, Received
from aegis.scenario.schema import Geofence
from aegis.sim.crash import CrashParams, crash_reason
from aegis.runs.plan_run import run_plan

REPO = Path(__file__).resolve().parents[2]
QUADROTOR = REPO / "hw_configs" / "quadrotor_oracle_sim.yaml"
HUSKY = REPO / "hw_configs" / "husky_oracle_sim.yaml"


def plan_of(config: Path, *overrides: str):
    return make_plan(load_config(config, list(overrides)))


def test_truth_is_exact_and_on_time_while_odometry_is_noisy_and_late() -> None:
    plan = plan_of(QUADROTOR, "scenario=quadrotor_hover", "nodes.sim.params.latency_s=0.025")
    seen: dict[str, list] = {}
    run_plan(plan, 0.2, 0, [lambda topic, msg, t: seen.setdefault(topic, []).append((t, msg))])
    truth, odom = seen["/sim/ground_truth"], seen["/odom"]
    assert truth[0][0] == 0 and odom[0][0] == 25_000_000  # truth at once, odometry 25 ms late
    assert len(truth) == 48  # every physics step at the sensor rate (240 Hz), 0.2 s
    by_stamp = {round(m.stamp * 1e9): m for _, m in truth}
    offsets = np.array([odom_msg.position - by_stamp[round(odom_msg.stamp * 1e9)].position for _, odom_msg in odom])
    assert 0.0005 < np.std(offsets) < 0.005  # the nominal mocap-class noise (2 mm) sits on the odometry only
    assert np.all(np.diag(truth[0][1].pose_covariance)[:3] == 0.0)


def test_no_controller_reads_the_truth() -> None:
    for config in sorted((REPO / "hw_configs").glob("*_sim.yaml")):
        plan = plan_of(config)
        readers = [n.name for n in plan.nodes[1:] for topic in n.inputs.values() if topic == "/sim/ground_truth"]
        assert not readers, f"{config.name}: {readers} read the ground truth"


def test_motors_cut_mid_air_is_a_crash_that_ends_the_run_not_a_success() -> None:
    # the bridge listens for commands where nobody publishes: the bare watchdog (failsafe.mode cut) cuts the motors after
    # 0.1 s, the drone falls 1 m
    plan = plan_of(QUADROTOR, "scenario=quadrotor_hover", "nodes.sim.topics.command=/nobody", "nodes.sim.params.failsafe.mode=cut")
    row = run_episode(plan, 0, 0, 5.0)
    assert row["crashes"] == 1 and row["outcome"] == "crash" and row["success"] is False
    assert row["crash_reason"].startswith("hit the ground at")
    assert 0.45 < row["crash_time_s"] < 0.6  # cut at 0.1 s, then free fall from 1 m: 0.1 + sqrt(2 / 9.81) = 0.55 s
    assert row["duration_s"] == pytest.approx(row["crash_time_s"])  # the run ended there
    assert row["collisions"] == 0  # the ground is not an obstacle: without crash detection this was a clean run
    totals = aggregate([row])
    assert totals["crashes"] == 1 and totals["outcomes"]["crash"] == 1 and totals["success_rate"] == 0.0


def test_a_flipped_quadrotor_ends_the_run_with_its_true_state_published() -> None:
    nodes = plan_of(QUADROTOR, "scenario=quadrotor_hover").instantiate()
    bridge = nodes[0]
    try:
        bridge.reset(0)
        upside_down = pybullet.getQuaternionFromEuler([math.pi, 0.0, 0.0])
        pybullet.resetBasePositionAndOrientation(bridge.world.body_id, [0.0, 0.0, 1.0], upside_down, physicsClientId=bridge.world.client)
        hover = MotorSpeeds(stamp=0.0, frame_id="", velocities=np.full(4, bridge.world.model.hover_motor_speed))
        with pytest.raises(EndRun) as ended:
            for k in range(3):  # the state is read back after each step: the flip is seen at the first tick after it
                bridge.step(k / 240.0, {"command": Received(hover, 0.0, False)})
        assert "flipped" in ended.value.reason and bridge.crashes == 1
        assert "truth" in ended.value.outputs  # the state the run ended in, for the referee
        assert bridge.metrics()["crash_reason"].startswith("flipped: tilt 180 deg")
    finally:
        bridge.close()


def test_crash_reasons_from_the_true_state() -> None:
    params = CrashParams()
    up, still = np.array([0.0, 0.0, 0.0, 1.0]), np.zeros(3)
    fence = Geofence(min_m=(-1.0, -1.0, 0.0), max_m=(1.0, 1.0, 2.0))
    assert crash_reason(params, np.array([0.0, 0.0, 1.0]), up, still, fence) is None
    assert crash_reason(params, np.array([np.nan, 0.0, 1.0]), up, still, fence) == "non-finite state"
    assert crash_reason(params, np.array([0.0, 0.0, 1.0]), up, np.array([np.inf, 0, 0]), fence) == "non-finite state"
    assert crash_reason(params, np.array([3.5, 0.0, 1.0]), up, still, fence).startswith("left the world")
    assert crash_reason(params, np.array([2.9, 0.0, 1.0]), up, still, fence) is None  # outside the fence, within the world
    assert crash_reason(params, np.array([0.0, 0.0, -2.5]), up, still, None).startswith("left the world")  # through the floor
    assert crash_reason(params, np.array([0.0, 0.0, 0.01]), up, np.array([0.0, 0.0, -0.3]), fence, touching_ground=True) is None
    assert crash_reason(params, np.array([0.0, 0.0, 0.01]), up, np.array([0.0, 0.0, -0.8]), fence, touching_ground=True).startswith(
        "hit the ground"
    )
    tilted = np.array([math.sin(0.5 * 1.3), 0.0, 0.0, math.cos(0.5 * 1.3)])  # 74 degrees: steep, not flipped
    assert crash_reason(params, np.array([0.0, 0.0, 1.0]), tilted, still, fence) is None


def test_husky_geofence_verdict_follows_the_truth_not_noisy_odometry() -> None:
    # 5 cm of odometry noise: the published z dips far below the 2 cm tolerance under the fence's floor at z = 0
    plan = plan_of(HUSKY, "scenario=husky_adversarial", "nodes.sim.params.noise={position_std_m: 0.05}")
    log = EpisodeLog(plan)
    odom_z: list[float] = []
    run = run_plan(plan, 1.0, 0, [log, lambda topic, msg, t: topic == "/odom" and odom_z.append(float(msg.position[2]))])
    assert min(odom_z) < -0.05
    from aegis.scenario import load_scenario

    scenario = load_scenario(plan.scenario)
    outcome = episode_outcome(scenario, episode_series(log, scenario.obstacles, run.metrics["body_radius_m"]))
    assert outcome["inside_geofence"] is True


def test_a_robot_that_never_moves_short_of_its_goal_is_deadlocked() -> None:
    plan = plan_of(HUSKY, "scenario=husky_adversarial", "nodes.sim.topics.command=/nobody")  # its wheels brake and stay
    row = run_episode(plan, 0, 0, DEADLOCK_WINDOW_S + 1.0)
    assert row["goal_reached"] is False and row["deadlocked"] is True
    assert row["outcome"] == "deadlock" and row["crashes"] == 0 and row["success"] is False


def test_outcome_order_and_the_deadlock_rule() -> None:
    times = np.linspace(0.0, 5.0, 251)
    parked = np.zeros((251, 3))
    creeping = np.column_stack([0.1 * times, np.zeros(251), np.zeros(251)])  # 0.1 m/s: still on its way
    hovering = np.column_stack([0.03 * np.sin(7.0 * times), np.zeros(251), np.zeros(251)])  # jitters in place
    assert stopped_for_good(times, parked) and stopped_for_good(times, hovering)
    assert not stopped_for_good(times, creeping)
    assert not stopped_for_good(times[:50], parked[:50])  # 1 s: shorter than the window, no verdict
    base = {"collisions": 0, "crashes": 0, "inside_geofence": True, "goal_reached": True, "deadlocked": False}
    assert outcome_of(base) == "success"
    assert outcome_of({**base, "goal_reached": False}) == "goal_missed"
    assert outcome_of({**base, "goal_reached": False, "deadlocked": True}) == "deadlock"
    assert outcome_of({**base, "inside_geofence": False, "goal_reached": False}) == "geofence"
    assert outcome_of({**base, "collisions": 2, "inside_geofence": False}) == "collision"
    assert outcome_of({**base, "collisions": 1, "crashes": 1}) == "crash"
    assert outcome_of({**base, "goal_reached": None, "inside_geofence": None}) == "success"  # nothing to miss


def test_a_swarm_is_measured_from_each_robots_truth_and_a_wrong_count_of_truth_topics_is_named() -> None:
    from aegis.runs.swarm import swarm_layout

    plan = plan_of(REPO / "hw_configs" / "quadrotor_swarm_sim.yaml")
    layout = swarm_layout(plan)
    assert layout.measured_topics == ("/cf1/ground_truth", "/cf2/ground_truth", "/cf3/ground_truth", "/cf4/ground_truth")
    seen: dict[str, list] = {}
    run_plan(plan, 0.05, 0, [lambda topic, msg, t: seen.setdefault(topic, []).append(msg)])
    assert len(seen["/cf3/ground_truth"]) == len(seen["/cf3/odom"]) == 12
    with pytest.raises(Exception, match="port 'truth' needs none or 4 topics"):
        plan_of(REPO / "hw_configs" / "quadrotor_swarm_sim.yaml", "nodes.sim.topics.truth=[/a, /b]").instantiate()
