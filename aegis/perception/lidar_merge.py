"""A multi-plane lidar's per-plane copies of one thing -> one obstacle whose vertical extent joins theirs.

Fitted plane by plane (aegis.perception.lidar_layers), a wall seen by five planes comes out as five
stacked copies, each bounded in z by its neighbouring planes. A safety filter that keeps a fixed
number of barrier rows (``max_rows``) then spends them on copies of one wall and drops the obstacle
beside it. :func:`merge_layers` joins the copies into one piece, from the bottom of the lowest copy to
the top of the highest, so a wall seen by every plane is one obstacle from the ground up and a sill
seen by the lower planes stays one bounded obstacle.

**The association rule**: a copy in plane ``k`` and a copy in plane ``k + 1`` are one thing when their
footprints (a circle, or the box ``thickness`` deep behind a face) are alike: the Hausdorff distance
between them, the farthest any point of one lies from the other, is at most ``merge_distance_m`` plus
both copies' uncertainties (1 sigma). Groups are the chains so linked (union-find). Why these two
conditions:

* **adjacent planes only**: the extent of a copy is bounded by its neighbouring planes because they
  saw something else there (through a window, over a sill). A sill seen by the lower planes and a
  lintel seen by the upper one have the same footprint; joining them over the planes that saw through
  the window between them would close the window. Joined only plane to plane, a group's planes are
  consecutive and its copies' z extents overlap, so their union is one interval.
* **alike, not merely overlapping**: the sill's long face overlaps the wall pieces beside the window
  that the middle planes see; an overlap rule would join them and stretch the sill's whole width to
  the top of the wall pieces, closing the window again. Two copies a Hausdorff distance ``d`` apart
  differ by at most ``d`` anywhere, so the merged footprint (which contains each copy) adds at most
  about ``d`` to the xy extent any copy claimed at its heights: the price of one row is bounded.
  The rule is the same for circles: one within another is not enough (a spurious circle across a
  window, planes 1 and 2 of quadrotor_gaps seed 941, swallowed a face of plane 0 and so stood from the
  ground). A ball's slices, concentric circles whose radii differ, join while they differ by less
  than the tolerance; its smallest slice, a few returns, often fits a short face and then stays its
  own obstacle: a row more, nothing unsafe.

A copy that matches nothing stays as it was (a plane's own obstacle with its own bounds).

**The merged shape** contains every copy (conservative): a group with a circle and no face longer
than its largest circle's diameter gives the circle around every copy (the circles' mean centre, the
radius reaching the farthest rim or face-box corner); any other group gives the box around every copy
in the frame of its longest face (along the face and across it). Its
uncertainty is the largest of the copies'. The distances use a circle's circumscribed octagon, which
over-states a circle's reach by at most 8 % of its radius (between two circles the distance is exact).

Every footprint is a rounded rectangle (centre, direction, half length, half depth, rounding radius:
a circle has no length or depth, a face's box no rounding), so every candidate pair's distance is one
vectorised expression; pairs whose bounding boxes lie farther apart than the tolerance are not tried.

Pure numpy, no messages; lengths in m, world frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aegis.perception.lidar_layers import LayerObstacles

_OCTAGON = np.array([[math.cos(a), math.sin(a)] for a in np.arange(8) * (math.pi / 4.0)]) / math.cos(math.pi / 8.0)
"""The unit circle's circumscribed octagon (its vertices): a circle's footprint as a polygon that contains it."""


@dataclass(frozen=True)
class MergedObstacle:
    """One thing seen, over the planes that saw it: a ``circle`` (``radius``) or a ``box`` (``length`` along ``yaw``,
    ``depth`` across it) centred at ``centre`` (x, y), standing from ``bottom`` to ``top`` (world z; -inf / +inf
    unbounded), its 1-sigma position uncertainty ``sigma_m`` and the planes its copies came from."""

    shape: str
    centre: tuple[float, float]
    radius: float
    length: float
    depth: float
    yaw: float
    sigma_m: float
    bottom: float
    top: float
    planes: tuple[int, ...]


@dataclass(frozen=True)
class Footprints:
    """Every plane's copies as rounded rectangles, one row each: ``centre`` (n, 2), unit ``direction`` (n, 2) along a
    face, ``half_length``, ``half_depth``, ``radius`` (n,) (a circle: radius only; a face's box: no radius), ``vertices``
    (n, 8, 2: a box's corners twice, a circle's octagon), ``sigma``, ``bottom``, ``top`` (n,) and ``plane`` (n,)."""

    centre: np.ndarray
    direction: np.ndarray
    half_length: np.ndarray
    half_depth: np.ndarray
    radius: np.ndarray
    vertices: np.ndarray
    sigma: np.ndarray
    bottom: np.ndarray
    top: np.ndarray
    plane: np.ndarray

    @property
    def circle(self) -> np.ndarray:
        return self.radius > 0.0


def footprints(layers: list[LayerObstacles], thickness: float) -> Footprints:
    """The copies of every plane (circles first, then faces, plane by plane) as :class:`Footprints`."""
    parts: list[tuple[np.ndarray, ...]] = []
    for plane, layer in enumerate(layers):
        found = layer.found
        n = len(found.radii)
        if n:
            centre = np.asarray(found.centres, dtype=np.float64).reshape(n, 2)
            radius = np.asarray(found.radii, dtype=np.float64)
            vertices = centre[:, None, :] + radius[:, None, None] * _OCTAGON[None]
            direction = np.tile([1.0, 0.0], (n, 1))
            parts.append((centre, direction, np.zeros(n), np.zeros(n), radius, vertices, np.asarray(found.circle_sigma_m, dtype=np.float64),
                          np.full(n, layer.bottom), np.full(n, layer.top), np.full(n, plane)))
        m = len(found.starts)
        if m:
            start, end = np.asarray(found.starts, dtype=np.float64), np.asarray(found.ends, dtype=np.float64)
            normal = np.asarray(found.normals, dtype=np.float64)
            chord = end - start
            length = np.hypot(chord[:, 0], chord[:, 1])
            along = np.where(length[:, None] > 1e-9, chord / np.maximum(length, 1e-9)[:, None], np.column_stack([-normal[:, 1], normal[:, 0]]))
            depth = thickness * normal
            corners = np.stack([start, end, end + depth, start + depth], axis=1)
            parts.append((corners.mean(axis=1), along, 0.5 * length, np.full(m, 0.5 * thickness), np.zeros(m),
                          np.concatenate([corners, corners], axis=1), np.asarray(found.segment_sigma_m, dtype=np.float64),
                          np.full(m, layer.bottom), np.full(m, layer.top), np.full(m, plane)))
    if not parts:
        empty = np.zeros(0)
        return Footprints(np.zeros((0, 2)), np.zeros((0, 2)), empty, empty, empty, np.zeros((0, 8, 2)), empty, empty, empty, np.zeros(0, int))
    columns = [np.concatenate(column) for column in zip(*parts)]
    return Footprints(*columns)


def _reach_out(points: np.ndarray, f: Footprints, j: np.ndarray) -> np.ndarray:
    """How far the farthest of each row's points (pairs, 8, 2) lies outside footprint ``j`` of that row (0: all inside)."""
    rel = points - f.centre[j][:, None, :]
    u = f.direction[j][:, None, :]
    along = np.abs(rel[..., 0] * u[..., 0] + rel[..., 1] * u[..., 1]) - f.half_length[j][:, None]
    across = np.abs(rel[..., 1] * u[..., 0] - rel[..., 0] * u[..., 1]) - f.half_depth[j][:, None]
    outside = np.hypot(np.maximum(along, 0.0), np.maximum(across, 0.0)) - f.radius[j][:, None]
    return np.maximum(outside, 0.0).max(axis=1)


def differences(f: Footprints, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """How unlike copies ``i`` and ``j`` are (pairwise): the Hausdorff distance between their footprints, for convex sets
    the farthest vertex of either from the other; exact between two circles."""
    d = np.maximum(_reach_out(f.vertices[i], f, j), _reach_out(f.vertices[j], f, i))
    circles = f.circle[i] & f.circle[j]
    if np.any(circles):
        gap = np.hypot(*(f.centre[i[circles]] - f.centre[j[circles]]).T)
        d[circles] = gap + np.abs(f.radius[i[circles]] - f.radius[j[circles]])
    return d


def _merged(f: _Lists, rows: list[int]) -> MergedObstacle:
    """The obstacle around copies ``rows`` (module doc), in plain floats: a group is a few copies."""
    sigma = max(f.sigma[k] for k in rows)
    bottom, top = min(f.bottom[k] for k in rows), max(f.top[k] for k in rows)
    planes = tuple(sorted({f.plane[k] for k in rows}))
    circles = [k for k in rows if f.radius[k] > 0.0]
    faces = [k for k in rows if f.radius[k] == 0.0]
    if circles and all(f.half_length[k] <= max(f.radius[c] for c in circles) for k in faces):  # round: a circle around all
        cx = sum(f.centre[k][0] for k in circles) / len(circles)
        cy = sum(f.centre[k][1] for k in circles) / len(circles)
        radius = max(math.hypot(f.centre[k][0] - cx, f.centre[k][1] - cy) + f.radius[k] for k in circles)
        for k in faces:
            radius = max(radius, *(math.hypot(x - cx, y - cy) for x, y in f.vertices[k][:4]))
        return MergedObstacle("circle", (cx, cy), radius, 0.0, 0.0, 0.0, sigma, bottom, top, planes)
    ux, uy = f.direction[max(faces, key=lambda k: f.half_length[k])]
    nx, ny = -uy, ux
    low_u = low_n = math.inf
    high_u = high_n = -math.inf
    for k in faces:
        for x, y in f.vertices[k][:4]:
            along, across = x * ux + y * uy, x * nx + y * ny
            low_u, high_u, low_n, high_n = min(low_u, along), max(high_u, along), min(low_n, across), max(high_n, across)
    for k in circles:  # a circle's exact extent along u and n
        (x, y), r = f.centre[k], f.radius[k]
        along, across = x * ux + y * uy, x * nx + y * ny
        low_u, high_u, low_n, high_n = min(low_u, along - r), max(high_u, along + r), min(low_n, across - r), max(high_n, across + r)
    mid_u, mid_n = 0.5 * (low_u + high_u), 0.5 * (low_n + high_n)
    return MergedObstacle(
        "box", (mid_u * ux + mid_n * nx, mid_u * uy + mid_n * ny), 0.0, high_u - low_u, high_n - low_n, math.atan2(uy, ux),
        sigma, bottom, top, planes,
    )


@dataclass(frozen=True)
class _Lists:
    """:class:`Footprints` as Python lists, for the few copies of each group."""

    centre: list
    direction: list
    half_length: list
    radius: list
    vertices: list
    sigma: list
    bottom: list
    top: list
    plane: list

    @classmethod
    def of(cls, f: Footprints) -> _Lists:
        return cls(f.centre.tolist(), f.direction.tolist(), f.half_length.tolist(), f.radius.tolist(), f.vertices.tolist(),
                   f.sigma.tolist(), f.bottom.tolist(), f.top.tolist(), f.plane.tolist())


def merge_layers(layers: list[LayerObstacles], thickness: float, merge_distance_m: float) -> list[MergedObstacle]:
    """The planes' obstacles (``layers[k]`` plane ``k``, ascending) with each thing's copies joined (module doc); a face's
    box is ``thickness`` deep behind it. Each copy is in exactly one result; the order follows the first copy of each."""
    f = footprints(layers, thickness)
    n = len(f.radius)
    if n == 0:
        return []
    low, high = f.vertices.min(axis=1), f.vertices.max(axis=1)
    reach = merge_distance_m + f.sigma[:, None] + f.sigma[None, :]
    gap = np.maximum(np.maximum(low[None, :, 0] - high[:, None, 0], low[:, None, 0] - high[None, :, 0]),
                     np.maximum(low[None, :, 1] - high[:, None, 1], low[:, None, 1] - high[None, :, 1]))
    # candidates: plane k with plane k + 1, bounding boxes within reach (Hausdorff >= their gap)
    i, j = np.nonzero((f.plane[None, :] == f.plane[:, None] + 1) & (gap <= reach))
    parent = list(range(n))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    if i.size:
        alike = differences(f, i, j) <= reach[i, j]
        for a, b in zip(i[alike].tolist(), j[alike].tolist()):
            parent[root(b)] = root(a)
    groups: dict[int, list[int]] = {}
    for k in range(n):
        groups.setdefault(root(k), []).append(k)
    lists = _Lists.of(f)
    return [_merged(lists, rows) for rows in groups.values()]
