"""The state_estimator in the loop: the estimated-state configs fly and drive on the estimate, which tracks the simulator's truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aegis.config import load_config
from aegis.launch_plan import make_plan
from aegis.rotations import quat_yaw, wrap_angle
from aegis.runs.plan_run import run_plan

REPO = Path(__file__).resolve().parents[2]


def estimate_errors(config: str, duration_s: float) -> tuple[np.ndarray, np.ndarray, dict, dict, list]:
    """(position errors (n, 3), heading errors (n,)) of /odom against /sim/ground_truth at the same stamps, the
    estimator's counts, the run's metrics, and the nodes (the bridge first, the estimator last)."""
    plan = make_plan(load_config(REPO / "hw_configs" / config))
    seen: dict[str, list] = {}
    nodes: list = []
    run = run_plan(
        plan, duration_s, 0, [lambda topic, msg, t: seen.setdefault(topic, []).append(msg)],
        prepare=lambda all_nodes: nodes.extend([all_nodes[0], *(n for n in all_nodes if n.type_name == "state_estimator")]),
    )
    truth = {round(m.stamp * 1e9): m for m in seen["/sim/ground_truth"]}
    pairs = [(m, truth[round(m.stamp * 1e9)]) for m in seen["/odom"] if round(m.stamp * 1e9) in truth]
    position = np.array([m.position - t.position for m, t in pairs])
    heading = np.array([wrap_angle(quat_yaw(m.orientation) - quat_yaw(t.orientation)) for m, t in pairs])
    return position, heading, nodes[-1].counts, run.metrics, nodes


@pytest.mark.slow
def test_quadrotor_flies_its_figure8_on_the_eskf_estimate_within_millimetres_of_truth_and_finds_the_imu_biases() -> None:
    position, heading, counts, metrics, (sim, estimator) = estimate_errors("quadrotor_estimated_sim.yaml", 4.0)
    assert len(position) > 900  # published at 240 Hz from the first pose on
    assert np.sqrt(np.mean(position**2)) < 0.003  # mocap noise is 2 mm per axis, 12.5 ms late: the fusion is closer than that
    assert np.sqrt(np.mean(heading**2)) < 0.005
    assert counts["restarts"] == 0 and counts["too_old"] == 0
    assert metrics["crashes"] == 0 and metrics["collisions"] == 0
    accel_bias, gyro_bias = sim._imu_bias  # what the bridge drew for this episode (the config's *_bias_std_*)
    assert np.linalg.norm(gyro_bias) > 0.003 and np.linalg.norm(accel_bias) > 0.03
    np.testing.assert_allclose(estimator.quadrotor.eskf.bg, gyro_bias, atol=0.001)  # found within 1 mrad/s
    np.testing.assert_allclose(estimator.quadrotor.eskf.ba, accel_bias, atol=0.01)


@pytest.mark.slow
def test_husky_drives_on_the_ekf_estimate_within_millimetres_of_truth() -> None:
    position, heading, counts, metrics, _ = estimate_errors("husky_estimated_sim.yaml", 6.0)
    assert len(position) > 1400
    assert np.sqrt(np.mean(position[:, :2] ** 2)) < 0.01  # fixes are 5 mm per axis; the skid-steer slides sideways
    assert np.sqrt(np.mean(heading**2)) < 0.005
    assert counts["restarts"] == 0
    assert metrics["crashes"] == 0 and metrics["collisions"] == 0


def test_state_latency_delays_the_state_alone_and_the_husky_bridge_has_a_gyro() -> None:
    plan = make_plan(load_config(REPO / "hw_configs" / "quadrotor_oracle_sim.yaml", ["scenario=quadrotor_hover", "nodes.sim.params.state_latency_s=0.0125"]))
    seen: dict[str, list] = {}
    run_plan(plan, 0.1, 0, [lambda topic, msg, t: seen.setdefault(topic, []).append((t, msg))])
    assert seen["/imu"][0][0] == 0 and seen["/odom"][0][0] == 12_500_000  # the IMU at once, the state 3 physics steps late
    assert all(t - round(msg.stamp * 1e9) == 12_500_000 for t, msg in seen["/odom"])
    plan = make_plan(load_config(REPO / "hw_configs" / "husky_estimated_sim.yaml"))
    seen = {}
    run_plan(plan, 0.05, 0, [lambda topic, msg, t: seen.setdefault(topic, []).append(msg)])
    gyro = seen["/imu"][0]
    assert gyro.linear_acceleration_covariance[0, 0] == -1.0 and gyro.orientation_covariance[0, 0] == -1.0  # a gyro only
    assert gyro.angular_velocity_covariance[2, 2] == pytest.approx(0.005**2)
