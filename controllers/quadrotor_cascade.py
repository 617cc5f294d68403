"""The quadrotor cascade: position -> velocity -> attitude and thrust -> body rates -> torques -> motor speeds.

Each level is an entry point, so a caller can command whichever it has:

- :meth:`QuadrotorCascade.compute` (position, with velocity and acceleration feed-forward),
- :meth:`QuadrotorCascade.compute_velocity` (velocity, with acceleration feed-forward),
- :meth:`QuadrotorCascade.compute_acceleration` (acceleration and yaw),
- and the outer loops alone, :meth:`QuadrotorCascade.position_to_acceleration` and
  :meth:`QuadrotorCascade.velocity_to_acceleration`, which return the acceleration command that a
  safety filter corrects before ``compute_acceleration`` realises it,
- :meth:`QuadrotorCascade.compute_attitude` (attitude quaternion and collective thrust),
- :meth:`QuadrotorCascade.compute_thrust_rates` (collective thrust and body rates, as
  :class:`aegis.msgs.ThrustRatesCommand` carries them);

every one returns rotor speeds (rad/s) for the mixer's rotor order (aegis.controllers.quadrotor_model);
motor speeds themselves go to the plant unchanged. Frames: ENU world, FLU body; positions and
velocities in the world frame; body rates in the body frame; quaternions (x, y, z, w).

The loops: position P (-> velocity command, limited in speed); velocity PI with anti-windup
(aegis.controllers.pid.Pid; -> acceleration, limited); thrust vector m (a + g z) limited in tilt,
its direction and the yaw setpoint give the attitude setpoint and its projection on the body z
axis the collective thrust; attitude P on the quaternion error (-> body rates, limited); body-rate
PI (Pid) -> angular acceleration, times the inertia plus the gyroscopic term -> torques; mixing
with thrust over torque de-prioritised at the rotor limits. Built once; compute() per control tick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aegis.controllers.pid import Pid
from aegis.controllers.quadrotor_model import QuadrotorModel, matrix_to_quaternion, quaternion_to_matrix
from aegis.rotations import quat_conjugate, quat_multiply

_Z = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class CascadeGains:
    """Gains and limits of the cascade, per axis (x, y, z) where a tuple. Units in each field's comment.

    The defaults fly a Crazyflie 2.x with the inner loops (attitude, rate) at 240 Hz and the outer
    ones at 48 Hz. The inner gains are chosen for margin, not speed: the rate loop crosses over at
    about 16 rad/s, and with the motor time constant doubled plus 10 ms of sensing and 10 ms of
    actuation latency it keeps 14 degrees of phase and 5 dB of gain margin (20 / 7 kept 2 degrees);
    aegis.controllers.attitude_margins computes the table (docs in its module).
    """

    position_kp: tuple[float, float, float] = (2.0, 2.0, 2.5)  # 1/s: velocity command per m of error
    velocity_kp: tuple[float, float, float] = (4.0, 4.0, 5.0)  # 1/s: acceleration per m/s of error
    velocity_ki: tuple[float, float, float] = (1.0, 1.0, 2.0)  # 1/s^2
    velocity_integral_limit: tuple[float, float, float] = (1.0, 1.0, 1.0)  # m (integral of velocity error)
    attitude_kp: tuple[float, float, float] = (5.0, 5.0, 3.0)  # 1/s: body rate per rad of attitude error
    rate_kp: tuple[float, float, float] = (16.0, 16.0, 10.0)  # 1/s: angular acceleration per rad/s of error
    rate_ki: tuple[float, float, float] = (0.0, 0.0, 0.0)  # 1/s^2
    rate_integral_limit: tuple[float, float, float] = (0.5, 0.5, 0.5)  # rad
    max_speed_mps: float = 2.0
    max_accel_mps2: float = 8.0  # per axis
    max_tilt_rad: float = math.radians(35.0)
    max_rate_radps: tuple[float, float, float] = (6.0, 6.0, 3.0)

    def __post_init__(self) -> None:
        for name in ("position_kp", "velocity_kp", "velocity_ki", "velocity_integral_limit", "attitude_kp", "rate_kp", "rate_ki", "rate_integral_limit", "max_rate_radps"):
            value = np.asarray(getattr(self, name), dtype=float)
            if value.shape != (3,) or np.any(value < 0) or not np.all(np.isfinite(value)):
                raise ValueError(f"CascadeGains.{name}: expected 3 finite values >= 0, got {getattr(self, name)!r}")
        if not (self.max_speed_mps > 0 and self.max_accel_mps2 > 0 and 0 < self.max_tilt_rad < math.pi / 2):
            raise ValueError("CascadeGains: max_speed_mps and max_accel_mps2 must be > 0, max_tilt_rad in (0, pi/2)")
        if min(self.max_rate_radps) <= 0:
            raise ValueError("CascadeGains.max_rate_radps: must be > 0")


class QuadrotorCascade:
    """The cascade for one quadrotor ``model`` at a fixed control period ``dt`` (s)."""

    def __init__(self, model: QuadrotorModel, gains: CascadeGains, dt: float) -> None:
        if not dt > 0:
            raise ValueError(f"dt must be > 0, got {dt}")
        self.model = model
        self.gains = gains
        self.dt = float(dt)
        self._position_kp = np.asarray(gains.position_kp, dtype=float)
        self._attitude_kp = np.asarray(gains.attitude_kp, dtype=float)
        self._max_rate = np.asarray(gains.max_rate_radps, dtype=float)
        self._velocity_pid = Pid(
            gains.velocity_kp, gains.velocity_ki, 0.0, gains.max_accel_mps2, gains.velocity_integral_limit, dim=3
        )
        self._rate_pid = Pid(gains.rate_kp, gains.rate_ki, 0.0, np.inf, gains.rate_integral_limit, dim=3)
        self._inertia = model.inertia_kg_m2
        self._zero3 = np.zeros(3)
        self._tan_max_tilt = math.tan(gains.max_tilt_rad)
        self._min_thrust_n = 0.1 * model.weight_n
        self._max_thrust_n = model.max_thrust_n
        self.reset()

    def reset(self) -> None:
        """Clear the integrators and the recorded setpoints."""
        self._velocity_pid.reset()
        self._rate_pid.reset()
        self.velocity_setpoint = np.zeros(3)
        self.acceleration_setpoint = np.zeros(3)
        self.attitude_setpoint = np.array([0.0, 0.0, 0.0, 1.0])
        self.thrust_setpoint = 0.0
        self.rate_setpoint = np.zeros(3)
        self.torque_setpoint = np.zeros(3)

    def compute(
        self,
        position: np.ndarray,
        velocity: np.ndarray,
        orientation: np.ndarray,
        body_rates: np.ndarray,
        ref_position: np.ndarray,
        ref_velocity: np.ndarray | None = None,
        ref_acceleration: np.ndarray | None = None,
        ref_yaw: float = 0.0,
    ) -> np.ndarray:
        """Motor speeds that track a position reference (velocity and acceleration feed-forward optional)."""
        accel = self.position_to_acceleration(position, velocity, ref_position, ref_velocity, ref_acceleration)
        return self.compute_acceleration(orientation, body_rates, accel, ref_yaw)

    def compute_velocity(
        self,
        velocity: np.ndarray,
        orientation: np.ndarray,
        body_rates: np.ndarray,
        ref_velocity: np.ndarray,
        ref_acceleration: np.ndarray | None = None,
        ref_yaw: float = 0.0,
    ) -> np.ndarray:
        """Motor speeds that track a world-frame velocity (m/s)."""
        accel = self.velocity_to_acceleration(velocity, ref_velocity, ref_acceleration)
        return self.compute_acceleration(orientation, body_rates, accel, ref_yaw)

    def position_to_acceleration(
        self,
        position: np.ndarray,
        velocity: np.ndarray,
        ref_position: np.ndarray,
        ref_velocity: np.ndarray | None = None,
        ref_acceleration: np.ndarray | None = None,
    ) -> np.ndarray:
        """The outer loops alone: the world-frame acceleration (m/s^2) that tracks a position reference.

        This is the command a safety filter corrects before :meth:`compute_acceleration` realises it.
        """
        command = self._position_kp * (ref_position - position)
        if ref_velocity is not None:
            command += ref_velocity
        speed = math.sqrt(command @ command)
        if speed > self.gains.max_speed_mps:
            command *= self.gains.max_speed_mps / speed
        return self.velocity_to_acceleration(velocity, command, ref_acceleration)

    def velocity_to_acceleration(
        self, velocity: np.ndarray, ref_velocity: np.ndarray, ref_acceleration: np.ndarray | None = None
    ) -> np.ndarray:
        """The velocity loop alone: the acceleration (m/s^2) that tracks a world-frame velocity."""
        self.velocity_setpoint = np.array(ref_velocity, dtype=float)
        accel = self._velocity_pid.compute(self.velocity_setpoint - velocity, self._zero3, self.dt)
        if ref_acceleration is not None:
            accel = accel + ref_acceleration
        return accel

    def compute_acceleration(
        self, orientation: np.ndarray, body_rates: np.ndarray, acceleration: np.ndarray, yaw: float = 0.0
    ) -> np.ndarray:
        """Motor speeds for a world-frame acceleration (m/s^2, gravity excluded) and a heading (rad)."""
        self.acceleration_setpoint = np.array(acceleration, dtype=float)
        force = self.model.mass_kg * (self.acceleration_setpoint + self.model.gravity_mps2 * _Z)
        force[2] = max(force[2], self._min_thrust_n)  # never ask to push down: keep the thrust axis up
        horizontal = math.hypot(force[0], force[1])
        limit = force[2] * self._tan_max_tilt
        if horizontal > limit:
            force[:2] *= limit / horizontal
        z_axis = force / math.sqrt(force @ force)
        heading = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        y_axis = _cross(z_axis, heading)
        y_axis /= math.sqrt(y_axis @ y_axis)  # heading is horizontal and tilt < 90 deg: never parallel
        x_axis = _cross(y_axis, z_axis)
        attitude = matrix_to_quaternion(np.array([x_axis, y_axis, z_axis]).T)
        body_z = quaternion_to_matrix(orientation)[:, 2]
        thrust = min(max(float(force @ body_z), 0.0), self._max_thrust_n)
        return self.compute_attitude(orientation, body_rates, attitude, thrust)

    def compute_attitude(
        self, orientation: np.ndarray, body_rates: np.ndarray, attitude: np.ndarray, thrust: float
    ) -> np.ndarray:
        """Motor speeds that turn the body toward ``attitude`` (x, y, z, w) while pushing ``thrust`` (N)."""
        self.attitude_setpoint = np.asarray(attitude, dtype=float)
        error = quat_multiply(quat_conjugate(orientation), self.attitude_setpoint)
        sign = 1.0 if error[3] >= 0.0 else -1.0  # the shorter way round
        rates = np.minimum(np.maximum((2.0 * sign) * self._attitude_kp * error[:3], -self._max_rate), self._max_rate)
        return self.compute_thrust_rates(body_rates, thrust, rates)

    def compute_thrust_rates(self, body_rates: np.ndarray, thrust: float, rates: np.ndarray) -> np.ndarray:
        """Motor speeds for a collective thrust (N) and body rates (rad/s, FLU)."""
        self.thrust_setpoint = float(thrust)
        self.rate_setpoint = np.asarray(rates, dtype=float)
        angular_accel = self._rate_pid.compute(self.rate_setpoint - body_rates, self._zero3, self.dt)
        inertia = self._inertia
        self.torque_setpoint = inertia * angular_accel + _cross(body_rates, inertia * body_rates)
        return self.model.motor_speeds(self.thrust_setpoint, self.torque_setpoint)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a x b for 3-vectors (np.cross costs ten times more on arrays this small)."""
    ax, ay, az = a
    bx, by, bz = b
    return np.array([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx])
