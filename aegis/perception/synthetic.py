"""Synthetic planar scans with known answers, for tests and benchmarks: exact ray casts against circles and segments."""

from __future__ import annotations

import math

import numpy as np


def render_scan(
    circles: list[tuple[float, float, float]],
    segments: list[tuple[float, float, float, float]],
    sensor_xy_yaw: tuple[float, float, float] = (0.0, 0.0, 0.0),
    beams: int = 360,
    range_max: float = 10.0,
    noise_std: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, float, float]:
    """(ranges, angle_min, angle_increment) of a full-turn scan from the sensor at (x, y, yaw): +inf where nothing is hit."""
    sx, sy, yaw = sensor_xy_yaw
    angle_min, increment = -math.pi, 2.0 * math.pi / beams
    angles = angle_min + np.arange(beams) * increment + yaw
    d = np.column_stack([np.cos(angles), np.sin(angles)])
    best = np.full(beams, np.inf)
    for cx, cy, r in circles:
        f = np.array([sx - cx, sy - cy])
        b = d @ f
        c = f @ f - r * r
        disc = b * b - c
        with np.errstate(invalid="ignore"):
            t = -b - np.sqrt(disc)
        hit = (disc >= 0) & (t > 0)
        best = np.where(hit & (t < best), t, best)
    for x0, y0, x1, y1 in segments:
        e = np.array([x1 - x0, y1 - y0])
        w = np.array([x0 - sx, y0 - sy])
        denom = d[:, 0] * e[1] - d[:, 1] * e[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (w[0] * e[1] - w[1] * e[0]) / denom
            u = (w[0] * d[:, 1] - w[1] * d[:, 0]) / denom
        hit = (np.abs(denom) > 1e-12) & (t > 0) & (u >= 0) & (u <= 1)
        best = np.where(hit & (t < best), t, best)
    best[best > range_max] = np.inf
    finite = np.isfinite(best)
    best[finite] += noise_std * np.random.default_rng(seed).standard_normal(int(finite.sum()))
    return best.astype(np.float32), angle_min, increment


def box_faces(cx: float, cy: float, length: float, width: float, yaw: float) -> list[tuple[float, float, float, float]]:
    """The four faces of a yawed box as segments (x0, y0, x1, y1)."""
    c, s = math.cos(yaw), math.sin(yaw)
    corners = [(cx + c * dx - s * dy, cy + s * dx + c * dy) for dx, dy in
               ((0.5 * length, 0.5 * width), (-0.5 * length, 0.5 * width), (-0.5 * length, -0.5 * width), (0.5 * length, -0.5 * width))]
    return [(*corners[i], *corners[(i + 1) % 4]) for i in range(4)]


def husky_goal_scan(beams: int = 360, noise_std: float = 0.01, seed: int = 0) -> tuple[np.ndarray, float, float, tuple[float, float, float]]:
    """A fixed scan of the husky_goal scenario's obstacles inside a walled 11 x 8 m yard, from (1.0, 0.3) heading 0.2 rad:
    (ranges, angle_min, angle_increment, sensor pose (x, y, yaw)). The benchmarks' recorded input."""
    pose = (1.0, 0.3, 0.2)
    circles = [(4.2, 1.2, 0.3), (0.6, 1.9, 0.25)]
    segments = box_faces(2.0, -0.6, 1.0, 1.0, 0.3) + box_faces(5.3, -1.6, 1.2, 0.6, 0.5)
    segments += [(-2.0, -4.0, 9.0, -4.0), (9.0, -4.0, 9.0, 4.0), (9.0, 4.0, -2.0, 4.0), (-2.0, 4.0, -2.0, -4.0)]
    ranges, angle_min, increment = render_scan(circles, segments, pose, beams, 10.0, noise_std, seed)
    return ranges, angle_min, increment, pose
