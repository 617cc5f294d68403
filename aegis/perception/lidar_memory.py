"""A multi-plane lidar's short memory: obstacles seen in the last ``memory_s`` that the current scan cannot have seen through.

Why: a plane's rays that start inside a thing do not see it (PyBullet's, and any ray caster's; a real
multi-layer lidar's beams leave one point, but an offset plane's emitter is a point above or below the
body). Flying under a hanging sphere, the top plane's emitter goes inside it, the planes below pass
under it, and for a few scans nothing is perceived at all: the drone climbs back to its altitude, into
the sphere (docs/campaigns.md, clutter seed 964). Forgetting at once what was seen a scan ago is the
wrong default: unknown space is not free space.

**The rule** (:func:`recall`). Every scan's obstacles (after the planes' merge) are remembered with the
scan's stamp and the heights of the planes that saw them. A remembered obstacle is published again,
marked by the caller, while all of these hold:

* it is at most ``memory_s`` old: it is never re-stamped by being remembered, so nothing outlives
  ``memory_s`` after it was last seen (no "never forget": a wrong obstacle cannot hold the robot);
* the current scan did not see it again (*superseded*): a current obstacle alike it (the merge's own
  association: footprints' Hausdorff distance within ``merge_distance_m`` plus both uncertainties)
  whose planes span at least the heights it was seen at; that one carries it now;
* the current scan could not look at it (not *observed*): no plane at a height it was seen at
  (within ``z_tolerance_m``) has beams crossing its footprint that return from it or pass it (a
  return beyond it, or none: NaN in an organized cloud). A plane that did look either saw it, and
  this scan's own obstacles carry it, or saw through it, and it is gone: either way the memory has
  nothing to add. A plane counts only when its emitter lies more than ``blind_margin_m`` outside the
  footprint: closer, the emitter may be inside the thing itself (the footprint is the slice a plane
  saw; the thing can be wider a centimetre higher), and its rays would pass through unseen. Rays
  stopped in front of it (occluded), planes at other heights and an emitter within the margin cannot
  look, so it is kept.

A published memory carries a grown uncertainty, ``sigma + growth_mps * age`` (the pose's drift since
it was seen, and that it is not being measured), which the safety filter inflates it by.

Pure numpy, no messages; lengths in m, world frame; beams are the planes' common directions (level planes
from one xy: the laser's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from aegis.perception.lidar_merge import _OCTAGON, Footprints, MergedObstacle, differences


@dataclass(frozen=True)
class Remembered:
    """One obstacle as last seen: ``obstacle`` (world frame), ``stamp`` (s, the scan that saw it) and the lowest and
    highest world heights of the planes that saw it (``seen_low`` <= ``seen_high``)."""

    obstacle: MergedObstacle
    stamp: float
    seen_low: float
    seen_high: float


@dataclass(frozen=True)
class MemoryParams:
    """The memory's settings (module doc): ``memory_s`` 0 turns it off."""

    memory_s: float = 0.5
    growth_mps: float = 0.05
    blind_margin_m: float = 0.1
    z_tolerance_m: float = 0.01
    hit_tolerance_m: float = 0.03
    merge_distance_m: float = 0.05


def seen(merged: list[MergedObstacle], plane_z: np.ndarray, stamp: float) -> list[Remembered]:
    """This scan's obstacles to remember: each with ``stamp`` and the heights of its planes (``plane_z`` of this scan)."""
    z = np.asarray(plane_z, dtype=np.float64)
    return [Remembered(m, stamp, float(z[min(m.planes)]), float(z[max(m.planes)])) for m in merged if m.planes]


