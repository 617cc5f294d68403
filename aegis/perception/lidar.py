"""Planar lidar scan -> obstacles: points, adaptive-breakpoint segmentation, circle and line-segment fits, per-obstacle uncertainty.

Pure numpy, no messages: the ``lidar_obstacles`` node (aegis.nodes.lidar_obstacles) feeds it a
LaserScan's arrays and the robot's pose at the scan's stamp and turns the result into an
Obstacles message.

The pipeline (:func:`detect`):

1. **Points**: beam ``i`` at ``angle_min + i * angle_increment`` (CCW from laser +x); a range is
   kept when it is finite and within [range_min, range_max) (REP 117: +inf no return, -inf too
   close, NaN erroneous: all dropped; some drivers say "no return" with range_max itself). Points
   go straight to the world frame: the laser frame is the robot's yaw-only frame moved to
   ``mount_xy_m`` (a level scanner on a ground robot).
2. **Segmentation** (adaptive breakpoint detector, Borges and Aldon 2004): two consecutive kept
   points belong to one cluster when they are at most ``r sin(dphi) / sin(lambda - dphi) + 3
   sigma_r`` apart (``dphi`` the angle between them, ``lambda`` = ``breakpoint_angle_rad``) and no
   more than ``max_gap_beams`` beams lie between them. A full-turn scan is closed across its seam.
3. **Circles**: every cluster of at least 3 points gets an algebraic (Kasa) circle fit, all
   clusters at once from per-cluster sums (``np.add.reduceat``). A fit is kept when the radius is
   within [min, max], the rms residual within ``circle_residual_m`` and the arc bulges toward the
   sensor (its centre farther than its points, and beyond their centroid as seen from the sensor: a
   pillar's visible arc always has its centroid between the sensor and the centre; a flat face seen
   from a few centimetres, wide in angle, can fit a circle centred on the sensor's side that passed
   the range test and stood around the robot): a pillar.
4. **Segments**: every other cluster is split by iterative end-point fit (a split where a point is
   more than ``split_distance_m`` from the chord) and each piece gets a total-least-squares line
   (aegis.perception.lidar_faces). A face ends one return spacing past its end return, or farther,
   where its line crosses the next beam (that beam missed it, so the face ends before it; up to
   three spacings out, at a grazing face); two pieces split at a shared return (a box's corner, an
   L) end where their two lines meet: the corner, not a beam or two past it. The line is moved toward the sensor when a return
   lies more than :data:`FACE_NOISE_SIGMAS` range sigmas in front of it (a short arc's bulge: a
   shape, not noise); the noise itself is in the uncertainty, not in the face (moving every face to
   its nearest return put a flat wall seen by 50 beams about 2.3 sigma in front of itself, and the
   more beams saw it, the farther).
5. **Uncertainty** (1 sigma, m, one number per obstacle, isotropic in the plane):
   ``sqrt(fit^2 + sigma_xy^2 + (d sigma_yaw)^2)`` with ``fit^2 = 4 s^2 / n + max(rms^2 - sigma_r^2, 0)``
   (:func:`fit_variance`: ``n`` returns of noise ``s = max(rms, sigma_r)`` averaged, doubled for a
   line's end where its offset and its tilt add up, plus the residual the range noise does not
   explain, a shape error that does not average out), ``sigma_xy^2`` the larger of the pose's x
   and y variances, ``sigma_yaw^2`` its yaw variance (pose covariance rows x, y, z, rot x, rot y,
   rot z, as nav_msgs/Odometry) and ``d`` the obstacle's distance from the sensor (a heading error
   moves it sideways by ``d sigma_yaw``). More beams on an obstacle: a smaller uncertainty.

Nothing here raises on a scan's contents: NaN, inf, an empty scan or one with every beam at max
range give no obstacles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from aegis.perception.lidar_faces import extend_to_next_beams, fit_segments, fitted_ranges, join_corners, split_lines

CIRCLE, SEGMENT = 0, 1
FACE_NOISE_SIGMAS = 3.0
"""A face is moved toward the sensor when a return lies more than this many range sigmas in front of it (a shape, not noise)."""


@dataclass(frozen=True)
class LidarFitParams:
    """Tuning of :func:`detect` (lengths in m, angles in rad)."""

    range_noise_std_m: float = 0.01
    """The lidar's range noise (1 sigma): in the breakpoint threshold and in every obstacle's uncertainty."""
    breakpoint_angle_rad: float = math.radians(10.0)
    """lambda of the adaptive breakpoint detector: the shallowest incidence at which a surface is still one cluster."""
    max_gap_beams: int = 2
    """Consecutive kept points with more missing beams than this between them start a new cluster."""
    min_points: int = 2
    """Clusters with fewer points are dropped (a lone return is noise)."""
    min_circle_radius_m: float = 0.05
    max_circle_radius_m: float = 1.0
    circle_residual_m: float = 0.03
    """A circle fit with a larger rms residual is not a pillar: the cluster is split into segments instead."""
    split_distance_m: float = 0.05
    """Iterative end-point fit splits a cluster where a point lies farther than this from the chord (at least 4 range sigmas)."""


@dataclass(frozen=True)
class ScanObstacles:
    """What one scan shows, in the world frame: circles (pillars) and segments (faces), each with a 1-sigma uncertainty (m)."""

    centres: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    radii: np.ndarray = field(default_factory=lambda: np.zeros(0))
    circle_sigma_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    starts: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    ends: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    normals: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    """Unit normal of each segment pointing away from the sensor (into the obstacle)."""
    segment_sigma_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sensor_xy: np.ndarray = field(default_factory=lambda: np.zeros(2))
    points: int = 0
    """How many beams gave a usable return."""

    def __len__(self) -> int:
        return len(self.radii) + len(self.starts)


def scan_points(
    ranges: np.ndarray, angle_min: float, angle_increment: float, range_min: float, range_max: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kept ranges, their angles, their beam indices): finite returns within [range_min, range_max), in beam order."""
    r = np.asarray(ranges, dtype=np.float64).reshape(-1)
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(r) & (r >= range_min) & (r < range_max) & (r > 0.0)  # range_max itself: a driver's "no return"
    index = np.flatnonzero(keep)
    return r[index], angle_min + index * angle_increment, index


