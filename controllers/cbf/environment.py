"""What the barrier rows are built from: obstacles as rounded yaw-rotated boxes, walls as half-spaces, and neighbours.

Every obstacle shape becomes one "rounded box": a box with centre ``c``, yaw, half extents
``e`` and a rounding radius ``r``; its barrier distance is the Euclidean distance to the box
minus ``r``:

- sphere of diameter d: ``e = (0, 0, 0)``, ``r = d / 2`` (the distance to the centre minus the radius);
- cylinder (upright, diameter d, height l): ``e = (0, 0, l / 2)``, ``r = d / 2``: the capsule around
  it, the distance to its axis segment minus the radius. Beside the cylinder (between its caps) that
  is exact; above or below it the capsule reaches ``d / 2`` beyond the cap, which is conservative
  (it contains the cylinder) and lets a robot pass over or under a bounded one (a perceived ball or
  post). A cylinder of infinite or non-finite height: ``e = (0, 0, inf)``, infinitely tall;
- box (Marker.scale extents, yaw about +z): ``e = extents / 2``, ``r = 0``; exact, caps included.

The distance to a convex set is continuously differentiable outside it, which is where the barrier
is used (the robot's radius is a margin added on top, so the zero level set stays at least that far
from the box's edges and corners). Its gradient is the unit vector from the nearest point of the box,
and its Hessian is ``(P - g g') / distance``, with ``P`` the projection on the axes along which the
point lies beyond the box (one axis: a face, flat; two: an edge; three: a corner, like a sphere).
Inside the box (a collision) the distance is minus the depth to the nearest face and the gradient that
face's normal. These are what the higher-order barrier of a double integrator needs (h, its gradient
and v' Hessian v); the first-order barrier of the unicycle uses h and the gradient.

Obstacles change rarely (per obstacle message), so :class:`Environment` is built once per message
into flat tuples; per tick, only the plain-float arithmetic of :func:`box_distance` runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

ObstacleTuple = tuple[float, float, float, float, float, float, float, float, float]
"""(cx, cy, cz, cos yaw, sin yaw, half x, half y, half z, rounding radius)."""

WallTuple = tuple[float, float, float, float]
"""(nx, ny, nz, offset): the allowed side is n . p >= offset, with n a unit vector pointing inward."""

_UPRIGHT_TOLERANCE = 1e-6


class ObstacleLike(Protocol):
    """An obstacle as aegis.scenario.ObstacleSpec (``yaw_rad``) or aegis.msgs.Obstacle (``orientation`` x, y, z, w) carries it."""

    shape: str
    position: Sequence[float] | np.ndarray
    size: Sequence[float] | np.ndarray


class HalfSpaceLike(Protocol):
    """A wall as aegis.scenario.geometry.HalfSpace carries it."""

    name: str
    normal: Sequence[float]
    offset: float


def obstacle_tuple(obstacle: ObstacleLike) -> ObstacleTuple:
    """The rounded box of one obstacle (module doc). ValueError for an unknown shape or a tilted cylinder or box."""
    shape = obstacle.shape
    cx, cy, cz = (float(v) for v in obstacle.position)
    sx, sy, sz = (float(v) for v in obstacle.size)
    yaw = _yaw_of(obstacle)
    if shape == "sphere":
        return (cx, cy, cz, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5 * sx)
    if shape == "cylinder":
        return (cx, cy, cz, 1.0, 0.0, 0.0, 0.0, 0.5 * sz if math.isfinite(sz) else math.inf, 0.5 * sx)
    if shape == "box":
        return (cx, cy, cz, math.cos(yaw), math.sin(yaw), 0.5 * sx, 0.5 * sy, 0.5 * sz, 0.0)
    raise ValueError(f"unknown obstacle shape {shape!r} (known: sphere, cylinder, box)")


def _yaw_of(obstacle: ObstacleLike) -> float:
    yaw = getattr(obstacle, "yaw_rad", None)
    if yaw is not None:
        return float(yaw)
    orientation = getattr(obstacle, "orientation", None)
    if orientation is None:
        return 0.0
    x, y, z, w = (float(v) for v in orientation)
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if obstacle.shape != "sphere" and (abs(x) > _UPRIGHT_TOLERANCE * norm or abs(y) > _UPRIGHT_TOLERANCE * norm):
        raise ValueError(f"{obstacle.shape} obstacle tilted (orientation {[x, y, z, w]}): only rotations about +z are supported")
    return 2.0 * math.atan2(z, w)


@dataclass(frozen=True)
class Environment:
    """Static surroundings: obstacles (:data:`ObstacleTuple`) and walls (:data:`WallTuple`), with names for reports."""

    obstacles: tuple[ObstacleTuple, ...] = ()
    walls: tuple[WallTuple, ...] = ()
    obstacle_names: tuple[str, ...] = ()
    wall_names: tuple[str, ...] = ()
    finite: bool = field(init=False, repr=False, compare=False)
    """Whether every number is finite (a cylinder's infinite half height aside): the filter brakes when not."""

    def __post_init__(self) -> None:
        numbers = [v for o in self.obstacles for i, v in enumerate(o) if i not in (5, 6, 7)]
        numbers += [v for o in self.obstacles for v in o[5:8] if v != math.inf]
        numbers += [v for w in self.walls for v in w]
        object.__setattr__(self, "finite", all(math.isfinite(v) for v in numbers))

    @classmethod
    def build(cls, obstacles: Sequence[ObstacleLike] = (), walls: Sequence[HalfSpaceLike] = ()) -> Environment:
        """From scenario ObstacleSpecs or message Obstacles, and half-spaces (aegis.scenario.geometry.geofence_walls)."""
        obstacle_tuples, names = [], []
        for index, obstacle in enumerate(obstacles):
            obstacle_tuples.append(obstacle_tuple(obstacle))
            identifier = getattr(obstacle, "id", None)
            names.append(f"{obstacle.shape} {index if identifier is None else identifier}")
        wall_tuples = []
        for wall in walls:
            nx, ny, nz = (float(v) for v in wall.normal)
            norm = math.sqrt(nx * nx + ny * ny + nz * nz)
            if not norm > 0:
                raise ValueError(f"wall {wall.name!r}: normal must be non-zero")
            wall_tuples.append((nx / norm, ny / norm, nz / norm, float(wall.offset) / norm))
        return cls(tuple(obstacle_tuples), tuple(wall_tuples), tuple(names), tuple(f"wall {w.name}" for w in walls))


@dataclass(frozen=True)
class Neighbours:
    """Other robots this tick, as moving spheres: ``positions`` and ``velocities`` (N, 3) in the world frame, ``radii`` (N,)."""

    positions: np.ndarray
    velocities: np.ndarray
    radii: np.ndarray
    _rows: tuple[tuple[float, ...], ...] = field(init=False, repr=False, compare=False)
    finite: bool = field(init=False, repr=False, compare=False)
    """Whether every number is finite: the filter brakes when not."""

    def __post_init__(self) -> None:
        positions = np.asarray(self.positions, dtype=float).reshape(-1, 3)
        velocities = np.asarray(self.velocities, dtype=float).reshape(-1, 3)
        radii = np.broadcast_to(np.asarray(self.radii, dtype=float), (len(positions),))
        if velocities.shape != positions.shape:
            raise ValueError(f"Neighbours: {len(positions)} positions but {len(velocities)} velocities")
        object.__setattr__(self, "positions", positions)
        object.__setattr__(self, "velocities", velocities)
        object.__setattr__(self, "radii", np.array(radii))
        object.__setattr__(self, "_rows", tuple(tuple(row) for row in np.column_stack([positions, velocities, radii]).tolist()))
        object.__setattr__(self, "finite", bool(np.isfinite(positions).all() and np.isfinite(velocities).all() and np.isfinite(radii).all()))

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def rows(self) -> tuple[tuple[float, ...], ...]:
        """Per neighbour (x, y, z, vx, vy, vz, radius) as floats."""
        return self._rows


NO_NEIGHBOURS = Neighbours(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))


