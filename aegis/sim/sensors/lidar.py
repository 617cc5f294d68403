"""A simulated 2-D lidar: one PyBullet rayTestBatch per scan, REP 117 special values, noise and dropouts -> LaserScan.

Conventions
-----------
* The laser frame is the body frame (FLU) moved to ``mount_xyz_m``, not rotated. Beam ``i`` lies
  in the laser's x-y plane at ``angle_min_rad + i * angle_increment`` counter-clockwise from
  laser +x about laser +z, as sensor_msgs/LaserScan defines it, so ``angle_max_rad`` is the last
  beam's angle (a full turn of N beams ends at ``-pi + 2 pi (N - 1) / N``, not at ``+pi``).
* The beams follow the body's FULL orientation: a lidar bolted to a robot tilts with it, so a
  pitching quadrotor sees the floor, as the real one does, and consumers place the scan with the
  laser frame's TF. ``level: true`` models a gimbal-stabilised scanner instead: the beams stay
  horizontal and only the heading (yaw) turns them; the mount point still moves with the body
  (the laser frame is then the yaw-only frame at the mount point, which is what its TF must say).
* All beams are cast at the same instant (``time_increment`` = 0); ``scan_time`` = 1 / rate_hz.
* ``plane_offsets_m``: more than one scan plane, stacked along the laser's z (the beams' own z when
  ``level``): each beam reads the nearest return over the planes, as a 3-D lidar's points within a
  height band flattened into one LaserScan (ROS's pointcloud_to_laserscan with min/max height). A
  robot that flies needs this: one plane at its centre misses what stands within its radius above
  or below it.

Values, following REP 117 (https://www.ros.org/reps/rep-0117.html: "-Inf" too close to measure,
"NaN" erroneous measurement, "+Inf" out of range / no return):

* no hit within ``range_max_m`` -> +inf;
* a hit closer than ``range_min_m`` -> -inf;
* a dropped beam (probability ``dropout_prob``) -> NaN;
* any other hit -> its distance from the laser origin plus N(0, noise_std_m^2), clipped to
  [range_min_m, range_max_m] so that every finite value is one a consumer keeps (sensor_msgs
  says values outside that interval are discarded).

The robot's own body (``exclude_body``): rayTestBatch cannot skip a body, so hits are filtered by
the hit object id. Rays start at the laser origin (so too-close obstacles read -inf). A beam
whose first hit is the robot itself (a mast or bumper in its way, or the laser's own housing:
Bullet mostly ignores the shape a ray starts in, but a ray starting inside a sphere and heading
past its centre, or within a box's collision margin, hits it at distance 0) is cast again, in one
more rayTestBatch for all such beams, from ``SELF_EXIT_MARGIN_M`` beyond where it leaves the
axis-aligned bounding box of the link it hit (pybullet.getAABB). Up to ``MAX_SELF_PASSES`` such
passes; a beam still blocked then reads NaN. So a scan costs one rayTestBatch per plane when the beams
clear the robot, one more per pass otherwise; and an obstacle inside the bounding box of the
robot's own link, behind the part a beam hit, is not seen (it touches the robot already).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
import pybullet
from numpy.typing import ArrayLike
from pydantic import Field, model_validator

from aegis.msgs import LaserScan, PointCloud
from aegis.node import NodeParams
from aegis.sim.sensors._pose import body_pose, yaw_only

MAX_SELF_PASSES = 4
"""How many times a beam that hits the robot's own body is cast again, past the part it hit."""

SELF_EXIT_MARGIN_M = 1e-3
"""A beam cast again starts this far beyond the bounding box of the robot's link that it hit."""

_Finite = Annotated[float, Field(allow_inf_nan=False)]


