"""Diff-drive tracking MPC: the unicycle linearised along the reference every tick (a time-varying linear MPC).

Models (world frame ENU, heading ``theta`` about +z, SI units):

- 3 states / 2 inputs: x = (p_x, p_y, theta), u = (v, omega): p' = v (cos theta, sin theta), theta' = omega.
- 4 states / 2 inputs (``with_speed=True``): x = (p_x, p_y, theta, v), u = (a, omega), v' = a; the speed
  is a state, so the plan is smooth in speed and acceleration is limited.

Linearisation (as Kühne, Lages, da Silva, "Model predictive control of a mobile robot using
linearization", Mechatronics and Robotics 2004, in absolute coordinates): about each reference
sample (x_r,k, u_r,k) of the horizon,

    x_{k+1} = A_k x_k + B_k u_k + c_k,   c_k = x_r,k+1 - A_k x_r,k - B_k u_r,k,

so the model passes exactly through the reference (zero error stays zero). The Jacobian A_c of the
unicycle is nilpotent (A_c^2 = 0), so the exact zero-order hold of the frozen linearisation is
A_k = I + A_c dt, B_k = (I dt + A_c dt^2 / 2) B_c: closed forms, no matrix exponential per tick.
Each tick writes the N new (A_k, B_k) into the QP's constraint matrix (OSQP refactors) and c_k into
its bounds. Headings are unwrapped along the reference and the robot's heading is taken within pi of
the first reference heading, so a turn through +-pi is not a 2 pi error.

At rest (v_r = 0) the linearisation loses the lateral direction (the robot cannot move sideways, and
at zero speed turning does not help within one step): use the go-to-point mode of
aegis.controllers.diff_drive.DiffDriveTracker there, as that tracker itself does.
"""

from __future__ import annotations

import math

import numpy as np

from aegis.controllers.mpc.linear import LinearMpc, MpcInfo, OsqpSettings
from aegis.controllers.mpc.problem import mpc_problem

REST_SPEED_MPS = 1e-6
"""Below this reference speed the reference heading is held (it is undefined at rest)."""


def unicycle_jacobians(heading: np.ndarray, speed: np.ndarray, dt: float, a: np.ndarray, b: np.ndarray) -> None:
    """Fill ``a`` (N, n, n) and ``b`` (N, n, 2): exact ZOH of the unicycle linearised at each (heading, speed) (N,); n = 3 or 4."""
    n = a.shape[1]
    cos, sin = np.cos(heading), np.sin(heading)
    half = 0.5 * dt * dt
    a.fill(0.0)
    b.fill(0.0)
    index = np.arange(n)
    a[:, index, index] = 1.0
    a[:, 0, 2] = -speed * sin * dt  # heading error moves the position sideways
    a[:, 1, 2] = speed * cos * dt
    if n == 3:  # u = (v, omega)
        b[:, 0, 0] = cos * dt
        b[:, 1, 0] = sin * dt
        b[:, 2, 1] = dt
    else:  # x has v, u = (a, omega)
        a[:, 0, 3] = cos * dt
        a[:, 1, 3] = sin * dt
        b[:, 0, 0] = half * cos
        b[:, 1, 0] = half * sin
        b[:, 3, 0] = dt
        b[:, 2, 1] = dt
    b[:, 0, 1] = -half * speed * sin  # a turn during the step bends the path: the dt^2 / 2 term
    b[:, 1, 1] = half * speed * cos


