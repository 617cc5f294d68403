"""Differential-drive kinematics (twist <-> wheel speeds) and a trajectory-tracking controller with a go-to-goal mode.

Kinematics (unicycle with wheels): with r the wheel radius and b the effective track,

    v = r (w_R + w_L) / 2,   omega = r (w_R - w_L) / b,   w_L,R = (v -+ omega b / 2) / r.

For a four-wheel skid-steer robot (the Husky) b is the geometric track times
``wheel_separation_multiplier`` (aegis.config.DiffDriveConfig): such a robot turns slower than its
wheel speeds say, because its wheels scrub sideways. Wheel speeds over the limit are scaled down
together, which keeps the path's curvature (the turn) and gives up speed.

Tracking (Kanayama, Kimura, Miyazaki, Noguchi, "A stable tracking control method for an autonomous
mobile robot", ICRA 1990, eq. 6). The reference pose and twist come from the reference trajectory's
position p_r, velocity and acceleration (world frame): theta_r = atan2(v_y, v_x), v_r = |v_xy|,
omega_r = (v_x a_y - v_y a_x) / v_r^2. With the error in the robot's frame
(e_x, e_y) = R(theta)^T (p_r - p) and e_theta = theta_r - theta (wrapped to (-pi, pi]):

    v     = v_r cos(e_theta) + k_x e_x
    omega = omega_r + v_r (k_y e_y + k_theta sin(e_theta))

Kanayama et al. prove it asymptotically stable for v_r > 0 (Lyapunov function
(e_x^2 + e_y^2) / 2 + (1 - cos e_theta) / k_y); linearised about zero error at speed v_r the
lateral error obeys  e_y'' + v_r k_theta e_y' + v_r^2 k_y e_y = 0,  so k_theta = 2 sqrt(k_y) is
critically damped at any speed.

Goal mode (and whenever the reference is at rest, where the law above loses its lateral and heading
terms, v_r = 0): go to the reference point with a point-stabilising law, forward or backward,
whichever faces the point, then stop. With rho the distance and alpha the bearing of the point from
the robot's heading (backward: from its tail), v = +-k_rho rho cos(alpha), omega = k_alpha alpha.
Inside ``arrival_radius_m`` the wheels are commanded to zero (braking) and stay so until the robot is
pushed out beyond twice that radius.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

REST_SPEED_MPS = 1e-6
"""A reference slower than this is at rest: the controller regulates to its position instead of tracking."""


def wrap_angle(angle: float) -> float:
    """``angle`` wrapped to (-pi, pi]."""
    return math.pi - (math.pi - angle) % (2.0 * math.pi)


def yaw_of(quaternion_xyzw: np.ndarray) -> float:
    """Heading (rotation about world z) of an (x, y, z, w) quaternion."""
    x, y, z, w = (float(q) for q in quaternion_xyzw)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


@dataclass(frozen=True)
class DiffDriveKinematics:
    """Twist (v forward m/s, omega rad/s about +z) <-> wheel speeds (left, right) in rad/s; positive forward."""

    wheel_radius_m: float
    track_m: float
    max_wheel_speed_radps: float = math.inf

    def __post_init__(self) -> None:
        if not (self.wheel_radius_m > 0 and self.track_m > 0 and self.max_wheel_speed_radps > 0):
            raise ValueError(
                f"wheel_radius_m, track_m and max_wheel_speed_radps must be > 0, got {self.wheel_radius_m}, "
                f"{self.track_m}, {self.max_wheel_speed_radps}"
            )

    @classmethod
    def from_config(cls, diff_drive) -> DiffDriveKinematics:  # noqa: ANN001 - aegis.config.DiffDriveConfig
        """From a robot's diff_drive section, with its effective (skid-steer) track."""
        return cls(diff_drive.wheel_radius_m, diff_drive.effective_track_m, diff_drive.max_wheel_speed_radps)

    def wheel_speeds(self, v: float, omega: float) -> np.ndarray:
        """(left, right) wheel speeds for the twist, not limited."""
        half = 0.5 * omega * self.track_m
        return np.array([(v - half) / self.wheel_radius_m, (v + half) / self.wheel_radius_m])

    def twist(self, wheel_speeds: np.ndarray) -> tuple[float, float]:
        """(v, omega) that (left, right) wheel speeds give."""
        left, right = float(wheel_speeds[0]), float(wheel_speeds[1])
        return 0.5 * self.wheel_radius_m * (right + left), self.wheel_radius_m * (right - left) / self.track_m

    def limited(self, wheel_speeds: np.ndarray) -> np.ndarray:
        """Wheel speeds scaled down together so that none exceeds the limit (same curvature); NaN-free input assumed."""
        peak = float(np.max(np.abs(wheel_speeds)))
        if peak <= self.max_wheel_speed_radps:
            return np.array(wheel_speeds, dtype=float)
        return np.asarray(wheel_speeds, dtype=float) * (self.max_wheel_speed_radps / peak)


