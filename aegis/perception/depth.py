"""Obstacles from a depth image, geometrically: back-projection, a world voxel map with memory, clustering, boxes.

The pipeline of :class:`DepthObstacleMapper` (pure numpy and scipy; no messages):

1. **Back-projection.** A 32FC1 z-depth image (REP 118: metres along the optical axis, +inf for no
   return) and the pinhole K give one point per valid pixel in the optical frame (z forward, x right,
   y down), then in the body frame through the camera's mount (``mount_xyz_m``, ``mount_pitch_rad``,
   as :class:`aegis.sim.sensors.camera.CameraParams` has them) and in the world frame through the
   body pose at the image's stamp. Pixels beyond ``max_range_m``, nearer than ``min_range_m`` or not
   finite are dropped; so are points below ``ground_z_m`` (the floor is not an obstacle) and points
   within ``self_radius_m`` of the body origin, horizontally (the robot's own body in view: a
   camera on a Husky's top plate sees its bumper).
2. **A voxel map with memory.** Points fall into ``voxel_m`` cubes; each occupied voxel keeps the
   time it was last seen and the centroid of the points that fell into it then (where in the cube
   the surface is: a face crossing a 5 cm voxel lies anywhere within it, and the shapes below are
   fitted to these centroids, not to the voxels' centres). A camera sees a narrow cone: an obstacle the robot has just turned away
   from is still beside it, so voxels are kept for ``memory_s`` after they were last seen (a moving
   obstacle leaves a trail that long: conservative), unless a later frame sees through them: a voxel
   in view, within ``max_range_m``, whose pixel measures a depth clearly beyond it (more than a voxel
   diagonal plus 3 sigma of range noise; +inf, no return, counts as beyond) is free space now and
   forgotten. So what moved away in view is cleared at once, and what is out of view is kept for
   ``memory_s``.
3. **Clusters.** Voxels in touching cells (26-connectivity) of a ``cluster_gap_m`` grid form one
   cluster (:func:`scipy.ndimage.label` on that coarse grid): voxels closer than the gap are one
   obstacle (a face seen at a grazing angle is sampled sparsely), and voxels up to two gaps apart may be. Clusters with fewer than
   ``min_voxels`` voxels are dropped as noise (a speck of depth noise is one voxel; a 5 cm rod at
   3 m is several).
4. **Shapes.** A cluster whose voxel columns lie on a circle (a Kasa fit, as the lidar's, with an rms
   residual under ``circle_residual_m``, a radius under ``max_circle_radius_m``, an arc of at least
   ``min_arc_deg`` facing the camera) is an upright cylinder (a pillar, a trunk, a person). Every other
   cluster is a box yawed about world z: the rectangle around its voxel columns whose sides they lie
   on best (a wall seen at an angle is a thin yawed box, not its large axis-aligned hull; a box seen
   at a corner, an L of two faces, is the box), every centroid inside it with half a voxel to spare
   (a centroid lies within its patch of surface, the patch within half a voxel of it), grown by ``margin_m``. A
   camera sees only the near side of a thing, so the box is also grown on its far side, away from
   the camera: along its axis nearest the line of sight, until it is as deep as it is wide (by at
   most ``max_depth_extension_m``): a round or square obstacle is about as deep as it is wide.

The uncertainty of each box (``sigma_m``) is the range noise at its nearest point
(``range_noise_fraction`` of the range; the voxel quantisation is inside the box already, since a
box holds each centroid with half a voxel around it): what a filter may inflate it by, with the robot's
pose uncertainty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from aegis.perception.lidar import fit_circles

_CONNECTIVITY_26 = np.ones((3, 3, 3), dtype=bool)
# optical (x right, y down, z forward) -> camera body (x forward, y left, z up)
_OPTICAL_TO_CAMERA = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True, slots=True)
class DepthMapperSettings:
    """What :class:`DepthObstacleMapper` needs: the camera's geometry and the map's resolution and memory."""

    fov_deg: float = 60.0
    mount_xyz_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    mount_pitch_rad: float = 0.0
    min_range_m: float = 0.05
    max_range_m: float = 4.0
    ground_z_m: float = 0.05
    self_radius_m: float = 0.0
    voxel_m: float = 0.1
    memory_s: float = 60.0
    min_voxels: int = 2
    cluster_gap_m: float = 0.15
    margin_m: float = 0.0
    max_depth_extension_m: float = 0.6
    circle_residual_m: float = 0.04
    max_circle_radius_m: float = 1.0
    min_arc_deg: float = 60.0
    range_noise_fraction: float = 0.01
    max_voxels: int = 20000


@dataclass(frozen=True, slots=True)
class DepthShape:
    """One obstacle found (world frame): a box yawed about z, or an upright cylinder (``shape``); its voxels and uncertainty (m).

    A cylinder's ``extents`` are (diameter, diameter, height) and its ``yaw_rad`` 0; a box's are its
    extents along its own axes.
    """

    shape: str
    centre: np.ndarray
    extents: np.ndarray
    yaw_rad: float
    voxels: int
    sigma_m: float


def camera_matrix(width: int, height: int, fov_deg: float) -> np.ndarray:
    """The pinhole K of an ideal camera with square pixels, centred, pixel centres at integer coordinates."""
    f = height / 2.0 / math.tan(math.radians(fov_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


_KEY_OFFSET = 1 << 19
_KEY_SPAN = 1 << 20
"""A voxel index (i, j, k) is one int64 key, each index within +-2**19 voxels (26 km at 5 cm): sorting and
uniqueness on one integer column are many times faster than on rows."""


def _voxel_keys(voxels: np.ndarray) -> np.ndarray:
    v = np.clip(voxels, -_KEY_OFFSET, _KEY_OFFSET - 1) + _KEY_OFFSET
    return (v[:, 0] * _KEY_SPAN + v[:, 1]) * _KEY_SPAN + v[:, 2]


def _voxels_of(keys: np.ndarray) -> np.ndarray:
    return np.stack([keys // (_KEY_SPAN * _KEY_SPAN), (keys // _KEY_SPAN) % _KEY_SPAN, keys % _KEY_SPAN], axis=1) - _KEY_OFFSET


def _columns(centroids: np.ndarray, voxel_m: float) -> np.ndarray:
    """The distinct (x, y) voxel columns of voxel centroids, each as the mean (x, y) of its centroids (m): where the surface crosses it."""
    ij = np.floor(centroids[:, :2] / voxel_m).astype(np.int64) + _KEY_OFFSET
    _, column = np.unique(ij[:, 0] * _KEY_SPAN + ij[:, 1], return_inverse=True)
    counts = np.bincount(column)
    return np.stack([np.bincount(column, weights=centroids[:, axis]) / counts for axis in range(2)], axis=1)


def _rectangle_yaw(xy: np.ndarray) -> float:
    """The yaw of the rectangle whose sides the points ``xy`` lie on best (0 for fewer than 3 distinct points).

    What a depth camera sees of a box is one face (a line) or two (an L). Among rectangles around the
    points, the box is the one whose boundary the points hug: the candidates are the directions of
    the points' convex hull edges and a 3-degree sweep, the score the mean distance of the points to
    the nearest side (the L-shape fitting "closeness" criterion), ties going to the smaller area.
    The smallest-area rectangle alone cannot tell an L of equal legs from its hypotenuse's rectangle.
    """
    points = xy[:: max(len(xy) // 400, 1)]  # distinct columns already; a few hundred tell the sides
    if len(points) < 3:
        return 0.0
    angles = list(np.radians(np.arange(0.0, 90.0, 3.0)))
    try:
        hull = points[ConvexHull(points).vertices]
        edges = np.roll(hull, -1, axis=0) - hull
        angles += list(np.arctan2(edges[:, 1], edges[:, 0]))
    except QhullError:  # collinear: a face seen edge-on; its direction is the line's
        span = points[-1] - points[0]
        return math.atan2(span[1], span[0])
    angles = np.unique(np.mod(angles, math.pi / 2))
    c, s = np.cos(angles)[:, None], np.sin(angles)[:, None]
    along = points[:, 0] * c + points[:, 1] * s
    across = -points[:, 0] * s + points[:, 1] * c
    to_side = np.minimum(
        np.minimum(along - along.min(axis=1, keepdims=True), along.max(axis=1, keepdims=True) - along),
        np.minimum(across - across.min(axis=1, keepdims=True), across.max(axis=1, keepdims=True) - across),
    )
    closeness = to_side.mean(axis=1)
    areas = np.ptp(along, axis=1) * np.ptp(across, axis=1)
    best = np.lexsort((areas, np.round(closeness, 4)))[0]
    return float(angles[best])


def _pitch(pitch_rad: float) -> np.ndarray:
    c, s = math.cos(pitch_rad), math.sin(pitch_rad)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


class DepthObstacleMapper:
    """Depth images in, obstacle boxes out; keeps the voxel map between frames (see the module docstring)."""

    def __init__(self, settings: DepthMapperSettings) -> None:
        self.settings = settings
        self._camera_to_body = _pitch(settings.mount_pitch_rad) @ _OPTICAL_TO_CAMERA
        self._mount = np.asarray(settings.mount_xyz_m, dtype=np.float64)
        self._rays: tuple[int, int, np.ndarray] | None = None  # (H, W, unit-depth rays in the body frame)
        self._keys = np.empty(0, dtype=np.int64)  # occupied voxels, sorted (see _voxel_keys)
        self._last_seen = np.empty(0)
        self._centroids = np.empty((0, 3))  # per voxel: the mean of the points that fell into it when last seen (world, m)

    def reset(self) -> None:
        """Forget the map."""
        self._keys = np.empty(0, dtype=np.int64)
        self._last_seen = np.empty(0)
        self._centroids = np.empty((0, 3))

    @property
    def voxel_count(self) -> int:
        return len(self._keys)

    def _body_rays(self, height: int, width: int) -> np.ndarray:
        """(H*W, 3): for each pixel, the body-frame offset per metre of z-depth (cached per image size)."""
        if self._rays is None or self._rays[:2] != (height, width):
            k = camera_matrix(width, height, self.settings.fov_deg)
            v, u = np.mgrid[0:height, 0:width]
            optical = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u, dtype=float)], axis=-1)
            self._rays = (height, width, optical.reshape(-1, 3) @ self._camera_to_body.T)
        return self._rays[2]

    def world_points(self, depth: np.ndarray, position: np.ndarray, rotation: np.ndarray) -> np.ndarray:
        """(N, 3) world points of the valid pixels of ``depth`` seen from the body pose (position, rotation body -> world)."""
        s = self.settings
        z = np.asarray(depth, dtype=np.float64).reshape(-1)
        rays = self._body_rays(*np.shape(depth))
        with np.errstate(invalid="ignore"):
            valid = np.isfinite(z) & (z >= s.min_range_m) & (z <= s.max_range_m)
        body = rays[valid] * z[valid, None] + self._mount
        if s.self_radius_m > 0.0:
            body = body[np.hypot(body[:, 0], body[:, 1]) > s.self_radius_m]
        world = body @ rotation.T + position
        return world[world[:, 2] >= s.ground_z_m]

    def update(self, depth: np.ndarray, position: np.ndarray, rotation: np.ndarray, stamp: float) -> list[DepthShape]:
        """Add one frame to the map (seen at ``stamp`` from the body pose) and return the obstacles the map now holds."""
        s = self.settings
        self._carve(np.asarray(depth, dtype=np.float64), position, rotation)
        points = self.world_points(depth, position, rotation)
        if len(points):
            seen, which = np.unique(_voxel_keys(np.floor(points / s.voxel_m).astype(np.int64)), return_inverse=True)
            counts = np.bincount(which, minlength=len(seen))[:, None]
            centroids = np.stack([np.bincount(which, weights=points[:, axis], minlength=len(seen)) for axis in range(3)], axis=1) / counts
            keys = np.concatenate([self._keys, seen])
            last_seen = np.concatenate([self._last_seen, np.full(len(seen), stamp)])
            all_centroids = np.concatenate([self._centroids, centroids])
            order = np.argsort(keys, kind="stable")  # a voxel seen again: its new entry sorts after its old one
            newest = np.append(keys[order][1:] != keys[order][:-1], True)
            rows = order[newest]
            self._keys, self._last_seen, self._centroids = keys[rows], last_seen[rows], all_centroids[rows]
        self._keep_only(self._last_seen >= stamp - s.memory_s)
        if len(self._keys) > s.max_voxels:  # bounded memory: the most recently seen first
            self._keep_only(np.sort(np.argsort(-self._last_seen, kind="stable")[: s.max_voxels]))
        camera = position + rotation @ self._mount
        return self._shapes(camera)

    def _carve(self, depth: np.ndarray, position: np.ndarray, rotation: np.ndarray) -> None:
        """Forget the voxels this frame sees through: in view, within range, and nearer than what their pixel measured."""
        s = self.settings
        if len(self._keys) == 0 or depth.ndim != 2:
            return
        height, width = depth.shape
        k = camera_matrix(width, height, s.fov_deg)
        centres = (_voxels_of(self._keys) + 0.5) * s.voxel_m
        optical = ((centres - position) @ rotation - self._mount) @ self._camera_to_body
        z = optical[:, 2]
        in_front = z > s.min_range_m
        safe_z = np.where(in_front, z, 1.0)
        u = np.rint(k[0, 0] * optical[:, 0] / safe_z + k[0, 2]).astype(np.int64)
        v = np.rint(k[1, 1] * optical[:, 1] / safe_z + k[1, 2]).astype(np.int64)
        candidate = in_front & (z <= s.max_range_m) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
        measured = np.full(len(z), np.nan)
        measured[candidate] = depth[v[candidate], u[candidate]]
        tolerance = s.voxel_m * math.sqrt(3.0) + 3.0 * s.range_noise_fraction * z
        with np.errstate(invalid="ignore"):
            seen_through = candidate & ~np.isnan(measured) & (measured > z + tolerance)  # +inf: no return, free to the far plane
        if seen_through.any():
            self._keep_only(~seen_through)

    def _keep_only(self, selection: np.ndarray) -> None:
        """Keep the voxels ``selection`` picks (a mask or sorted indices), their times and centroids with them."""
        self._keys, self._last_seen, self._centroids = self._keys[selection], self._last_seen[selection], self._centroids[selection]

    def _shapes(self, camera: np.ndarray) -> list[DepthShape]:
        """The map's clusters as shapes: voxels in touching cells of ``cluster_gap_m`` are one obstacle."""
        s = self.settings
        if len(self._keys) == 0:
            return []
        voxels = _voxels_of(self._keys)
        cells = np.floor((voxels + 0.5) * (s.voxel_m / max(s.cluster_gap_m, s.voxel_m))).astype(np.int64)
        cells -= cells.min(axis=0) - 1  # a free border so labels never touch the edge
        grid = np.zeros(tuple(cells.max(axis=0) + 2), dtype=bool)
        grid[tuple(cells.T)] = True
        labels, _ = ndimage.label(grid, structure=_CONNECTIVITY_26)
        cluster_of = labels[tuple(cells.T)]
        order = np.argsort(cluster_of, kind="stable")
        starts = np.flatnonzero(np.append(True, np.diff(cluster_of[order]) != 0))
        return [
            self._box(members, camera)
            for members in np.split(self._centroids[order], starts[1:])
            if len(members) >= s.min_voxels
        ]

    def _box(self, centres: np.ndarray, camera: np.ndarray) -> DepthShape:
        """The shape around voxels (their point centroids, world): a cylinder when an arc fits, else a yawed box grown away from the camera."""
        s = self.settings
        xy = centres[:, :2]
        cylinder = self._cylinder(centres, camera)
        if cylinder is not None:
            return cylinder
        yaw = _rectangle_yaw(_columns(centres, s.voxel_m))
        c, si = math.cos(yaw), math.sin(yaw)
        to_box = np.array([[c, si], [-si, c]])  # world xy -> box frame
        local = xy @ to_box.T
        half_voxel = s.voxel_m / 2.0 * (abs(c) + abs(si))  # a centroid's patch of surface reaches this far along either box axis
        lo = np.concatenate([local.min(axis=0) - half_voxel, [centres[:, 2].min() - s.voxel_m / 2.0]]) - s.margin_m
        hi = np.concatenate([local.max(axis=0) + half_voxel, [centres[:, 2].max() + s.voxel_m / 2.0]]) + s.margin_m
        camera_local = np.concatenate([to_box @ camera[:2], camera[2:]])
        away = (lo[:2] + hi[:2]) / 2.0 - camera_local[:2]
        distance = float(np.hypot(*away))
        if distance > 1e-9:  # grow the side facing away from the camera until as deep as the box is wide
            sight = int(np.argmax(np.abs(away)))  # the box axis nearest the line of sight
            size = hi[:2] - lo[:2]
            missing = min(max(float(size[1 - sight]) - float(size[sight]), 0.0), s.max_depth_extension_m)
            if away[sight] > 0:
                hi[sight] += missing
            else:
                lo[sight] -= missing
        nearest = float(np.linalg.norm(np.clip(camera_local, lo, hi) - camera_local))
        sigma = s.range_noise_fraction * nearest  # each centroid has half a voxel around it inside the box: no quantisation term
        middle = (lo + hi) / 2.0
        centre = np.concatenate([to_box.T @ middle[:2], middle[2:]])
        return DepthShape(shape="box", centre=centre, extents=hi - lo, yaw_rad=yaw, voxels=len(centres), sigma_m=sigma)

    def _cylinder(self, centres: np.ndarray, camera: np.ndarray) -> DepthShape | None:
        """An upright cylinder through the voxels' column centroids when a circle fits them (Kasa: small residual, an arc wide enough, seen convex)."""
        s = self.settings
        columns = _columns(centres, s.voxel_m)
        if len(columns) < 4:
            return None
        fitted_centres, radii, rms, ok = fit_circles(columns, np.array([0]), np.array([len(columns)]))
        if not ok[0] or rms[0] > s.circle_residual_m or radii[0] > s.max_circle_radius_m:
            return None
        centre_xy, radius = fitted_centres[0], float(radii[0])
        bearings = np.arctan2(columns[:, 1] - centre_xy[1], columns[:, 0] - centre_xy[0])
        toward_camera = math.atan2(camera[1] - centre_xy[1], camera[0] - centre_xy[0])
        spread = np.angle(np.exp(1j * (bearings - toward_camera)))  # each column's bearing from the centre, relative to the camera's
        if np.degrees(spread.max() - spread.min()) < s.min_arc_deg or np.abs(spread).min() > math.pi / 2:
            return None  # too short an arc to trust the radius, or the far side of a circle (a concave corner)
        # every column inside: the farthest column's centroid from the axis plus half a voxel (its patch of surface)
        radius = float(np.hypot(*(columns - centre_xy).T).max()) + s.voxel_m / 2.0 + s.margin_m
        low, high = centres[:, 2].min() - s.voxel_m / 2.0, centres[:, 2].max() + s.voxel_m / 2.0
        nearest = max(float(np.hypot(*(camera[:2] - centre_xy))) - radius, 0.0)
        return DepthShape(
            shape="cylinder", centre=np.array([centre_xy[0], centre_xy[1], (low + high) / 2.0]),
            extents=np.array([2.0 * radius, 2.0 * radius, high - low]), yaw_rad=0.0, voxels=len(centres),
            sigma_m=s.range_noise_fraction * nearest + float(rms[0]),
        )
