"""aegis messages: numpy dataclasses (SI units, stamp in s, frame_id) that map to standard ROS 2 messages.

Every message class has ``ROS_TYPE`` (e.g. "nav_msgs/msg/Odometry"), ``to_ros(types)`` and
``from_ros(ros_msg)``. ``types`` is a type lookup (ROS type name -> class): ``rosbags_types()``
for tests and rosbag2 logs, ``rclpy_types()`` on a robot. Quaternions are (x, y, z, w), ROS's
order. Nothing here imports rclpy.

    >>> types = rosbags_types("jazzy")
    >>> ros = TwistCommand(stamp=0.5, linear=[1.0, 0.0, 0.0]).to_ros(types)
    >>> raw = types.typestore.serialize_cdr(ros, TwistCommand.ROS_TYPE)
    >>> TwistCommand.from_ros(types.typestore.deserialize_cdr(raw, TwistCommand.ROS_TYPE)).linear
    array([1., 0., 0.])
"""

from aegis.msgs.commands import THRUST_RATES_LABEL, AccelCommand, ThrustRatesCommand, TwistCommand
from aegis.msgs.diagnostics import LoopDiagnostics, SafetyFilterReport
from aegis.msgs.drivers import UnstampedTwist
from aegis.msgs.fields import messages_equal
from aegis.msgs.joints import JointCommand, MotorSpeeds, WheelSpeeds
from aegis.msgs.obstacles import Obstacle, Obstacles
from aegis.msgs.pointcloud import PointCloud
from aegis.msgs.policy_report import PolicyReport
from aegis.msgs.ros_types import ROSBAGS_DISTROS, RosbagsTypes, TypeLookup, rclpy_types, rosbags_types
from aegis.msgs.sensors import IMAGE_ENCODINGS, Image, LaserScan
from aegis.msgs.state import ImuSample, RobotState
from aegis.msgs.supervisor import SUPERVISOR_STATES, EStop, SupervisorStatus

MESSAGE_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        RobotState,
        ImuSample,
        LaserScan,
        PointCloud,
        Image,
        TwistCommand,
        UnstampedTwist,
        AccelCommand,
        WheelSpeeds,
        MotorSpeeds,
        JointCommand,
        ThrustRatesCommand,
        Obstacles,
        SafetyFilterReport,
        LoopDiagnostics,
        PolicyReport,
        EStop,
        SupervisorStatus,
    )
}
"""Message class name -> class, for every message that maps to a ROS 2 message."""

__all__ = [
    "IMAGE_ENCODINGS",
    "MESSAGE_TYPES",
    "ROSBAGS_DISTROS",
    "SUPERVISOR_STATES",
    "THRUST_RATES_LABEL",
    "AccelCommand",
    "EStop",
    "Image",
    "ImuSample",
    "JointCommand",
    "LaserScan",
    "LoopDiagnostics",
    "MotorSpeeds",
    "Obstacle",
    "Obstacles",
    "PointCloud",
    "PolicyReport",
    "RobotState",
    "SupervisorStatus",
    "RosbagsTypes",
    "SafetyFilterReport",
    "ThrustRatesCommand",
    "TwistCommand",
    "TypeLookup",
    "UnstampedTwist",
    "WheelSpeeds",
    "messages_equal",
    "rclpy_types",
    "rosbags_types",
]
