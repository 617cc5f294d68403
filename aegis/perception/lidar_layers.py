"""A multi-plane lidar's scan -> obstacles with a bottom and a top: each plane fitted alone, its height bounded by its neighbours.

A lidar with several level scan planes (a multi-layer lidar's rings, ``plane_offsets_m`` of the
simulated one) sees a window's sill in its lower planes and through the window in its upper ones.
Flattened into one scan (the nearest return over the planes) the sill becomes a wall from the ground
up. Here each plane's ranges go through the planar pipeline (aegis.perception.lidar.detect) on their
own, and what plane ``k`` saw is given the height it can have, conservatively:

* its bottom at the plane below it (``k - 1``), less ``z_margin_m``: a surface seen by plane ``k``
  and not by plane ``k - 1`` ends somewhere between the two; one seen by ``k - 1`` as well is that
  plane's obstacle too, whose own bottom goes one plane lower. The lowest plane's obstacles go down
  without bound (to the ground: nothing below it was scanned).
* its top likewise at the plane above (``k + 1``) plus ``z_margin_m``; the highest plane's
  obstacles go up without bound.

So a full-height wall, seen by every plane, is stacked from the ground to without bound; a sill seen
by the lower planes ends at the first plane that saw over it; a lintel seen by the upper planes starts
at the first plane that saw under it. Between two beams and behind what a plane saw, nothing is
claimed (as in the planar pipeline). ``z_margin_m`` is meant to cover the sensor's height
uncertainty (the pose's z sigma, times the filter's own factor, is added by the caller).

Pure numpy, no messages; lengths in m, world frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aegis.perception.lidar import LidarFitParams, ScanObstacles, detect


@dataclass(frozen=True)
class LayerObstacles:
    """What one scan plane showed (planar fit) and the vertical extent given to it: ``bottom`` / ``top`` in m, world z,
    -inf / +inf where unbounded (the lowest / highest plane)."""

    found: ScanObstacles
    bottom: float
    top: float


def vertical_bounds(plane_z: np.ndarray, z_margin_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(bottoms, tops) of each plane's obstacles from the planes' heights ``plane_z`` (ascending): the neighbouring
    planes, widened by ``z_margin_m``; -inf below the lowest plane, +inf above the highest."""
    z = np.asarray(plane_z, dtype=np.float64)
    if z.ndim != 1 or z.size == 0 or np.any(np.diff(z) <= 0.0):
        raise ValueError(f"plane heights must be strictly ascending, got {z.tolist()}")
    bottoms = np.concatenate(([-np.inf], z[:-1] - z_margin_m))
    tops = np.concatenate((z[1:] + z_margin_m, [np.inf]))
    return bottoms, tops


def detect_layers(
    ranges_by_plane: np.ndarray,
    plane_z: np.ndarray,
    angle_min: float,
    angle_increment: float,
    range_min: float,
    range_max: float,
    pose_xy_yaw: tuple[float, float, float],
    pose_covariance: np.ndarray | None = None,
    mount_xy_m: tuple[float, float] = (0.0, 0.0),
    params: LidarFitParams = LidarFitParams(),
    z_margin_m: float = 0.0,
) -> list[LayerObstacles]:
    """Each plane's obstacles (``ranges_by_plane[k]`` at world height ``plane_z[k]``, ascending) with their vertical
    extent (module doc). A plane whose height is not finite gives nothing (no pose height: its bounds are unknown)."""
    ranges = np.asarray(ranges_by_plane)
    z = np.asarray(plane_z, dtype=np.float64)
    if ranges.ndim != 2 or ranges.shape[0] != z.size:
        raise ValueError(f"ranges_by_plane must be (planes, beams) with {z.size} planes, got shape {ranges.shape}")
    if not (np.all(np.isfinite(z)) and math.isfinite(z_margin_m)):
        return []
    bottoms, tops = vertical_bounds(z, z_margin_m)
    return [
        LayerObstacles(
            detect(ranges[k], angle_min, angle_increment, range_min, range_max, pose_xy_yaw, pose_covariance, mount_xy_m, params),
            float(bottoms[k]),
            float(tops[k]),
        )
        for k in range(z.size)
    ]
