"""Pose helpers shared by the sensor models: validated body poses and rotations (quaternions x, y, z, w)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from aegis.controllers.quadrotor_model import quaternion_to_matrix


def body_pose(owner: str, position: ArrayLike, orientation_xyzw: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(position (3,), rotation matrix body -> world (3, 3)); ValueError naming ``owner`` for a bad pose.

    The quaternion is (x, y, z, w), ROS's order, and is normalised here (it must not be zero).
    """
    p = np.asarray(position, dtype=np.float64)
    q = np.asarray(orientation_xyzw, dtype=np.float64)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise ValueError(f"{owner}: position must be 3 finite numbers (m), got {position!r}")
    if q.shape != (4,) or not np.all(np.isfinite(q)):
        raise ValueError(f"{owner}: orientation must be a quaternion of 4 finite numbers (x, y, z, w), got {orientation_xyzw!r}")
    norm = math.sqrt(float(q @ q))
    if norm < 1e-9:
        raise ValueError(f"{owner}: orientation quaternion {orientation_xyzw!r} has zero length")
    return p, quaternion_to_matrix(q / norm)


def yaw_only(rotation: np.ndarray) -> np.ndarray:
    """The rotation about world z that has the same heading (body x projected on the ground) as ``rotation``."""
    yaw = math.atan2(rotation[1, 0], rotation[0, 0])
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def pitch_matrix(pitch_rad: float) -> np.ndarray:
    """Rotation about body +y by ``pitch_rad`` (REP 103 right hand: positive tips +x down towards -z)."""
    c, s = math.cos(pitch_rad), math.sin(pitch_rad)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
