"""Robot state messages: RobotState (nav_msgs/Odometry) and ImuSample (sensor_msgs/Imu)."""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from aegis.msgs.fields import as_array
from aegis.msgs.geometry import (
    UNIT_QUATERNION_TOLERANCE,
    pose_to_ros,
    quaternion_norm_problem,
    quaternion_to_ros,
    vector3_to_ros,
    xyz_from_ros,
    xyzw_from_ros,
)
from aegis.msgs.ros_types import TypeLookup
from aegis.msgs.stamp import header_from_ros, header_to_ros


def _identity_quaternion() -> np.ndarray:
    return np.array([0.0, 0.0, 0.0, 1.0])


_new, _zeros = object.__new__, np.zeros


@dataclass(slots=True, kw_only=True)
class RobotState:
    """Pose and velocity of a robot body, as nav_msgs/Odometry carries them.

    ``position`` is the body origin in ``frame_id`` (m); ``orientation`` is the body attitude in
    ``frame_id`` as a quaternion in ROS order **(x, y, z, w)**. ``linear_velocity`` (m/s) and
    ``angular_velocity`` (rad/s) are expressed in the body frame ``child_frame_id``, as
    Odometry's twist is. Covariances are 6x6, rows/columns (x, y, z, rot x, rot y, rot z).
    """

    ROS_TYPE: ClassVar[str] = "nav_msgs/msg/Odometry"

    stamp: float = 0.0
    frame_id: str = "odom"
    child_frame_id: str = "base_link"
    position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    orientation: np.ndarray = field(default_factory=_identity_quaternion)
    linear_velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    angular_velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    pose_covariance: np.ndarray = field(default_factory=lambda: np.zeros((6, 6)))
    twist_covariance: np.ndarray = field(default_factory=lambda: np.zeros((6, 6)))

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self.stamp = float(self.stamp)
        self.position = as_array(owner, "position", self.position, (3,))
        self.orientation = as_array(owner, "orientation", self.orientation, (4,))
        self.linear_velocity = as_array(owner, "linear_velocity", self.linear_velocity, (3,))
        self.angular_velocity = as_array(owner, "angular_velocity", self.angular_velocity, (3,))
        self.pose_covariance = as_array(owner, "pose_covariance", self.pose_covariance, (6, 6))
        self.twist_covariance = as_array(owner, "twist_covariance", self.twist_covariance, (6, 6))

    @classmethod
    def of_typed(
        cls, stamp: float, frame_id: str, child_frame_id: str, position: np.ndarray, orientation: np.ndarray, linear_velocity: np.ndarray,
        angular_velocity: np.ndarray | None = None, pose_covariance: np.ndarray | None = None, twist_covariance: np.ndarray | None = None,
    ) -> RobotState:
        """A state from float64 arrays of the right shapes (position, linear and angular velocity (3,), orientation (4,),
        covariances (6, 6)), skipping __post_init__'s checks; angular velocity and covariances zero if not given. For a
        node's every tick (the /reference at 1 kHz: about 1.4 µs instead of 5.5 under load; the simulator's odometry at
        240 Hz); anything else goes through the checked constructor."""
        state = _new(cls)
        state.stamp, state.frame_id, state.child_frame_id = float(stamp), frame_id, child_frame_id
        state.position, state.orientation, state.linear_velocity = position, orientation, linear_velocity
        state.angular_velocity = _zeros(3) if angular_velocity is None else angular_velocity
        state.pose_covariance = _zeros((6, 6)) if pose_covariance is None else pose_covariance
        state.twist_covariance = _zeros((6, 6)) if twist_covariance is None else twist_covariance
        return state

    def to_ros(self, types: TypeLookup) -> Any:
        """nav_msgs/msg/Odometry."""
        return types(self.ROS_TYPE)(
            header=header_to_ros(types, self.stamp, self.frame_id),
            child_frame_id=self.child_frame_id,
            pose=types("geometry_msgs/msg/PoseWithCovariance")(
                pose=pose_to_ros(types, self.position, self.orientation),
                covariance=np.ascontiguousarray(self.pose_covariance).reshape(36),
            ),
            twist=types("geometry_msgs/msg/TwistWithCovariance")(
                twist=types("geometry_msgs/msg/Twist")(
                    linear=vector3_to_ros(types, self.linear_velocity),
                    angular=vector3_to_ros(types, self.angular_velocity),
                ),
                covariance=np.ascontiguousarray(self.twist_covariance).reshape(36),
            ),
        )

    def is_usable(self) -> bool:
        """All numbers finite (a NaN or an infinity makes the sum non-finite) and a unit quaternion (norm within 1e-3).

        What every node that turns odometry into a command checks before trusting it (the
        tolerance is aegis.msgs.geometry.UNIT_QUATERNION_TOLERANCE); :meth:`unusable_reason` says
        why not. Not checked at construction, because a robot that reports NaN must still be
        recorded and reported as such.
        """
        x, y, z, w = self.orientation.tolist()  # plain floats: a few numpy calls on 3-vectors would cost more
        squared_norm = x * x + y * y + z * z + w * w
        total = sum(self.position.tolist()) + sum(self.linear_velocity.tolist()) + sum(self.angular_velocity.tolist())
        return math.isfinite(total + squared_norm) and abs(math.sqrt(squared_norm) - 1.0) <= UNIT_QUATERNION_TOLERANCE

    def unusable_reason(self) -> str | None:
        """Why this odometry may not be acted on (None: :meth:`is_usable`): the fields that are not finite, or the quaternion's norm."""
        fields = ("position", "orientation", "linear_velocity", "angular_velocity")
        bad = [name for name in fields if not np.all(np.isfinite(getattr(self, name)))]
        if bad:
            return f"{', '.join(bad)} not finite"
        problem = quaternion_norm_problem(self.orientation)
        return None if problem is None else f"orientation {problem}"

    @classmethod
    def from_ros(cls, ros_msg: Any) -> RobotState:
        """From a nav_msgs/Odometry."""
        stamp, frame_id = header_from_ros(ros_msg.header)
        pose, twist = ros_msg.pose, ros_msg.twist
        return cls(
            stamp=stamp,
            frame_id=frame_id,
            child_frame_id=str(ros_msg.child_frame_id),
            position=xyz_from_ros(pose.pose.position),
            orientation=xyzw_from_ros(pose.pose.orientation),
            linear_velocity=xyz_from_ros(twist.twist.linear),
            angular_velocity=xyz_from_ros(twist.twist.angular),
            pose_covariance=np.array(pose.covariance, dtype=np.float64).reshape(6, 6),
            twist_covariance=np.array(twist.covariance, dtype=np.float64).reshape(6, 6),
        )