def box_distance(
    px: float, py: float, pz: float, vx: float, vy: float, vz: float, obstacle: ObstacleTuple
) -> tuple[float, float, float, float, float]:
    """(distance, gradient x, y, z, v' Hessian v) of the rounded box at point p for the relative velocity v (module doc)."""
    cx, cy, cz, c, s, ex, ey, ez, radius = obstacle
    rx, ry, rz = px - cx, py - cy, pz - cz
    lx, ly = c * rx + s * ry, c * ry - s * rx  # p in the box's frame (turned by -yaw)
    beyond_x, beyond_y, beyond_z = abs(lx) - ex, abs(ly) - ey, abs(rz) - ez
    ox = beyond_x if beyond_x > 0.0 else 0.0  # max(0.0, beyond_x) without the call
    oy = beyond_y if beyond_y > 0.0 else 0.0
    oz = beyond_z if beyond_z > 0.0 else 0.0
    squared = ox * ox + oy * oy + oz * oz
    if squared > 1e-24:
        distance = math.sqrt(squared)
        gx, gy, gz = math.copysign(ox, lx) / distance, math.copysign(oy, ly) / distance, math.copysign(oz, rz) / distance
        wx, wy = c * vx + s * vy, c * vy - s * vx  # v in the box's frame
        along = gx * wx + gy * wy + gz * vz
        free = (wx * wx if beyond_x > 0.0 else 0.0) + (wy * wy if beyond_y > 0.0 else 0.0) + (vz * vz if beyond_z > 0.0 else 0.0)
        curvature = (free - along * along) / distance
        h = distance - radius
    else:  # inside the box (or on its surface, or at a sphere's centre): minus the depth to the nearest face
        curvature = 0.0
        if beyond_x >= beyond_y and beyond_x >= beyond_z:
            h, gx, gy, gz = beyond_x - radius, math.copysign(1.0, lx), 0.0, 0.0
        elif beyond_y >= beyond_z:
            h, gx, gy, gz = beyond_y - radius, 0.0, math.copysign(1.0, ly), 0.0
        else:
            h, gx, gy, gz = beyond_z - radius, 0.0, 0.0, math.copysign(1.0, rz)
    return h, c * gx - s * gy, s * gx + c * gy, gz, curvature


def box_distance_lagged(
    px: float, py: float, pz: float, vx: float, vy: float, vz: float, ax: float, ay: float, az: float, obstacle: ObstacleTuple
) -> tuple[float, float, float, float, float, float, float, float]:
    """:func:`box_distance` plus what a third derivative of h needs: (h, gradient x, y, z, v'Hv, v'Ha, v'H'v, bound on |Hv|).

    ``a`` is the robot's acceleration (relative, for a moving obstacle). Outside the box core the
    level sets of the distance are planes (H = 0) or cylinders and spheres about the nearest edge or
    corner, of radius ``distance``; there ``H = (P - g g') / distance`` with P the projection on the
    axes the point is beyond, and the rate of change of v'Hv along v at a fixed v is
    ``v'H'v = -3 (g'v) v'Hv / distance``, and ``|Hv| <= |Pv| / distance``. Inside the core all four are 0,
    as :func:`box_distance` has it.
    """
    cx, cy, cz, c, s, ex, ey, ez, radius = obstacle
    rx, ry, rz = px - cx, py - cy, pz - cz
    lx, ly = c * rx + s * ry, c * ry - s * rx
    beyond_x, beyond_y, beyond_z = abs(lx) - ex, abs(ly) - ey, abs(rz) - ez
    ox = beyond_x if beyond_x > 0.0 else 0.0
    oy = beyond_y if beyond_y > 0.0 else 0.0
    oz = beyond_z if beyond_z > 0.0 else 0.0
    squared = ox * ox + oy * oy + oz * oz
    if squared > 1e-24:
        distance = math.sqrt(squared)
        gx, gy, gz = math.copysign(ox, lx) / distance, math.copysign(oy, ly) / distance, math.copysign(oz, rz) / distance
        wx, wy = c * vx + s * vy, c * vy - s * vx
        bx, by = c * ax + s * ay, c * ay - s * ax
        along_v = gx * wx + gy * wy + gz * vz
        along_a = gx * bx + gy * by + gz * az
        in_x, in_y, in_z = beyond_x > 0.0, beyond_y > 0.0, beyond_z > 0.0
        free_vv = (wx * wx if in_x else 0.0) + (wy * wy if in_y else 0.0) + (vz * vz if in_z else 0.0)
        free_va = (wx * bx if in_x else 0.0) + (wy * by if in_y else 0.0) + (vz * az if in_z else 0.0)
        curvature = (free_vv - along_v * along_v) / distance
        cross = (free_va - along_v * along_a) / distance
        change = -3.0 * along_v * curvature / distance
        bound = math.sqrt(free_vv) / distance
        h = distance - radius
    else:
        curvature = cross = change = bound = 0.0
        if beyond_x >= beyond_y and beyond_x >= beyond_z:
            h, gx, gy, gz = beyond_x - radius, math.copysign(1.0, lx), 0.0, 0.0
        elif beyond_y >= beyond_z:
            h, gx, gy, gz = beyond_y - radius, 0.0, math.copysign(1.0, ly), 0.0
        else:
            h, gx, gy, gz = beyond_z - radius, 0.0, 0.0, math.copysign(1.0, rz)
    return h, c * gx - s * gy, s * gx + c * gy, gz, curvature, cross, change, bound


def box_distance_planar(px: float, py: float, vx: float, vy: float, obstacle: ObstacleTuple) -> tuple[float, float, float, float]:
    """:func:`box_distance` in the horizontal plane (height ignored): (distance, gradient x, y, v' Hessian v)."""
    cx, cy, _, c, s, ex, ey, _, radius = obstacle
    rx, ry = px - cx, py - cy
    lx, ly = c * rx + s * ry, c * ry - s * rx
    beyond_x, beyond_y = abs(lx) - ex, abs(ly) - ey
    ox = beyond_x if beyond_x > 0.0 else 0.0
    oy = beyond_y if beyond_y > 0.0 else 0.0
    squared = ox * ox + oy * oy
    if squared > 1e-24:
        distance = math.sqrt(squared)
        gx, gy = math.copysign(ox, lx) / distance, math.copysign(oy, ly) / distance
        wx, wy = c * vx + s * vy, c * vy - s * vx
        along = gx * wx + gy * wy
        free = (wx * wx if beyond_x > 0.0 else 0.0) + (wy * wy if beyond_y > 0.0 else 0.0)
        curvature = (free - along * along) / distance
        h = distance - radius
    else:
        curvature = 0.0
        if beyond_x >= beyond_y:
            h, gx, gy = beyond_x - radius, math.copysign(1.0, lx), 0.0
        else:
            h, gx, gy = beyond_y - radius, 0.0, math.copysign(1.0, ly)
    return h, c * gx - s * gy, s * gx + c * gy, curvature
