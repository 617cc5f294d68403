"""The double-integrator barrier model (p, v; u = a): higher-order CBF rows for obstacles, walls, neighbours and a speed limit.

State ``[p (3), v (3)]`` in the world frame (ENU), input the acceleration ``a`` (3), gravity
excluded: for a quadrotor it is what the cascade's outer loop commands
(:meth:`aegis.controllers.quadrotor_cascade.QuadrotorCascade.compute_acceleration`), and the inner
loops realise it, hover thrust included. ``|a_i| <= max_acceleration`` per axis.

A position barrier ``h(p)`` has relative degree 2 (``h'' = v' H v + g' a`` with ``g = grad h``,
``H`` its Hessian). The higher-order CBF with ``psi_1 = h' + alpha h`` and the condition
``psi_1' + alpha psi_1 >= 0`` (both class-K functions linear with the same ``alpha``: the barrier
then obeys ``h'' + 2 alpha h' + alpha^2 h >= 0``, critically damped) is linear in ``a``::

    g' a >= -v' H v - 2 alpha g' v - alpha^2 h

Sources, each one row (h is the distance minus the robot's radius, see aegis.controllers.cbf.environment):

- obstacles: rounded boxes (spheres, upright cylinders without caps, yaw-rotated boxes);
- walls (geofence half-spaces): ``h = n . p - offset - radius``, H = 0;
- neighbours (other robots), spheres of their radius plus ours moving at their velocity ``w``: the same
  row with the relative velocity ``v - w``, its right-hand side times ``neighbour_share``. With
  share 1 the neighbour is assumed not to accelerate; with 1/2 (the default) each of two robots
  running this filter takes half of the required separation: the pair's condition
  ``g' (a_i - a_j) >= B`` holds when each meets ``g' a >= B / 2`` with its own gradient (decentralized
  reciprocal filtering, as in Wang, Ames and Egerstedt, "Safety barrier certificates for
  collisions-free multirobot systems", IEEE T-RO 2017);
- the speed limit, relative degree 1: ``h = (v_max^2 - |v|^2) / (2 v_max)`` (m/s, ``v_max - |v|``
  near the limit), ``-(v / v_max)' a >= -speed_alpha h``.

``alpha`` is an input of every tick (:meth:`fill_rows`), so the caller may adapt it online
(aegis.controllers.cbf.adaptive). The backup needs no solver: brake, ``a = clip(-brake_gain v)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from aegis.controllers.cbf.environment import Environment, Neighbours, box_distance
from aegis.controllers.cbf.rows import ConstraintRows


class DoubleIntegratorModel:
    """Barrier rows and the braking backup of a 3-D point mass of radius ``robot_radius`` (m).

    ``max_acceleration`` (m/s^2, scalar or per axis) bounds each axis; ``max_speed`` (m/s) adds the
    speed-limit barrier (None: none), enforced at rate ``speed_alpha`` (1/s); ``alpha`` (1/s) is the
    default barrier rate; ``brake_gain`` (1/s) the backup's deceleration per m/s.
    """

    state_size = 6
    n_inputs = 3

    def __init__(
        self,
        max_acceleration: float | Sequence[float],
        robot_radius: float,
        max_speed: float | None = None,
        alpha: float = 2.0,
        speed_alpha: float = 5.0,
        neighbour_share: float = 0.5,
        brake_gain: float = 2.0,
    ) -> None:
        limit = np.broadcast_to(np.asarray(max_acceleration, dtype=float), (3,)).copy()
        if not (np.all(limit > 0) and np.all(np.isfinite(limit))):
            raise ValueError(f"max_acceleration must be finite and > 0, got {max_acceleration}")
        if not (robot_radius >= 0 and math.isfinite(robot_radius)):
            raise ValueError(f"robot_radius must be finite and >= 0, got {robot_radius}")
        if max_speed is not None and not (max_speed > 0 and math.isfinite(max_speed)):
            raise ValueError(f"max_speed must be finite and > 0 (or None), got {max_speed}")
        for name, value in (("alpha", alpha), ("speed_alpha", speed_alpha), ("brake_gain", brake_gain)):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be finite and > 0, got {value}")
        if not 0 < neighbour_share <= 1:
            raise ValueError(f"neighbour_share must be in (0, 1], got {neighbour_share}")
        self.lower, self.upper = -limit, limit.copy()
        self.robot_radius = float(robot_radius)
        self.max_speed = None if max_speed is None else float(max_speed)
        self.default_alpha = float(alpha)
        self.speed_alpha = float(speed_alpha)
        self.neighbour_share = float(neighbour_share)
        self.brake_gain = float(brake_gain)

    def default_weights(self) -> np.ndarray:
        """W = I: the change of acceleration counts the same on every axis."""
        return np.ones(3)

    def fill_rows(self, state: np.ndarray, environment: Environment, neighbours: Neighbours, alpha: float, rows: ConstraintRows) -> None:
        """Refill ``rows`` for ``state`` [p, v]: obstacles, walls, neighbours, then the speed limit (module doc)."""
        rows.clear()
        add_a, add_b, add_h = rows.a.extend, rows.b.append, rows.h.append
        px, py, pz, vx, vy, vz = state.tolist()
        damping, stiffness = 2.0 * alpha, alpha * alpha
        margin = self.robot_radius
        for obstacle in environment.obstacles:
            distance, gx, gy, gz, curvature = box_distance(px, py, pz, vx, vy, vz, obstacle)
            h = distance - margin
            add_a((gx, gy, gz))
            add_b(-curvature - damping * (gx * vx + gy * vy + gz * vz) - stiffness * h)
            add_h(h)
        for nx, ny, nz, offset in environment.walls:
            h = nx * px + ny * py + nz * pz - offset - margin
            add_a((nx, ny, nz))
            add_b(-damping * (nx * vx + ny * vy + nz * vz) - stiffness * h)
            add_h(h)
        share = self.neighbour_share
        for qx, qy, qz, wx, wy, wz, radius in neighbours.rows:
            rx, ry, rz = vx - wx, vy - wy, vz - wz
            distance, gx, gy, gz, curvature = box_distance(px, py, pz, rx, ry, rz, (qx, qy, qz, 1.0, 0.0, 0.0, 0.0, 0.0, radius))
            h = distance - margin
            add_a((gx, gy, gz))
            add_b(share * (-curvature - damping * (gx * rx + gy * ry + gz * rz) - stiffness * h))
            add_h(h)
        if self.max_speed is not None:
            v_max = self.max_speed
            h = (v_max * v_max - vx * vx - vy * vy - vz * vz) / (2.0 * v_max)
            add_a((-vx / v_max, -vy / v_max, -vz / v_max))
            add_b(-self.speed_alpha * h)
            add_h(h)

    def constraint_names(self, environment: Environment, neighbours: Neighbours) -> list[str]:
        """The name of each row :meth:`fill_rows` adds, in order."""
        names = [*environment.obstacle_names, *environment.wall_names, *(f"neighbour {i}" for i in range(len(neighbours)))]
        return names + (["speed limit"] if self.max_speed is not None else [])

    def backup(self, state: np.ndarray) -> np.ndarray:
        """Brake: ``a = clip(-brake_gain v)`` per axis (hover, the gravity part, is the inner loop's business)."""
        return np.clip(-self.brake_gain * state[3:6], self.lower, self.upper)

    def estop_command(self) -> np.ndarray:
        """The command that goes out with an e-stop (zero acceleration); the supervisor decides what e-stop means for the actuators."""
        return np.zeros(3)