@dataclass(slots=True, kw_only=True)
class ImuSample:
    """One IMU reading, as sensor_msgs/Imu carries it.

    ``orientation`` is a quaternion in ROS order **(x, y, z, w)**; ``angular_velocity`` (rad/s)
    and ``linear_acceleration`` (m/s^2) are in the sensor frame ``frame_id``. Covariances are
    3x3 (ROS's convention: a covariance whose [0, 0] is -1 means "not measured").
    """

    ROS_TYPE: ClassVar[str] = "sensor_msgs/msg/Imu"

    stamp: float = 0.0
    frame_id: str = "imu_link"
    orientation: np.ndarray = field(default_factory=_identity_quaternion)
    angular_velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    linear_acceleration: np.ndarray = field(default_factory=lambda: np.zeros(3))
    orientation_covariance: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    angular_velocity_covariance: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    linear_acceleration_covariance: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self.stamp = float(self.stamp)
        self.orientation = as_array(owner, "orientation", self.orientation, (4,))
        self.angular_velocity = as_array(owner, "angular_velocity", self.angular_velocity, (3,))
        self.linear_acceleration = as_array(owner, "linear_acceleration", self.linear_acceleration, (3,))
        for name in ("orientation_covariance", "angular_velocity_covariance", "linear_acceleration_covariance"):
            setattr(self, name, as_array(owner, name, getattr(self, name), (3, 3)))

    @classmethod
    def of_typed(
        cls, stamp: float, frame_id: str, orientation: np.ndarray, angular_velocity: np.ndarray, linear_acceleration: np.ndarray,
        orientation_covariance: np.ndarray | None = None, angular_velocity_covariance: np.ndarray | None = None,
        linear_acceleration_covariance: np.ndarray | None = None,
    ) -> ImuSample:
        """A sample from float64 arrays of the right shapes (orientation (4,), vectors (3,), covariances (3, 3)), skipping
        __post_init__'s checks; covariances zero if not given. For the simulator's IMU at 240 Hz; anything else goes
        through the checked constructor."""
        sample = _new(cls)
        sample.stamp, sample.frame_id = float(stamp), frame_id
        sample.orientation, sample.angular_velocity, sample.linear_acceleration = orientation, angular_velocity, linear_acceleration
        sample.orientation_covariance = _zeros((3, 3)) if orientation_covariance is None else orientation_covariance
        sample.angular_velocity_covariance = _zeros((3, 3)) if angular_velocity_covariance is None else angular_velocity_covariance
        sample.linear_acceleration_covariance = (
            _zeros((3, 3)) if linear_acceleration_covariance is None else linear_acceleration_covariance
        )
        return sample

    def to_ros(self, types: TypeLookup) -> Any:
        """sensor_msgs/msg/Imu."""
        return types(self.ROS_TYPE)(
            header=header_to_ros(types, self.stamp, self.frame_id),
            orientation=quaternion_to_ros(types, self.orientation),
            orientation_covariance=np.ascontiguousarray(self.orientation_covariance).reshape(9),
            angular_velocity=vector3_to_ros(types, self.angular_velocity),
            angular_velocity_covariance=np.ascontiguousarray(self.angular_velocity_covariance).reshape(9),
            linear_acceleration=vector3_to_ros(types, self.linear_acceleration),
            linear_acceleration_covariance=np.ascontiguousarray(self.linear_acceleration_covariance).reshape(9),
        )

    @classmethod
    def from_ros(cls, ros_msg: Any) -> ImuSample:
        """From a sensor_msgs/Imu."""
        stamp, frame_id = header_from_ros(ros_msg.header)
        return cls(
            stamp=stamp,
            frame_id=frame_id,
            orientation=xyzw_from_ros(ros_msg.orientation),
            angular_velocity=xyz_from_ros(ros_msg.angular_velocity),
            linear_acceleration=xyz_from_ros(ros_msg.linear_acceleration),
            orientation_covariance=np.array(ros_msg.orientation_covariance, dtype=np.float64).reshape(3, 3),
            angular_velocity_covariance=np.array(ros_msg.angular_velocity_covariance, dtype=np.float64).reshape(3, 3),
            linear_acceleration_covariance=np.array(
                ros_msg.linear_acceleration_covariance, dtype=np.float64
            ).reshape(3, 3),
        )
