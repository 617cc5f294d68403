"""Quadrotor MPC: the full 12-state model about hover (inputs: the wrench) and the 6-state translational one (inputs: acceleration).

Two models for two places in the stack:

- :func:`quadrotor_hover_mpc` -> :class:`QuadrotorHoverMpc`: the 12-state / 4-input linearisation at
  hover of :mod:`aegis.controllers.lqr` (``HoverLqr`` builds it: same state, same discretisation, same
  Bryson weights; its Riccati solution is the terminal weight, so inside the constraints and past
  the horizon the MPC *is* that LQR). Commands rotor speeds directly, like the LQR.
- :func:`translational_mpc`: the translational double integrator p'' = a (6 states / 3 inputs, exact
  zero-order hold), whose acceleration is the setpoint of
  :meth:`aegis.controllers.quadrotor_cascade.QuadrotorCascade.compute_acceleration`. The cascade's
  inner loops keep the attitude; the MPC plans the path under speed, acceleration and geofence
  limits. This is the one the mpc node should use with the cascade: about half the QP (180
  variables against 320), no small-angle assumption on the attitude (the cascade turns any
  acceleration into a tilt), and the fast attitude loop stays where the motor lag and latency are
  handled (the hover MPC's wrench runs at the MPC rate with the lag left out, as the LQR's does).
  Measured in PyBullet on the shipped figure-8 (48 Hz, tests/test_mpc_models.py): RMS error
  3.3 mm with the translational MPC on the cascade, 12.2 mm for the cascade alone, 10.0 mm for the
  hover MPC, whose tilt limits the unmodelled motor lag breaks in the start transient (27 ticks
  solved with the state limits dropped).

Units of the hover MPC's decision variable: inputs are scaled to fractions of
:func:`aegis.controllers.lqr.input_authority` (1.0 = the weight, or a full rotor swing of torque).
A Crazyflie's torques are ~1e-3 N m and its Bryson input weights ~1e6; in these units the QP is
well scaled (OSQP converges in far fewer iterations) and the optimum is the same.
"""

from __future__ import annotations

import math

import numpy as np

from aegis.controllers.lqr import DEFAULT_INPUT_TOLERANCES, DEFAULT_STATE_TOLERANCES, HoverLqr, bryson_weights, input_authority
from aegis.controllers.mpc.linear import LinearMpc, MpcInfo, OsqpSettings
from aegis.controllers.mpc.problem import mpc_problem
from aegis.controllers.quadrotor_model import QuadrotorModel

HOVER_STATES = 12
HOVER_INPUTS = 4


