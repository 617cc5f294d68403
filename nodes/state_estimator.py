"""The state_estimator node: the robot's odometry (with covariance) from its IMU and late, noisy pose and wheel measurements.

What the controllers and the safety filter read on a robot that has no simulator to ask: an
estimate fused from the robot's own sensors (aegis.perception says how):

* quadrotor (``robot.kind: quadrotor``): an error-state EKF propagated by every IMU sample on
  ``imu`` (/imu: specific force and body rates) and corrected by the motion-capture pose on
  ``pose`` (/mocap: nav_msgs/Odometry; position and attitude, its twist too with
  ``pose_velocity``), aegis.perception.quadrotor_eskf;
* diff drive (``robot.kind: diff_drive``): an EKF on wheel odometry (``wheel_odom``: the twist of
  a nav_msgs/Odometry, forward speed and turn rate), the IMU's yaw rate (``imu``) and pose fixes
  (``pose``: x, y, heading), aegis.perception.diff_drive_ekf.

Each message is used once (a message whose stamp is not newer than the last one taken from its
port is old news) and at its own stamp: a late pose is applied where it was measured and the
later IMU samples re-applied (the filters' replay buffer, ``history_s`` long). Measurement noise
comes from the messages' covariances where they carry them, else from the filters' defaults.
Outliers (chi-square gate, ``gate_probability``) and non-finite data are rejected and counted
(``counts``), never raised. The node publishes the estimate on ``state`` (/odom, stamped with the
time of the newest measurement it includes, covariance filled in) once the filter has started
(at the first pose) and while the IMU (quadrotor) or the wheel odometry (diff drive) is fresh;
without them it publishes nothing, and the readers' staleness bounds take over (a supervisor
brakes or hovers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from aegis.config import CRAZYFLIE_2X, RobotConfig
from aegis.msgs import ImuSample, RobotState
from aegis.node import Node, NodeParams, Port, Received
from aegis.perception.diff_drive_ekf import DiffDriveEkfParams, DiffDriveEstimator, PoseFixEvent, WheelOdometryEvent, YawRateEvent
from aegis.perception.quadrotor_eskf import ImuEvent, PoseEvent, QuadrotorEskfParams, QuadrotorEstimator
from aegis.rotations import quat_yaw, yaw_quaternion

INPUT_TIMEOUT_S = 0.05
"""How old the newest IMU sample (quadrotor) or wheel odometry (diff drive) may be before the estimate is not published."""


class StateEstimatorParams(NodeParams):
    robot: RobotConfig = Field(CRAZYFLIE_2X, description="the robot (filled from the hw_config's robot section); its kind picks the filter")
    gate_probability: Annotated[float, Field(gt=0.5, lt=1.0)] = Field(
        0.9999, description="chi-square gate: a measurement whose normalised innovation lies beyond this quantile is rejected"
    )
    history_s: Annotated[float, Field(gt=0, le=2.0)] = Field(
        0.25, description="how late a measurement may arrive and still be applied at its stamp (s)"
    )
    pose_attitude: bool = Field(True, description="quadrotor: correct the attitude with the pose's orientation (motion capture gives it)")
    pose_velocity: bool = Field(False, description="quadrotor: correct the velocity with the pose message's twist (false for motion capture)")


class StateEstimator(Node):
    """IMU + late pose (quadrotor ESKF) or wheel odometry + yaw rate + pose fixes (diff-drive EKF) -> odometry with covariance."""

    type_name = "state_estimator"
    inputs = (
        Port("imu", ImuSample, "/imu", max_age_s=INPUT_TIMEOUT_S, description="IMU: specific force and body rates (quadrotor), yaw rate (diff drive)"),
        Port("pose", RobotState, "/mocap", description="pose measurements, late and noisy (motion capture, a localiser)"),
        Port("wheel_odom", RobotState, "/wheel_odom", max_age_s=INPUT_TIMEOUT_S, description="diff drive: wheel odometry (its twist is used)"),
    )
    outputs = (Port("state", RobotState, "/odom", description="the estimate: pose, body twist and their covariances"),)
    Params = StateEstimatorParams
    default_rate_hz = 240.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        p = self.params
        self.kind = p.robot.kind
        if self.kind == "quadrotor":
            self.quadrotor = QuadrotorEstimator(QuadrotorEskfParams(gate_probability=p.gate_probability, history_s=p.history_s))
        elif self.kind == "diff_drive":
            self.diff_drive = DiffDriveEstimator(DiffDriveEkfParams(gate_probability=p.gate_probability, history_s=p.history_s))
        else:
            raise ValueError(f"{self.name}: state_estimator estimates kind quadrotor or diff_drive, not {self.kind!r}")
        self._last: dict[str, float] = {}
        self._frames = ("odom", "base_link")
        self._z = 0.0
        self._pose_cov_extra = np.zeros(3)

    @classmethod
    def unread_inputs(cls, params: StateEstimatorParams) -> tuple[str, ...]:
        """A quadrotor has no wheels: its estimator leaves wheel_odom unread."""
        return ("wheel_odom",) if params.robot.kind == "quadrotor" else ()

    @property
    def counts(self) -> dict[str, int]:
        """What became of every measurement since reset: applied, rejected (gate or bad data), too_old, bad_stamp."""
        return dict(self.quadrotor.counts if self.kind == "quadrotor" else self.diff_drive.counts)

    def reset(self, seed: int | None = None) -> None:
        (self.quadrotor if self.kind == "quadrotor" else self.diff_drive).reset()
        self._last = {}
        self._z = 0.0

    def _new(self, port: str, received: Received | None) -> Any:
        """The message on ``port`` if it is news (stamp newer than the last one taken from it), else None."""
        if received is None:
            return None
        msg = received.msg
        if not msg.stamp > self._last.get(port, -math.inf):  # a NaN stamp is never news
            return None
        self._last[port] = msg.stamp
        return msg

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        if self.kind == "quadrotor":
            return self._step_quadrotor(inputs)
        return self._step_diff_drive(inputs)

    # -- quadrotor ------------------------------------------------------------------------------
    def _step_quadrotor(self, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        p, est = self.params, self.quadrotor
        pose = self._new("pose", inputs.get("pose"))
        imu = self._new("imu", inputs.get("imu"))
        if imu is not None and (pose is None or not pose.stamp < imu.stamp):  # in stamp order; at one stamp, propagate first
            self._imu_event(imu)
            imu = None
        if pose is not None:
            self._frames = (pose.frame_id, pose.child_frame_id)
            cov, twist_cov = pose.pose_covariance, pose.twist_covariance
            est.pose(
                pose.stamp,
                PoseEvent(
                    position=pose.position,
                    orientation=pose.orientation if p.pose_attitude else None,
                    velocity_body=pose.linear_velocity if p.pose_velocity else None,
                    position_var=np.diag(cov)[0:3],
                    attitude_var=np.diag(cov)[3:6],
                    velocity_var=np.diag(twist_cov)[0:3],
                ),
            )
        if imu is not None:
            self._imu_event(imu)
        received = inputs.get("imu")
        eskf = est.eskf
        if not eskf.initialised or received is None or received.stale:
            return {}
        return {
            "state": RobotState(
                stamp=eskf.t,
                frame_id=self._frames[0],
                child_frame_id=self._frames[1],
                position=eskf.p,
                orientation=eskf.q,
                linear_velocity=eskf.velocity_body(),
                angular_velocity=eskf.body_rates(),
                pose_covariance=eskf.pose_covariance(),
                twist_covariance=eskf.twist_covariance(),
            )
        }

    def _imu_event(self, imu: ImuSample) -> None:
        self.quadrotor.imu(
            imu.stamp,
            ImuEvent(
                accel=imu.linear_acceleration,
                gyro=imu.angular_velocity,
                accel_var=_mean_var(imu.linear_acceleration_covariance),
                gyro_var=_mean_var(imu.angular_velocity_covariance),
            ),
        )

    # -- diff drive -----------------------------------------------------------------------------
    def _step_diff_drive(self, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        est = self.diff_drive
        pose = self._new("pose", inputs.get("pose"))
        wheels = self._new("wheel_odom", inputs.get("wheel_odom"))
        imu = self._new("imu", inputs.get("imu"))
        events: list[tuple[float, Any]] = []
        if pose is not None:
            self._frames = (pose.frame_id, pose.child_frame_id)
            cov = np.diag(pose.pose_covariance)
            if math.isfinite(pose.position[2]):
                self._z = float(pose.position[2])
            self._pose_cov_extra = cov[[2, 3, 4]]
            events.append((pose.stamp, PoseFixEvent(float(pose.position[0]), float(pose.position[1]), quat_yaw(pose.orientation),
                                                    float(max(cov[0], cov[1])), float(cov[5]))))
        if wheels is not None:
            tcov = np.diag(wheels.twist_covariance)
            events.append((wheels.stamp, WheelOdometryEvent(float(wheels.linear_velocity[0]), float(wheels.angular_velocity[2]),
                                                            float(tcov[0]), float(tcov[5]))))
        if imu is not None and imu.angular_velocity_covariance[0, 0] != -1.0:
            events.append((imu.stamp, YawRateEvent(float(imu.angular_velocity[2]), float(imu.angular_velocity_covariance[2, 2]))))
        for stamp, event in sorted(events, key=lambda item: item[0]):  # in stamp order (stable at one stamp)
            est.process(stamp, event)
        received = inputs.get("wheel_odom")
        ekf = est.ekf
        if not ekf.initialised or received is None or received.stale:
            return {}
        x, y, th, v, w, _ = ekf.x
        P = ekf.P
        pose_cov = np.zeros((6, 6))
        pose_cov[np.ix_([0, 1, 5], [0, 1, 5])] = P[0:3, 0:3]
        pose_cov[[2, 3, 4], [2, 3, 4]] = self._pose_cov_extra  # z, roll, pitch: not estimated (planar): the last fix's
        twist_cov = np.zeros((6, 6))
        twist_cov[np.ix_([0, 5], [0, 5])] = P[3:5, 3:5]
        return {
            "state": RobotState(
                stamp=ekf.t,
                frame_id=self._frames[0],
                child_frame_id=self._frames[1],
                position=np.array([x, y, self._z]),
                orientation=yaw_quaternion(th),
                linear_velocity=np.array([v, 0.0, 0.0]),
                angular_velocity=np.array([0.0, 0.0, w]),
                pose_covariance=pose_cov,
                twist_covariance=twist_cov,
            )
        }


def _mean_var(covariance: np.ndarray) -> float | None:
    """The mean of a 3x3 covariance's diagonal, or None when it says nothing (zeros, "not measured", non-finite)."""
    diag = np.diag(covariance)
    if covariance[0, 0] == -1.0 or not np.all(np.isfinite(diag)) or not np.all(diag > 0.0):
        return None
    return float(diag.mean())
