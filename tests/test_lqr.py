"""The hover LQR: a stable discrete loop, scipy's Riccati identity, hover thrust = weight, and a PyBullet recovery.

The PyBullet flights (DIRECT, deterministic) start 0.3 m from the hover point with 0.2 rad of yaw
error and rotors at hover speed; the LQR runs at 48 Hz over 240 Hz physics, its command acting
from the next physics step on, as under the sim bridge. Measured on the development machine
(settling = the last time the position error is >= 2 cm): 0.79 s from (+0.2, -0.2, -0.1) m,
0.81 s from 0.3 m along x, 0.73 s from 0.3 m below, 0.83 s from (-0.2, +0.2, +0.1) m turning
across +-pi; the yaw error stays under 0.02 rad after 0.47 s at most; the position error then
decays to below 1e-10 m by 5 s. The tests allow 1.5 s, about twice that.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.signal

from aegis.config import CRAZYFLIE_2X
from aegis.controllers.lqr import HoverLqr, bryson_weights, discretize, hover_model
from aegis.controllers.quadrotor_model import QuadrotorModel, yaw_quaternion

MODEL = QuadrotorModel.from_robot(CRAZYFLIE_2X)
CONTROL_HZ = 48.0
PHYSICS_HZ = 240.0
LQR = HoverLqr(MODEL, 1.0 / CONTROL_HZ)


def test_discrete_closed_loop_is_stable() -> None:
    closed = LQR.ad - LQR.bd @ LQR.k
    assert max(abs(np.linalg.eigvals(closed))) < 1.0


def test_gain_is_the_riccati_solution_of_an_independently_discretised_model() -> None:
    a, b = hover_model(MODEL)
    ad, bd, *_ = scipy.signal.cont2discrete((a, b, np.eye(12), np.zeros((12, 4))), 1.0 / CONTROL_HZ, method="zoh")
    np.testing.assert_allclose(LQR.ad, ad, atol=1e-12)
    np.testing.assert_allclose(LQR.bd, bd, atol=1e-12)
    q, r = bryson_weights(MODEL)
    p = scipy.linalg.solve_discrete_are(ad, bd, q, r)
    k = np.linalg.inv(r + bd.T @ p @ bd) @ bd.T @ p @ ad
    np.testing.assert_allclose(LQR.k, k, rtol=1e-9, atol=1e-9 * np.abs(k).max())
    # P solves the discrete algebraic Riccati equation itself.
    residual = ad.T @ p @ ad - p - ad.T @ p @ bd @ k + q
    assert np.abs(residual).max() < 1e-9 * np.abs(q).max()


def test_gain_also_stabilises_the_motor_lag_and_latency_it_leaves_out() -> None:
    """Exact hybrid model: 240 Hz physics with first-order motor lag, command held 5 steps, applied one step late."""
    tau = MODEL.motor_time_constant_s
    a, b = hover_model(MODEL)
    a_lag = np.block([[a, b], [np.zeros((4, 12)), -np.eye(4) / tau]])  # the wrench follows its command with lag tau
    b_lag = np.vstack([np.zeros((12, 4)), np.eye(4) / tau])
    ap, bp = discretize(a_lag, b_lag, 1.0 / PHYSICS_HZ)
    sub = round(PHYSICS_HZ / CONTROL_HZ)
    powers = [np.linalg.matrix_power(ap, i) for i in range(sub + 1)]
    k = np.hstack([LQR.k, np.zeros((4, 4))])
    held = sum(powers[: sub - 1]) @ bp  # steps 2..sub: the new command
    # State [x (12), wrench (4), previous command (4)] at control ticks; u = -K x.
    loop = np.block([[powers[sub] - held @ k, powers[sub - 1] @ bp], [-k, np.zeros((4, 4))]])
    assert max(abs(np.linalg.eigvals(loop))) < 0.95  # 0.915 measured, as without lag and latency


@pytest.mark.parametrize("yaw", [0.0, 1.0, -2.5])
def test_at_hover_the_thrust_equals_the_weight_and_no_torque(yaw: float) -> None:
    at = np.array([0.3, -1.2, 1.0])
    speeds = LQR.compute(at, np.zeros(3), yaw_quaternion(yaw), np.zeros(3), at, yaw)
    thrust, torques = MODEL.wrench(speeds)
    assert thrust == pytest.approx(MODEL.weight_n, rel=1e-12)
    np.testing.assert_allclose(torques, 0.0, atol=1e-15)
    np.testing.assert_allclose(speeds, MODEL.hover_motor_speed, rtol=1e-12)


def test_same_inputs_same_speeds_and_inputs_untouched() -> None:
    args = (np.array([0.1, 0.2, 0.9]), np.array([0.3, -0.1, 0.05]), np.array([0.02, -0.03, 0.1, 0.994]), np.array([0.5, -0.2, 0.1]))
    args = (*args[:2], args[2] / np.linalg.norm(args[2]), args[3])
    ref = np.array([0.0, 0.0, 1.0])
    copies = [a.copy() for a in args]
    first = LQR.compute(*args, ref, 0.3)
    again = LQR.compute(*args, ref, 0.3)
    np.testing.assert_array_equal(first, again)
    for arg, copy in zip(args, copies):
        np.testing.assert_array_equal(arg, copy)


def test_a_turned_scene_gives_the_same_rotor_speeds() -> None:
    """Position and velocity enter in the reference heading's frame: turning everything about z changes nothing."""
    turn = 1.1
    rz = np.array([[math.cos(turn), -math.sin(turn), 0.0], [math.sin(turn), math.cos(turn), 0.0], [0.0, 0.0, 1.0]])
    position, velocity, ref = np.array([0.2, -0.1, 0.8]), np.array([0.1, 0.3, -0.2]), np.array([0.0, 0.0, 1.0])
    tilt = np.array([0.05, -0.04, math.sin(0.1), math.cos(0.1)])
    tilt /= np.linalg.norm(tilt)
    rates = np.array([0.3, -0.2, 0.1])
    speeds = LQR.compute(position, velocity, tilt, rates, ref, 0.2)
    turned_orientation = _multiply(yaw_quaternion(turn), tilt)
    turned = LQR.compute(rz @ position, rz @ velocity, turned_orientation, rates, rz @ ref, 0.2 + turn)
    np.testing.assert_allclose(turned, speeds, rtol=1e-9)


