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


UNIT_QUATERNION_TOLERANCE = 1.0e-3
"""How far a quaternion's norm may be from 1 before it is not a rotation a node may act on (odometry, obstacles).

Writers normalise to about 1e-15 (PyBullet, the sensor noise model, ROS's tf2); a norm off by more
than this is a corrupted or unnormalised message, and reading a rotation out of it would scale the
velocities it turns (a norm of 0.7 halves them).
"""


def quaternion_norm_problem(q: np.ndarray) -> str | None:
    """Why the (x, y, z, w) quaternion ``q`` is not a rotation to act on (None: it is): not finite, or off unit norm."""
    norm = float(np.sqrt(q @ q))
    if not np.isfinite(norm):
        return f"quaternion {q.tolist()} not finite"
    if abs(norm - 1.0) > UNIT_QUATERNION_TOLERANCE:
        return f"quaternion norm {norm:.6g} is off 1 by more than {UNIT_QUATERNION_TOLERANCE:g}"
    return None
