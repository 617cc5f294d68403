"""Small rotation helpers for the filters: quaternions (x, y, z, w, ROS's order), rotation vectors, skew matrices."""

from __future__ import annotations

import math

import numpy as np


def skew(v: np.ndarray) -> np.ndarray:
    """[v]x: the matrix with [v]x u = v x u."""
    x, y, z = v
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a * b (Hamilton product; x, y, z, w)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def quat_exp(rotation_vector: np.ndarray) -> np.ndarray:
    """The unit quaternion of a rotation vector (rad): exp(phi / 2); exact (1st order) near zero."""
    rx, ry, rz = rotation_vector
    angle = math.sqrt(rx * rx + ry * ry + rz * rz)
    if angle < 1e-12:
        return np.array([0.5 * rx, 0.5 * ry, 0.5 * rz, 1.0])
    s = math.sin(0.5 * angle) / angle
    return np.array([rx * s, ry * s, rz * s, math.cos(0.5 * angle)])


def quat_log(q: np.ndarray) -> np.ndarray:
    """The rotation vector (rad, angle in [0, pi]) of a unit quaternion; the inverse of :func:`quat_exp`."""
    x, y, z, w = q
    if w < 0.0:  # the shorter way round
        x, y, z, w = -x, -y, -z, -w
    n = math.sqrt(x * x + y * y + z * z)
    if n < 1e-12:
        return np.array([2.0 * x, 2.0 * y, 2.0 * z])
    angle = 2.0 * math.atan2(n, w)
    return np.array([x, y, z]) * (angle / n)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """The inverse of a unit quaternion."""
    return np.array([-q[0], -q[1], -q[2], q[3]])


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """The rotation matrix (body -> world) of a unit quaternion (x, y, z, w)."""
    x, y, z, w = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def yaw_quaternion(yaw: float) -> np.ndarray:
    """The rotation about world z by ``yaw`` (rad) as a quaternion (x, y, z, w)."""
    return np.array([0.0, 0.0, math.sin(0.5 * yaw), math.cos(0.5 * yaw)])


def quat_yaw(q: np.ndarray) -> float:
    """The heading (rad) of a quaternion: the angle of body x projected on the ground."""
    x, y, z, w = q
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def wrap_angle(a: float) -> float:
    """``a`` wrapped to [-pi, pi)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi
