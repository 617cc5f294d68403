"""Getting a filtered robot unstuck: detect a CBF deadlock and pick the way around the obstacle that holds it.

A CBF quadratic program changes the nominal command minimally, so where the nominal pulls the
robot straight into an obstacle (its direction parallel to the barrier's gradient) the safe
command is to stop, and the robot stays there: safe, but it never arrives (Reis, Aguiar and
Tabuada, "Control Barrier Function-Based Quadratic Programs Introduce Undesirable Asymptotically
Stable Equilibria", IEEE L-CSS 2021). The filter nodes resolve it in two parts, neither of which
touches the barrier rows (safety stays the QP's):

- :class:`StallMonitor` says when the robot is stuck: the filter has been changing a nominal that
  asks for motion while the robot stayed put, for ``stall_s``; it then stays in escape for
  ``escape_s`` (a new stall may start another);
- :func:`escape_direction` says which way around the blocking obstacle (a rounded box, the
  environment's tuple): toward the silhouette edge that is nearest, measured across the directions
  lateral to the nominal; a side already passed wins outright (in front of a window, the opening's
  side); a side whose way out leaves the geofence or goes through the floor is not taken. A head-on
  sphere is passed on the side the robot already leans to, or, exactly head-on, to the left of the
  nominal (a fixed rule, so the choice never dithers). It looks at that one obstacle only;
- :func:`free_passage` looks at all of them: the nearest point beside the robot (across the nominal)
  from which the nominal's straight line gets past the blocking obstacle clear of every obstacle and
  inside the geofence, reached by a clear sideways path; none (the way straight on is already clear)
  or a distance and direction. Perceived obstacles make it matter: a window's corner seen as a sliver
  of one beam's return and a lintel above it, the edge rule climbs over the sliver into the lintel.

The node adds ``escape_gain`` times that direction to the nominal (an acceleration for the
quadrotor, a heading for the diff-drive) while escaping, and says so on the report. Pure: no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from aegis.controllers.cbf.environment import ObstacleTuple


class StallMonitor:
    """When a filtered robot is stuck (module doc): ``update`` each tick, ``escaping`` tells.

    Stuck: for ``stall_s`` the filter held back a nominal that asks for motion on every tick, and the
    robot moved less than ``stall_speed_mps * stall_s`` from where that stretch began (a distance,
    not a speed: noisy odometry's speed flickers above any small bound, its position does not).
    """

    def __init__(self, stall_speed_mps: float = 0.05, stall_s: float = 1.0, escape_s: float = 2.0) -> None:
        for name, value in (("stall_speed_mps", stall_speed_mps), ("stall_s", stall_s), ("escape_s", escape_s)):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be finite and > 0, got {value}")
        self.stall_speed_mps, self.stall_s, self.escape_s = float(stall_speed_mps), float(stall_s), float(escape_s)
        self.reset()

    def reset(self) -> None:
        self._since: tuple[float, np.ndarray] | None = None
        self._escape_until = -math.inf
        self.escapes = 0

    def escaping(self, now: float) -> bool:
        return now < self._escape_until

    def update(self, now: float, position: np.ndarray, held_back: bool) -> bool:
        """After a tick: where the robot is and whether the filter held a nominal back; True when an escape starts now."""
        if self.escaping(now):
            return False
        if not held_back:
            self._since = None
            return False
        if self._since is None or np.linalg.norm(position - self._since[1]) > self.stall_speed_mps * self.stall_s:
            self._since = (now, np.array(position, dtype=float))
            return False
        if now - self._since[0] < self.stall_s:
            return False
        self._since = None
        self._escape_until = now + self.escape_s
        self.escapes += 1
        return True


def escape_direction(
    position: Sequence[float],
    nominal: Sequence[float],
    obstacle: ObstacleTuple,
    clearance: float,
    walls: Sequence[tuple[float, float, float, float]] = (),
    planar: bool = False,
) -> np.ndarray:
    """The unit direction (world, 3-D; z = 0 when ``planar``) around ``obstacle`` for a robot at ``position`` pulled along ``nominal``.

    ``clearance`` is how far past the obstacle's surface the robot's centre must get (its radius plus
    margins); ``walls`` are the geofence's half-spaces (n, offset: n . p >= offset inside) a way out must stay in.
    """
    cx, cy, cz, c, s, ex, ey, ez, radius = obstacle
    px, py, pz = position
    local = np.array([c * (px - cx) + s * (py - cy), c * (py - cy) - s * (px - cx), pz - cz])
    extent = np.array([ex, ey, ez])
    nx, ny, nz = (*nominal, 0.0)[:3] if len(nominal) == 2 else tuple(nominal)
    pull = np.array([c * nx + s * ny, c * ny - s * nx, 0.0 if planar else nz])
    along = int(np.argmax(np.abs(pull) if np.any(pull) else -np.abs(local)))  # the axis the nominal pulls along
    candidates = []
    for axis in range(2 if planar else 3):
        if axis == along or not math.isfinite(extent[axis]):
            continue  # not lateral, or no edge that way (a cylinder of infinite height has no caps)
        offset = local[axis]
        side = math.copysign(1.0, offset) if abs(offset) > 1e-9 else (1.0 if axis != 2 else 1.0)
        if abs(offset) <= 1e-9 and axis != 2:  # exactly head-on: the left of the pull (a fixed rule)
            left = np.array([-pull[1], pull[0], 0.0])
            side = math.copysign(1.0, left[axis]) if abs(left[axis]) > 1e-12 else 1.0
        exit_local = local.copy()
        exit_local[axis] = side * (extent[axis] + radius + clearance)
        exit_world = np.array([cx + c * exit_local[0] - s * exit_local[1], cy + s * exit_local[0] + c * exit_local[1], cz + exit_local[2]])
        if any(wx * exit_world[0] + wy * exit_world[1] + wz * exit_world[2] < offset_w for wx, wy, wz, offset_w in walls):
            continue  # that way out leaves the geofence (or goes through the floor)
        cost = extent[axis] - abs(offset)  # negative: already past that edge
        candidates.append((cost, axis, side))
    if not candidates:
        return np.zeros(3)
    _, axis, side = min(candidates)
    unit_local = np.zeros(3)
    unit_local[axis] = side
    return np.array([c * unit_local[0] - s * unit_local[1], s * unit_local[0] + c * unit_local[1], unit_local[2]])


PASSAGE_MARGIN_M = 0.05
"""How far beyond the robot's own radius (and each obstacle's inflation) a passage must be clear (m)."""


def free_passage(
    position: Sequence[float],
    nominal: Sequence[float],
    obstacles: Sequence[ObstacleTuple],
    blocking: int,
    body_m: float,
    walls: Sequence[tuple[float, float, float, float]] = (),
    planar: bool = False,
    reach_m: float = 1.0,
    step_m: float = 0.025,
    directions: int = 24,
    vertical_reach_m: float = math.inf,
) -> tuple[np.ndarray, float] | None:
    """(unit direction across the nominal, distance) to the nearest free passage past ``obstacles[blocking]`` (module doc).

    Sideways points up to ``reach_m``, ``step_m`` apart, along ``directions`` directions about the nominal (two when
    ``planar``); a point is a passage when the nominal's line from it, until ``body_m`` past the blocking obstacle's far
    side, keeps ``body_m + PASSAGE_MARGIN_M`` from every obstacle and the geofence's walls, and the sideways path to it
    keeps ``body_m``. The nearest wins, then the one with the most room. ``(zeros, 0.0)``: the line from the robot
    itself is a passage; None: no passage within reach (or no nominal to pass along). A point more than
    ``vertical_reach_m`` above or below the robot is no passage: a sensor that sees a band about the robot's altitude
    (level lidar planes) has not looked there, nor at what lies between it and the flight altitude the nominal
    returns to (clutter seed 959: 0.475 m up over a pillar's base, then down onto a sphere no plane had seen from
    up there). Vectorised over the directions and the line, one radius at a time from the nearest: it runs once per
    stall, not per tick (milliseconds).
    """
    p = np.asarray(position, dtype=float)
    pull = np.array([*nominal, 0.0][:3] if len(nominal) == 2 else nominal, dtype=float)
    if planar:
        pull[2] = 0.0
    norm = float(np.linalg.norm(pull))
    if norm == 0.0 or not obstacles:
        return None
    pull /= norm
    if planar:
        across = np.array([[-pull[1], pull[0], 0.0], [pull[1], -pull[0], 0.0]])
    else:
        left = np.cross((0.0, 0.0, 1.0), pull)
        left = left / np.linalg.norm(left) if np.linalg.norm(left) > 1e-6 else np.array([0.0, 1.0, 0.0])
        up = np.cross(pull, left)
        angles = 2.0 * math.pi * np.arange(directions) / directions
        across = np.cos(angles)[:, None] * left + np.sin(angles)[:, None] * up
    boxes = np.array(obstacles, dtype=float)
    far = _support(boxes[blocking], pull) - float(p @ pull) + body_m  # the line's length: past the far side
    along = np.arange(0.0, min(max(far, 0.0), 2.0 * reach_m) + step_m, 2.0 * step_m)[:, None] * pull  # (along, 3)
    near = _box_distances(p, boxes) <= reach_m + float(along[-1] @ pull) + body_m + PASSAGE_MARGIN_M
    boxes = boxes[near]  # only what a point searched can come near (the blocking obstacle always does)
    open_ways = np.ones(len(across), dtype=bool)  # the sideways path this far is clear
    for radius in np.arange(0.0, reach_m + step_m / 2, step_m):  # nearest first: stop at the first passage
        points = p + radius * across  # (direction, 3)
        open_ways &= _clearance(points, boxes, walls) >= body_m
        if not open_ways.any():
            return None
        within_reach = np.abs(radius * across[:, 2]) <= vertical_reach_m  # how far off the robot's altitude
        room = np.where(open_ways & within_reach, _clearance(points[:, None, :] + along, boxes, walls).min(axis=1), -np.inf)
        best = int(np.argmax(room))
        if room[best] >= body_m + PASSAGE_MARGIN_M:
            return (np.zeros(3), 0.0) if radius == 0.0 else (across[best], float(radius))
    return None


def _support(box: np.ndarray, unit: np.ndarray) -> float:
    """How far the rounded box reaches along ``unit``: max over its points of point . unit."""
    cx, cy, cz, c, s, ex, ey, ez, radius = box.tolist()
    reach = cx * unit[0] + cy * unit[1] + cz * unit[2] + radius
    for extent, dot in ((ex, c * unit[0] + s * unit[1]), (ey, -s * unit[0] + c * unit[1]), (ez, unit[2])):
        if dot != 0.0:
            reach += extent * abs(dot)
    return reach


def _box_distances(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Distance from each point to each rounded box (negative inside): shape (points' shape less the 3, box)."""
    rel = points[..., None, :] - boxes[:, :3]  # (..., box, 3)
    c, s = boxes[:, 3], boxes[:, 4]
    local = np.stack([c * rel[..., 0] + s * rel[..., 1], c * rel[..., 1] - s * rel[..., 0], rel[..., 2]], axis=-1)
    beyond = np.abs(local) - boxes[:, 5:8]
    outside = np.sqrt(np.sum(np.maximum(beyond, 0.0) ** 2, axis=-1))
    inside = np.minimum(np.max(beyond, axis=-1), 0.0)
    return outside + inside - boxes[:, 8]


def _clearance(points: np.ndarray, boxes: np.ndarray, walls: Sequence[tuple[float, float, float, float]]) -> np.ndarray:
    """Distance from each point to the nearest rounded box or geofence wall (negative inside); points' shape less the 3."""
    distance = _box_distances(points, boxes).min(axis=-1)
    for nx, ny, nz, offset in walls:
        distance = np.minimum(distance, points @ np.array([nx, ny, nz]) - offset)
    return distance
