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
over-states a circle's reach by at most 8 % of its radius.

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
class _Copy:
    """One plane's obstacle: its footprint's vertices (a box's corners, a circle's octagon), a circle's centre and radius
    (radius 0 for a face), a face's direction (unit, along it), sigma, z bounds and plane."""

    vertices: np.ndarray
    centre: np.ndarray
    radius: float
    direction: np.ndarray | None
    length: float
    sigma: float
    bottom: float
    top: float
    plane: int
    half_depth: float = 0.0

    def box(self) -> tuple[float, float, float, float]:
        """The axis-aligned bounds (x min, y min, x max, y max) of the footprint's vertices."""
        low, high = self.vertices.min(axis=0), self.vertices.max(axis=0)
        return float(low[0]), float(low[1]), float(high[0]), float(high[1])


def _copies(layers: list[LayerObstacles], thickness: float) -> list[_Copy]:
    copies: list[_Copy] = []
    for plane, layer in enumerate(layers):
        found = layer.found
        for centre, radius, sigma in zip(found.centres, found.radii.tolist(), found.circle_sigma_m.tolist()):
            c = np.asarray(centre, dtype=np.float64)
            copies.append(_Copy(c + radius * _OCTAGON, c, radius, None, 0.0, sigma, layer.bottom, layer.top, plane))
        for start, end, normal, sigma in zip(found.starts, found.ends, found.normals, found.segment_sigma_m.tolist()):
            depth = thickness * np.asarray(normal, dtype=np.float64)
            direction = end - start
            length = float(np.hypot(direction[0], direction[1]))
            unit = direction / length if length > 1e-9 else np.array([-normal[1], normal[0]], dtype=np.float64)
            vertices = np.array([start, end, end + depth, start + depth], dtype=np.float64)
            copies.append(_Copy(vertices, vertices.mean(axis=0), 0.0, unit, length, sigma, layer.bottom, layer.top, plane, 0.5 * thickness))
    return copies


def _distances_to(points: np.ndarray, copy: _Copy) -> np.ndarray:
    """Each point's distance to ``copy``'s footprint (0 inside): to the disc for a circle, to the rectangle for a face."""
    if copy.direction is None:
        return np.maximum(np.hypot(*(points - copy.centre).T) - copy.radius, 0.0)
    u = copy.direction
    n = np.array([-u[1], u[0]])
    rel = points - copy.centre
    out_u = np.maximum(np.abs(rel @ u) - 0.5 * copy.length, 0.0)
    out_n = np.maximum(np.abs(rel @ n) - copy.half_depth, 0.0)
    return np.hypot(out_u, out_n)


def hausdorff(a: _Copy, b: _Copy) -> float:
    """The Hausdorff distance between two footprints: for convex sets the farthest vertex of either from the other."""
    return float(max(_distances_to(a.vertices, b).max(), _distances_to(b.vertices, a).max()))


def _difference(a: _Copy, b: _Copy) -> float:
    """How unlike two copies are: the Hausdorff distance between their footprints (exact between two circles)."""
    if a.direction is None and b.direction is None:
        return float(np.hypot(*(a.centre - b.centre))) + abs(a.radius - b.radius)
    return hausdorff(a, b)


def _merged(group: list[_Copy]) -> MergedObstacle:
    sigma = max(c.sigma for c in group)
    bottom, top = min(c.bottom for c in group), max(c.top for c in group)
    planes = tuple(sorted({c.plane for c in group}))
    faces = [c for c in group if c.direction is not None]
    circles = [c for c in group if c.direction is None]
    if circles and all(f.length <= 2.0 * max(c.radius for c in circles) for f in faces):  # a round thing: a circle around all
        centre = np.mean([c.centre for c in circles], axis=0)
        radius = max(float(np.hypot(*(c.centre - centre))) + c.radius for c in circles)
        for f in faces:
            radius = max(radius, float(np.hypot(*(f.vertices - centre).T).max()))
        return MergedObstacle("circle", (float(centre[0]), float(centre[1])), radius, 0.0, 0.0, 0.0, sigma, bottom, top, planes)
    u = max(faces, key=lambda c: c.length).direction
    n = np.array([-u[1], u[0]])
    lows, highs = [], []
    for c in group:
        if c.direction is None:  # a circle's exact extent along u and n
            along, across = float(c.centre @ u), float(c.centre @ n)
            lows.append((along - c.radius, across - c.radius))
            highs.append((along + c.radius, across + c.radius))
        else:
            along, across = c.vertices @ u, c.vertices @ n
            lows.append((float(along.min()), float(across.min())))
            highs.append((float(along.max()), float(across.max())))
    low, high = np.min(lows, axis=0), np.max(highs, axis=0)
    mid = 0.5 * (low + high)
    centre = mid[0] * u + mid[1] * n
    return MergedObstacle(
        "box", (float(centre[0]), float(centre[1])), 0.0, float(high[0] - low[0]), float(high[1] - low[1]),
        math.atan2(u[1], u[0]), sigma, bottom, top, planes,
    )


def merge_layers(layers: list[LayerObstacles], thickness: float, merge_distance_m: float) -> list[MergedObstacle]:
    """The planes' obstacles (``layers[k]`` plane ``k``, ascending) with each thing's copies joined (module doc); a face's
    box is ``thickness`` deep behind it. Each copy is in exactly one result; the order follows the first copy of each."""
    copies = _copies(layers, thickness)
    parent = list(range(len(copies)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    boxes = [c.box() for c in copies]
    by_plane: dict[int, list[int]] = {}
    for i, c in enumerate(copies):
        by_plane.setdefault(c.plane, []).append(i)
    for plane, lower in by_plane.items():
        for i in lower:
            for j in by_plane.get(plane + 1, ()):
                a, b = copies[i], copies[j]
                reach = merge_distance_m + a.sigma + b.sigma
                (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = boxes[i], boxes[j]
                if max(bx0 - ax1, ax0 - bx1, by0 - ay1, ay0 - by1) > reach:
                    continue  # bounding boxes farther apart than reach: so are the footprints, and Hausdorff >= that gap
                if _difference(a, b) <= reach:
                    parent[root(j)] = root(i)
    groups: dict[int, list[_Copy]] = {}
    for i, c in enumerate(copies):
        groups.setdefault(root(i), []).append(c)
    return [_merged(group) for group in groups.values()]