def test_far_from_hover_the_speeds_stay_within_the_rotor_limits() -> None:
    speeds = LQR.compute(np.array([5.0, -5.0, -3.0]), np.array([4.0, 0.0, 3.0]), np.array([0.5, 0.0, 0.0, math.sqrt(0.75)]), np.array([20.0, -20.0, 5.0]), np.zeros(3), 0.0)
    assert speeds.shape == (4,)
    assert np.all(speeds >= 0.0) and np.all(speeds <= MODEL.max_motor_speed_radps)


def test_refuses_bad_weights() -> None:
    q, r = bryson_weights(MODEL)
    with pytest.raises(ValueError, match="positive definite"):
        HoverLqr(MODEL, 0.02, q, np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"\(12, 12\)"):
        HoverLqr(MODEL, 0.02, np.eye(4), r)
    with pytest.raises(ValueError, match="dt"):
        HoverLqr(MODEL, 0.0)


# --- closed loop in PyBullet ----------------------------------------------------------------------

HOVER_AT = np.array([0.5, -0.5, 1.0])


@pytest.mark.parametrize(
    ("offset", "yaw_start", "yaw_ref"),
    [
        ((0.2, -0.2, -0.1), 0.2, 0.0),  # 0.3 m off, 0.2 rad of yaw error
        ((0.3, 0.0, 0.0), 0.2, 0.0),
        ((0.0, 0.0, -0.3), -0.2, 0.0),
        ((-0.2, 0.2, 0.1), math.pi - 0.1, -math.pi + 0.1),  # 0.2 rad the short way round, across +-pi
    ],
)
def test_pybullet_lqr_brings_the_quadrotor_within_2_cm_and_holds_it(
    offset: tuple[float, float, float], yaw_start: float, yaw_ref: float
) -> None:
    pytest.importorskip("pybullet")
    from aegis.sim.pybullet_world import QuadrotorWorld

    assert np.linalg.norm(offset) == pytest.approx(0.3)
    world = QuadrotorWorld(CRAZYFLIE_2X, physics_rate_hz=PHYSICS_HZ)
    try:
        world.reset(HOVER_AT + np.array(offset), yaw=yaw_start, motor_speeds=MODEL.hover_motor_speed)
        decimation = round(PHYSICS_HZ / CONTROL_HZ)
        command = np.full(4, MODEL.hover_motor_speed)
        times, errors, yaw_errors = [], [], []
        for step in range(int(5.0 * PHYSICS_HZ)):
            if step % decimation == 0:
                s = world.state()
                fresh = LQR.compute(s.position, s.velocity_world, s.orientation, s.body_rates, HOVER_AT, yaw_ref)
            world.step(command)  # the bridge applies a new command from the next physics step on
            if step % decimation == 0:
                command = fresh
            s = world.state()
            times.append(s.time_s)
            errors.append(np.linalg.norm(s.position - HOVER_AT))
            yaw = 2.0 * math.atan2(s.orientation[2], s.orientation[3])
            yaw_errors.append(abs(math.remainder(yaw - yaw_ref, 2.0 * math.pi)))
            assert not world.in_contact()
    finally:
        world.close()
    times_a, errors_a, yaw_a = np.array(times), np.array(errors), np.array(yaw_errors)
    settled = times_a >= 1.5
    assert errors_a[settled].max() < 0.02, f"settling: last error >= 2 cm at {times_a[errors_a >= 0.02].max():.2f} s"
    assert yaw_a[settled].max() < 0.02
    assert errors_a[-1] < 1e-3  # and it keeps converging


def _multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a ⊗ b of (x, y, z, w) quaternions."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )
