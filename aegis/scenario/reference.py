"""Reference trajectories of a scenario as pure functions of time: position, velocity and acceleration.

Hover and figure-8 are analytic (smooth). Waypoint tours and lines are piecewise linear at
constant speed: the velocity jumps at each corner (acceleration is 0 between corners and not
defined at them; 0 is returned). Before t = 0 a reference is at its start; a line or an open
tour holds its last point, at rest, once finished.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from aegis.scenario.schema import Figure8, Hover, Line, Reference, Vec3, Waypoints

ReferenceState = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(position (3,), velocity (3,), acceleration (3,)), world frame, SI units."""


def reference_at(reference: Reference, t: float) -> ReferenceState:
    """The reference's position, velocity and acceleration at time ``t`` (s from the scenario's start)."""
    if isinstance(reference, Hover):
        return np.array(reference.position, dtype=float), np.zeros(3), np.zeros(3)
    if isinstance(reference, Figure8):
        return _figure8_at(reference, t)
    if isinstance(reference, Waypoints):
        return _polyline_at(reference.points, reference.loop, reference.speed_mps, t)
    if isinstance(reference, Line):
        return _polyline_at((reference.from_, reference.to), False, reference.speed_mps, t)
    raise TypeError(f"not a reference: {type(reference).__name__}")


def reference_table(reference: Reference, times: list[float]) -> ReferenceState:
    """:func:`reference_at` at each of ``times``, stacked: positions, velocities, accelerations, (k, 3) each.

    The same numbers as stacking ``reference_at`` (an MPC samples its horizon so every tick); the figure-8's
    on floats, one array per column instead of three per instant.
    """
    if isinstance(reference, Figure8):
        return _figure8_table(reference, times)
    return stacked([reference_at(reference, t) for t in times])


def stacked(samples: list[ReferenceState]) -> ReferenceState:
    """Samples (position, velocity, acceleration) stacked into positions, velocities, accelerations, (k, 3) each."""
    return np.array([s[0] for s in samples]), np.array([s[1] for s in samples]), np.array([s[2] for s in samples])


def reference_extremes(reference: Reference) -> list[tuple[str, np.ndarray]]:
    """(key, point) pairs attaining the path's smallest and largest x, y and z: they lie in a box iff the path does."""
    if isinstance(reference, Hover):
        return [("reference.position", np.array(reference.position, dtype=float))]
    if isinstance(reference, Waypoints):
        return [(f"reference.points.{i}", np.array(p, dtype=float)) for i, p in enumerate(reference.points)]
    if isinstance(reference, Line):
        return [("reference.from", np.array(reference.from_, dtype=float)), ("reference.to", np.array(reference.to, dtype=float))]
    if isinstance(reference, Figure8):
        c, ax, ay = np.array(reference.center, dtype=float), reference.x_amplitude_m, reference.y_amplitude_m
        # x is extreme at w t = pi/2, 3 pi/2 (y = cy there); y at w t = pi/4, 3 pi/4 (x = cx +- ax / sqrt 2).
        offsets = [(ax, 0.0), (-ax, 0.0), (ax * np.sqrt(0.5), ay), (ax * np.sqrt(0.5), -ay)]
        return [("reference", c + np.array([dx, dy, 0.0])) for dx, dy in offsets]
    raise TypeError(f"not a reference: {type(reference).__name__}")


def _figure8_at(ref: Figure8, t: float) -> ReferenceState:
    """On floats (math's sin and cos: numpy's on a scalar cost ~1 µs each), the same operations in the same order."""
    w = 2.0 * math.pi / ref.period_s
    ax, ay = ref.x_amplitude_m, ref.y_amplitude_m
    s1, c1, s2, c2 = math.sin(w * t), math.cos(w * t), math.sin(2 * w * t), math.cos(2 * w * t)
    cx, cy, cz = (float(c) for c in ref.center)
    position = np.array([cx + ax * s1, cy + ay * s2, cz + 0.0])
    velocity = np.array([ax * w * c1, 2.0 * ay * w * c2, 0.0])
    acceleration = np.array([-ax * w * w * s1, -4.0 * ay * w * w * s2, 0.0])
    return position, velocity, acceleration


def _figure8_table(ref: Figure8, times: list[float]) -> ReferenceState:
    """:func:`_figure8_at` at each of ``times`` (floats), stacked: the same operations in the same order."""
    w = 2.0 * math.pi / ref.period_s
    ax, ay = ref.x_amplitude_m, ref.y_amplitude_m
    cx, cy, cz = (float(c) for c in ref.center)
    sin, cos = math.sin, math.cos
    positions, velocities, accelerations = [], [], []
    for t in times:
        s1, c1, s2, c2 = sin(w * t), cos(w * t), sin(2 * w * t), cos(2 * w * t)
        positions.append((cx + ax * s1, cy + ay * s2, cz + 0.0))
        velocities.append((ax * w * c1, 2.0 * ay * w * c2, 0.0))
        accelerations.append((-ax * w * w * s1, -4.0 * ay * w * w * s2, 0.0))
    return np.array(positions), np.array(velocities), np.array(accelerations)


@lru_cache(maxsize=64)
def _polyline(points: tuple[Vec3, ...], loop: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices (n, 3), unit leg directions (m, 3) and arc length at each leg's start (m + 1,), read-only."""
    vertices = np.array(points + (points[0],) if loop else points, dtype=float)
    legs = np.diff(vertices, axis=0)
    lengths = np.linalg.norm(legs, axis=1)
    directions = legs / lengths[:, None]
    arc = np.concatenate([[0.0], np.cumsum(lengths)])
    for array in (vertices, directions, arc):
        array.setflags(write=False)
    return vertices, directions, arc


def _polyline_at(points: tuple[Vec3, ...], loop: bool, speed: float, t: float) -> ReferenceState:
    vertices, directions, arc = _polyline(points, loop)
    total = arc[-1]
    s = speed * max(t, 0.0)
    if loop:
        s %= total
    elif s >= total:
        return vertices[-1].copy(), np.zeros(3), np.zeros(3)
    leg = min(int(np.searchsorted(arc, s, side="right")) - 1, len(directions) - 1)
    position = vertices[leg] + directions[leg] * (s - arc[leg])
    return position, directions[leg] * speed, np.zeros(3)
