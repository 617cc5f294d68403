"""Online (adaptive) barrier rate: alpha from what the robot perceives, closing speed and obstacle density.

In the spirit of Gao, Yang and Prorok, "Online Control Barrier Functions for Decentralized
Multi-Agent Navigation" (arXiv, March 2023): a fixed class-K rate is either conservative (slow,
detours, deadlocks in clutter) or aggressive (late braking, infeasible QPs when something closes
in fast); tuning it per tick from the local neighbourhood gets the better of both. The paper learns
that tuning with a graph neural network; here it is a small, pure, hand-made function with the
same inputs, so a node can call it every tick (or replace it by a learned one) and pass the result
to :meth:`aegis.controllers.cbf.CbfSafetyFilter.compute` as ``alpha``:

    alpha = clip(base_alpha * exp(-closing_gain * max(closing, 0) / reference_speed) / (1 + density_gain * density),
                 min_alpha, max_alpha)

A smaller alpha makes the barrier act earlier (the robot may approach a boundary only slowly), so
alpha shrinks while something approaches fast or many things are near, and returns to
``base_alpha`` in open space.
"""

from __future__ import annotations

import math

import numpy as np

from aegis.controllers.cbf.environment import (
    NO_NEIGHBOURS,
    Environment,
    Neighbours,
    box_distance,
    box_distance_planar,
)


def adaptive_alpha(
    base_alpha: float,
    closing: float,
    density: float,
    reference_speed: float = 1.0,
    closing_gain: float = 1.0,
    density_gain: float = 0.25,
    min_alpha: float = 0.2,
    max_alpha: float = 10.0,
) -> float:
    """The barrier rate for this tick (module doc): ``closing`` in m/s, ``density`` a count of nearby things."""
    if not (base_alpha > 0 and reference_speed > 0 and 0 < min_alpha <= max_alpha):
        raise ValueError("need base_alpha > 0, reference_speed > 0 and 0 < min_alpha <= max_alpha")
    alpha = base_alpha * math.exp(-closing_gain * max(closing, 0.0) / reference_speed) / (1.0 + density_gain * max(density, 0.0))
    return min(max(alpha, min_alpha), max_alpha)


def closing_speed(position: np.ndarray, velocity: np.ndarray, environment: Environment, neighbours: Neighbours = NO_NEIGHBOURS) -> float:
    """How fast the robot approaches the obstacle or neighbour it approaches fastest (m/s, 0 when it moves away from all).

    ``position`` and ``velocity`` are 3-D, or 2-D for a ground robot (then heights are ignored).
    """
    planar = len(position) == 2
    px, py = float(position[0]), float(position[1])
    vx, vy = float(velocity[0]), float(velocity[1])
    pz, vz = (0.0, 0.0) if planar else (float(position[2]), float(velocity[2]))
    fastest = 0.0
    for obstacle in environment.obstacles:
        rate = _approach_rate(px, py, pz, vx, vy, vz, obstacle, planar)
        fastest = max(fastest, rate)
    for qx, qy, qz, wx, wy, wz, radius in neighbours.rows:
        rate = _approach_rate(px, py, pz, vx - wx, vy - wy, vz - wz, (qx, qy, qz, 1.0, 0.0, 0.0, 0.0, 0.0, radius), planar)
        fastest = max(fastest, rate)
    return fastest


def obstacle_density(position: np.ndarray, environment: Environment, neighbours: Neighbours = NO_NEIGHBOURS, radius: float = 2.0) -> int:
    """How many obstacles and neighbours have their surface within ``radius`` (m) of ``position`` (3-D, or 2-D ignoring heights)."""
    planar = len(position) == 2
    px, py = float(position[0]), float(position[1])
    pz = 0.0 if planar else float(position[2])
    spheres = [(qx, qy, qz, 1.0, 0.0, 0.0, 0.0, 0.0, r) for qx, qy, qz, _, _, _, r in neighbours.rows]
    count = 0
    for obstacle in (*environment.obstacles, *spheres):
        distance = box_distance_planar(px, py, 0.0, 0.0, obstacle)[0] if planar else box_distance(px, py, pz, 0.0, 0.0, 0.0, obstacle)[0]
        count += distance <= radius
    return count


def _approach_rate(px: float, py: float, pz: float, vx: float, vy: float, vz: float, obstacle: tuple[float, ...], planar: bool) -> float:
    if planar:
        _, gx, gy, _ = box_distance_planar(px, py, vx, vy, obstacle)
        return -(gx * vx + gy * vy)
    _, gx, gy, gz, _ = box_distance(px, py, pz, vx, vy, vz, obstacle)
    return -(gx * vx + gy * vy + gz * vz)
