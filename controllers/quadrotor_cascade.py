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
its direction and the yaw setpoint give the attitude setpoint (m scaled by ``thrust_ratio``, 1 unless an estimator sets it) and its projection on the body z
axis the collective thrust; attitude P on the quaternion error (-> body rates, limited); body-rate
PI (Pid) -> angular acceleration, times the inertia plus the gyroscopic term -> torques; mixing
with thrust over torque de-prioritised at the rotor limits. Built once; compute() per control tick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aegis.controllers.pid import Pid
from aegis.controllers.quadrotor_model import QuadrotorModel


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
        self._inertia_values = tuple(model.inertia_kg_m2.tolist())
        self._attitude_gains = tuple(self._attitude_kp.tolist())
        self._rate_limits = tuple(self._max_rate.tolist())
        self._zero3 = np.zeros(3)
        self._tan_max_tilt = math.tan(gains.max_tilt_rad)
        self._min_thrust_n = 0.1 * model.weight_n
        self._max_thrust_n = model.max_thrust_n
        self.thrust_ratio = 1.0
        """The plant's mass over the model's (over its thrust coefficient's ratio): scales the thrust vector (a hover-thrust
        estimate, aegis.controllers.hover_thrust, sets it; 1 flies the model's mass)."""
        self.reset()

    def reset(self) -> None:
        """Clear the integrators and the recorded setpoints."""
        self._velocity_pid.reset()
        self._rate_pid.reset()
        self.velocity_setpoint = np.zeros(3)
        self._acceleration = (0.0, 0.0, 0.0)
        self._attitude = (0.0, 0.0, 0.0, 1.0)
        self._thrust = 0.0
        self._rates = [0.0, 0.0, 0.0]
        self._torque = (0.0, 0.0, 0.0)
        self.thrust_limited = False

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
        """Motor speeds for a world-frame acceleration (m/s^2, gravity excluded) and a heading (rad).

        This and the levels below run on floats (the inner loop at up to 1 kHz: on 3- and 4-vectors numpy's per-call
        overhead costs more than the arithmetic), each operation as the array expressions it replaced had it.
        """
        ax, ay, az = _values(acceleration)
        self._acceleration = (ax, ay, az)
        mass, gravity = self.model.mass_kg * self.thrust_ratio, self.model.gravity_mps2
        fx, fy, fz = mass * (ax + gravity * 0.0), mass * (ay + gravity * 0.0), mass * (az + gravity * 1.0)
        limited = fz < self._min_thrust_n
        fz = max(fz, self._min_thrust_n)  # never ask to push down: keep the thrust axis up
        horizontal = math.hypot(fx, fy)
        limit = fz * self._tan_max_tilt
        if horizontal > limit:
            scale = limit / horizontal
            fx, fy = fx * scale, fy * scale
        norm = math.sqrt(fx * fx + fy * fy + fz * fz)
        zx, zy, zz = fx / norm, fy / norm, fz / norm
        hx, hy = math.cos(yaw), math.sin(yaw)  # the heading, horizontal
        yx, yy, yz = zy * 0.0 - zz * hy, zz * hx - zx * 0.0, zx * hy - zy * hx  # z x heading
        norm = math.sqrt(yx * yx + yy * yy + yz * yz)  # heading is horizontal and tilt < 90 deg: never parallel
        yx, yy, yz = yx / norm, yy / norm, yz / norm
        xx, xy, xz = yy * zz - yz * zy, yz * zx - yx * zz, yx * zy - yy * zx  # y x z
        attitude = _quaternion_of_columns(xx, xy, xz, yx, yy, yz, zx, zy, zz)
        qx, qy, qz, qw = orientation.tolist()
        # the body z axis: quaternion_to_matrix(orientation)[:, 2]
        thrust = fx * (2.0 * (qx * qz + qw * qy)) + fy * (2.0 * (qy * qz - qw * qx)) + fz * (1.0 - 2.0 * (qx * qx + qy * qy))
        self.thrust_limited = limited or thrust >= self._max_thrust_n
        thrust = min(max(thrust, 0.0), self._max_thrust_n)
        return self._attitude_values((qx, qy, qz, qw), body_rates, attitude, thrust)

    def compute_attitude(
        self, orientation: np.ndarray, body_rates: np.ndarray, attitude: np.ndarray, thrust: float
    ) -> np.ndarray:
        """Motor speeds that turn the body toward ``attitude`` (x, y, z, w) while pushing ``thrust`` (N)."""
        return self._attitude_values(tuple(_values(orientation)), body_rates, tuple(_values(attitude)), float(thrust))

    def _attitude_values(self, orientation: tuple[float, ...], body_rates: np.ndarray, attitude: tuple[float, ...], thrust: float) -> np.ndarray:
        self._attitude = attitude
        ax, ay, az, aw = orientation
        ax, ay, az = -ax, -ay, -az  # the conjugate: the inverse of a unit quaternion
        bx, by, bz, bw = attitude
        ex = aw * bx + ax * bw + ay * bz - az * by  # quat_multiply(conjugate(orientation), attitude)
        ey = aw * by - ax * bz + ay * bw + az * bx
        ez = aw * bz + ax * by - ay * bx + az * bw
        ew = aw * bw - ax * bx - ay * by - az * bz
        sign = 2.0 * (1.0 if ew >= 0.0 else -1.0)  # the shorter way round
        rates = []
        for e, kp, limit in zip((ex, ey, ez), self._attitude_gains, self._rate_limits):
            rate = sign * kp * e
            rate = -limit if rate < -limit else rate  # np.maximum then np.minimum, as before
            rates.append(limit if rate > limit else rate)
        return self._thrust_rates_values(body_rates, thrust, rates)

    def compute_thrust_rates(self, body_rates: np.ndarray, thrust: float, rates: np.ndarray) -> np.ndarray:
        """Motor speeds for a collective thrust (N) and body rates (rad/s, FLU)."""
        return self._thrust_rates_values(body_rates, float(thrust), list(_values(rates)))

    def _thrust_rates_values(self, body_rates: np.ndarray, thrust: float, rates: list[float]) -> np.ndarray:
        self._thrust = thrust
        self._rates = rates
        wx, wy, wz = _values(body_rates)
        rx, ry, rz = rates
        alpha_x, alpha_y, alpha_z = self._rate_pid.compute_values([rx - wx, ry - wy, rz - wz], self.dt)
        jx, jy, jz = self._inertia_values
        lx, ly, lz = jx * wx, jy * wy, jz * wz  # the angular momentum
        torque = (jx * alpha_x + (wy * lz - wz * ly), jy * alpha_y + (wz * lx - wx * lz), jz * alpha_z + (wx * ly - wy * lx))
        self._torque = torque
        return np.array(self.model.motor_speed_values(thrust, *torque))

    @property
    def acceleration_setpoint(self) -> np.ndarray:
        """The last acceleration asked of the inner loops (m/s^2, world)."""
        return np.array(self._acceleration)

    @property
    def attitude_setpoint(self) -> np.ndarray:
        """The last attitude setpoint (x, y, z, w)."""
        return np.array(self._attitude)

    @property
    def thrust_setpoint(self) -> float:
        """The last collective thrust (N)."""
        return self._thrust

    @property
    def rate_setpoint(self) -> np.ndarray:
        """The last body-rate setpoint (rad/s, FLU)."""
        return np.array(self._rates)

    @property
    def torque_setpoint(self) -> np.ndarray:
        """The last torque setpoint (N m, body)."""
        return np.array(self._torque)