def segment(
    r: np.ndarray, angles: np.ndarray, index: np.ndarray, xy: np.ndarray, angle_increment: float, num_beams: int,
    params: LidarFitParams,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster boundaries over the kept points: (order, starts) where ``order`` is the kept points re-ordered so that
    no cluster crosses the end of the array (a full-turn scan is rotated to start at a break) and ``starts`` the
    first position of each cluster in that order."""
    n = r.size
    if n == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    full_turn = abs(abs(angle_increment) * num_beams - 2.0 * math.pi) < 1e-3 and num_beams > 2
    if full_turn:  # the pair (last, first) is neighbours across the seam
        nxt = np.roll(np.arange(n), -1)
        gap = (index[nxt] - index) % num_beams
    else:
        nxt = np.arange(1, n)
        gap = index[1:] - index[:-1]
    dphi = gap * abs(angle_increment)
    lam = params.breakpoint_angle_rad
    with np.errstate(divide="ignore", invalid="ignore"):
        threshold = r[: len(nxt)] * np.sin(dphi) / np.sin(lam - dphi) + 3.0 * params.range_noise_std_m
    distance = np.hypot(*(xy[nxt] - xy[: len(nxt)]).T)
    joined = (gap >= 1) & (gap <= params.max_gap_beams + 1) & (dphi < lam) & (distance <= threshold)
    if full_turn:
        breaks = np.flatnonzero(~joined)  # a break after position b
        if breaks.size == 0:
            return np.arange(n), np.zeros(1, dtype=np.intp)
        first = (breaks[0] + 1) % n
        order = np.roll(np.arange(n), -first)
        starts = np.sort((breaks + 1 - first) % n)
        return order, starts
    starts = np.concatenate(([0], np.flatnonzero(~joined) + 1)).astype(np.intp)
    return np.arange(n), starts


def fit_circles(xy: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Kasa circle fit of every cluster at once: (centres (K, 2), radii (K,), rms residuals (K,), fitted (K,) bool).

    ``xy`` holds the clusters one after another; cluster k is ``xy[starts[k]:starts[k] + counts[k]]``. A
    cluster with fewer than 3 points or collinear points is not fitted (``fitted`` False, NaN values).
    """
    k = starts.size
    if k == 0:
        return np.zeros((0, 2)), np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool)
    cluster = np.repeat(np.arange(k), counts)
    mean = np.add.reduceat(xy, starts, axis=0) / counts[:, None]
    u = xy[:, 0] - mean[cluster, 0]
    v = xy[:, 1] - mean[cluster, 1]
    uu, vv, uv = u * u, v * v, u * v
    sums = np.add.reduceat(np.column_stack([uu, vv, uv, uu * u, vv * v, uu * v, u * vv]), starts, axis=0)
    suu, svv, suv, suuu, svvv, suuv, suvv = sums.T
    det = suu * svv - suv * suv
    scale = (suu + svv) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (counts >= 3) & (det > 1e-12 * scale) & (scale > 0)
        bu = 0.5 * (suuu + suvv)
        bv = 0.5 * (svvv + suuv)
        uc = (bu * svv - bv * suv) / det
        vc = (bv * suu - bu * suv) / det
        radius = np.sqrt(uc * uc + vc * vc + (suu + svv) / counts)
        centres = mean + np.column_stack([uc, vc])
        distances = np.hypot(u - uc[cluster], v - vc[cluster])
        rms = np.sqrt(np.add.reduceat((distances - radius[cluster]) ** 2, starts) / counts)
    ok &= np.isfinite(radius) & np.isfinite(rms)
    return centres, radius, rms, ok


