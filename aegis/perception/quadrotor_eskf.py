"""An error-state EKF for a quadrotor: IMU propagation (accelerometer + gyro, random-walk biases), pose and velocity updates.

The model is Solà's ("Quaternion kinematics for the error-state Kalman filter", 2017, section 5
and 7, local attitude error). Nominal state: position p and velocity v (world ENU, m, m/s), the
attitude q (body FLU -> world, quaternion x, y, z, w), the accelerometer and gyro biases b_a,
b_g (body). Error state (15): dp, dv, dtheta (body-frame rotation vector: q_true = q * exp(dtheta)),
db_a, db_g, with covariance P.

* IMU sample (specific force a_m in m/s^2, rate w_m in rad/s, body frame) at stamp t: the state
  moves from its stamp to t with that sample held over the interval (what an accelerometer
  averaging over its sample period reports): a = R (a_m - b_a) + g, p += v dt + a dt^2 / 2,
  v += a dt, q = q * exp((w_m - b_g) dt); P = F P F' + Q with Q from the white noise densities
  (accel, gyro) and the bias random walks.
* Pose (motion capture): position (world) and, when given, attitude; velocity (body frame, as
  nav_msgs/Odometry carries it) when given. Residuals p_m - p, log(q^-1 q_m), v_m - R'v; a
  joint chi-square gate on the normalised innovation (NIS) rejects outliers; the update is in
  Joseph form, then the error is injected and reset (with the reset Jacobian on dtheta).

The filter starts at the first pose (velocity zero unless measured, biases zero). It never raises
on data: a non-finite sample or measurement is rejected and counted. Late measurements are the
replay buffer's (aegis.perception.ekf): :class:`QuadrotorEskf` applies events at their stamps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aegis.perception.ekf import KalmanUpdate, ReplayBuffer, restart
from aegis.rotations import quat_conjugate, quat_exp, quat_log, quat_multiply, quaternion_to_matrix, skew


@dataclass(frozen=True)
class QuadrotorEskfParams:
    """Noise figures (continuous-time densities: per sqrt(Hz)) and set-up of the quadrotor ESKF."""

    gravity_mps2: float = 9.81
    accel_noise_density: float = 0.02 / math.sqrt(240.0)  # m/s^2/sqrt(Hz): 0.02 m/s^2 per 240 Hz sample
    gyro_noise_density: float = 0.003 / math.sqrt(240.0)  # rad/s/sqrt(Hz)
    accel_bias_walk: float = 1e-3  # m/s^3/sqrt(Hz)
    gyro_bias_walk: float = 1e-4  # rad/s^2/sqrt(Hz)
    position_std_m: float = 0.002  # a pose measurement's, when it carries no covariance
    attitude_std_rad: float = 0.005
    velocity_std_mps: float = 0.02
    initial_velocity_std_mps: float = 0.5
    initial_accel_bias_std: float = 0.1
    initial_gyro_bias_std: float = 0.02
    gate_probability: float = 0.9999
    """Measurements whose NIS is above this chi-square quantile are rejected as outliers."""
    history_s: float = 0.25
    """How late a measurement may be (s): older ones are dropped."""
    max_rejected_poses: int = 24
    """More poses than this rejected in a row (0.1 s at 240 Hz): the filter restarts from the next one."""


@dataclass(frozen=True, slots=True)
class ImuEvent:
    accel: np.ndarray  # specific force, body (m/s^2)
    gyro: np.ndarray  # body rates (rad/s)
    accel_var: float | None = None  # per-sample variance; None: the params' density
    gyro_var: float | None = None


@dataclass(frozen=True, slots=True)
class PoseEvent:
    position: np.ndarray | None  # world (m)
    orientation: np.ndarray | None = None  # x, y, z, w
    velocity_body: np.ndarray | None = None  # m/s
    position_var: np.ndarray | None = None  # (3,) variances; None: the params'
    attitude_var: np.ndarray | None = None
    velocity_var: np.ndarray | None = None


_I3 = np.eye(3)


class QuadrotorEskf:
    """The filter itself (events applied at their stamps); :class:`QuadrotorEstimator` adds the replay buffer."""

    def __init__(self, params: QuadrotorEskfParams | None = None) -> None:
        self.params = params or QuadrotorEskfParams()
        self.update = KalmanUpdate(self.params.gate_probability, (3, 6, 9))
        self.gravity = np.array([0.0, 0.0, -self.params.gravity_mps2])
        self.reset()

    def reset(self) -> None:
        self.initialised = False
        self.t = -math.inf
        self.p = np.zeros(3)
        self.v = np.zeros(3)
        self.q = np.array([0.0, 0.0, 0.0, 1.0])
        self.ba = np.zeros(3)
        self.bg = np.zeros(3)
        self.gyro = np.zeros(3)  # the last gyro sample (for the published body rates)
        self.gyro_var = 0.0
        self.P = np.eye(15)

    # -- the replay buffer's contract ---------------------------------------------------------
    def snapshot(self) -> tuple:
        return (self.initialised, self.t, self.p.copy(), self.v.copy(), self.q.copy(), self.ba.copy(), self.bg.copy(),
                self.gyro.copy(), self.gyro_var, self.P.copy())

    def restore(self, s: tuple) -> None:
        (self.initialised, self.t, p, v, q, ba, bg, gyro, self.gyro_var, P) = s
        self.p, self.v, self.q, self.ba, self.bg, self.gyro, self.P = p.copy(), v.copy(), q.copy(), ba.copy(), bg.copy(), gyro.copy(), P.copy()

    def apply(self, stamp: float, event: ImuEvent | PoseEvent) -> bool:
        if isinstance(event, ImuEvent):
            return self.propagate(stamp, event)
        return self.correct(stamp, event)

    # -- the filter -----------------------------------------------------------------------------
    def propagate(self, stamp: float, imu: ImuEvent) -> bool:
        """Move the state to ``stamp`` with one IMU sample; False (nothing changes) before the first pose or for bad data."""
        if not (self.initialised and np.all(np.isfinite(imu.accel)) and np.all(np.isfinite(imu.gyro))):
            return False
        dt = stamp - self.t
        self.gyro = imu.gyro.copy()
        if imu.gyro_var is not None:
            self.gyro_var = imu.gyro_var
        if dt <= 0.0:
            return True
        pr = self.params
        R = quaternion_to_matrix(self.q)
        a_body = imu.accel - self.ba
        w_body = imu.gyro - self.bg
        a_world = R @ a_body + self.gravity
        self.p = self.p + self.v * dt + 0.5 * dt * dt * a_world
        self.v = self.v + a_world * dt
        q = quat_multiply(self.q, quat_exp(w_body * dt))
        self.q = q / math.sqrt(float(q @ q))
        F = np.eye(15)
        F[0:3, 3:6] = _I3 * dt
        F[3:6, 6:9] = -(R @ skew(a_body)) * dt
        F[3:6, 9:12] = -R * dt
        F[6:9, 6:9] = quaternion_to_matrix(quat_exp(w_body * dt)).T
        F[6:9, 12:15] = -_I3 * dt
        accel_var = imu.accel_var * dt if imu.accel_var is not None else pr.accel_noise_density**2
        gyro_var = imu.gyro_var * dt if imu.gyro_var is not None else pr.gyro_noise_density**2
        # White noise of variance sigma^2 per sample over dt stands for a density sigma^2 dt (one sample per interval).
        q_diag = np.concatenate(
            [
                np.zeros(3),
                np.full(3, accel_var * dt),
                np.full(3, gyro_var * dt),
                np.full(3, pr.accel_bias_walk**2 * dt),
                np.full(3, pr.gyro_bias_walk**2 * dt),
            ]
        )
        P = F @ self.P @ F.T
        P[np.diag_indices(15)] += q_diag
        self.P = P
        self.t = stamp
        return True

    def correct(self, stamp: float, pose: PoseEvent) -> bool:
        """A pose (and velocity) measurement at the state's time; the first one starts the filter. False: rejected."""
        pr = self.params
        if not self.initialised:
            return self._start(stamp, pose)
        rows: list[np.ndarray] = []
        residuals: list[np.ndarray] = []
        variances: list[np.ndarray] = []
        R = quaternion_to_matrix(self.q)
        if pose.position is not None:
            H = np.zeros((3, 15))
            H[:, 0:3] = _I3
            rows.append(H)
            residuals.append(pose.position - self.p)
            variances.append(_var(pose.position_var, pr.position_std_m))
        if pose.orientation is not None:
            H = np.zeros((3, 15))
            H[:, 6:9] = _I3
            rows.append(H)
            q_m = pose.orientation / math.sqrt(float(pose.orientation @ pose.orientation)) if np.all(np.isfinite(pose.orientation)) else pose.orientation
            residuals.append(quat_log(quat_multiply(quat_conjugate(self.q), q_m)))
            variances.append(_var(pose.attitude_var, pr.attitude_std_rad))
        if pose.velocity_body is not None:
            H = np.zeros((3, 15))
            v_body = R.T @ self.v
            H[:, 3:6] = R.T
            H[:, 6:9] = skew(v_body)
            rows.append(H)
            residuals.append(pose.velocity_body - v_body)
            variances.append(_var(pose.velocity_var, pr.velocity_std_mps))
        if not rows:
            return False
        H, y, Rm = np.vstack(rows), np.concatenate(residuals), np.diag(np.concatenate(variances))
        result = self.update(self.P, H, y, Rm)
        if result is None:
            return False
        dx, P = result
        self.p = self.p + dx[0:3]
        self.v = self.v + dx[3:6]
        q = quat_multiply(self.q, quat_exp(dx[6:9]))
        self.q = q / math.sqrt(float(q @ q))
        self.ba = self.ba + dx[9:12]
        self.bg = self.bg + dx[12:15]
        G = np.eye(15)
        G[6:9, 6:9] = _I3 - skew(0.5 * dx[6:9])
        self.P = G @ P @ G.T
        self.t = max(self.t, stamp)
        return True

    def _start(self, stamp: float, pose: PoseEvent) -> bool:
        pr = self.params
        if pose.position is None or not np.all(np.isfinite(pose.position)):
            return False
        q = pose.orientation
        if q is None or not np.all(np.isfinite(q)) or float(q @ q) < 1e-6:
            return False  # the attitude cannot be observed from a position alone at rest: wait for a full pose
        self.p = pose.position.copy()
        self.q = q / math.sqrt(float(q @ q))
        v = pose.velocity_body
        has_v = v is not None and np.all(np.isfinite(v))
        self.v = quaternion_to_matrix(self.q) @ v if has_v else np.zeros(3)
        self.ba = np.zeros(3)
        self.bg = np.zeros(3)
        velocity_var = _var(pose.velocity_var, pr.velocity_std_mps) if has_v else np.full(3, pr.initial_velocity_std_mps**2)
        self.P = np.diag(
            np.concatenate(
                [
                    _var(pose.position_var, pr.position_std_m),
                    velocity_var,
                    _var(pose.attitude_var, pr.attitude_std_rad),
                    np.full(3, pr.initial_accel_bias_std**2),
                    np.full(3, pr.initial_gyro_bias_std**2),
                ]
            )
        )
        self.t = stamp
        self.initialised = True
        return True

    # -- what the node publishes and the tests measure ------------------------------------------
    def velocity_body(self) -> np.ndarray:
        return quaternion_to_matrix(self.q).T @ self.v

    def body_rates(self) -> np.ndarray:
        return self.gyro - self.bg

    def pose_covariance(self) -> np.ndarray:
        """6x6 covariance of (position, rotation about the world's x, y, z), as nav_msgs/Odometry's pose carries it."""
        R = quaternion_to_matrix(self.q)
        J = np.zeros((6, 15))
        J[0:3, 0:3] = _I3
        J[3:6, 6:9] = R  # a body-frame rotation error seen in the world frame
        return J @ self.P @ J.T

    def twist_covariance(self) -> np.ndarray:
        """6x6 covariance of (body velocity, body rates), as nav_msgs/Odometry's twist carries it (child frame)."""
        R = quaternion_to_matrix(self.q)
        J = np.zeros((3, 15))
        J[:, 3:6] = R.T
        J[:, 6:9] = skew(R.T @ self.v)
        cov = np.zeros((6, 6))
        cov[0:3, 0:3] = J @ self.P @ J.T
        cov[3:6, 3:6] = self.P[12:15, 12:15] + _I3 * self.gyro_var
        return cov

    def error(self, position: np.ndarray, velocity_world: np.ndarray, orientation: np.ndarray) -> np.ndarray:
        """The 9 error-state components (dp, dv, dtheta) from this estimate to a true state (for NEES)."""
        dtheta = quat_log(quat_multiply(quat_conjugate(self.q), orientation))
        return np.concatenate([position - self.p, velocity_world - self.v, dtheta])