class LidarParams(NodeParams):
    """A planar lidar: beams, field of view, range, mounting, rate and noise. Angles in rad, lengths in m."""

    num_beams: Annotated[int, Field(ge=1, le=100_000)] = Field(360, description="beams per scan")
    angle_min_rad: _Finite = Field(-math.pi, description="angle of the first beam (CCW from laser +x)")
    angle_max_rad: _Finite = Field(
        math.pi - math.radians(1.0),
        description="angle of the last beam; left out: a full turn, angle_min_rad + 2 pi (num_beams - 1) / num_beams",
    )
    range_min_m: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(0.1, description="closer hits read -inf")
    range_max_m: Annotated[float, Field(gt=0, allow_inf_nan=False)] = Field(10.0, description="farther read +inf")
    mount_xyz_m: tuple[_Finite, _Finite, _Finite] = Field((0.0, 0.0, 0.0), description="laser origin in the body frame (FLU)")
    level: bool = Field(False, description="gimbal-stabilised: beams stay horizontal, only yaw turns them")
    plane_offsets_m: tuple[_Finite, ...] = Field(
        (0.0,),
        min_length=1,
        max_length=16,
        description="scan planes along the laser's z (m): each beam reads the nearest return over all of them, "
        "a 3-D lidar's height band flattened into one scan as pointcloud_to_laserscan does; (0.0,): one plane",
    )
    point_cloud: bool = Field(
        False,
        description="also each plane's own returns as an organized PointCloud2 on /points (row k: plane k, column i: "
        "beam i, laser frame, NaN where no return), as a multi-layer lidar's driver publishes them",
    )
    rate_hz: Annotated[float, Field(gt=0, allow_inf_nan=False)] = Field(10.0, description="scans per second")
    noise_std_m: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(0.0, description="range noise std (m)")
    dropout_prob: Annotated[float, Field(ge=0, le=1)] = Field(0.0, description="chance a beam reads NaN")
    frame_id: str = Field("laser", description="frame_id of the scans")

    @model_validator(mode="before")
    @classmethod
    def _full_turn_by_default(cls, data: Any) -> Any:
        """Without angle_max_rad, the beams go once round, evenly spaced, whatever num_beams is."""
        if isinstance(data, dict) and "angle_max_rad" not in data:
            try:
                beams, first = int(data.get("num_beams", 360)), float(data.get("angle_min_rad", -math.pi))
            except (TypeError, ValueError):
                return data  # the fields' own validation names the bad value
            if beams >= 1:
                data = {**data, "angle_max_rad": first + 2.0 * math.pi * (beams - 1) / beams}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> LidarParams:
        if self.range_max_m <= self.range_min_m:
            raise ValueError(f"range_max_m ({self.range_max_m}) must be greater than range_min_m ({self.range_min_m})")
        span = self.angle_max_rad - self.angle_min_rad
        if self.num_beams == 1 and span != 0.0:
            raise ValueError(
                f"one beam needs angle_min_rad == angle_max_rad, got {self.angle_min_rad} and {self.angle_max_rad}"
            )
        if self.num_beams > 1 and not 0.0 < span <= 2.0 * math.pi:
            raise ValueError(
                f"angle_max_rad - angle_min_rad must be in (0, 2 pi] with {self.num_beams} beams, got {span:.6g} "
                f"(angle_min_rad {self.angle_min_rad}, angle_max_rad {self.angle_max_rad})"
            )
        return self

    @property
    def angle_increment_rad(self) -> float:
        """Angle between consecutive beams (0 for a single beam)."""
        if self.num_beams == 1:
            return 0.0
        return (self.angle_max_rad - self.angle_min_rad) / (self.num_beams - 1)