class DiffDriveTrackingMpc:
    """Time-varying MPC tracking a unicycle reference; :meth:`compute` re-linearises, solves and returns (u0, info).

    ``mpc`` is the underlying :class:`LinearMpc` (time-varying); ``with_speed`` says which model
    (see the module doc). Buffers for the per-tick model are allocated here, once.
    """

    def __init__(self, mpc: LinearMpc, dt: float, with_speed: bool) -> None:
        self.mpc = mpc
        self.dt = float(dt)
        self.with_speed = bool(with_speed)
        problem = mpc.problem
        n, m, horizon = problem.n, problem.m, problem.horizon
        self._a = np.zeros((horizon, n, n))
        self._b = np.zeros((horizon, n, m))
        self._c = np.zeros((horizon, n))
        self._ref = np.zeros((horizon + 1, n))
        self._x0 = np.zeros(n)

    def reset(self) -> None:
        self.mpc.reset()

    def linearise(self, state: np.ndarray, ref_states: np.ndarray, ref_inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(x0, x_ref, A, B, c) of this tick: headings unwrapped, model linearised along the reference (buffers reused)."""
        horizon = self.mpc.problem.horizon
        ref = self._ref
        ref[...] = ref_states
        ref[:, 2] = np.unwrap(ref[:, 2])
        x0 = self._x0
        x0[...] = state
        x0[2] = ref[0, 2] + _wrap(state[2] - ref[0, 2])
        speed = ref[:horizon, 3] if self.with_speed else ref_inputs[:, 0]
        unicycle_jacobians(ref[:horizon, 2], speed, self.dt, self._a, self._b)
        # c_k = x_r,k+1 - A_k x_r,k - B_k u_r,k
        np.einsum("kij,kj->ki", self._a, ref[:horizon], out=self._c)
        self._c += np.einsum("kij,kj->ki", self._b, ref_inputs)
        np.subtract(ref[1:], self._c, out=self._c)
        return x0, ref, self._a, self._b, self._c

    def compute(self, state: np.ndarray, ref_states: np.ndarray, ref_inputs: np.ndarray) -> tuple[np.ndarray, MpcInfo]:
        """The first input ((v, omega), or (a, omega) with speed) for ``state`` tracking ``ref_states`` (N+1, n), ``ref_inputs`` (N, 2).

        From :func:`unicycle_reference`. Never raises on values: failure is ``info.ok == False`` and NaN.
        """
        if not (np.isfinite(state).all() and np.isfinite(ref_states).all() and np.isfinite(ref_inputs).all()):
            return self.mpc.compute(np.full(self.mpc.problem.n, np.nan), self._ref)
        x0, x_ref, a, b, c = self.linearise(state, ref_states, ref_inputs)
        self.mpc.set_dynamics(a, b, c)
        return self.mpc.compute(x0, x_ref, ref_inputs)


def diff_drive_tracking_mpc(
    dt: float,
    horizon: int = 20,
    *,
    with_speed: bool = False,
    v_min: float = -1.0,
    v_max: float = 1.0,
    omega_max: float = 2.0,
    a_max: float = 1.0,
    position_weight: float = 100.0,
    heading_weight: float = 25.0,
    speed_weight: float = 4.0,
    omega_weight: float = 1.0,
    accel_weight: float = 1.0,
    terminal_factor: float = 1.0,
    relax_state_limits: bool = True,
    settings: OsqpSettings = OsqpSettings(),
) -> DiffDriveTrackingMpc:
    """Tracking MPC for a differential-drive robot at period ``dt`` (3 states, or 4 with the speed as a state).

    Limits: v in [v_min, v_max] (an input, or a state with ``with_speed``), |omega| <= omega_max, and
    with speed |a| <= a_max. Weights are diagonal, Bryson-like (10 cm, 0.2 rad, 0.5 m/s, 1 rad/s,
    1 m/s^2 by default); the terminal weight is ``terminal_factor`` Q (a time-varying model has no
    single Riccati solution). The (v, omega) box must fit the wheel limit v + omega b / 2 <= r w_max,
    or the wheel mapping (DiffDriveKinematics.limited) slows the robot down. ``relax_state_limits``:
    see LinearMpc (the speed state's limits, with speed).
    """
    if with_speed:
        q = np.diag([position_weight, position_weight, heading_weight, speed_weight])
        r = np.diag([accel_weight, omega_weight])
        u_min, u_max = [-a_max, -omega_max], [a_max, omega_max]
        x_min = [-np.inf, -np.inf, -np.inf, v_min]
        x_max = [np.inf, np.inf, np.inf, v_max]
    else:
        q = np.diag([position_weight, position_weight, heading_weight])
        r = np.diag([speed_weight, omega_weight])
        u_min, u_max = [v_min, -omega_max], [v_max, omega_max]
        x_min = x_max = None
    n = q.shape[0]
    a, b = np.zeros((horizon, n, n)), np.zeros((horizon, n, 2))
    unicycle_jacobians(np.zeros(horizon), np.zeros(horizon), dt, a, b)  # any point: every entry is stored and updated per tick
    problem = mpc_problem(
        a[0], b[0], horizon, q, r, terminal_factor * q, u_min=u_min, u_max=u_max, x_min=x_min, x_max=x_max, time_varying=True
    )
    return DiffDriveTrackingMpc(LinearMpc(problem, settings, relax_state_limits=relax_state_limits), dt, with_speed)


def unicycle_reference(
    positions: np.ndarray, velocities: np.ndarray, accelerations: np.ndarray, *, with_speed: bool = False, heading_at_rest: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(ref_states (N+1, 3 or 4), ref_inputs (N, 2)) from reference samples (N+1, >= 2) at the MPC's period (x and y used).

    theta_r = atan2(v_y, v_x) (unwrapped), v_r = |v_xy|, omega_r = (v_x a_y - v_y a_x) / v_r^2 and
    a_r = v . a / v_r; where the reference is at rest its heading is held (``heading_at_rest`` before
    the first moving sample) and omega_r = a_r = 0.
    """
    vx, vy = velocities[:, 0], velocities[:, 1]
    ax, ay = accelerations[:, 0], accelerations[:, 1]
    speed = np.hypot(vx, vy)
    moving = speed > REST_SPEED_MPS
    heading = np.where(moving, np.arctan2(vy, vx), np.nan)
    last = heading_at_rest
    for k in range(len(heading)):  # hold the heading through rests
        if moving[k]:
            last = heading[k]
        else:
            heading[k] = last
    heading = np.unwrap(heading)
    safe = np.where(moving, speed, 1.0)
    omega = np.where(moving, (vx * ay - vy * ax) / (safe * safe), 0.0)
    accel = np.where(moving, (vx * ax + vy * ay) / safe, 0.0)
    states = np.column_stack([positions[:, 0], positions[:, 1], heading] + ([speed] if with_speed else []))
    inputs = np.column_stack([accel if with_speed else speed, omega])[:-1]
    return states, inputs


def _wrap(angle: float) -> float:
    """``angle`` wrapped to (-pi, pi]."""
    return math.pi - (math.pi - angle) % (2.0 * math.pi)