def _values(vector: np.ndarray | tuple[float, ...] | list[float]) -> list[float]:
    """A vector's entries as Python floats."""
    return vector.tolist() if isinstance(vector, np.ndarray) else [float(x) for x in vector]


def _quaternion_of_columns(m00: float, m10: float, m20: float, m01: float, m11: float, m21: float, m02: float, m12: float, m22: float) -> tuple[float, ...]:
    """aegis.rotations.matrix_to_quaternion of the matrix with these columns (x, y, z axes), on floats, the same steps."""
    trace = m00 + m11 + m22
    if trace > 0.0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = ((m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s, 0.25 * s)
    elif m00 > m11 and m00 > m22:
        s = 2.0 * math.sqrt(1.0 + m00 - m11 - m22)
        q = (0.25 * s, (m01 + m10) / s, (m02 + m20) / s, (m21 - m12) / s)
    elif m11 > m22:
        s = 2.0 * math.sqrt(1.0 + m11 - m00 - m22)
        q = ((m01 + m10) / s, 0.25 * s, (m12 + m21) / s, (m02 - m20) / s)
    else:
        s = 2.0 * math.sqrt(1.0 + m22 - m00 - m11)
        q = ((m02 + m20) / s, (m12 + m21) / s, 0.25 * s, (m10 - m01) / s)
    x, y, z, w = q
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    x, y, z, w = x / norm, y / norm, z / norm, w / norm
    return (x, y, z, w) if w >= 0.0 else (-x, -y, -z, -w)