class Lidar2D:
    """A planar lidar in one PyBullet client; ``scan`` is called with the body pose each time the sensor fires."""

    def __init__(self, client: int, params: LidarParams, exclude_body: int | None = None) -> None:
        self.client = client
        self.params = params
        self.exclude_body = exclude_body
        n = params.num_beams
        self.angles = params.angle_min_rad + np.arange(n) * params.angle_increment_rad
        self._beams = np.column_stack([np.cos(self.angles), np.sin(self.angles), np.zeros(n)])  # laser frame
        self._mount = np.asarray(params.mount_xyz_m, dtype=np.float64)
        # Per-scan work arrays, reused by every scan (the message gets its own float32 copy).
        self._directions = np.empty((n, 3))
        self._from = np.empty((n, 3))
        self._to = np.empty((n, 3))
        self._ranges = np.empty(n)
        self._normal = np.empty(n)
        self._uniform = np.empty(n)
        self._mask = np.empty(n, dtype=bool)
        self._links = np.empty(n, dtype=np.int64)
        self._planes: list[np.ndarray] | None = None

    def scan(self, position: ArrayLike, orientation_xyzw: ArrayLike, stamp: float, rng: np.random.Generator) -> LaserScan:
        """A LaserScan stamped ``stamp`` from the body at ``position`` (world, m) with ``orientation_xyzw``.

        ``rng`` draws the noise and the dropouts: ``num_beams`` normals then ``num_beams`` uniforms
        every scan, whatever the noise settings, so a seed gives the same stream of scans.
        """
        p = self.params
        position, rotation = body_pose("Lidar2D.scan", position, orientation_xyzw)
        origin = position + rotation @ self._mount
        beam_rotation = yaw_only(rotation) if p.level else rotation
        np.matmul(self._beams, beam_rotation.T, out=self._directions)
        ranges = self._ranges
        self._planes = [] if p.point_cloud else None
        for index, offset in enumerate(p.plane_offsets_m):
            plane_ranges = self._cast_plane(origin + beam_rotation[:, 2] * offset)
            if self._planes is not None:
                self._planes.append(plane_ranges.copy())
            if index == 0:
                ranges[:] = plane_ranges
            else:  # the nearest return over the planes (fmin skips a plane where the robot blocks the beam: NaN)
                np.fmin(ranges, plane_ranges, out=ranges)

        np.less(ranges, p.range_min_m, out=self._mask)
        ranges[self._mask] = -np.inf  # REP 117: too close to measure -> -Inf
        rng.standard_normal(out=self._normal)
        np.isfinite(ranges, out=self._mask)
        ranges[self._mask] += p.noise_std_m * self._normal[self._mask]
        np.clip(ranges, p.range_min_m, p.range_max_m, out=ranges, where=self._mask)
        rng.random(out=self._uniform)
        np.less(self._uniform, p.dropout_prob, out=self._mask)
        ranges[self._mask] = np.nan  # REP 117: erroneous measurement -> NaN (as is a beam the robot blocks)

        return LaserScan(
            stamp=stamp,
            frame_id=p.frame_id,
            angle_min=p.angle_min_rad,
            angle_max=p.angle_max_rad,
            angle_increment=p.angle_increment_rad,
            time_increment=0.0,
            scan_time=1.0 / p.rate_hz,
            range_min=p.range_min_m,
            range_max=p.range_max_m,
            ranges=ranges.astype(np.float32),
        )

    def cloud(self, stamp: float, rng: np.random.Generator) -> PointCloud:
        """The last scan's planes as an organized cloud (``point_cloud``), stamped ``stamp``: each plane's own returns with
        their own noise and dropouts (``rng``: planes x beams normals then as many uniforms), NaN where a beam has no
        return, is blocked, dropped or too close; in the laser frame (x along beam 0's zero angle, z the plane offset)."""
        p = self.params
        if self._planes is None:
            raise RuntimeError("Lidar2D.cloud: point_cloud is off, or no scan yet")
        ranges = np.array(self._planes)  # (planes, beams)
        ranges += p.noise_std_m * rng.standard_normal(ranges.shape)
        ranges[rng.random(ranges.shape) < p.dropout_prob] = np.nan
        with np.errstate(invalid="ignore"):
            ranges[~((ranges >= p.range_min_m) & (ranges <= p.range_max_m))] = np.nan
        points = np.empty(ranges.shape + (3,), dtype=np.float32)
        points[..., 0] = ranges * np.cos(self.angles)
        points[..., 1] = ranges * np.sin(self.angles)
        points[..., 2] = np.where(np.isfinite(ranges), np.asarray(p.plane_offsets_m)[:, None], np.nan)
        return PointCloud(stamp=stamp, frame_id=p.frame_id, points=points)

    def _cast_plane(self, origin: np.ndarray) -> np.ndarray:
        """One plane's ranges from ``origin`` along ``self._directions``: +inf no return, NaN a beam the robot blocks."""
        p = self.params
        n = p.num_beams
        self._from[:] = origin
        np.multiply(self._directions, p.range_max_m, out=self._to)
        self._to += origin
        results = pybullet.rayTestBatch(self._from, self._to, numThreads=1, physicsClientId=self.client)
        ids = np.fromiter([r[0] for r in results], dtype=np.int64, count=n)
        ranges = np.fromiter([r[2] for r in results], dtype=np.float64, count=n)
        ranges *= p.range_max_m
        blocked = self._recast_own_hits(ids, ranges, origin, results) if self.exclude_body is not None else None
        ranges[ids < 0] = np.inf
        if blocked is not None:
            ranges[blocked] = np.nan
        return ranges

    def _recast_own_hits(
        self, ids: np.ndarray, ranges: np.ndarray, origin: np.ndarray, results: tuple[tuple, ...]
    ) -> np.ndarray | None:
        """Cast beams whose first hit is ``exclude_body`` again from where they leave that link's bounding box.

        Returns the indices of beams still blocked by the robot after ``MAX_SELF_PASSES`` passes, or None.
        """
        body, cid = self.exclude_body, self.client
        range_max = self.params.range_max_m
        links = self._links
        own = np.flatnonzero(ids == body)
        links[own] = [results[i][1] for i in own.tolist()]
        for _ in range(MAX_SELF_PASSES):
            if own.size == 0:
                return None
            start = np.empty(own.size)
            for link in np.unique(links[own]).tolist():
                lower, upper = pybullet.getAABB(body, link, physicsClientId=cid)
                on_link = links[own] == link
                start[on_link] = _box_exit_distance(origin, self._directions[own[on_link]], lower, upper)
            start = np.maximum(start, ranges[own]) + SELF_EXIT_MARGIN_M
            past_end = start >= range_max  # the robot fills the beam up to its range: nothing else to see
            ids[own[past_end]] = -1
            own, start = own[~past_end], start[~past_end]
            if own.size == 0:
                return None
            starts = origin + self._directions[own] * start[:, None]
            recast = pybullet.rayTestBatch(starts, self._to[own], numThreads=1, physicsClientId=cid)
            ids[own] = [r[0] for r in recast]
            links[own] = [r[1] for r in recast]
            ranges[own] = start + np.array([r[2] for r in recast]) * (range_max - start)
            own = own[ids[own] == body]
        return own if own.size else None


def _box_exit_distance(origin: np.ndarray, directions: np.ndarray, lower: tuple, upper: tuple) -> np.ndarray:
    """Distance along each unit direction from ``origin`` to where the ray leaves the box [lower, upper] (slab method)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t_lower = (np.asarray(lower) - origin) / directions
        t_upper = (np.asarray(upper) - origin) / directions
    leave = np.fmax(t_lower, t_upper)
    leave[directions == 0.0] = np.inf  # parallel to a slab: that pair of faces never stops the ray
    return leave.min(axis=1)
