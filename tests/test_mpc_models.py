"""The robots' MPC models: quadrotor about hover (12x4), translational (6x3), diff-drive along a reference (3x2, 4x2).

Each fast path is checked against the cvxpy reference at tight tolerances on random states, then
for what the model promises: the hover MPC is the hover LQR where no limit binds and keeps the
rotors within their range; the diff-drive linearisation passes through the reference, is the
unicycle's to first order, and tracks a curve in closed loop on the nonlinear unicycle.
"""

from __future__ import annotations

import itertools
import math

import cvxpy as cp
import numpy as np
import pytest

from aegis.config import CRAZYFLIE_2X
from aegis.controllers.mpc.diff_drive import diff_drive_tracking_mpc, unicycle_reference
from aegis.controllers.mpc.linear import OsqpSettings
from aegis.controllers.mpc.quadrotor import hover_input_box, quadrotor_hover_mpc, translational_mpc, translational_reference
from aegis.controllers.mpc.reference import CvxpyMpc
from aegis.controllers.quadrotor_model import QuadrotorModel, yaw_quaternion

MODEL = QuadrotorModel.from_robot(CRAZYFLIE_2X)
DT_QUAD = 1.0 / 48.0
TIGHT = OsqpSettings(eps_abs=1e-9, eps_rel=1e-9, max_iter=200_000)
CLARABEL_TIGHT = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12, "tol_ktratio": 1e-10, "max_iter": 500}