def footprints_of(merged: list[MergedObstacle]) -> Footprints:
    """Merged obstacles as the merge's rounded-rectangle footprints (a box's corners twice, a circle's octagon)."""
    n = len(merged)
    centre = np.array([m.centre for m in merged], dtype=np.float64).reshape(n, 2)
    yaw = np.array([m.yaw for m in merged], dtype=np.float64)
    direction = np.column_stack([np.cos(yaw), np.sin(yaw)])
    circle = np.array([m.shape == "circle" for m in merged], dtype=bool)
    radius = np.where(circle, [m.radius for m in merged], 0.0) if n else np.zeros(0)
    half_length = np.where(circle, 0.0, [0.5 * m.length for m in merged]) if n else np.zeros(0)
    half_depth = np.where(circle, 0.0, [0.5 * m.depth for m in merged]) if n else np.zeros(0)
    normal = np.column_stack([-direction[:, 1], direction[:, 0]])
    signs = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=np.float64)
    corners = centre[:, None, :] + (signs[None, :, 0, None] * half_length[:, None, None] * direction[:, None, :]
                                    + signs[None, :, 1, None] * half_depth[:, None, None] * normal[:, None, :])
    vertices = np.where(circle[:, None, None], centre[:, None, :] + radius[:, None, None] * _OCTAGON[None],
                        np.concatenate([corners, corners], axis=1))
    sigma = np.array([m.sigma_m for m in merged], dtype=np.float64)
    empty = np.zeros(n)
    return Footprints(centre, direction, half_length, half_depth, radius, vertices, sigma, empty, empty, np.zeros(n, int))


def ray_span(obstacle: MergedObstacle, origin: tuple[float, float], angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each ray from ``origin`` along world ``angles`` enters and leaves the obstacle's footprint (distances; NaN
    where it misses it, the entry clipped at 0 when the origin is inside)."""
    ox, oy = origin
    cx, cy = obstacle.centre
    dx, dy = np.cos(angles), np.sin(angles)
    rx, ry = ox - cx, oy - cy
    if obstacle.shape == "circle":
        b = rx * dx + ry * dy
        disc = b * b - (rx * rx + ry * ry - obstacle.radius**2)
        root = np.sqrt(np.where(disc >= 0.0, disc, np.nan))
        enter, leave = -b - root, -b + root
    else:  # slabs in the box's frame
        ux, uy = math.cos(obstacle.yaw), math.sin(obstacle.yaw)
        o_u, o_n = rx * ux + ry * uy, -rx * uy + ry * ux
        d_u, d_n = dx * ux + dy * uy, -dx * uy + dy * ux
        enter, leave = np.full(angles.shape, -np.inf), np.full(angles.shape, np.inf)
        for o, d, half in ((o_u, d_u, 0.5 * obstacle.length), (o_n, d_n, 0.5 * obstacle.depth)):
            with np.errstate(divide="ignore", invalid="ignore"):
                t1, t2 = (-half - o) / d, (half - o) / d
            parallel = np.abs(d) < 1e-12
            low = np.where(parallel, np.where(abs(o) <= half, -np.inf, np.inf), np.minimum(t1, t2))
            high = np.where(parallel, np.where(abs(o) <= half, np.inf, -np.inf), np.maximum(t1, t2))
            enter, leave = np.maximum(enter, low), np.minimum(leave, high)
        miss = ~(enter <= leave)
        enter, leave = np.where(miss, np.nan, enter), np.where(miss, np.nan, leave)
    miss = ~(leave > 0.0)  # behind the origin, or no crossing
    return np.where(miss, np.nan, np.maximum(enter, 0.0)), np.where(miss, np.nan, leave)


def distance_outside(obstacle: MergedObstacle, point: tuple[float, float]) -> float:
    """How far ``point`` lies outside the obstacle's footprint (0 inside)."""
    rx, ry = point[0] - obstacle.centre[0], point[1] - obstacle.centre[1]
    if obstacle.shape == "circle":
        return max(math.hypot(rx, ry) - obstacle.radius, 0.0)
    ux, uy = math.cos(obstacle.yaw), math.sin(obstacle.yaw)
    along = abs(rx * ux + ry * uy) - 0.5 * obstacle.length
    across = abs(-rx * uy + ry * ux) - 0.5 * obstacle.depth
    return math.hypot(max(along, 0.0), max(across, 0.0))