def fit_variance(rms: np.ndarray, counts: np.ndarray, range_noise_std_m: float) -> np.ndarray:
    """Variance (m^2) of a fitted face's position from ``counts`` returns with rms residual ``rms``: the noise averaged
    over the returns, (2 sigma)^2 / n (a line's end, where its offset and its tilt add up: 4 sigma^2 / n), plus the
    residual the noise does not explain (the shape is not quite a line or a circle), which does not average out."""
    rms = np.asarray(rms, dtype=np.float64)
    noise = np.maximum(rms, range_noise_std_m)
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    return 4.0 * noise**2 / n + np.maximum(rms**2 - range_noise_std_m**2, 0.0)


def pose_sigmas(pose_covariance: np.ndarray | None) -> tuple[float, float]:
    """(position sigma in the plane: the larger of x and y, yaw sigma) of a 6x6 pose covariance; 0 for None or non-finite."""
    if pose_covariance is None:
        return 0.0, 0.0
    c = np.asarray(pose_covariance, dtype=np.float64)
    xy_var, yaw_var = max(float(c[0, 0]), float(c[1, 1])), float(c[5, 5])
    xy = math.sqrt(xy_var) if math.isfinite(xy_var) and xy_var > 0 else 0.0
    yaw = math.sqrt(yaw_var) if math.isfinite(yaw_var) and yaw_var > 0 else 0.0
    return xy, yaw


