"""Scenario geometry: exact signed distances to obstacles, geofence walls as half-spaces, and the Obstacles message.

Signed distances are negative inside an obstacle, zero on its surface, positive outside, and
exact (Euclidean distance to the surface) for spheres, upright cylinders and yaw-rotated boxes.
Functions taking ``points`` accept one point (3,) or many (..., 3) and return one value per point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from aegis.msgs.obstacles import Obstacle, Obstacles
from aegis.scenario.schema import Geofence, ObstacleSpec


def yaw_quaternion(yaw_rad: float) -> np.ndarray:
    """The rotation by ``yaw_rad`` about +z as a quaternion (x, y, z, w), ROS order."""
    return np.array([0.0, 0.0, np.sin(yaw_rad / 2.0), np.cos(yaw_rad / 2.0)])


def obstacles_msg(obstacles: Sequence[ObstacleSpec], stamp: float = 0.0, frame_id: str = "odom") -> Obstacles:
    """The scenario's obstacles as an aegis.msgs.Obstacles (visualization_msgs/MarkerArray) in the world frame."""
    return Obstacles(
        stamp=stamp,
        frame_id=frame_id,
        obstacles=[
            Obstacle(
                id=index if o.id is None else o.id,
                shape=o.shape,
                position=np.array(o.position, dtype=float),
                size=np.array(o.size, dtype=float),
                orientation=yaw_quaternion(o.yaw_rad),
            )
            for index, o in enumerate(obstacles)
        ],
    )


def signed_distance(obstacle: ObstacleSpec, points: ArrayLike) -> np.ndarray:
    """Signed distance (m) from each point to the obstacle's surface (negative inside)."""
    p = np.asarray(points, dtype=float)
    return signed_distance_at(obstacle, p[..., 0], p[..., 1], p[..., 2])


def signed_distance_at(obstacle: ObstacleSpec, x: ArrayLike, y: ArrayLike, z: ArrayLike) -> np.ndarray:
    """:func:`signed_distance` at the points with coordinates ``x``, ``y``, ``z``, arrays that broadcast together (a
    sparse grid's axes: the distance over the whole grid without building its points)."""
    px, py, pz = obstacle.position
    x, y, z = np.asarray(x, dtype=float) - px, np.asarray(y, dtype=float) - py, np.asarray(z, dtype=float) - pz
    sx, sy, sz = obstacle.size
    if obstacle.shape == "sphere":
        return np.sqrt(x * x + y * y + z * z) - sx / 2.0
    if obstacle.shape == "cylinder":
        # 2-D box distance in (radial, axial) coordinates: exact for a capped cylinder.
        return _box_sdf((np.hypot(x, y) - sx / 2.0, np.abs(z) - sz / 2.0))
    c, s = np.cos(obstacle.yaw_rad), np.sin(obstacle.yaw_rad)
    return _box_sdf((np.abs(c * x + s * y) - sx / 2.0, np.abs(c * y - s * x) - sy / 2.0, np.abs(z) - sz / 2.0))


def _box_sdf(q: tuple[np.ndarray, ...]) -> np.ndarray:
    """Signed distance from |offsets| minus half-extents ``q`` (one array per axis) to an axis-aligned box's surface.

    Per axis, not stacked: the layouts' corridor check calls this on grids of 10^5 points, where stacking the axes
    into one array cost more than the arithmetic (the axes may broadcast: a sparse grid's)."""
    squares = None
    largest = None
    for part in q:
        outside = np.maximum(part, 0.0)
        squares = outside * outside if squares is None else squares + outside * outside
        largest = part if largest is None else np.maximum(largest, part)
    return np.sqrt(squares) + np.minimum(largest, 0.0)


def clearances(obstacles: Sequence[ObstacleSpec], points: ArrayLike) -> np.ndarray:
    """For each point, the signed distance to the nearest obstacle (+inf without obstacles)."""
    p = np.asarray(points, dtype=float)
    if p.shape[-1:] != (3,):
        raise ValueError(f"points: expected shape (..., 3), got {p.shape}")
    out = np.full(p.shape[:-1], np.inf)
    for obstacle in obstacles:
        out = np.minimum(out, signed_distance(obstacle, p))
    return out


def clearance(obstacles: Sequence[ObstacleSpec], point: ArrayLike) -> float:
    """Signed distance (m) from one point to the nearest obstacle: > 0 clear, <= 0 touching or inside."""
    p = np.asarray(point, dtype=float)
    if p.shape != (3,):
        raise ValueError(f"point: expected shape (3,), got {p.shape}")
    return float(clearances(obstacles, p))


@dataclass(frozen=True, slots=True)
class HalfSpace:
    """The allowed side of a wall: points with ``normal . p >= offset``; ``normal`` is a unit vector pointing inward."""

    name: str
    normal: tuple[float, float, float]
    offset: float

    def distance(self, points: ArrayLike) -> np.ndarray:
        """Signed distance (m) from each point to the wall, positive on the allowed side."""
        return np.asarray(points, dtype=float) @ np.array(self.normal) - self.offset


def geofence_walls(geofence: Geofence) -> tuple[HalfSpace, ...]:
    """The geofence's six faces as half-spaces, named ``x_min``, ``x_max``, ... ``z_max`` (floor and ceiling are z)."""
    walls = []
    for axis, name in enumerate("xyz"):
        unit = [0.0, 0.0, 0.0]
        unit[axis] = 1.0
        walls.append(HalfSpace(f"{name}_min", (unit[0], unit[1], unit[2]), geofence.min_m[axis]))
        walls.append(HalfSpace(f"{name}_max", (-unit[0], -unit[1], -unit[2]), -geofence.max_m[axis]))
    return tuple(walls)


def geofence_margin(geofence: Geofence, points: ArrayLike) -> np.ndarray:
    """For each point, the smallest signed wall distance (m).

    Inside (>= 0) it is the distance to the nearest face; outside (< 0), minus the largest overshoot.
    """
    p = np.asarray(points, dtype=float)
    return np.min(np.stack([wall.distance(p) for wall in geofence_walls(geofence)], axis=-1), axis=-1)