def hover_input_box(model: QuadrotorModel, torque_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(u_min, u_max) in authority fractions: the largest thrust range that, with every torque within ``torque_fraction``, keeps all rotors in [0, max].

    With f_h the hover thrust of one rotor, rotor i carries f_h (T / m g +- t_x +- t_y +- t_z) for
    torque fractions t; so T / m g must stay in [3 t, f_max / f_h - 3 t].
    """
    if not 0.0 < torque_fraction < 1.0 / 3.0:
        raise ValueError(f"torque_fraction must be in (0, 1/3), got {torque_fraction}")
    headroom = model.max_thrust_n / model.weight_n  # f_max / f_h
    low, high = 3.0 * torque_fraction - 1.0, headroom - 1.0 - 3.0 * torque_fraction
    if high <= 0.0:
        raise ValueError(f"the rotors cannot lift the weight with {torque_fraction} of torque authority (thrust-to-weight {headroom:.2f})")
    return np.array([low, -torque_fraction, -torque_fraction, -torque_fraction]), np.array([high, torque_fraction, torque_fraction, torque_fraction])


class QuadrotorHoverMpc:
    """MPC on the 12-state hover model that returns rotor speeds, as :class:`HoverLqr` does, plus the solve's info.

    ``lqr`` holds the linearisation (``ad``, ``bd``), the weights and ``error_state``; ``mpc`` is the
    :class:`LinearMpc` in authority-fraction inputs; ``authority`` (4,) converts them to N and N m.
    """

    def __init__(self, lqr: HoverLqr, mpc: LinearMpc, authority: np.ndarray) -> None:
        self.lqr = lqr
        self.mpc = mpc
        self.authority = authority
        self.model = lqr.model

    def reset(self) -> None:
        self.mpc.reset()

    def reference(self, positions: np.ndarray, velocities: np.ndarray, accelerations: np.ndarray, yaw: float) -> tuple[np.ndarray, np.ndarray]:
        """(x_ref (N+1, 12), u_ref (N, 4)) from reference samples (N+1, 3) at the MPC's period; positions relative to ``positions[0]``."""
        return hover_reference(positions, velocities, accelerations, yaw, self.model.gravity_mps2, self.model.mass_kg, self.authority)

    def compute(
        self,
        position: np.ndarray,
        velocity_world: np.ndarray,
        orientation_xyzw: np.ndarray,
        body_rates: np.ndarray,
        ref_positions: np.ndarray,
        ref_velocities: np.ndarray,
        ref_accelerations: np.ndarray,
        yaw: float = 0.0,
    ) -> tuple[np.ndarray, MpcInfo]:
        """Rotor speeds (4,) tracking reference samples (N+1, 3) (world frame) at heading ``yaw``, and the solve's info.

        On failure (``info.ok`` False) the speeds are NaN: the caller falls back (the hover LQR needs no solver).
        """
        x0 = self.lqr.error_state(position, velocity_world, orientation_xyzw, body_rates, ref_positions[0], yaw)
        x_ref, u_ref = self.reference(ref_positions, ref_velocities, ref_accelerations, yaw)
        u, info = self.mpc.compute(x0, x_ref, u_ref)
        if not info.ok:
            return np.full(4, np.nan), info
        wrench = u * self.authority
        return self.model.motor_speeds(self.model.weight_n + wrench[0], wrench[1:]), info


def quadrotor_hover_mpc(
    model: QuadrotorModel,
    dt: float,
    horizon: int = 20,
    *,
    state_tolerances: tuple[float, ...] = DEFAULT_STATE_TOLERANCES,
    input_tolerances: tuple[float, ...] = DEFAULT_INPUT_TOLERANCES,
    torque_fraction: float = 0.1,
    max_tilt_rad: float = math.radians(30.0),
    max_speed_mps: float | None = 2.0,
    relax_state_limits: bool = True,
    settings: OsqpSettings = OsqpSettings(),
) -> QuadrotorHoverMpc:
    """MPC about hover at period ``dt`` (s): Bryson weights from the tolerances (as the LQR), tilt and per-axis speed limits.

    Inputs are limited to :func:`hover_input_box` (rotors always within [0, max]); roll and pitch to
    ``max_tilt_rad`` (the small-angle model's range); each velocity component to ``max_speed_mps``
    (None: free). The terminal weight is the LQR's Riccati solution. ``relax_state_limits`` (see
    LinearMpc): the motor lag and latency the model leaves out can carry the real tilt past its
    limit, where the limits cannot be met; that tick is then solved without them (info.relaxed).
    """
    q, r = bryson_weights(model, state_tolerances, input_tolerances)
    lqr = HoverLqr(model, dt, q, r)
    authority = input_authority(model)
    scale = np.diag(authority)  # u_physical = scale @ u_fraction
    b = lqr.bd @ scale
    r_scaled = scale @ r @ scale
    p = lqr.p  # the cost-to-go does not depend on how the input is scaled
    u_min, u_max = hover_input_box(model, torque_fraction)
    x_min = np.full(HOVER_STATES, -np.inf)
    x_max = np.full(HOVER_STATES, np.inf)
    x_min[6:8], x_max[6:8] = -max_tilt_rad, max_tilt_rad
    if max_speed_mps is not None:
        x_min[3:6], x_max[3:6] = -max_speed_mps, max_speed_mps
    problem = mpc_problem(lqr.ad, b, horizon, q, r_scaled, p, u_min=u_min, u_max=u_max, x_min=x_min, x_max=x_max)
    return QuadrotorHoverMpc(lqr, LinearMpc(problem, settings, relax_state_limits=relax_state_limits), authority)


def hover_reference(
    positions: np.ndarray,
    velocities: np.ndarray,
    accelerations: np.ndarray,
    yaw: float,
    gravity: float,
    mass_kg: float,
    authority: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The hover model's reference from world-frame samples (N+1, 3): states in the heading frame, inputs in authority fractions.

    Position relative to ``positions[0]`` (the point ``error_state`` measures from), velocity, the
    tilt that produces the reference acceleration (small angles: pitch = a_x / g, roll = -a_y / g),
    zero rates; input: the thrust change m a_z, no torque.
    """
    c, s = math.cos(yaw), math.sin(yaw)
    to_heading = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    steps = len(positions)
    x_ref = np.zeros((steps, HOVER_STATES))
    x_ref[:, 0:3] = (positions - positions[0]) @ to_heading.T
    x_ref[:, 3:6] = velocities @ to_heading.T
    a_heading = accelerations @ to_heading.T
    x_ref[:, 6] = -a_heading[:, 1] / gravity
    x_ref[:, 7] = a_heading[:, 0] / gravity
    u_ref = np.zeros((steps - 1, HOVER_INPUTS))
    u_ref[:, 0] = mass_kg * accelerations[:-1, 2] / authority[0]
    return x_ref, u_ref


def double_integrator(dt: float, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact zero-order hold of p'' = a in ``dims`` axes: state [p, v] (2 dims), input a (dims)."""
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    eye = np.eye(dims)
    a = np.block([[eye, dt * eye], [np.zeros((dims, dims)), eye]])
    b = np.vstack([0.5 * dt * dt * eye, dt * eye])
    return a, b


def translational_mpc(
    dt: float,
    horizon: int = 20,
    a_max: float | np.ndarray = 8.0,
    v_max: float | np.ndarray | None = 2.0,
    *,
    dims: int = 3,
    position_weight: float = 100.0,
    velocity_weight: float = 4.0,
    accel_weight: float = 0.25,
    position_min: np.ndarray | None = None,
    position_max: np.ndarray | None = None,
    relax_state_limits: bool = True,
    settings: OsqpSettings = OsqpSettings(),
) -> LinearMpc:
    """MPC on the double integrator (state [p, v], input a; ``dims`` 3: a quadrotor's translation, 2: a point mass in the plane).

    ``a_max`` and ``v_max`` limit each axis (scalars or per axis; a box, so the norm may reach
    sqrt(dims) times the limit); ``position_min``/``position_max`` are a geofence box. Weights are
    diagonal (Bryson-like: 10 cm, 0.5 m/s, 2 m/s^2 by default). The output acceleration is world-frame
    (ENU), gravity excluded: QuadrotorCascade.compute_acceleration's input.
    """
    a, b = double_integrator(dt, dims)
    q = np.diag([position_weight] * dims + [velocity_weight] * dims)
    r = accel_weight * np.eye(dims)
    a_limit = np.broadcast_to(np.asarray(a_max, dtype=float), (dims,))
    if np.any(a_limit <= 0):
        raise ValueError(f"a_max must be > 0, got {a_max}")
    x_min = np.full(2 * dims, -np.inf)
    x_max = np.full(2 * dims, np.inf)
    if v_max is not None:
        v_limit = np.broadcast_to(np.asarray(v_max, dtype=float), (dims,))
        if np.any(v_limit <= 0):
            raise ValueError(f"v_max must be > 0, got {v_max}")
        x_min[dims:], x_max[dims:] = -v_limit, v_limit
    if position_min is not None:
        x_min[:dims] = position_min
    if position_max is not None:
        x_max[:dims] = position_max
    problem = mpc_problem(a, b, horizon, q, r, u_min=-a_limit, u_max=a_limit, x_min=x_min, x_max=x_max)
    return LinearMpc(problem, settings, relax_state_limits=relax_state_limits)


def translational_reference(positions: np.ndarray, velocities: np.ndarray, accelerations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x_ref (N+1, 2 d), u_ref (N, d)) of the double-integrator MPC from reference samples (N+1, d) at its period."""
    return np.hstack([positions, velocities]), np.asarray(accelerations)[:-1]
