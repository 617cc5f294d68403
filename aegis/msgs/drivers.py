"""Commands in the forms robot drivers take: an unstamped Twist (Clearpath) and crazyswarm2's FullState setpoint.

``UnstampedTwist`` is geometry_msgs/msg/Twist, what Clearpath's ROS 2 platform reads on
``<namespace>/cmd_vel`` (its twist_mux input; the diff_drive_controller runs with
``use_stamped_vel: false``, clearpath_common's jazzy branch). It has no header: stamp and frame
are not carried (the bag's log time keeps the time), as for ThrustRatesCommand.

``FullStateSetpoint`` is crazyswarm2's ``crazyflie_interfaces/msg/FullState`` (header, pose,
twist, acc: the setpoint its server hands to ``sendFullStateSetpoint``). That type is not a
standard ROS 2 message, so it is not in rosbags' typestores nor in :data:`aegis.msgs.MESSAGE_TYPES`
(a bag cannot record it without its definition): on the robot, rclpy imports it from the
installed ``crazyflie_interfaces``; tests register :data:`FULL_STATE_MSG` (the definition the
server's code reads: pose.position, pose.orientation, twist.linear, twist.angular, acc) into a
rosbags typestore with :func:`register_full_state`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from aegis.msgs.fields import as_array
from aegis.msgs.geometry import pose_to_ros, vector3_to_ros, xyz_from_ros, xyzw_from_ros
from aegis.msgs.ros_types import TypeLookup
from aegis.msgs.stamp import header_from_ros, header_to_ros

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

FULL_STATE_TYPE = "crazyflie_interfaces/msg/FullState"
FULL_STATE_MSG = """\
std_msgs/Header header
geometry_msgs/Pose pose
geometry_msgs/Twist twist
geometry_msgs/Vector3 acc
"""
"""crazyflie_interfaces/msg/FullState as crazyswarm2 defines it (crazyflie_interfaces/msg/FullState.msg)."""


@dataclass(slots=True, kw_only=True)
class UnstampedTwist:
    """A body-frame (FLU) velocity command without a header: linear m/s, angular rad/s (geometry_msgs/msg/Twist)."""

    ROS_TYPE: ClassVar[str] = "geometry_msgs/msg/Twist"

    stamp: float = 0.0
    frame_id: str = "base_link"
    linear: np.ndarray = field(default_factory=lambda: np.zeros(3))
    angular: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self.stamp = float(self.stamp)
        self.linear = as_array(owner, "linear", self.linear, (3,))
        self.angular = as_array(owner, "angular", self.angular, (3,))

    def to_ros(self, types: TypeLookup) -> Any:
        """geometry_msgs/msg/Twist (stamp and frame are not carried)."""
        return types(self.ROS_TYPE)(linear=vector3_to_ros(types, self.linear), angular=vector3_to_ros(types, self.angular))

    @classmethod
    def from_ros(cls, ros_msg: Any) -> UnstampedTwist:
        """From geometry_msgs/msg/Twist (stamp 0, frame base_link)."""
        return cls(linear=xyz_from_ros(ros_msg.linear), angular=xyz_from_ros(ros_msg.angular))


@dataclass(slots=True, kw_only=True)
class FullStateSetpoint:
    """A crazyswarm2 full-state setpoint in the world frame: position, orientation (x, y, z, w), velocity, body rates, acceleration."""

    ROS_TYPE: ClassVar[str] = FULL_STATE_TYPE

    stamp: float = 0.0
    frame_id: str = "world"
    position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    orientation: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 0.0, 1.0]))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    body_rates: np.ndarray = field(default_factory=lambda: np.zeros(3))
    acceleration: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self.stamp = float(self.stamp)
        for name, shape in (("position", (3,)), ("orientation", (4,)), ("velocity", (3,)), ("body_rates", (3,)), ("acceleration", (3,))):
            setattr(self, name, as_array(owner, name, getattr(self, name), shape))

    def to_ros(self, types: TypeLookup) -> Any:
        """crazyflie_interfaces/msg/FullState."""
        return types(self.ROS_TYPE)(
            header=header_to_ros(types, self.stamp, self.frame_id),
            pose=pose_to_ros(types, self.position, self.orientation),
            twist=types("geometry_msgs/msg/Twist")(
                linear=vector3_to_ros(types, self.velocity), angular=vector3_to_ros(types, self.body_rates)
            ),
            acc=vector3_to_ros(types, self.acceleration),
        )

    @classmethod
    def from_ros(cls, ros_msg: Any) -> FullStateSetpoint:
        """From crazyflie_interfaces/msg/FullState."""
        stamp, frame_id = header_from_ros(ros_msg.header)
        return cls(
            stamp=stamp,
            frame_id=frame_id,
            position=xyz_from_ros(ros_msg.pose.position),
            orientation=xyzw_from_ros(ros_msg.pose.orientation),
            velocity=xyz_from_ros(ros_msg.twist.linear),
            body_rates=xyz_from_ros(ros_msg.twist.angular),
            acceleration=xyz_from_ros(ros_msg.acc),
        )


def register_full_state(typestore: Typestore) -> None:
    """Add crazyflie_interfaces/msg/FullState (:data:`FULL_STATE_MSG`) to a rosbags typestore, once."""
    if FULL_STATE_TYPE in typestore.types:
        return
    from rosbags.typesys import get_types_from_msg

    typestore.register(get_types_from_msg(FULL_STATE_MSG, FULL_STATE_TYPE))
