"""Builds and reads geometry_msgs vectors, points, quaternions (x, y, z, w) and poses from numpy arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from aegis.msgs.ros_types import TypeLookup


def vector3_to_ros(types: TypeLookup, v: np.ndarray) -> Any:
    """geometry_msgs/msg/Vector3 from a 3-vector."""
    return types("geometry_msgs/msg/Vector3")(x=float(v[0]), y=float(v[1]), z=float(v[2]))


def point_to_ros(types: TypeLookup, p: np.ndarray) -> Any:
    """geometry_msgs/msg/Point from a 3-vector."""
    return types("geometry_msgs/msg/Point")(x=float(p[0]), y=float(p[1]), z=float(p[2]))


def quaternion_to_ros(types: TypeLookup, q: np.ndarray) -> Any:
    """geometry_msgs/msg/Quaternion from an (x, y, z, w) array, ROS's order."""
    return types("geometry_msgs/msg/Quaternion")(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))


def pose_to_ros(types: TypeLookup, position: np.ndarray, orientation: np.ndarray) -> Any:
    """geometry_msgs/msg/Pose from a position and an (x, y, z, w) quaternion."""
    return types("geometry_msgs/msg/Pose")(
        position=point_to_ros(types, position), orientation=quaternion_to_ros(types, orientation)
    )


def xyz_from_ros(msg: Any) -> np.ndarray:
    """[x, y, z] of a Vector3 or Point as float64."""
    return np.array([msg.x, msg.y, msg.z], dtype=np.float64)


def xyzw_from_ros(msg: Any) -> np.ndarray:
    """[x, y, z, w] of a Quaternion as float64."""
    return np.array([msg.x, msg.y, msg.z, msg.w], dtype=np.float64)
