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
  nominal (a fixed rule, so the choice never dithers).

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
