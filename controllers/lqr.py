"""LQR about hover for a quadrotor: the rigid body linearised at hover, discretised at the control rate, one Riccati solve.

State (12, in the reference heading frame ``H`` = the world frame turned by the yaw setpoint about
world z; ENU world, FLU body, SI units)::

    x = [p (3) position error in H, v (3) velocity in H, e (3) attitude error (roll, pitch, yaw), w (3) body rates]

where ``e`` is the small-angle rotation vector of the body relative to H: the quaternion error
``q_err = q_yaw_ref^-1 ⊗ q`` gives ``e = 2 sign(w_err) (x_err, y_err, z_err)`` (shortest way round,
so a yaw error never wraps). Expressing position and velocity in H makes the model the same for
every yaw setpoint, so one gain serves all headings.

Input (4): the wrench deviation ``u = [collective thrust - m g (N), torque x, y, z (N m)]``. Linearised
about hover (thrust m g, level, at rest), with ``R ≈ I + [e]x``:

    p' = v,   v' = (g e_pitch, -g e_roll, u_thrust / m),   e' = w,   J w' = u_torque

(the gyroscopic term ``w x J w`` and the rotor drag are second order / small at hover and left out;
the drag only adds damping). Why the wrench and not the four rotor thrusts: rotor thrusts squared
speeds and the wrench are related by the constant, invertible mixing matrix
(aegis.controllers.quadrotor_model.mixing_matrix), so both give the same optimal controller
for correspondingly transformed weights; the wrench makes the weights physical (Newtons,
Newton metres, Bryson's rule below) and decouples the axes. The wrench command goes to rotor
speeds through :meth:`QuadrotorModel.motor_speeds`, which inverts the mixing and, at the rotor
limits, keeps the torques before the thrust, so the result is always within [0, max].

Discretisation: zero-order hold at the control period ``dt`` (exact, by the matrix exponential).
The gain ``K = (R + B'PB)^-1 B'PA`` comes from scipy.linalg.solve_discrete_are, solved once in the
constructor; ``compute`` is ``u = -K x`` plus the hover thrust, a handful of small numpy temporaries.

Not modelled: the first-order motor lag (25 ms on a Crazyflie 2.x) and the one-physics-step
actuation latency of the simulator bridge. The default weights keep the closed loop slow enough
for both (tests/test_lqr.py checks the gain against a model that has them).

Default weights, Bryson's rule (``Q_ii = 1 / x_i,max^2``, ``R_jj = 1 / u_j,max^2``) from the
tolerances of :data:`DEFAULT_STATE_TOLERANCES` and :data:`DEFAULT_INPUT_TOLERANCES`; see
:func:`bryson_weights`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.linalg

from aegis.controllers.quadrotor_model import QuadrotorModel

STATE_NAMES = ("x", "y", "z", "vx", "vy", "vz", "roll", "pitch", "yaw", "p", "q", "r")
"""The 12 states in order (position and velocity in the reference heading frame, body rates in the body frame)."""

INPUT_NAMES = ("thrust", "torque_x", "torque_y", "torque_z")
"""The 4 inputs in order: collective thrust deviation from m g (N), body torques (N m)."""

DEFAULT_STATE_TOLERANCES: tuple[float, ...] = (
    0.10, 0.10, 0.10,  # position error (m)
    0.50, 0.50, 0.50,  # velocity (m/s)
    0.50, 0.50, 0.50,  # roll, pitch, yaw error (rad)
    3.00, 3.00, 3.00,  # body rates (rad/s)
)
"""Acceptable deviation of each state (Bryson's rule): 10 cm, 0.5 m/s, 0.5 rad (about 30 degrees of tilt), 3 rad/s."""

DEFAULT_INPUT_TOLERANCES: tuple[float, ...] = (0.25, 0.10, 0.10, 0.10)
"""Acceptable deviation of each input as a fraction of its authority at hover (Bryson's rule).

The authority of the thrust is the weight m g (so 0.25: a quarter of the weight); that of a torque
is what four rotors give when each moves by its hover thrust, the largest swing that keeps every
rotor within [0, 2 x hover]: ``4 r_xy kf w_h^2`` about x and y (``r_xy = arm / sqrt 2``), ``4 km w_h^2``
about z. Scaling by the airframe keeps the defaults sensible for other quadrotors than a Crazyflie.
The torques get a tenth so that the attitude loop stays well inside the motor bandwidth the model
leaves out (1 / 25 ms on a Crazyflie): with the 48 Hz gain, the spectral radius of the loop with
the motor lag and the bridge's one-physics-step latency is then 0.915, the same as without them;
at 0.25 it grows to 0.94 and at 1.0 past 1 (unstable in PyBullet too).
"""


def hover_model(model: QuadrotorModel) -> tuple[np.ndarray, np.ndarray]:
    """Continuous-time (A (12, 12), B (12, 4)) of ``model`` linearised at hover (state and input as in the module doc)."""
    g = model.gravity_mps2
    a = np.zeros((12, 12))
    a[0:3, 3:6] = np.eye(3)  # p' = v
    a[3, 7] = g  # v_x' = g pitch (thrust tilted forward)
    a[4, 6] = -g  # v_y' = -g roll
    a[6:9, 9:12] = np.eye(3)  # e' = w (small angles)
    b = np.zeros((12, 4))
    b[5, 0] = 1.0 / model.mass_kg  # v_z' = thrust deviation / m
    b[9:12, 1:4] = np.diag(1.0 / model.inertia_kg_m2)  # w' = J^-1 torque
    return a, b


def discretize(a: np.ndarray, b: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero-order-hold discretisation (Ad, Bd) of x' = A x + B u over ``dt`` (exact: one matrix exponential)."""
    n, m = b.shape
    block = np.zeros((n + m, n + m))
    block[:n, :n] = a
    block[:n, n:] = b
    phi = scipy.linalg.expm(block * dt)
    return phi[:n, :n], phi[:n, n:]


def input_authority(model: QuadrotorModel) -> np.ndarray:
    """(4,) the scale of each input at hover: weight (N), roll/pitch/yaw torque of a full rotor swing (N m)."""
    hover_rotor_thrust = model.weight_n / 4.0  # kf w_h^2
    r_xy = model.arm_length_m / math.sqrt(2.0)
    yaw_per_thrust = model.km / model.kf
    return np.array(
        [model.weight_n, 4.0 * r_xy * hover_rotor_thrust, 4.0 * r_xy * hover_rotor_thrust, 4.0 * yaw_per_thrust * hover_rotor_thrust]
    )


def bryson_weights(
    model: QuadrotorModel,
    state_tolerances: Sequence[float] = DEFAULT_STATE_TOLERANCES,
    input_tolerances: Sequence[float] = DEFAULT_INPUT_TOLERANCES,
) -> tuple[np.ndarray, np.ndarray]:
    """(Q (12, 12), R (4, 4)) by Bryson's rule: ``1 / tolerance^2`` on the diagonals.

    ``state_tolerances`` are in the states' units (:data:`STATE_NAMES`); ``input_tolerances`` are
    fractions of :func:`input_authority`.
    """
    x_max = np.asarray(state_tolerances, dtype=float)
    u_fraction = np.asarray(input_tolerances, dtype=float)
    if x_max.shape != (12,) or u_fraction.shape != (4,):
        raise ValueError(f"need 12 state and 4 input tolerances, got {x_max.shape} and {u_fraction.shape}")
    if not (np.all(x_max > 0) and np.all(u_fraction > 0) and np.all(np.isfinite(x_max)) and np.all(np.isfinite(u_fraction))):
        raise ValueError("tolerances must be finite and > 0")
    u_max = u_fraction * input_authority(model)
    return np.diag(1.0 / x_max**2), np.diag(1.0 / u_max**2)


class HoverLqr:
    """Discrete LQR holding ``model`` at a position and heading, at a control period ``dt`` (s).

    ``q`` (12, 12) and ``r`` (4, 4) are the state and input weights (symmetric, Q >= 0, R > 0);
    None takes :func:`bryson_weights` with the default tolerances. The gain is built here, once;
    attributes ``a``, ``b`` (continuous), ``ad``, ``bd`` (discrete), ``q``, ``r``, ``p`` (Riccati
    solution) and ``k`` (4, 12) are kept for inspection.
    """

    def __init__(self, model: QuadrotorModel, dt: float, q: np.ndarray | None = None, r: np.ndarray | None = None) -> None:
        if not dt > 0:
            raise ValueError(f"dt must be > 0, got {dt}")
        default_q, default_r = bryson_weights(model)
        q = default_q if q is None else np.array(q, dtype=float)
        r = default_r if r is None else np.array(r, dtype=float)
        if q.shape != (12, 12) or r.shape != (4, 4):
            raise ValueError(f"q must be (12, 12) and r (4, 4), got {q.shape} and {r.shape}")
        if not (np.allclose(q, q.T) and np.allclose(r, r.T)):
            raise ValueError("q and r must be symmetric")
        if np.linalg.eigvalsh(q).min() < -1e-12 or np.linalg.eigvalsh(r).min() <= 0.0:
            raise ValueError("q must be positive semi-definite and r positive definite")
        self.model = model
        self.dt = float(dt)
        self.q, self.r = q, r
        self.a, self.b = hover_model(model)
        self.ad, self.bd = discretize(self.a, self.b, self.dt)
        self.p = scipy.linalg.solve_discrete_are(self.ad, self.bd, q, r)
        bt_p = self.bd.T @ self.p
        self.k = np.linalg.solve(r + bt_p @ self.bd, bt_p @ self.ad)
        self._hover_thrust = model.weight_n

    def reset(self) -> None:
        """Nothing to clear: the controller has no internal state (kept for the controller contract)."""

    def error_state(
        self,
        position: np.ndarray,
        velocity_world: np.ndarray,
        orientation_xyzw: np.ndarray,
        body_rates: np.ndarray,
        position_ref: np.ndarray,
        yaw_ref: float,
    ) -> np.ndarray:
        """The 12-state deviation from hovering at ``position_ref`` with heading ``yaw_ref`` (see the module doc)."""
        c, s = math.cos(yaw_ref), math.sin(yaw_ref)
        ch, sh = math.cos(0.5 * yaw_ref), math.sin(0.5 * yaw_ref)
        ex, ey, ez = position - position_ref
        vx, vy, vz = velocity_world
        qx, qy, qz, qw = orientation_xyzw
        # q_err = conj(yaw quaternion (0, 0, sh, ch)) ⊗ q, written out.
        sign = 2.0 if ch * qw + sh * qz >= 0.0 else -2.0
        x = np.empty(12)
        x[0], x[1], x[2] = c * ex + s * ey, c * ey - s * ex, ez
        x[3], x[4], x[5] = c * vx + s * vy, c * vy - s * vx, vz
        x[6] = sign * (ch * qx + sh * qy)
        x[7] = sign * (ch * qy - sh * qx)
        x[8] = sign * (ch * qz - sh * qw)
        x[9:12] = body_rates
        return x

    def compute(
        self,
        position: np.ndarray,
        velocity_world: np.ndarray,
        orientation_xyzw: np.ndarray,
        body_rates: np.ndarray,
        position_ref: np.ndarray,
        yaw_ref: float = 0.0,
    ) -> np.ndarray:
        """Rotor speeds (4,) in rad/s, within [0, max_motor_speed], that bring the body to ``position_ref``, heading ``yaw_ref``.

        Position and velocity in the world frame (ENU), orientation as a unit quaternion (x, y, z, w),
        body rates in the body frame (FLU). Pure: the same arguments give the same speeds.
        """
        u = self.k @ self.error_state(position, velocity_world, orientation_xyzw, body_rates, position_ref, yaw_ref)
        return self.model.motor_speeds(self._hover_thrust - u[0], -u[1:])