def detect(
    ranges: np.ndarray,
    angle_min: float,
    angle_increment: float,
    range_min: float,
    range_max: float,
    pose_xy_yaw: tuple[float, float, float],
    pose_covariance: np.ndarray | None = None,
    mount_xy_m: tuple[float, float] = (0.0, 0.0),
    params: LidarFitParams = LidarFitParams(),
) -> ScanObstacles:
    """The obstacles one scan shows, in the world frame, from the robot's pose (x, y, yaw) at the scan's stamp (module doc)."""
    x, y, yaw = (float(v) for v in pose_xy_yaw)
    c, s = math.cos(yaw), math.sin(yaw)
    sensor = np.array([x + c * mount_xy_m[0] - s * mount_xy_m[1], y + s * mount_xy_m[0] + c * mount_xy_m[1]])
    num_beams = int(np.asarray(ranges).size)
    if not (math.isfinite(angle_min) and math.isfinite(angle_increment) and math.isfinite(range_min) and math.isfinite(range_max)):
        return ScanObstacles(sensor_xy=sensor)
    if not all(map(math.isfinite, (x, y, yaw))):
        return ScanObstacles(sensor_xy=sensor)
    r, angles, index = scan_points(ranges, angle_min, angle_increment, range_min, range_max)
    if r.size == 0:
        return ScanObstacles(sensor_xy=sensor)
    world_angles = angles + yaw
    xy = sensor + np.column_stack([r * np.cos(world_angles), r * np.sin(world_angles)])
    order, starts = segment(r, angles, index, xy, angle_increment, num_beams, params)
    r, xy = r[order], xy[order]
    counts = np.diff(np.append(starts, r.size))
    big = counts >= params.min_points
    starts, counts = starts[big], counts[big]
    if starts.size == 0:
        return ScanObstacles(sensor_xy=sensor, points=int(r.size))
    kept = np.concatenate([np.arange(a, a + n) for a, n in zip(starts.tolist(), counts.tolist())])
    xy_clusters, beam_angles = xy[kept], world_angles[order][kept]
    packed = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.intp)
    centres, radii, rms, fitted = fit_circles(xy_clusters, packed, counts)
    mean_range = np.add.reduceat(np.hypot(*(xy_clusters - sensor).T), packed) / counts
    centre_range = np.hypot(*(centres - sensor).T) if len(centres) else np.zeros(0)
    centroids = np.add.reduceat(xy_clusters, packed, axis=0) / counts[:, None]
    beyond = np.einsum("ij,ij->i", centres - centroids, centroids - sensor) > 0.0 if len(centres) else np.zeros(0, bool)
    with np.errstate(invalid="ignore"):
        pillar = (
            fitted
            & (radii >= params.min_circle_radius_m)
            & (radii <= params.max_circle_radius_m)
            & (rms <= params.circle_residual_m)
            & (centre_range > mean_range)
            & (centre_range > radii)
            & beyond
        )
    sigma_xy, sigma_yaw = pose_sigmas(pose_covariance)
    pose_var = sigma_xy**2
    circle_fit_var = fit_variance(rms[pillar], counts[pillar], params.range_noise_std_m)
    circle_sigma = np.sqrt(circle_fit_var + pose_var + (centre_range[pillar] * sigma_yaw) ** 2)
    firsts: list[int] = []
    lasts: list[int] = []
    split = max(params.split_distance_m, 4.0 * params.range_noise_std_m)  # noise alone does not cut a face
    for k in np.flatnonzero(~pillar).tolist():
        offset = int(packed[k])
        for i, j in split_lines(xy_clusters[offset : offset + counts[k]], split):
            firsts.append(offset + i)
            lasts.append(offset + j)
    firsts_, lasts_ = np.array(firsts, dtype=np.intp), np.array(lasts, dtype=np.intp)
    fit_firsts, fit_lasts = fitted_ranges(firsts_, lasts_)
    seg_starts, seg_ends, residuals = fit_segments(xy_clusters, fit_firsts, fit_lasts)
    mid = 0.5 * (seg_starts + seg_ends)
    towards = mid - sensor
    distance = np.hypot(towards[:, 0], towards[:, 1])
    direction = seg_ends - seg_starts
    length = np.hypot(direction[:, 0], direction[:, 1])
    normals = np.column_stack([-direction[:, 1], direction[:, 0]])
    point_like = length < 1e-9  # a piece of one point: its normal looks along the beam
    normals[point_like] = towards[point_like]
    norms = np.hypot(normals[:, 0], normals[:, 1])
    normals /= np.where(norms > 0, norms, 1.0)[:, None]
    normals *= np.where(np.einsum("ij,ij->i", normals, towards) < 0.0, -1.0, 1.0)[:, None]  # away from the sensor
    piece_counts = fit_lasts - fit_firsts + 1
    if len(firsts):  # move each face toward the sensor until no return lies more than the noise in front of it (an arc's bulge)
        index = np.concatenate([np.arange(a, b + 1) for a, b in zip(fit_firsts.tolist(), fit_lasts.tolist())])
        offsets = np.concatenate(([0], np.cumsum(piece_counts)[:-1])).astype(np.intp)
        piece = np.repeat(np.arange(len(firsts)), piece_counts)
        depth = np.einsum("ij,ij->i", xy_clusters[index] - seg_starts[piece], normals[piece])
        noise = FACE_NOISE_SIGMAS * params.range_noise_std_m
        shift = np.minimum(np.minimum.reduceat(depth, offsets) + noise, 0.0)[:, None] * normals
        seg_starts, seg_ends = seg_starts + shift, seg_ends + shift
        seg_starts, seg_ends = extend_to_next_beams(
            xy_clusters, beam_angles, firsts_, lasts_, seg_starts, seg_ends, sensor, abs(angle_increment)
        )
        seg_starts, seg_ends = join_corners(xy_clusters, firsts_, lasts_, seg_starts, seg_ends, params.range_noise_std_m)
    return ScanObstacles(
        centres=centres[pillar],
        radii=radii[pillar],
        circle_sigma_m=circle_sigma,
        starts=seg_starts,
        ends=seg_ends,
        normals=normals,
        segment_sigma_m=np.sqrt(fit_variance(residuals, piece_counts, params.range_noise_std_m) + pose_var + (distance * sigma_yaw) ** 2),
        sensor_xy=sensor,
        points=int(r.size),
    )