def figure8(t0: float, dt: float, steps: int, period: float = 10.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World-frame samples (steps, 3) of the shipped scenario's figure-8 (1.2 m x 0.6 m at 1 m)."""
    t = t0 + dt * np.arange(steps)
    w = 2 * np.pi / period
    p = np.column_stack([1.2 * np.sin(w * t), 0.6 * np.sin(2 * w * t), np.ones_like(t)])
    v = np.column_stack([1.2 * w * np.cos(w * t), 1.2 * w * np.cos(2 * w * t), np.zeros_like(t)])
    a = np.column_stack([-1.2 * w * w * np.sin(w * t), -2.4 * w * w * np.sin(2 * w * t), np.zeros_like(t)])
    return p, v, a


# --- quadrotor about hover ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def hover():
    return quadrotor_hover_mpc(MODEL, DT_QUAD, 20, settings=TIGHT)


def test_hover_input_box_keeps_every_rotor_within_its_range() -> None:
    u_min, u_max = hover_input_box(MODEL)
    from aegis.controllers.lqr import input_authority

    authority = input_authority(MODEL)
    limit = MODEL.max_motor_speed_radps**2
    for corner in itertools.product(*zip(u_min, u_max, strict=True)):
        wrench = np.array(corner) * authority
        wrench[0] += MODEL.weight_n
        squared = MODEL.unmix @ wrench
        assert squared.min() >= -1e-9 * limit and squared.max() <= limit * (1 + 1e-9), corner
    with pytest.raises(ValueError, match="torque_fraction"):
        hover_input_box(MODEL, 0.5)


def test_hover_mpc_equals_the_cvxpy_reference(hover) -> None:
    rng = np.random.default_rng(3)
    reference = CvxpyMpc(hover.mpc.problem, cp.CLARABEL, CLARABEL_TIGHT)
    for i in range(15):
        x0 = np.concatenate([rng.uniform(-0.3, 0.3, 3), rng.uniform(-0.5, 0.5, 3), rng.uniform(-0.1, 0.1, 3), rng.uniform(-0.5, 0.5, 3)])
        p, v, a = figure8(i * 0.7, DT_QUAD, 21)
        x_ref, u_ref = hover.reference(p, v, a, 0.0)
        hover.reset()
        u_fast, info_fast = hover.mpc.compute(x0, x_ref, u_ref)
        u_cvx, info_cvx = reference.compute(x0, x_ref, u_ref)
        assert info_fast.ok and info_cvx.ok
        np.testing.assert_allclose(info_fast.u_pred, info_cvx.u_pred, atol=1e-4)
        np.testing.assert_allclose(info_fast.x_pred, info_cvx.x_pred, atol=1e-4)


def test_hover_mpc_is_the_hover_lqr_where_no_limit_binds(hover) -> None:
    """Terminal weight = the LQR's Riccati solution: unconstrained, the MPC's first input is -K x exactly."""
    x0 = np.zeros(12)
    x0[:3] = [0.02, -0.01, 0.015]
    x0[8] = 0.01
    u, info = hover.mpc.compute(x0, np.zeros(12))
    assert info.ok
    np.testing.assert_allclose(u * hover.authority, -hover.lqr.k @ x0, rtol=1e-5, atol=1e-9)


def test_hover_mpc_at_the_hover_point_commands_hover_speed(hover) -> None:
    position = np.array([0.3, -0.2, 1.0])
    rest = np.zeros((21, 3))
    speeds, info = hover.compute(position, np.zeros(3), yaw_quaternion(0.4), np.zeros(3), position + rest, rest, rest, 0.4)
    assert info.ok
    np.testing.assert_allclose(speeds, MODEL.hover_motor_speed, rtol=1e-6)


def test_hover_mpc_flies_the_linear_model_to_the_reference_within_its_limits() -> None:
    hover = quadrotor_hover_mpc(MODEL, DT_QUAD, 20)
    problem = hover.mpc.problem
    x = np.zeros(12)
    x[:3] = [0.8, -0.6, 0.4]  # far: tilt and speed limits bind on the way
    for _ in range(int(4.0 / DT_QUAD)):
        u, info = hover.mpc.compute(x, np.zeros(12))
        assert info.ok, info.status
        assert np.all(u >= problem.u_min) and np.all(u <= problem.u_max)
        x = problem.a @ x + problem.b @ u
        assert np.all(np.abs(x[6:8]) <= math.radians(30.0) + 1e-3)
    assert np.abs(x[:3]).max() < 0.01


# --- translational ----------------------------------------------------------------------------------


def test_translational_mpc_equals_the_cvxpy_reference_and_keeps_the_geofence() -> None:
    fence_min, fence_max = np.array([-1.0, -1.0, 0.2]), np.array([1.0, 1.0, 2.0])
    fast = translational_mpc(DT_QUAD, 20, a_max=4.0, v_max=1.5, position_min=fence_min, position_max=fence_max, settings=TIGHT)
    reference = CvxpyMpc(fast.problem, cp.CLARABEL, CLARABEL_TIGHT)
    rng = np.random.default_rng(4)
    for i in range(15):
        x0 = np.concatenate([rng.uniform(-0.8, 0.8, 2), rng.uniform(0.4, 1.8, 1), rng.uniform(-0.5, 0.5, 3)])
        x_ref, u_ref = translational_reference(*figure8(i * 0.9, DT_QUAD, 21))
        x_ref = x_ref * np.array([2.0, 2.0, 1.0, 1.0, 1.0, 1.0])  # reaches out of the fence: the fence binds
        fast.reset()
        _, info_fast = fast.compute(x0, x_ref, u_ref)
        _, info_cvx = reference.compute(x0, x_ref, u_ref)
        assert info_fast.ok and info_cvx.ok
        np.testing.assert_allclose(info_fast.u_pred, info_cvx.u_pred, atol=1e-4)
        np.testing.assert_allclose(info_fast.x_pred, info_cvx.x_pred, atol=1e-4)
        assert np.all(info_fast.x_pred[1:, :3] >= fence_min - 1e-6) and np.all(info_fast.x_pred[1:, :3] <= fence_max + 1e-6)


def test_translational_mpc_tracks_the_figure8_in_closed_loop() -> None:
    mpc = translational_mpc(DT_QUAD, 20)
    a, b = mpc.problem.a, mpc.problem.b
    x = np.array([0.3, -0.3, 0.8, 0.0, 0.0, 0.0])
    errors = []
    for k in range(int(12.0 / DT_QUAD)):
        x_ref, u_ref = translational_reference(*figure8(k * DT_QUAD, DT_QUAD, 21))
        u, info = mpc.compute(x, x_ref, u_ref)
        assert info.ok
        x = a @ x + b @ u
        if k * DT_QUAD > 4.0:
            errors.append(np.linalg.norm(x[:3] - x_ref[1, :3]))
    assert max(errors) < 1e-3


# --- diff drive ---------------------------------------------------------------------------------------


def unicycle_step(x: np.ndarray, u: np.ndarray, dt: float, with_speed: bool) -> np.ndarray:
    """The exact unicycle over dt with the input held (an arc), the speed integrated when it is a state."""
    if with_speed:
        accel, omega = u
        # fine Euler sub-steps: the speed changes along the step
        state = x.copy()
        for _ in range(20):
            h = dt / 20
            state = state + h * np.array([state[3] * math.cos(state[2]), state[3] * math.sin(state[2]), omega, accel])
        return state
    v, omega = u
    theta = x[2]
    if abs(omega) < 1e-9:
        return np.array([x[0] + v * dt * math.cos(theta), x[1] + v * dt * math.sin(theta), theta])
    return np.array(
        [
            x[0] + v / omega * (math.sin(theta + omega * dt) - math.sin(theta)),
            x[1] - v / omega * (math.cos(theta + omega * dt) - math.cos(theta)),
            theta + omega * dt,
        ]
    )


def circle(t0: float, dt: float, steps: int, radius: float = 1.5, speed: float = 0.6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = t0 + dt * np.arange(steps)
    w = speed / radius
    p = np.column_stack([radius * np.sin(w * t), radius * (1 - np.cos(w * t)), np.zeros_like(t)])
    v = np.column_stack([speed * np.cos(w * t), speed * np.sin(w * t), np.zeros_like(t)])
    a = np.column_stack([-speed * w * np.sin(w * t), speed * w * np.cos(w * t), np.zeros_like(t)])
    return p, v, a


def test_unicycle_reference_of_a_circle() -> None:
    states, inputs = unicycle_reference(*circle(0.0, 0.1, 21), with_speed=True)
    np.testing.assert_allclose(states[:, 3], 0.6)
    np.testing.assert_allclose(inputs[:, 1], 0.6 / 1.5)  # omega = v / R
    np.testing.assert_allclose(inputs[:, 0], 0.0, atol=1e-12)  # constant speed
    np.testing.assert_allclose(np.diff(states[:, 2]), 0.4 * 0.1, atol=1e-12)  # heading turns at omega, unwrapped
    rest = np.zeros((5, 3))
    states, inputs = unicycle_reference(rest, rest, rest, heading_at_rest=1.0)
    np.testing.assert_allclose(states[:, 2], 1.0)
    np.testing.assert_allclose(inputs, 0.0)


@pytest.mark.parametrize("with_speed", [False, True])
def test_diff_drive_linearisation_passes_through_the_reference_and_is_the_unicycle_to_first_order(with_speed: bool) -> None:
    dt = 0.1
    controller = diff_drive_tracking_mpc(dt, 20, with_speed=with_speed)
    ref_states, ref_inputs = unicycle_reference(*circle(0.0, dt, 21), with_speed=with_speed)
    _, x_ref, a, b, c = controller.linearise(ref_states[0], ref_states, ref_inputs)
    passes = np.einsum("kij,kj->ki", a, x_ref[:-1]) + np.einsum("kij,kj->ki", b, ref_inputs) + c
    np.testing.assert_allclose(passes, x_ref[1:], atol=1e-12)
    # a small deviation propagates as the nonlinear unicycle's does, up to second order in it and O(dt^2)
    rng = np.random.default_rng(5)
    for k in (0, 7, 19):
        delta_x = rng.normal(0, 1e-4, len(x_ref[k]))
        delta_u = rng.normal(0, 1e-4, 2)
        exact = unicycle_step(x_ref[k] + delta_x, ref_inputs[k] + delta_u, dt, with_speed) - unicycle_step(x_ref[k], ref_inputs[k], dt, with_speed)
        linear = a[k] @ delta_x + b[k] @ delta_u
        assert np.abs(exact - linear).max() < 5e-6


@pytest.mark.parametrize("with_speed", [False, True])
def test_diff_drive_mpc_equals_the_cvxpy_reference(with_speed: bool) -> None:
    dt = 0.1
    controller = diff_drive_tracking_mpc(dt, 20, with_speed=with_speed, settings=TIGHT)
    reference = CvxpyMpc(controller.mpc.problem, cp.CLARABEL, CLARABEL_TIGHT)
    rng = np.random.default_rng(6)
    for i in range(10):
        ref_states, ref_inputs = unicycle_reference(*circle(i * 1.3, dt, 21), with_speed=with_speed)
        state = ref_states[0] + np.concatenate([rng.uniform(-0.2, 0.2, 2), rng.uniform(-0.3, 0.3, 1)] + ([rng.uniform(-0.2, 0.2, 1)] if with_speed else []))
        controller.reset()
        u_fast, info_fast = controller.compute(state, ref_states, ref_inputs)
        x0, x_ref, a, b, c = controller.linearise(state, ref_states, ref_inputs)
        reference.set_dynamics(a, b, c)
        _, info_cvx = reference.compute(x0, x_ref, ref_inputs)
        assert info_fast.ok and info_cvx.ok
        np.testing.assert_allclose(info_fast.u_pred, info_cvx.u_pred, atol=1e-4)
        np.testing.assert_allclose(info_fast.x_pred, info_cvx.x_pred, atol=1e-4)


@pytest.mark.parametrize("with_speed", [False, True])
def test_diff_drive_mpc_tracks_a_circle_on_the_nonlinear_unicycle(with_speed: bool) -> None:
    dt = 0.1
    controller = diff_drive_tracking_mpc(dt, 20, with_speed=with_speed)
    x = np.array([0.3, -0.3, 0.6] + ([0.0] if with_speed else []))
    errors = []
    for k in range(int(20.0 / dt)):
        ref_states, ref_inputs = unicycle_reference(*circle(k * dt, dt, 21), with_speed=with_speed)
        u, info = controller.compute(x, ref_states, ref_inputs)
        assert info.ok, info.status
        problem = controller.mpc.problem
        assert np.all(u >= problem.u_min) and np.all(u <= problem.u_max)
        x = unicycle_step(x, u, dt, with_speed)
        if k * dt > 10.0:
            errors.append(np.linalg.norm(x[:2] - ref_states[1, :2]))
    assert max(errors) < 0.01


def test_diff_drive_heading_is_taken_the_short_way_round() -> None:
    dt = 0.1
    controller = diff_drive_tracking_mpc(dt, 20)
    ref_p = np.column_stack([-0.6 * dt * np.arange(21), np.zeros(21), np.zeros(21)])  # driving along -x: heading pi
    ref_v = np.tile([-0.6, 0.0, 0.0], (21, 1))
    ref_states, ref_inputs = unicycle_reference(ref_p, ref_v, np.zeros((21, 3)))
    u, info = controller.compute(np.array([0.0, 0.0, -math.pi + 0.05]), ref_states, ref_inputs)  # 0.05 rad from pi, across the wrap
    assert info.ok
    assert abs(u[1]) < 1.0  # a small correction, not a full turn


def test_diff_drive_failures_come_back_as_a_status() -> None:
    controller = diff_drive_tracking_mpc(0.1, 20)
    ref_states, ref_inputs = unicycle_reference(*circle(0.0, 0.1, 21))
    u, info = controller.compute(np.array([np.nan, 0.0, 0.0]), ref_states, ref_inputs)
    assert not info.ok and np.isnan(u).all()
    u, info = controller.compute(ref_states[0], ref_states, ref_inputs)  # and it recovers
    assert info.ok and np.isfinite(u).all()


# --- in PyBullet: which MPC the quadrotor node should use ----------------------------------------------


def _fly_figure8(mode: str, seconds: float = 12.0) -> tuple[float, int]:
    """RMS position error (m) after 4 s on the figure-8 in PyBullet (240 Hz physics, 48 Hz control, one step of latency), and relaxed ticks."""
    pytest.importorskip("pybullet")
    from aegis.controllers.quadrotor_cascade import CascadeGains, QuadrotorCascade
    from aegis.sim.pybullet_world import QuadrotorWorld

    physics_hz = 240.0
    decimation = round(physics_hz * DT_QUAD)
    world = QuadrotorWorld(CRAZYFLIE_2X, physics_rate_hz=physics_hz)
    # The whole cascade at 48 Hz with the inner gains this comparison was measured with (7 / 20): it compares
    # the outer loops (MPC or PID), not the inner loop, which the shipped chains run at 240 Hz with 5 / 16.
    cascade = QuadrotorCascade(MODEL, CascadeGains(attitude_kp=(7.0, 7.0, 3.0), rate_kp=(20.0, 20.0, 10.0)), DT_QUAD)
    translational = translational_mpc(DT_QUAD, 20)
    hover = quadrotor_hover_mpc(MODEL, DT_QUAD, 20)
    errors, relaxed = [], 0
    try:
        world.reset(np.array([0.2, -0.2, 0.9]), yaw=0.0, motor_speeds=MODEL.hover_motor_speed)
        command = fresh = np.full(4, MODEL.hover_motor_speed)
        for step in range(int(seconds * physics_hz)):
            if step % decimation == 0:
                s = world.state()
                p, v, a = figure8(step / physics_hz, DT_QUAD, 21)
                if mode == "cascade":
                    fresh = cascade.compute(s.position, s.velocity_world, s.orientation, s.body_rates, p[0], v[0], a[0], 0.0)
                elif mode == "translational":
                    x_ref, u_ref = translational_reference(p, v, a)
                    acceleration, info = translational.compute(np.concatenate([s.position, s.velocity_world]), x_ref, u_ref)
                    assert info.ok, info.status
                    relaxed += info.relaxed
                    fresh = cascade.compute_acceleration(s.orientation, s.body_rates, acceleration, 0.0)
                else:
                    fresh, info = hover.compute(s.position, s.velocity_world, s.orientation, s.body_rates, p, v, a, 0.0)
                    assert info.ok, info.status
                    relaxed += info.relaxed
            world.step(command)  # a new command acts from the next physics step on, as under the sim bridge
            if step % decimation == 0:
                command = fresh
            assert not world.in_contact()
            if step / physics_hz > 4.0:
                errors.append(np.linalg.norm(world.state().position - figure8(step / physics_hz, DT_QUAD, 1)[0][0]))
    finally:
        world.close()
    return float(np.sqrt(np.mean(np.square(errors)))), relaxed


def test_pybullet_translational_mpc_on_the_cascade_tracks_the_figure8_better_than_the_cascade_alone() -> None:
    """The recommendation for the mpc node, measured (12 s): cascade 12.2 mm RMS, translational MPC + cascade 3.3 mm, hover MPC 10.0 mm."""
    cascade_rms, _ = _fly_figure8("cascade")
    mpc_rms, relaxed = _fly_figure8("translational")
    print(f"\nfigure-8 RMS after 4 s: cascade {cascade_rms * 1e3:.1f} mm, translational MPC + cascade {mpc_rms * 1e3:.1f} mm")
    assert mpc_rms < 0.6 * cascade_rms
    assert mpc_rms < 0.005 and relaxed == 0


def test_pybullet_hover_mpc_flies_the_figure8() -> None:
    """Rotor speeds from the 12-state MPC directly; its tilt limits are dropped on the ticks the start transient breaks them."""
    rms, relaxed = _fly_figure8("hover")
    print(f"\nfigure-8 RMS after 4 s, hover MPC: {rms * 1e3:.1f} mm ({relaxed} relaxed ticks)")
    assert rms < 0.015