def _var(given: np.ndarray | None, std: float) -> np.ndarray:
    """A measurement's per-axis variances: the message's when it carries positive ones, else the configured std squared."""
    if given is not None and np.all(np.isfinite(given)) and np.all(given > 0.0):
        return np.asarray(given, dtype=np.float64)
    return np.full(3, std * std)


class QuadrotorEstimator:
    """The ESKF behind a replay buffer: IMU samples and (late) poses in any order; counts what it rejected."""

    def __init__(self, params: QuadrotorEskfParams | None = None) -> None:
        self.eskf = QuadrotorEskf(params)
        self.buffer = ReplayBuffer(self.eskf, self.eskf.params.history_s)
        self.counts = {"applied": 0, "rejected": 0, "too_old": 0, "bad_stamp": 0, "restarts": 0}
        self.rejected_poses = 0
        self._rejected_in_a_row = 0

    def reset(self) -> None:
        self.eskf.reset()
        self.buffer.clear()
        self.counts = dict.fromkeys(self.counts, 0)
        self.rejected_poses = 0
        self._rejected_in_a_row = 0

    def imu(self, stamp: float, event: ImuEvent) -> str:
        outcome = self.buffer.process(stamp, event)
        self.counts[outcome] += 1
        return outcome

    def pose(self, stamp: float, event: PoseEvent) -> str:
        outcome = self.buffer.process(stamp, event)
        self.counts[outcome] += 1
        if outcome != "applied":
            self.rejected_poses += 1
        gated = outcome == "rejected" and self.eskf.initialised  # before the start there is nothing to restart
        self._rejected_in_a_row = self._rejected_in_a_row + 1 if gated else 0
        if self._rejected_in_a_row > self.eskf.params.max_rejected_poses:
            restart(self.eskf, self.buffer, stamp, event)  # the estimate left the poses behind: start again from this one
            self.counts["restarts"] += 1
            self._rejected_in_a_row = 0
        return outcome
