"""State estimation (aegis.perception, the state_estimator node): consistency (NEES) on randomized runs, late measurements, gating, bad data.

The NEES checks run the filters on trajectories drawn from the filters' own models
(aegis.perception.consistency says how), so a consistent filter's NEES averaged over N runs is
chi-square with N x dof degrees over N, and its 95 % interval is the bound.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from aegis.msgs import ImuSample, RobotState, rosbags_types
from aegis.node import Received
from aegis.perception.diff_drive_ekf import DiffDriveEstimator, PoseFixEvent, WheelOdometryEvent, YawRateEvent
from aegis.perception.consistency import DT, RATE_HZ, diff_drive_run, quadrotor_run
from aegis.perception.ekf import average_nees_bounds
from aegis.perception.quadrotor_eskf import ImuEvent, PoseEvent, QuadrotorEskfParams, QuadrotorEstimator
from aegis.config import HUSKY
from aegis.nodes.state_estimator import StateEstimator

RUNS = 10


@pytest.mark.slow
def test_quadrotor_eskf_is_consistent_on_randomized_runs_with_late_poses_and_outliers() -> None:
    runs = [quadrotor_run(seed) for seed in range(RUNS)]
    average = np.mean([r[0] for r in runs], axis=0)  # the N-run average NEES at each step
    low, high = average_nees_bounds(9, RUNS)
    assert low < float(average.mean()) < high
    assert np.mean((average > low) & (average < high)) > 0.8  # 95 % expected; correlated steps, so a margin
    for _, est, outliers, rejected in runs:
        assert outliers <= rejected <= outliers + 2 and est.counts["restarts"] == 0  # the outliers, and a 0.9999 gate's few


@pytest.mark.slow
def test_diff_drive_ekf_is_consistent_on_randomized_runs_with_late_fixes_and_outliers() -> None:
    runs = [diff_drive_run(seed) for seed in range(RUNS)]
    average = np.mean([values for values, _, _, _ in runs], axis=0)
    low, high = average_nees_bounds(6, RUNS)
    assert low < float(average.mean()) < high
    assert np.mean((average > low) & (average < high)) > 0.8
    for _, est, outliers, rejected_fixes in runs:
        assert outliers <= rejected_fixes <= outliers + 2 and est.counts["restarts"] == 0  # a 0.9999 gate: ~0.6 of 6000 good fixes fail it


def test_a_late_pose_gives_the_same_estimate_as_the_same_pose_on_time() -> None:
    rng = np.random.default_rng(3)
    on_time, late = QuadrotorEstimator(), QuadrotorEstimator()
    start = PoseEvent(np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, 0.0, 1.0]))
    for est in (on_time, late):
        est.pose(0.0, start)
    imus = [(k * DT, ImuEvent(np.array([0.1, 0.0, 9.81]) + rng.normal(0, 0.02, 3), rng.normal(0, 0.01, 3))) for k in range(1, 30)]
    pose = (10 * DT, PoseEvent(np.array([0.01, -0.01, 1.0]), np.array([0.0, 0.0, 0.01, 1.0]) / math.sqrt(1.0001)))
    for stamp, imu in imus:
        on_time.imu(stamp, imu)
        if stamp == pose[0]:
            on_time.pose(*pose)
        late.imu(stamp, imu)
    assert late.pose(*pose) == "applied"  # 19 IMU periods late: applied at its stamp, the later samples re-applied
    assert late.buffer.replayed == 19
    for name in ("p", "v", "q", "ba", "bg", "P"):
        np.testing.assert_allclose(getattr(late.eskf, name), getattr(on_time.eskf, name), rtol=0, atol=1e-12)


def test_a_pose_older_than_the_history_is_dropped_not_applied_out_of_order() -> None:
    est = QuadrotorEstimator(QuadrotorEskfParams(history_s=0.05))
    est.pose(0.0, PoseEvent(np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, 0.0, 1.0])))
    for k in range(1, 48):
        est.imu(k * DT, ImuEvent(np.array([0.0, 0.0, 9.81]), np.zeros(3)))
    before = est.eskf.snapshot()
    assert est.pose(5 * DT, PoseEvent(np.array([0.0, 0.0, 1.0]), None)) == "too_old"
    assert all(np.array_equal(a, b) for a, b in zip(est.eskf.snapshot(), before))


def test_non_finite_data_is_rejected_and_the_estimate_stays_finite() -> None:
    est = QuadrotorEstimator()
    nan3 = np.full(3, np.nan)
    assert est.imu(0.0, ImuEvent(np.zeros(3), np.zeros(3))) == "rejected"  # before the first pose: nothing to propagate
    assert est.pose(0.0, PoseEvent(nan3, np.array([0.0, 0.0, 0.0, 1.0]))) == "rejected"
    assert est.pose(0.0, PoseEvent(np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, 0.0, 1.0]))) == "applied"
    assert est.imu(DT, ImuEvent(nan3, np.zeros(3))) == "rejected"
    assert est.imu(math.nan, ImuEvent(np.zeros(3), np.zeros(3))) == "bad_stamp"
    assert est.pose(DT, PoseEvent(np.array([0.0, math.inf, 1.0]), None)) == "rejected"
    assert est.pose(DT, PoseEvent(np.array([0.0, 0.0, 1.0]), np.full(4, np.nan))) == "rejected"
    ddr = DiffDriveEstimator()
    assert ddr.process(0.0, PoseFixEvent(math.nan, 0.0, 0.0)) == "rejected"
    assert ddr.process(0.0, PoseFixEvent(0.0, 0.0, 0.0)) == "applied"
    assert ddr.process(DT, WheelOdometryEvent(math.nan, 0.0)) == "rejected"
    assert ddr.process(DT, YawRateEvent(math.inf)) == "rejected"
    for values in (est.eskf.p, est.eskf.v, est.eskf.q, est.eskf.P, ddr.ekf.x, ddr.ekf.P):
        assert np.all(np.isfinite(values))


def test_a_filter_locked_out_by_its_gate_restarts_from_the_poses() -> None:
    est = QuadrotorEstimator()
    level = np.array([0.0, 0.0, 0.0, 1.0])
    est.pose(0.0, PoseEvent(np.array([0.0, 0.0, 1.0]), level))
    moved = np.array([2.0, 0.0, 1.0])  # the robot was carried 2 m away (or the mocap origin moved)
    outcomes = []
    for k in range(1, 40):
        est.imu(k * DT, ImuEvent(np.array([0.0, 0.0, 9.81]), np.zeros(3)))
        outcomes.append(est.pose(k * DT, PoseEvent(moved, level)))
    assert outcomes[:25] == ["rejected"] * 25 and est.counts["restarts"] == 1
    np.testing.assert_allclose(est.eskf.p, moved, atol=1e-3)


# -- the node --------------------------------------------------------------------------------------


def fresh(msg: object) -> Received:
    return Received(msg, 0.0, False)


def test_node_publishes_odometry_with_covariance_from_imu_and_mocap_and_the_ros_mapping_keeps_it() -> None:
    node = StateEstimator("estimator", rate_hz=RATE_HZ)
    node.reset(0)
    imu = ImuSample(stamp=0.0, frame_id="base_link", linear_acceleration=np.array([0.0, 0.0, 9.81]))
    assert node.step(0.0, {"imu": fresh(imu), "pose": None}) == {}  # nothing before the first pose
    out: dict = {}
    for k in range(1, 24):
        t = k * DT
        imu = ImuSample(stamp=t, frame_id="base_link", linear_acceleration=np.array([0.0, 0.0, 9.81]),
                        linear_acceleration_covariance=np.eye(3) * 4e-4, angular_velocity_covariance=np.eye(3) * 1e-5)
        mocap = RobotState(stamp=t - 3 * DT, position=np.array([0.5, 0.0, 1.0]), pose_covariance=np.eye(6) * 1e-6)
        out = node.step(t, {"imu": fresh(imu), "pose": fresh(mocap) if k >= 3 else None})
        out = node.step(t, {"imu": fresh(imu), "pose": fresh(mocap) if k >= 3 else None}) or out  # the same messages again: old news
    state = out["state"]
    assert state.stamp == pytest.approx(23 * DT)
    np.testing.assert_allclose(state.position, [0.5, 0.0, 1.0], atol=1e-3)
    for covariance in (state.pose_covariance, state.twist_covariance):
        np.testing.assert_allclose(covariance, covariance.T, atol=1e-15)
        assert np.all(np.linalg.eigvalsh(covariance) > 0)
    assert node.counts["rejected"] == 3 and node.counts["too_old"] == 0  # the three IMU samples before the first pose
    back = RobotState.from_ros(state.to_ros(rosbags_types("jazzy")))
    np.testing.assert_array_equal(back.pose_covariance, state.pose_covariance)
    np.testing.assert_array_equal(back.twist_covariance, state.twist_covariance)
    assert node.step(1.0, {"imu": Received(imu, 0.9, True), "pose": None}) == {}  # a stale IMU: no estimate published


def test_node_estimates_a_husky_from_wheel_odometry_gyro_and_pose_fixes() -> None:
    node = StateEstimator("estimator", StateEstimator.Params(robot=HUSKY), rate_hz=RATE_HZ)
    node.reset(0)
    out: dict = {}
    heading = 0.0
    for k in range(240):
        t = k * DT
        heading += 0.5 * DT
        odom = RobotState(stamp=t, position=np.array([0.0, 0.0, 0.1]), orientation=np.array([0, 0, math.sin(heading / 2), math.cos(heading / 2)]),
                          linear_velocity=np.array([0.0, 0.0, 0.0]), angular_velocity=np.array([0.0, 0.0, 0.5]),
                          pose_covariance=np.eye(6) * 2.5e-5, twist_covariance=np.eye(6) * 4e-4)
        gyro = ImuSample(stamp=t, angular_velocity=np.array([0.0, 0.0, 0.5]), angular_velocity_covariance=np.eye(3) * 1e-5)
        out = node.step(t, {"wheel_odom": fresh(odom), "pose": fresh(odom), "imu": fresh(gyro)}) or out
    state = out["state"]
    assert state.angular_velocity[2] == pytest.approx(0.5, abs=0.01)
    assert 2 * math.atan2(state.orientation[2], state.orientation[3]) == pytest.approx(heading - 0.5 * DT, abs=0.01)
    assert state.position[2] == 0.1 and np.all(np.linalg.eigvalsh(state.pose_covariance) > 0)
    assert node.counts["rejected"] == 0


def test_node_refuses_a_robot_it_cannot_estimate() -> None:
    from aegis.config import RobotConfig

    with pytest.raises(ValueError, match="point_mass"):
        StateEstimator("estimator", StateEstimator.Params(robot=RobotConfig(name="p", kind="point_mass", mass_kg=1.0)))


def test_simulated_imu_biases_are_drawn_per_episode_and_left_off_unmeasured_fields() -> None:
    from aegis.sim.sensors import NoiseParams, biased_imu, draw_imu_bias

    noise = NoiseParams(gyro_bias_std_radps=0.005, accel_bias_std_mps2=0.05)
    accel_bias, gyro_bias = draw_imu_bias(noise, np.random.default_rng([7, 2]))
    again = draw_imu_bias(noise, np.random.default_rng([7, 2]))
    np.testing.assert_array_equal(accel_bias, again[0])  # one seed, one episode's biases
    assert 0 < np.linalg.norm(gyro_bias) < 0.05 and 0 < np.linalg.norm(accel_bias) < 0.5
    sample = ImuSample(angular_velocity=np.array([0.0, 0.0, 1.0]), linear_acceleration_covariance=np.diag([-1.0, 0.0, 0.0]))
    biased = biased_imu(sample, accel_bias, gyro_bias)
    np.testing.assert_array_equal(biased.angular_velocity, sample.angular_velocity + gyro_bias)
    np.testing.assert_array_equal(biased.linear_acceleration, sample.linear_acceleration)  # "not measured": untouched
    zero = draw_imu_bias(NoiseParams(), np.random.default_rng(0))
    assert not np.any(zero[0]) and not np.any(zero[1])


def test_poses_that_cannot_start_the_filter_do_not_count_as_a_lock_out() -> None:
    est = QuadrotorEstimator()
    for k in range(40):  # a position without an attitude cannot start it
        assert est.pose(k * DT, PoseEvent(np.array([0.0, 0.0, 1.0]), None)) == "rejected"
    assert est.counts["restarts"] == 0 and not est.eskf.initialised
