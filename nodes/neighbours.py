"""Other robots' odometry as a safety filter sees it: fresh, stale (kept, inflated to where it may have gone) or unknown.

A filter node with a ``neighbours`` input (one odometry topic per other robot) hands each tick's
messages to a :class:`NeighbourTracker`, which returns the aegis.controllers.cbf.Neighbours to
filter against. Per neighbour, explicitly:

- fresh (its latest usable odometry is within the port's staleness bound): a sphere of
  ``radius`` at its position, moving at its velocity (the twist turned into the world frame);
- stale (older): kept, as the set of where it may be by now. It was at ``q`` ``age`` seconds
  ago and moves no faster than ``max_speed``, so it is within ``max_speed * age`` of ``q``: the
  sphere's radius grows by that much, and it is taken to be coming straight at this robot at
  ``max_speed`` (the worst case for the barrier's rate). A neighbour that stays silent thus
  pushes the robot away ever more conservatively, never less;
- unusable odometry (NaN, not a unit quaternion) does not replace the last usable one, which
  keeps ageing as above;
- unknown (nothing usable ever received): ignored, as nothing is known of where it is.

Stale and unknown neighbour-ticks are counted (``stale_ticks``, ``unknown_ticks``) and named in the
filter's report, so a supervisor sees when the filter is working from old or missing positions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from aegis.controllers.cbf import NO_NEIGHBOURS, Neighbours
from aegis.controllers.quadrotor_model import quaternion_to_matrix
from aegis.msgs import RobotState
from aegis.node import Received


class NeighbourTracker:
    """The last usable odometry of each of ``count`` neighbours, turned into Neighbours at each tick (module doc).

    ``radius`` (m) is each neighbour's bounding radius; ``max_age_s`` the staleness bound (s);
    ``max_speed`` (m/s) how fast a neighbour may move while it is not heard.
    """

    def __init__(self, count: int, radius: float, max_age_s: float, max_speed: float) -> None:
        if not (radius >= 0 and max_age_s > 0 and max_speed > 0):
            raise ValueError(f"need radius >= 0, max_age_s > 0 and max_speed > 0, got {radius}, {max_age_s}, {max_speed}")
        self.count = count
        self.radius = float(radius)
        self.max_age_s = float(max_age_s)
        self.max_speed = float(max_speed)
        self._known: list[tuple[RobotState, float] | None] = [None] * count
        self.stale_ticks = 0
        self.unknown_ticks = 0
        self.last_status = ""
        """What this tick's neighbours were, in words ("" when all were fresh)."""

    def reset(self) -> None:
        self._known = [None] * self.count
        self.stale_ticks = 0
        self.unknown_ticks = 0
        self.last_status = ""

    def update(self, now: float, received: Sequence[Received | None], own_position: np.ndarray) -> Neighbours:
        """This tick's neighbours from the latest odometry on each topic (module doc); NO_NEIGHBOURS when there are none."""
        if not self.count:
            return NO_NEIGHBOURS
        for index, one in enumerate(received):
            if one is not None and one.msg.is_usable():
                self._known[index] = (one.msg, now - one.age_s)
        positions, velocities, radii = [], [], []
        stale = 0
        for known in self._known:
            if known is None:
                continue
            msg, received_at = known
            age = now - received_at
            positions.append(msg.position)
            if age <= self.max_age_s:
                velocities.append(quaternion_to_matrix(msg.orientation) @ msg.linear_velocity)
                radii.append(self.radius)
            else:
                stale += 1
                velocities.append(self._towards(msg.position, own_position))
                radii.append(self.radius + self.max_speed * age)
        unknown = self.count - len(positions)
        self.stale_ticks += stale
        self.unknown_ticks += unknown
        parts = ([f"{stale} stale"] if stale else []) + ([f"{unknown} unknown"] if unknown else [])
        self.last_status = f" (neighbours: {', '.join(parts)})" if parts else ""
        if not positions:
            return NO_NEIGHBOURS
        return Neighbours(np.array(positions), np.array(velocities), np.array(radii))

    def _towards(self, position: np.ndarray, own_position: np.ndarray) -> np.ndarray:
        """Velocity ``max_speed`` from ``position`` straight at ``own_position`` (zero when they coincide)."""
        offset = own_position - position
        distance = math.sqrt(float(offset @ offset))
        return offset * (self.max_speed / distance) if distance > 0.0 else np.zeros(3)