def observed(entry: Remembered, ranges_by_plane: np.ndarray, plane_z: np.ndarray, origin: tuple[float, float],
             angles: np.ndarray, params: MemoryParams) -> bool:
    """Whether a plane at a height ``entry`` was seen at, its emitter more than ``blind_margin_m`` outside the footprint,
    looked at the footprint this scan: at least two of its beams that cross it (or every one, if fewer) return from it or
    pass it freely (beyond it, or NaN: no return), not stopped in front of it."""
    o = entry.obstacle
    at_seen = (plane_z >= entry.seen_low - params.z_tolerance_m) & (plane_z <= entry.seen_high + params.z_tolerance_m)
    if not np.any(at_seen) or distance_outside(o, origin) <= params.blind_margin_m:
        return False
    enter, leave = ray_span(o, origin, angles)
    crossing = np.isfinite(enter)
    if not np.any(crossing):
        return False
    tol = params.hit_tolerance_m + o.sigma_m
    enter = enter[crossing]
    needed = min(2, enter.size)
    for ranges in np.asarray(ranges_by_plane)[at_seen][:, crossing]:
        with np.errstate(invalid="ignore"):
            if np.count_nonzero(~(ranges < enter - tol)) >= needed:  # a return from it or beyond it, or none (NaN)
                return True
    return False


def superseded(memory: list[Remembered], current: list[Remembered], merge_distance_m: float, z_tolerance_m: float) -> np.ndarray:
    """For each remembered obstacle, whether a current one is alike it (the merge's association rule: Hausdorff distance
    within ``merge_distance_m`` plus both uncertainties) and was seen over at least the heights it was (less
    ``z_tolerance_m``: the planes' heights move with the robot by centimetres)."""
    m, c = len(memory), len(current)
    if not m or not c:
        return np.zeros(m, dtype=bool)
    f = footprints_of([e.obstacle for e in memory] + [e.obstacle for e in current])
    low, high = f.vertices.min(axis=1), f.vertices.max(axis=1)
    reach = merge_distance_m + f.sigma[:m, None] + f.sigma[None, m:]
    gap = np.maximum(np.maximum(low[None, m:, 0] - high[:m, None, 0], low[:m, None, 0] - high[None, m:, 0]),
                     np.maximum(low[None, m:, 1] - high[:m, None, 1], low[:m, None, 1] - high[None, m:, 1]))
    seen_low = np.array([e.seen_low for e in memory])
    seen_high = np.array([e.seen_high for e in memory])
    covers = ((np.array([e.seen_low for e in current])[None, :] <= seen_low[:, None] + z_tolerance_m)
              & (np.array([e.seen_high for e in current])[None, :] >= seen_high[:, None] - z_tolerance_m))
    i, j = np.nonzero(covers & (gap <= reach))  # candidates: bounding boxes within reach (Hausdorff >= their gap)
    out = np.zeros(m, dtype=bool)
    if i.size:
        alike = differences(f, i, j + m) <= reach[i, j]
        out[i[alike]] = True
    return out


def recall(memory: list[Remembered], current: list[Remembered], ranges_by_plane: np.ndarray, plane_z: np.ndarray,
           origin: tuple[float, float], angles: np.ndarray, stamp: float, params: MemoryParams = MemoryParams(),
           ) -> tuple[list[Remembered], list[MergedObstacle]]:
    """(the memory after this scan, the remembered obstacles to publish with this scan) from the memory before it,
    this scan's obstacles (:func:`seen`), its planes' ranges (planes, beams; NaN no return) at world heights
    ``plane_z`` from the laser's xy ``origin`` along world ``angles``, at ``stamp`` (module doc). The published ones
    carry ``sigma + growth_mps * age``; the new memory is this scan's obstacles and the kept ones."""
    if params.memory_s <= 0.0:
        return [], []
    live = [e for e in memory if 0.0 <= stamp - e.stamp <= params.memory_s]
    carried = superseded(live, current, params.merge_distance_m, params.z_tolerance_m)
    z = np.asarray(plane_z, dtype=np.float64)
    kept: list[Remembered] = []
    for k, entry in enumerate(live):
        if carried[k]:
            continue
        if observed(entry, ranges_by_plane, z, origin, angles, params):
            continue
        kept.append(entry)
    published = [replace(e.obstacle, sigma_m=e.obstacle.sigma_m + params.growth_mps * (stamp - e.stamp)) for e in kept]
    return current + kept, published
