"""The passage check: is there a corridor of a given width from start to goal among obstacles, inside the geofence?

The free space is sampled on a grid of cell ``h``: a cell is free when its centre is at least
``half_width + h / 2`` from every obstacle surface and at least ``half_width`` inside the
geofence. Signed distance is 1-Lipschitz, so every point of the segment between two
face-adjacent free centres (``h`` apart) is at least ``half_width`` from every obstacle: a chain
of free cells is a corridor (a tube, in 3-D) of width ``2 * half_width`` along its centre line.
The start and the goal join it when they are at least ``half_width + h`` clear and their nearest
cell centres are free and connected (face connectivity, scipy.ndimage.label). The check is
conservative: it can miss a passage narrower than ``2 * half_width + h``, never invent one.

A ground robot's check is planar (the plane of its start, geofence walls in x and y only); a
quadrotor's is 3-D (floor and ceiling included).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from aegis.scenario.geometry import clearances, signed_distance_at
from aegis.scenario.schema import Geofence, ObstacleSpec


def passage_cell(half_width_m: float) -> float:
    """The grid cell the layouts use for a corridor of half-width ``half_width_m``: 5 cm or a quarter of it, the smaller."""
    return min(0.05, half_width_m / 4.0)


def corridor_exists(
    obstacles: Sequence[ObstacleSpec],
    start: ArrayLike,
    goal: ArrayLike,
    geofence: Geofence,
    half_width_m: float,
    planar: bool,
    cell_m: float | None = None,
) -> bool:
    """Whether a corridor of width ``2 * half_width_m`` joins ``start`` to ``goal`` (see the module docstring)."""
    h = passage_cell(half_width_m) if cell_m is None else cell_m
    start, goal = np.asarray(start, dtype=float), np.asarray(goal, dtype=float)
    axes = 2 if planar else 3
    lo = np.array(geofence.min_m[:axes]) + half_width_m
    hi = np.array(geofence.max_m[:axes]) - half_width_m
    if np.any(hi < lo):
        return False
    counts = np.maximum(1, np.floor((hi - lo) / h).astype(int) + 1)
    ticks = [lo[a] + h * np.arange(counts[a]) for a in range(axes)]
    free = np.ones(tuple(counts), dtype=bool)
    threshold = half_width_m + h / 2.0
    for obstacle in obstacles:  # only the cells near an obstacle can be within the threshold of it
        window = _near(obstacle, threshold, lo, h, counts)
        if window is not None:  # the window's cell centres as a sparse grid (its axes broadcast), the plane's height if planar
            axes_of_window = np.meshgrid(*(t[w] for t, w in zip(ticks, window)), indexing="ij", sparse=True)
            x, y, z = axes_of_window if not planar else (*axes_of_window, start[2])
            free[window] &= signed_distance_at(obstacle, x, y, z) >= threshold
    ends = []
    for point in (start, goal):
        if float(clearances(obstacles, point)) < half_width_m + h if obstacles else False:
            return False
        if np.any(point[:axes] < lo) or np.any(point[:axes] > hi):
            return False
        index = tuple(np.clip(np.rint((point[:axes] - lo) / h).astype(int), 0, counts - 1))
        if not free[index]:
            return False
        ends.append(index)
    from scipy.ndimage import label

    labels, _ = label(free)
    return bool(labels[ends[0]] == labels[ends[1]])


def _near(obstacle: ObstacleSpec, reach: float, lo: np.ndarray, h: float, counts: np.ndarray) -> tuple[slice, ...] | None:
    """The grid's index window holding every cell centre within ``reach`` of the obstacle (its bounding box grown by it)."""
    sx, sy, sz = obstacle.size
    half = np.array([np.hypot(sx, sy) / 2.0, np.hypot(sx, sy) / 2.0, sz / 2.0])[: len(lo)] + reach
    centre = np.array(obstacle.position, dtype=float)[: len(lo)]
    first = np.maximum(np.floor((centre - half - lo) / h).astype(int), 0)
    last = np.minimum(np.ceil((centre + half - lo) / h).astype(int), counts - 1)
    if np.any(last < first):
        return None
    return tuple(slice(a, b + 1) for a, b in zip(first, last))
