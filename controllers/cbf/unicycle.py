"""The unicycle barrier model through a look-ahead point: first-order CBF rows in (v, omega) for obstacles, walls and neighbours.

State ``[x, y, theta]`` (ENU world, heading about +z), input ``u = (v, omega)``: forward speed
(m/s) and turn rate (rad/s), as a diff-drive's geometry_msgs/Twist carries them. The point
``l`` ahead of the centre, ``p = (x + l cos theta, y + l sin theta)``, moves as

    p' = J u,   J = [[cos theta, -l sin theta], [sin theta, l cos theta]]

and J is invertible for l > 0, so a barrier on p has relative degree 1 in both inputs (the
centre itself does not: it cannot move sideways). Each barrier ``h(p)`` gives the row

    (J' grad h)' u >= -alpha h          (for a neighbour moving at w: >= grad h' w - alpha h)

with h measured in the horizontal plane (obstacle heights ignored; see
aegis.controllers.cbf.environment) and a margin of ``robot_radius + l``: the centre is within
``l`` of p, so p kept ``radius + l`` clear keeps the body ``radius`` clear. Walls whose normal is
vertical (a geofence's floor and ceiling) do not apply to a ground robot and are skipped.
Neighbours are moving obstacles at their measured velocity (full responsibility).

Robustness: a real ground robot is not a unicycle (a skid-steer slides sideways while it turns, its
wheels lag). ``disturbance_speed`` d bounds how fast the look-ahead point may move in ways the
model does not predict; each row then asks ``(J' grad h)' u >= -alpha h + d`` (|grad h| = 1), so
h stays >= 0 for any such disturbance (an input-to-state-safe CBF, in the sense of Kolathaya and
Ames, "Input-to-State Safety With Control Barrier Functions", IEEE L-CSS 2019).

The backup needs no solver: stop, ``(v, omega) = (0, 0)`` (the bounds must allow it).
"""

from __future__ import annotations

import math

import numpy as np

from aegis.controllers.cbf.environment import (
    Environment,
    Neighbours,
    box_distance_planar,
)
from aegis.controllers.cbf.rows import ConstraintRows

_HORIZONTAL = 1e-9


class UnicycleLookaheadModel:
    """Barrier rows at the point ``lookahead_distance`` (m) ahead, for a body of radius ``robot_radius`` (m).

    Bounds: ``min_speed <= v <= max_speed`` (m/s; min_speed <= 0 <= max_speed, so stopping is
    allowed), ``|omega| <= max_turn_rate`` (rad/s). ``alpha`` (1/s) is the default barrier rate.
    """

    state_size = 3
    n_inputs = 2

    def __init__(
        self,
        lookahead_distance: float,
        robot_radius: float,
        max_speed: float,
        max_turn_rate: float,
        min_speed: float | None = None,
        alpha: float = 1.0,
        disturbance_speed: float = 0.0,
    ) -> None:
        min_speed = -max_speed if min_speed is None else min_speed
        if not (disturbance_speed >= 0 and math.isfinite(disturbance_speed)):
            raise ValueError(f"disturbance_speed must be finite and >= 0, got {disturbance_speed}")
        self.disturbance_speed = float(disturbance_speed)
        if not (lookahead_distance > 0 and math.isfinite(lookahead_distance)):
            raise ValueError(f"lookahead_distance must be finite and > 0, got {lookahead_distance}")
        if not (robot_radius >= 0 and math.isfinite(robot_radius)):
            raise ValueError(f"robot_radius must be finite and >= 0, got {robot_radius}")
        if not (math.isfinite(min_speed) and math.isfinite(max_speed) and min_speed <= 0.0 <= max_speed and min_speed < max_speed):
            raise ValueError(f"need finite min_speed <= 0 <= max_speed, got {min_speed}, {max_speed}")
        if not (max_turn_rate > 0 and math.isfinite(max_turn_rate)):
            raise ValueError(f"max_turn_rate must be finite and > 0, got {max_turn_rate}")
        if not (alpha > 0 and math.isfinite(alpha)):
            raise ValueError(f"alpha must be finite and > 0, got {alpha}")
        self.lookahead_distance = float(lookahead_distance)
        self.robot_radius = float(robot_radius)
        self.lower = np.array([float(min_speed), -float(max_turn_rate)])
        self.upper = np.array([float(max_speed), float(max_turn_rate)])
        self.default_alpha = float(alpha)

    def default_weights(self) -> np.ndarray:
        """(1, l^2): a change of v or of omega weighs by how much it moves the look-ahead point (|J du|^2 = dv^2 + l^2 domega^2)."""
        return np.array([1.0, self.lookahead_distance**2])

    def lookahead_point(self, state: np.ndarray) -> np.ndarray:
        x, y, theta = state
        return np.array([x + self.lookahead_distance * math.cos(theta), y + self.lookahead_distance * math.sin(theta)])

    def fill_rows(self, state: np.ndarray, environment: Environment, neighbours: Neighbours, alpha: float, rows: ConstraintRows) -> None:
        """Refill ``rows`` for ``state`` [x, y, theta]: obstacles, horizontal walls, neighbours (module doc)."""
        rows.clear()
        add_a, add_b, add_h = rows.a.extend, rows.b.append, rows.h.append
        x, y, theta = state.tolist()
        c, s, lookahead = math.cos(theta), math.sin(theta), self.lookahead_distance
        px, py = x + lookahead * c, y + lookahead * s
        margin = self.robot_radius + lookahead
        robust = self.disturbance_speed  # |grad h| = 1 for a distance: the worst unmodelled approach rate
        for obstacle in environment.obstacles:
            distance, gx, gy, _ = box_distance_planar(px, py, 0.0, 0.0, obstacle)
            h = distance - margin
            add_a((gx * c + gy * s, lookahead * (gy * c - gx * s)))
            add_b(robust - alpha * h)
            add_h(h)
        for nx, ny, _, offset in environment.walls:
            horizontal = math.hypot(nx, ny)
            if horizontal < _HORIZONTAL:
                continue
            gx, gy = nx / horizontal, ny / horizontal
            h = (nx * px + ny * py - offset) / horizontal - margin
            add_a((gx * c + gy * s, lookahead * (gy * c - gx * s)))
            add_b(robust - alpha * h)
            add_h(h)
        for qx, qy, _, wx, wy, _, radius in neighbours.rows:
            distance, gx, gy, _ = box_distance_planar(px, py, 0.0, 0.0, (qx, qy, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, radius))
            h = distance - margin
            add_a((gx * c + gy * s, lookahead * (gy * c - gx * s)))
            add_b(gx * wx + gy * wy + robust - alpha * h)
            add_h(h)

    def constraint_names(self, environment: Environment, neighbours: Neighbours) -> list[str]:
        """The name of each row :meth:`fill_rows` adds, in order."""
        walls = [name for (nx, ny, _, _), name in zip(environment.walls, environment.wall_names) if math.hypot(nx, ny) >= _HORIZONTAL]
        return [*environment.obstacle_names, *walls, *(f"neighbour {i}" for i in range(len(neighbours)))]

    def backup(self, state: np.ndarray) -> np.ndarray:
        """Stop: (v, omega) = (0, 0)."""
        return np.zeros(2)

    def estop_command(self) -> np.ndarray:
        """The command that goes out with an e-stop: (0, 0)."""
        return np.zeros(2)
