"""Quadrotor model helpers, the cascade's levels, and the hw_config's quadrotor section (no PyBullet here)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from aegis.config import CRAZYFLIE_2X, QuadrotorConfig, RobotConfig, load_config

from aegis.config_files import ConfigError
from aegis.controllers.quadrotor_cascade import CascadeGains, QuadrotorCascade
from aegis.controllers.quadrotor_model import (
    QuadrotorModel,
    hover_motor_speed,
    matrix_to_quaternion,
    mixing_matrix,
    motor_lag_factor,
    motor_lag_step,
    quaternion_to_matrix,
    rotor_positions,
)
from aegis.launch_plan import make_plan

REPO = Path(__file__).resolve().parent.parent
QUADROTOR_CONFIG = REPO / "hw_configs" / "quadrotor_cascade_sim.yaml"
MODEL = QuadrotorModel.from_robot(CRAZYFLIE_2X)
LEVEL = np.array([0.0, 0.0, 0.0, 1.0])


# --- mixing, hover speed, motor lag -------------------------------------------------------------


def test_crazyflie_coefficients_are_the_cited_rpm_values_in_rad_per_s() -> None:
    rpm_squared_per_radps_squared = (60 / (2 * math.pi)) ** 2
    q = QuadrotorConfig()
    assert q.kf == pytest.approx(3.16e-10 * rpm_squared_per_radps_squared, rel=1e-12)
    assert q.km == pytest.approx(7.94e-12 * rpm_squared_per_radps_squared, rel=1e-12)
    # Hover near 14,500 rpm, as the cf2x is known to.
    assert hover_motor_speed(0.027, q.kf) * 60 / (2 * math.pi) == pytest.approx(14476, abs=5)


def test_mixing_inverse_recovers_motor_speeds_inside_the_limits() -> None:
    rng = np.random.default_rng(0)
    for _ in range(100):
        speeds = rng.uniform(200.0, 2200.0, size=4)
        thrust, torques = MODEL.wrench(speeds)
        np.testing.assert_allclose(MODEL.motor_speeds(thrust, torques), speeds, rtol=1e-9)
    np.testing.assert_allclose(MODEL.mix @ MODEL.unmix, np.eye(4), atol=1e-12)


def test_hover_speed_carries_exactly_the_weight_with_no_torque() -> None:
    speed = MODEL.hover_motor_speed
    assert speed == hover_motor_speed(0.027, MODEL.kf)
    thrust, torques = MODEL.wrench(np.full(4, speed))
    assert thrust == pytest.approx(0.027 * 9.81, rel=1e-12)
    np.testing.assert_allclose(torques, 0.0, atol=1e-18)
    np.testing.assert_allclose(MODEL.motor_speeds(0.027 * 9.81, np.zeros(3)), speed, rtol=1e-12)


def test_rotor_layout_and_torque_signs_follow_flu() -> None:
    positions = rotor_positions(0.0397)
    np.testing.assert_allclose(np.linalg.norm(positions, axis=1), 0.0397)
    assert positions[0, 0] > 0 > positions[0, 1]  # rotor 0: front right
    hover = MODEL.hover_motor_speed
    left_faster = np.array([hover, hover, hover * 1.1, hover * 1.1])  # rotors 2, 3 are on the left (+y)
    front_faster = np.array([hover * 1.1, hover, hover, hover * 1.1])  # rotors 0, 3 in front (+x)
    ccw_faster = np.array([hover * 1.1, hover, hover * 1.1, hover])  # rotors 0, 2 turn CCW
    assert MODEL.wrench(left_faster)[1][0] > 0  # lifts the left side: positive roll about +x
    assert MODEL.wrench(front_faster)[1][1] < 0  # lifts the nose: negative pitch about +y
    assert MODEL.wrench(ccw_faster)[1][2] < 0  # CCW rotors' drag turns the body clockwise
    a = mixing_matrix(0.0397, MODEL.kf, MODEL.km)
    np.testing.assert_array_equal(a, MODEL.mix)


def test_saturated_mixing_keeps_speeds_in_range_and_the_torques_first() -> None:
    torques = np.array([2e-4, -1e-4, 5e-5])
    speeds = MODEL.motor_speeds(10.0 * MODEL.max_thrust_n, torques)  # far too much thrust
    assert speeds.max() <= MODEL.max_motor_speed_radps and speeds.min() >= 0
    np.testing.assert_allclose(MODEL.wrench(speeds)[1], torques, rtol=1e-9)  # thrust gave way
    speeds = MODEL.motor_speeds(0.0, torques)  # no thrust: the torques still come out
    assert speeds.min() >= 0
    np.testing.assert_allclose(MODEL.wrench(speeds)[1], torques, rtol=1e-9)


def test_motor_lag_is_first_order_with_the_configured_time_constant() -> None:
    tau, dt = 0.025, 1.0 / 240.0
    factor = motor_lag_factor(dt, tau)
    speeds = np.zeros(4)
    command = np.full(4, 1000.0)
    steps = 60  # 0.25 s = 10 time constants
    trace = [motor_lag_step(speeds, command, factor).copy() for _ in range(steps)]
    times = dt * np.arange(1, steps + 1)
    np.testing.assert_allclose(np.array(trace)[:, 0], 1000.0 * (1 - np.exp(-times / tau)), rtol=1e-12)
    assert motor_lag_factor(tau, tau) == pytest.approx(1 - math.exp(-1))


def test_quaternion_matrix_round_trip() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = q if q[3] >= 0 else -q
        r = quaternion_to_matrix(q)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(matrix_to_quaternion(r), q, atol=1e-12)


# --- the cascade's levels -----------------------------------------------------------------------


def cascade() -> QuadrotorCascade:
    return QuadrotorCascade(MODEL, CascadeGains(), dt=1.0 / 48.0)


def test_cascade_at_its_setpoint_commands_hover_speeds() -> None:
    speeds = cascade().compute(np.array([0, 0, 1.0]), np.zeros(3), LEVEL, np.zeros(3), np.array([0, 0, 1.0]))
    np.testing.assert_allclose(speeds, MODEL.hover_motor_speed, rtol=1e-9)


def test_cascade_tilts_toward_a_goal_ahead_and_climbs_to_a_goal_above() -> None:
    c = cascade()
    c.compute(np.zeros(3), np.zeros(3), LEVEL, np.zeros(3), np.array([1.0, 0.0, 0.0]))
    assert c.acceleration_setpoint[0] > 0
    assert c.rate_setpoint[1] > 0  # rotate about +y: thrust leans toward +x
    assert c.torque_setpoint[1] > 0
    c = cascade()
    c.compute(np.zeros(3), np.zeros(3), LEVEL, np.zeros(3), np.array([0.0, 0.0, 1.0]))
    assert c.thrust_setpoint > MODEL.weight_n


def test_every_level_is_an_entry_point() -> None:
    c = cascade()
    hover = MODEL.hover_motor_speed
    np.testing.assert_allclose(c.compute_velocity(np.zeros(3), LEVEL, np.zeros(3), np.zeros(3)), hover, rtol=1e-9)
    np.testing.assert_allclose(c.compute_acceleration(LEVEL, np.zeros(3), np.zeros(3)), hover, rtol=1e-9)
    np.testing.assert_allclose(c.compute_attitude(LEVEL, np.zeros(3), LEVEL, MODEL.weight_n), hover, rtol=1e-9)
    speeds = c.compute_thrust_rates(np.zeros(3), MODEL.weight_n, np.array([0.0, 0.0, 1.0]))
    thrust, torques = MODEL.wrench(speeds)
    assert thrust == pytest.approx(MODEL.weight_n, rel=1e-9)
    assert torques[2] > 0 and abs(torques[0]) < 1e-15 and abs(torques[1]) < 1e-15  # yaw left


def test_cascade_limits_tilt_and_speed() -> None:
    c = cascade()
    c.compute(np.zeros(3), np.zeros(3), LEVEL, np.zeros(3), np.array([100.0, 0.0, 0.0]))
    assert np.linalg.norm(c.velocity_setpoint) == pytest.approx(CascadeGains().max_speed_mps)
    tilt = math.acos(quaternion_to_matrix(c.attitude_setpoint)[2, 2])
    assert tilt <= CascadeGains().max_tilt_rad + 1e-9


def test_gains_are_checked() -> None:
    with pytest.raises(ValueError, match="position_kp"):
        CascadeGains(position_kp=(1.0, -1.0, 1.0))
    with pytest.raises(ValueError, match="max_tilt_rad"):
        CascadeGains(max_tilt_rad=2.0)


# --- the hw_config's quadrotor section ----------------------------------------------------------


def write_quadrotor_config(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load(QUADROTOR_CONFIG.read_text())
    mutate(raw)
    path = tmp_path / "quad.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_quadrotor_kind_needs_its_section(tmp_path: Path) -> None:
    path = write_quadrotor_config(tmp_path, lambda raw: raw["robot"].pop("quadrotor"))
    with pytest.raises(ConfigError, match=r"robot: .*kind quadrotor needs a quadrotor: section"):
        load_config(path)


def test_quadrotor_section_on_another_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="only for kind quadrotor"):
        RobotConfig(name="p", kind="point_mass", mass_kg=1.0, quadrotor=QuadrotorConfig())


def test_non_positive_and_unknown_quadrotor_parameters_are_named(tmp_path: Path) -> None:
    def mutate(raw):
        raw["robot"]["quadrotor"] = {"arm_length_m": 0.0, "inertia_kg_m2": [1e-5, -1e-5, 2e-5], "kff": 1.0}

    with pytest.raises(ConfigError) as err:
        load_config(write_quadrotor_config(tmp_path, mutate))
    message = str(err.value)
    assert "robot.quadrotor.arm_length_m" in message
    assert "robot.quadrotor.inertia_kg_m2.1" in message
    assert "robot.quadrotor.kff: unknown key" in message


def test_thrust_coefficient_in_rpm_units_is_caught(tmp_path: Path) -> None:
    path = write_quadrotor_config(tmp_path, lambda raw: raw["robot"].update(quadrotor={"kf": 3.16e-10}))
    with pytest.raises(ConfigError, match=r"cannot hover.*kf in N/\(rad/s\)\^2"):
        load_config(path)


def test_robot_section_reaches_the_simulator_and_the_controller(tmp_path: Path) -> None:
    def mutate(raw):
        raw["robot"]["mass_kg"] = 0.03
        raw["robot"]["quadrotor"] = {"arm_length_m": 0.045}
        raw["nodes"]["sim"]["params"]["robot"] = {"mass_kg": 0.032}  # a deliberate model mismatch

    plan = make_plan(load_config(write_quadrotor_config(tmp_path, mutate)))
    sim, controller = plan.nodes
    assert controller.params["robot"]["mass_kg"] == 0.03
    assert sim.params["robot"]["mass_kg"] == 0.032
    for node in (sim, controller):
        assert node.params["robot"]["quadrotor"]["arm_length_m"] == 0.045
        assert node.params["robot"]["quadrotor"]["kf"] == QuadrotorConfig().kf


def test_quadrotor_nodes_refuse_another_robot_kind(tmp_path: Path) -> None:
    def mutate(raw):
        raw["robot"] = {"name": "p", "kind": "point_mass", "mass_kg": 1.0}

    with pytest.raises(ConfigError) as err:
        load_config(write_quadrotor_config(tmp_path, mutate))
    assert "nodes.sim.params.robot" in str(err.value) and "nodes.controller.params.robot" in str(err.value)
