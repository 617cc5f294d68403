"""The quadrotor cascade's inner loops on floats against the numpy code they replaced: the same motor speeds to rounding.

:class:`Reference` is the former acceleration -> attitude -> body rates -> torques -> mixing chain,
verbatim in its array arithmetic (``np.clip`` PID, ``quat_multiply``, ``matrix_to_quaternion``, the
mixer's ``unmix @ wrench``). The float path does the same operations in the same order except where
numpy sums a dot product its own way, so the two agree to a few ulps; 1e-9 relative on motor speeds
of order 1e3 rad/s is far below anything a flight could show, and far above rounding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from aegis.config import CRAZYFLIE_2X
from aegis.controllers.pid import Pid
from aegis.controllers.quadrotor_cascade import CascadeGains, QuadrotorCascade
from aegis.controllers.quadrotor_model import QuadrotorModel
from aegis.rotations import matrix_to_quaternion, quat_conjugate, quat_multiply, quaternion_to_matrix

MODEL = QuadrotorModel.from_robot(CRAZYFLIE_2X)


def _cross(a, b):
    ax, ay, az = a
    bx, by, bz = b
    return np.array([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx])


def _motor_speeds(model: QuadrotorModel, thrust: float, torques: np.ndarray) -> np.ndarray:
    wrench = np.empty(4)
    wrench[0] = thrust
    wrench[1:] = torques
    squared = model.unmix @ wrench
    limit = model.max_motor_speed_radps**2
    low, high = squared.min(), squared.max()
    if high - low <= limit:
        if high > limit:
            squared -= high - limit
        elif low < 0.0:
            squared -= low
    np.maximum(squared, 0.0, out=squared)
    np.minimum(squared, limit, out=squared)
    return np.sqrt(squared)


class Reference:
    """The former QuadrotorCascade.compute_acceleration chain (numpy on 3- and 4-vectors)."""

    def __init__(self, model: QuadrotorModel, gains: CascadeGains, dt: float) -> None:
        self.model, self.gains, self.dt = model, gains, dt
        self.attitude_kp = np.asarray(gains.attitude_kp, dtype=float)
        self.max_rate = np.asarray(gains.max_rate_radps, dtype=float)
        self.rate_pid = Pid(gains.rate_kp, gains.rate_ki, 0.0, np.inf, gains.rate_integral_limit, dim=3)
        self.tan_max_tilt = math.tan(gains.max_tilt_rad)
        self.min_thrust = 0.1 * model.weight_n

    def compute_acceleration(self, orientation, body_rates, acceleration, yaw):
        force = self.model.mass_kg * (np.array(acceleration, dtype=float) + self.model.gravity_mps2 * np.array([0.0, 0.0, 1.0]))
        force[2] = max(force[2], self.min_thrust)
        horizontal = math.hypot(force[0], force[1])
        limit = force[2] * self.tan_max_tilt
        if horizontal > limit:
            force[:2] *= limit / horizontal
        z_axis = force / math.sqrt(force @ force)
        y_axis = _cross(z_axis, np.array([math.cos(yaw), math.sin(yaw), 0.0]))
        y_axis /= math.sqrt(y_axis @ y_axis)
        x_axis = _cross(y_axis, z_axis)
        attitude = matrix_to_quaternion(np.array([x_axis, y_axis, z_axis]).T)
        body_z = quaternion_to_matrix(orientation)[:, 2]
        thrust = min(max(float(force @ body_z), 0.0), self.model.max_thrust_n)
        error = quat_multiply(quat_conjugate(orientation), attitude)
        sign = 1.0 if error[3] >= 0.0 else -1.0
        rates = np.minimum(np.maximum((2.0 * sign) * self.attitude_kp * error[:3], -self.max_rate), self.max_rate)
        angular_accel = self.rate_pid.compute(rates - body_rates, np.zeros(3), self.dt)
        inertia = self.model.inertia_kg_m2
        torque = inertia * angular_accel + _cross(body_rates, inertia * body_rates)
        return _motor_speeds(self.model, thrust, torque), attitude, thrust, rates, torque


def _random_unit_quaternion(rng: np.random.Generator, tilt: float) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = rng.uniform(-tilt, tilt)
    return np.array([*(axis * math.sin(angle / 2)), math.cos(angle / 2)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_float_inner_loops_give_the_former_numpy_chain_s_numbers(seed: int) -> None:
    """Random attitudes (up to 170 degrees: Shepperd's every branch, the shorter way round both ways), rates, commands
    up to twice the limits (tilt and rate saturation, the rotor limits) and headings, over 400 ticks of one integrator."""
    rng = np.random.default_rng(seed)
    gains = CascadeGains(rate_ki=(2.0, 2.0, 1.0))  # an integrator that moves, so its state is compared too
    fast, reference = QuadrotorCascade(MODEL, gains, 1 / 240), Reference(MODEL, gains, 1 / 240)
    for _ in range(400):
        orientation = _random_unit_quaternion(rng, math.radians(170))
        body_rates = rng.normal(scale=3.0, size=3)
        command = rng.normal(scale=8.0, size=3)
        yaw = rng.uniform(-math.pi, math.pi)
        speeds = fast.compute_acceleration(orientation, body_rates, command, yaw)
        expected, attitude, thrust, rates, torque = reference.compute_acceleration(orientation, body_rates, command, yaw)
        np.testing.assert_allclose(speeds, expected, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(fast.attitude_setpoint, attitude, rtol=0, atol=1e-12)
        assert fast.thrust_setpoint == pytest.approx(thrust, rel=1e-12, abs=1e-15)
        np.testing.assert_allclose(fast.rate_setpoint, rates, rtol=0, atol=1e-12)
        np.testing.assert_allclose(fast.torque_setpoint, torque, rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(fast.acceleration_setpoint, command, rtol=0, atol=0)
        np.testing.assert_allclose(fast._rate_pid.integral, reference.rate_pid.integral, rtol=0, atol=1e-12)


def test_the_float_mixer_gives_the_former_numpy_mixer_s_numbers_and_keeps_a_nan() -> None:
    rng = np.random.default_rng(7)
    for _ in range(2000):
        thrust = rng.uniform(-0.1, 1.2) * MODEL.max_thrust_n
        torques = rng.normal(scale=2e-3, size=3)
        np.testing.assert_allclose(MODEL.motor_speeds(thrust, torques), _motor_speeds(MODEL, thrust, torques), rtol=1e-9, atol=1e-9)
    out = np.empty(4)
    assert MODEL.motor_speeds(0.3, np.array([0.0, 0.0, 0.0]), out=out) is out
    assert np.isnan(MODEL.motor_speeds(float("nan"), np.zeros(3))).all()
    assert np.array_equal(np.isnan(MODEL.motor_speeds(0.3, np.array([np.nan, 0.0, 0.0]))), np.isnan(_motor_speeds(MODEL, 0.3, np.array([np.nan, 0.0, 0.0]))))
