"""An EKF for a differential-drive ground robot: wheel odometry and the IMU's yaw rate (with its bias), pose fixes.

State (6): x, y (world, m), heading theta (rad), forward speed v (m/s), turn rate omega (rad/s),
and the gyro's z bias b_g (rad/s). Process: a unicycle at constant speed and turn rate between
events (x += v cos(theta) dt, y += v sin(theta) dt, theta += omega dt), driven by white
acceleration noise on v and omega, a random walk on b_g, and a random walk of the position
across the heading (a skid-steer slides sideways while it turns: ``lateral_slip_density``). Measurements, each at its stamp:

* wheel odometry: (v, omega) as the wheels report them (nav_msgs/Odometry's twist);
* IMU yaw rate: omega + b_g;
* pose fix (a localiser, GPS, motion capture): (x, y, theta), usually late: the replay buffer
  (aegis.perception.ekf) applies it at its stamp.

Every update is chi-square gated (outliers rejected, counted by the caller) and in Joseph form;
non-finite data is rejected. The filter starts at the first pose fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aegis.perception.ekf import KalmanUpdate, ReplayBuffer, restart
from aegis.rotations import wrap_angle


@dataclass(frozen=True)
class DiffDriveEkfParams:
    """Noise figures and set-up of the diff-drive EKF (densities per sqrt(Hz); stds per measurement)."""

    accel_noise_density: float = 2.0  # m/s^2/sqrt(Hz): how fast the forward speed may change unmodelled
    angular_accel_noise_density: float = 4.0  # rad/s^2/sqrt(Hz)
    gyro_bias_walk: float = 1e-3  # rad/s/sqrt(s)
    lateral_slip_density: float = 0.1  # m/sqrt(s): a skid-steer's sideways sliding, which the unicycle model leaves out
    wheel_speed_std_mps: float = 0.02  # when the message carries no covariance
    wheel_turn_rate_std_radps: float = 0.02
    gyro_std_radps: float = 0.005
    position_std_m: float = 0.005
    heading_std_rad: float = 0.005
    initial_speed_std_mps: float = 0.5
    initial_turn_rate_std_radps: float = 0.5
    initial_gyro_bias_std: float = 0.02
    gate_probability: float = 0.9999
    history_s: float = 0.25
    max_rejected_fixes: int = 24
    """More pose fixes than this rejected in a row (0.1 s at 240 Hz): the filter restarts from the next one."""


@dataclass(frozen=True, slots=True)
class WheelOdometryEvent:
    speed_mps: float
    turn_rate_radps: float
    speed_var: float | None = None
    turn_rate_var: float | None = None


@dataclass(frozen=True, slots=True)
class YawRateEvent:
    rate_radps: float
    var: float | None = None


@dataclass(frozen=True, slots=True)
class PoseFixEvent:
    x: float
    y: float
    heading: float
    position_var: float | None = None
    heading_var: float | None = None


_H_WHEEL = np.array([[0.0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0]])
_H_GYRO = np.array([[0.0, 0, 0, 0, 1, 1]])
_H_POSE = np.hstack([np.eye(3), np.zeros((3, 3))])


def _var(given: float | None, std: float) -> float:
    return given if given is not None and math.isfinite(given) and given > 0.0 else std * std


class DiffDriveEkf:
    """The filter itself (events applied at their stamps); :class:`DiffDriveEstimator` adds the replay buffer."""

    def __init__(self, params: DiffDriveEkfParams | None = None) -> None:
        self.params = params or DiffDriveEkfParams()
        self.update = KalmanUpdate(self.params.gate_probability, (1, 2, 3))
        self.reset()

    def reset(self) -> None:
        self.initialised = False
        self.t = -math.inf
        self.x = np.zeros(6)
        self.P = np.eye(6)

    def snapshot(self) -> tuple:
        return self.initialised, self.t, self.x.copy(), self.P.copy()

    def restore(self, s: tuple) -> None:
        self.initialised, self.t, x, P = s
        self.x, self.P = x.copy(), P.copy()

    def apply(self, stamp: float, event: WheelOdometryEvent | YawRateEvent | PoseFixEvent) -> bool:
        pr = self.params
        if isinstance(event, PoseFixEvent):
            if not self.initialised:
                return self._start(stamp, event)
            self.predict(stamp)
            y = np.array([event.x - self.x[0], event.y - self.x[1], wrap_angle(event.heading - self.x[2])])
            pv = _var(event.position_var, pr.position_std_m)
            R = np.diag([pv, pv, _var(event.heading_var, pr.heading_std_rad)])
            return self._correct(_H_POSE, y, R)
        if not self.initialised:
            return False
        self.predict(stamp)
        if isinstance(event, WheelOdometryEvent):
            y = np.array([event.speed_mps - self.x[3], event.turn_rate_radps - self.x[4]])
            R = np.diag([_var(event.speed_var, pr.wheel_speed_std_mps), _var(event.turn_rate_var, pr.wheel_turn_rate_std_radps)])
            return self._correct(_H_WHEEL, y, R)
        y = np.array([event.rate_radps - self.x[4] - self.x[5]])
        return self._correct(_H_GYRO, y, np.array([[_var(event.var, pr.gyro_std_radps)]]))

    def predict(self, stamp: float) -> None:
        """Move the state to ``stamp`` (no-op if it is not later than the state's)."""
        dt = stamp - self.t
        if not dt > 0.0:
            return
        pr = self.params
        x, y, th, v, w, bg = self.x
        c, s = math.cos(th), math.sin(th)
        self.x = np.array([x + v * c * dt, y + v * s * dt, wrap_angle(th + w * dt), v, w, bg])
        F = np.eye(6)
        F[0, 2], F[0, 3] = -v * s * dt, c * dt
        F[1, 2], F[1, 3] = v * c * dt, s * dt
        F[2, 4] = dt
        P = F @ self.P @ F.T
        P[3, 3] += pr.accel_noise_density**2 * dt
        P[4, 4] += pr.angular_accel_noise_density**2 * dt
        P[5, 5] += pr.gyro_bias_walk**2 * dt
        slip = pr.lateral_slip_density**2 * dt  # along the body's y axis, in the world frame
        P[0:2, 0:2] += slip * np.array([[s * s, -s * c], [-s * c, c * c]])
        self.P = P
        self.t = stamp

    def _correct(self, H: np.ndarray, y: np.ndarray, R: np.ndarray) -> bool:
        result = self.update(self.P, H, y, R)
        if result is None:
            return False
        dx, self.P = result
        x = self.x + dx
        x[2] = wrap_angle(x[2])
        self.x = x
        return True

    def _start(self, stamp: float, fix: PoseFixEvent) -> bool:
        pr = self.params
        if not all(math.isfinite(value) for value in (fix.x, fix.y, fix.heading)):
            return False
        self.x = np.array([fix.x, fix.y, wrap_angle(fix.heading), 0.0, 0.0, 0.0])
        pv = _var(fix.position_var, pr.position_std_m)
        self.P = np.diag([pv, pv, _var(fix.heading_var, pr.heading_std_rad), pr.initial_speed_std_mps**2,
                          pr.initial_turn_rate_std_radps**2, pr.initial_gyro_bias_std**2])
        self.t = stamp
        self.initialised = True
        return True


class DiffDriveEstimator:
    """The EKF behind a replay buffer: wheel odometry, yaw rates and (late) pose fixes in any order; counts outcomes."""

    def __init__(self, params: DiffDriveEkfParams | None = None) -> None:
        self.ekf = DiffDriveEkf(params)
        self.buffer = ReplayBuffer(self.ekf, self.ekf.params.history_s)
        self.counts = {"applied": 0, "rejected": 0, "too_old": 0, "bad_stamp": 0, "restarts": 0}
        self._rejected_fixes = 0

    def reset(self) -> None:
        self.ekf.reset()
        self.buffer.clear()
        self.counts = dict.fromkeys(self.counts, 0)
        self._rejected_fixes = 0

    def process(self, stamp: float, event: WheelOdometryEvent | YawRateEvent | PoseFixEvent) -> str:
        outcome = self.buffer.process(stamp, event)
        self.counts[outcome] += 1
        if isinstance(event, PoseFixEvent):
            gated = outcome == "rejected" and self.ekf.initialised  # before the start there is nothing to restart
            self._rejected_fixes = self._rejected_fixes + 1 if gated else 0
            if self._rejected_fixes > self.ekf.params.max_rejected_fixes:
                restart(self.ekf, self.buffer, stamp, event)  # the estimate left the fixes behind: start again from this one
                self.counts["restarts"] += 1
                self._rejected_fixes = 0
        return outcome