@dataclass(frozen=True)
class TrackingGains:
    """Gains and limits of :class:`DiffDriveTracker` (see the module doc for the laws)."""

    k_x: float = 1.0
    """along-track gain (1/s)"""
    k_y: float = 4.0
    """cross-track gain (rad/m^2); the lateral error's natural frequency is v_r sqrt(k_y)"""
    k_theta: float = 4.0
    """heading gain (rad/m); 2 sqrt(k_y) is critically damped"""
    k_rho: float = 0.8
    """go-to-point distance gain (1/s)"""
    k_alpha: float = 2.0
    """go-to-point bearing gain (1/s)"""
    max_speed_mps: float = 1.0
    max_turn_rate_radps: float = 2.0
    arrival_radius_m: float = 0.1
    """go-to-point stops (brakes) within this distance"""

    def __post_init__(self) -> None:
        for name in ("k_x", "k_y", "k_theta", "k_rho", "k_alpha"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("max_speed_mps", "max_turn_rate_radps", "arrival_radius_m"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class TrackingCommand:
    """One step's output: wheel speeds (left, right, rad/s, limited), the twist they give, and the reference pose used."""

    wheel_speeds: np.ndarray
    v: float
    omega: float
    reference_heading: float
    reference_speed: float
    reference_turn_rate: float
    arrived: bool


class DiffDriveTracker:
    """Kanayama tracking of a moving reference; go-to-point and stop when the reference is at rest.

    State: whether the robot has arrived (the stop latch) and the last reference heading (kept while
    the reference is at rest, for the published reference pose). ``reset()`` clears both.
    """

    def __init__(self, kinematics: DiffDriveKinematics, gains: TrackingGains = TrackingGains()) -> None:
        self.kinematics = kinematics
        self.gains = gains
        self.reset()

    def reset(self, heading: float = 0.0) -> None:
        self.arrived = False
        self.reference_heading = float(heading)

    def compute(
        self,
        position: np.ndarray,
        yaw: float,
        reference_position: np.ndarray,
        reference_velocity: np.ndarray,
        reference_acceleration: np.ndarray,
    ) -> TrackingCommand:
        """Wheel speeds for the robot at ``position`` (world, m; x and y used) heading ``yaw`` (rad)."""
        g = self.gains
        dx = float(reference_position[0] - position[0])
        dy = float(reference_position[1] - position[1])
        vx, vy = float(reference_velocity[0]), float(reference_velocity[1])
        v_r = math.hypot(vx, vy)
        if v_r > REST_SPEED_MPS:
            self.arrived = False
            ax, ay = float(reference_acceleration[0]), float(reference_acceleration[1])
            theta_r = math.atan2(vy, vx)
            omega_r = (vx * ay - vy * ax) / (v_r * v_r)
            self.reference_heading = theta_r
            cos_t, sin_t = math.cos(yaw), math.sin(yaw)
            e_x = cos_t * dx + sin_t * dy
            e_y = -sin_t * dx + cos_t * dy
            e_theta = wrap_angle(theta_r - yaw)
            v = v_r * math.cos(e_theta) + g.k_x * e_x
            omega = omega_r + v_r * (g.k_y * e_y + g.k_theta * math.sin(e_theta))
        else:
            omega_r = 0.0
            v, omega = self._go_to(dx, dy, yaw)
        v = min(max(v, -g.max_speed_mps), g.max_speed_mps)
        omega = min(max(omega, -g.max_turn_rate_radps), g.max_turn_rate_radps)
        wheels = self.kinematics.limited(self.kinematics.wheel_speeds(v, omega))
        v, omega = self.kinematics.twist(wheels)
        return TrackingCommand(wheels, v, omega, self.reference_heading, v_r, omega_r, self.arrived)

    def _go_to(self, dx: float, dy: float, yaw: float) -> tuple[float, float]:
        g = self.gains
        rho = math.hypot(dx, dy)
        if rho < g.arrival_radius_m or (self.arrived and rho < 2.0 * g.arrival_radius_m):
            self.arrived = True
            return 0.0, 0.0
        self.arrived = False
        alpha = wrap_angle(math.atan2(dy, dx) - yaw)
        direction = 1.0
        if abs(alpha) > 0.5 * math.pi:  # the point is behind: back up to it rather than turn around
            direction, alpha = -1.0, wrap_angle(alpha + math.pi)
        return direction * g.k_rho * rho * math.cos(alpha), g.k_alpha * alpha
