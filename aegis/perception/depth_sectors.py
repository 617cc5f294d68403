"""The depth-sector view of a depth image: per column band, the distance to the nearest obstacle; its labels, model input and obstacles.

The learned depth path (aegis.inference.depth_model, trained by aegis.training.depth_train) does not
predict boxes: it predicts, for K sectors (equal bands of image columns, left to right), the
horizontal distance from the camera to the nearest obstacle in the sector, clipped at ``max_range_m``,
and a per-sector uncertainty (a Laplace scale, m). That is the polar view a safety filter needs in
front of a robot: how far it may go in each direction, and how sure that is. The helpers here are
pure numpy, shared by the dataset generator, the models' runtime and the node:

* :meth:`SectorGeometry.labels` computes the truth from a CLEAN z-depth render: every pixel
  back-projected (pinhole K and the camera's mount, as aegis.perception.depth), the floor (below
  ``ground_z_m``), the robot itself (within ``self_radius_m`` of the body origin, horizontally) and
  what is beyond range dropped; a sector's label is the smallest horizontal camera-to-point
  distance among its pixels (``max_range_m`` when none);
* :func:`model_input` turns a REAL (noisy, holed) depth image into what a model reads: metres
  clipped to [0, max_range] (+inf, no return, is max_range), holes (NaN) 0, block-min downsampled
  by an integer factor (a hole only where the whole block is holes): a cheap model reads fewer pixels
  (:class:`ModelInput`: the same into buffers made once, as a model runs it on every frame);
* :func:`sector_obstacles` turns predicted sectors into upright cylinders in the world frame (one per
  sector whose range is below max range (by more than ``FREE_MARGIN_M``): at the predicted distance plus its radius along the
  sector's bearing, as wide as the sector there), with the pose at the image's stamp;
* :class:`SectorMemory` keeps those cylinders after they leave the camera's narrow view (a robot
  turning away from a wall still has it beside it): what is in view now replaces what was
  remembered there; what is out of view is kept for ``memory_s``, thinned to one per ``cell_m``
  cell, at most ``max_obstacles`` (the newest).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from aegis.perception.depth import _OPTICAL_TO_CAMERA, _pitch, camera_matrix


@dataclass(frozen=True, slots=True)
class SectorGeometry:
    """A camera (size, vertical fov, mount) cut into ``sectors`` column bands, and what counts as an obstacle in it."""

    width_px: int
    height_px: int
    fov_deg: float
    mount_xyz_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    mount_pitch_rad: float = 0.0
    sectors: int = 16
    max_range_m: float = 5.0
    min_range_m: float = 0.05
    ground_z_m: float = 0.1
    max_height_m: float = 2.0
    self_radius_m: float = 0.0
    _rays: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.width_px % self.sectors:
            raise ValueError(f"sectors ({self.sectors}) must divide the image width ({self.width_px} px)")
        k = camera_matrix(self.width_px, self.height_px, self.fov_deg)
        v, u = np.mgrid[0 : self.height_px, 0 : self.width_px]
        optical = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones(u.shape)], axis=-1)
        object.__setattr__(self, "_rays", optical @ (_pitch(self.mount_pitch_rad) @ _OPTICAL_TO_CAMERA).T)

    @property
    def bearings_rad(self) -> np.ndarray:
        """(K,) each sector's centre bearing in the body frame (left positive), from the camera's level axis."""
        k = camera_matrix(self.width_px, self.height_px, self.fov_deg)
        band = self.width_px / self.sectors
        centres = (np.arange(self.sectors) + 0.5) * band - 0.5
        return -np.arctan((centres - k[0, 2]) / k[0, 0])

    @property
    def sector_width_rad(self) -> float:
        """The horizontal angle one sector spans (rad)."""
        k = camera_matrix(self.width_px, self.height_px, self.fov_deg)
        return 2.0 * math.atan(self.width_px / 2.0 / k[0, 0]) / self.sectors

    def labels(self, clean_depth: np.ndarray, body_z_m: float = 0.0) -> np.ndarray:
        """(K,) the true sector ranges (m) from a clean z-depth image seen by a level body at height ``body_z_m``."""
        z = np.asarray(clean_depth, dtype=np.float64)
        if z.shape != (self.height_px, self.width_px):
            raise ValueError(f"depth image is {z.shape}, the geometry's is {(self.height_px, self.width_px)}")
        with np.errstate(invalid="ignore"):
            valid = np.isfinite(z) & (z >= self.min_range_m)
        zz = np.where(valid, z, 0.0)[..., None]
        body = self._rays * zz + np.asarray(self.mount_xyz_m)
        height = body[..., 2] + body_z_m
        horizontal = np.hypot(body[..., 0] - self.mount_xyz_m[0], body[..., 1] - self.mount_xyz_m[1])
        obstacle = valid & (height >= self.ground_z_m) & (height <= self.max_height_m)
        if self.self_radius_m > 0.0:
            obstacle &= np.hypot(body[..., 0], body[..., 1]) > self.self_radius_m
        distance = np.where(obstacle, horizontal, np.inf)
        bands = distance.reshape(self.height_px, self.sectors, -1)
        return np.minimum(bands.min(axis=(0, 2)), self.max_range_m)


def model_input(depth: np.ndarray, max_range_m: float, factor: int = 1, out: np.ndarray | None = None) -> np.ndarray:
    """A depth image (m; NaN holes, +inf no return) as a model's flat float32 input: clipped, holes 0, block-min by ``factor``.

    Into ``out`` when given. :class:`ModelInput` does the work (a few ufunc calls); this makes its buffers for one image.
    """
    z = np.asarray(depth, dtype=np.float32)
    prepared = ModelInput(z.shape[0], z.shape[1], max_range_m, factor, out=None if out is None else out.reshape(-1))(z)
    return prepared if out is None else out


class ModelInput:
    """:func:`model_input` for one image size, range and factor, into buffers made once (a learned depth model prepares every
    frame with it, so nothing is allocated per frame). The block min reduces the block's rows first (whole rows: contiguous),
    then its columns: 2 fmin calls at factor 2 instead of 4; fmin skips NaN, so a block is a hole (0) only when all of it is."""

    def __init__(self, height_px: int, width_px: int, max_range_m: float, factor: int = 1, out: np.ndarray | None = None) -> None:
        if height_px % factor or width_px % factor:
            raise ValueError(f"the image ({width_px}x{height_px}) is not a whole number of {factor}x{factor} blocks")
        self.shape, self.max_range_m, self.factor = (height_px, width_px), float(max_range_m), factor
        size = (height_px // factor) * (width_px // factor)
        self.out = np.empty(size, dtype=np.float32) if out is None else out
        """The model's input (flat float32), rewritten by each call."""
        if self.out.shape != (size,) or self.out.dtype != np.float32:
            raise ValueError(f"out: expected a float32 array of shape ({size},), got {self.out.dtype} {self.out.shape}")
        self._flat = self.out.reshape(height_px // factor, width_px // factor)
        self._rows = np.empty((height_px // factor, width_px), dtype=np.float32) if factor > 1 else None

    def __call__(self, depth: np.ndarray) -> np.ndarray:
        """:attr:`out`, holding ``model_input(depth, max_range_m, factor)``; ValueError for an image of another size."""
        if depth.shape != self.shape:
            raise ValueError(f"depth image {depth.shape[::-1]} px, expected {self.shape[::-1]}")
        if depth.dtype != np.float32:
            depth = np.asarray(depth, dtype=np.float32)
        flat, rows, factor = self._flat, self._rows, self.factor
        if rows is None:
            np.fmax(depth, 0.0, out=flat)  # holes (NaN) and anything negative: 0
        else:  # the nearest of each block: its rows, then its columns
            np.fmin(depth[::factor], depth[1::factor], out=rows)
            for i in range(2, factor):
                np.fmin(rows, depth[i::factor], out=rows)
            np.fmin(rows[:, ::factor], rows[:, 1::factor], out=flat)
            for j in range(2, factor):
                np.fmin(flat, rows[:, j::factor], out=flat)
            np.fmax(flat, 0.0, out=flat)  # holes (NaN) and anything negative: 0
        np.minimum(flat, self.max_range_m, out=flat)  # no return (+inf) and beyond range: max range
        return self.out


def window_input(depth: np.ndarray, max_range_m: float, start: int, out: np.ndarray) -> np.ndarray:
    """Columns ``start`` .. ``start + W`` of a depth image as :func:`model_input` (factor 1) makes them, into ``out`` (H x W values, row-major)."""
    view = out.reshape(depth.shape[0], -1)
    window = depth[:, start : start + view.shape[1]]
    np.fmax(window, 0.0, out=view)
    np.minimum(view, max_range_m, out=view)
    return out


FREE_MARGIN_M = 0.3
"""A sector range within this of max range is free: no obstacle (a ring of phantom cylinders at max range otherwise)."""


@dataclass(frozen=True, slots=True)
class SectorCylinder:
    """One obstacle from a sector: an upright cylinder (world frame), its uncertainty (m) and when it was seen."""

    centre: np.ndarray
    radius_m: float
    sigma_m: float
    stamp: float


def sector_obstacles(
    ranges_m: np.ndarray,
    sigmas_m: np.ndarray,
    geometry: SectorGeometry,
    position: np.ndarray,
    rotation: np.ndarray,
    stamp: float,
    height_m: float = 1.0,
    max_sigma_m: float = 0.1,
) -> list[SectorCylinder]:
    """Cylinders for the sectors that see something nearer than max range: at the predicted distance along each bearing, world frame.

    A range within :data:`FREE_MARGIN_M` of max range is "nothing seen" (a model's sigmoid output
    never quite reaches the clip: 4.98 m is its way to say 5).

    A sector spans ``sector_width_rad``: at range r its arc is r * width wide, so the cylinder's radius is
    half that (at least 5 cm), and its centre is r + radius from the camera, so its near face is at the
    predicted distance. The camera's position is the mount carried by the body pose; bearings are turned
    by the body's yaw (the cylinders are upright whatever the body's tilt), centres at ``height_m / 2``.

    A sector's sigma is an uncertainty ALONG its ray, while a filter inflates an obstacle by its
    uncertainty in every direction: a sector sigma of 0.8 m would make a 3 m-wide wall of a 10 cm
    cylinder. So a sigma up to ``max_sigma_m`` is the cylinder's ``sigma_m`` (inflated all round), and
    what is beyond it moves the cylinder's near face that much closer along the ray (conservative
    where the uncertainty is), never nearer than 5 cm.
    """
    camera = position + rotation @ np.asarray(geometry.mount_xyz_m)
    yaw = math.atan2(rotation[1, 0], rotation[0, 0])
    half = geometry.sector_width_rad / 2.0
    out = []
    for r, sigma, bearing in zip(np.asarray(ranges_m), np.asarray(sigmas_m), geometry.bearings_rad):
        if not (np.isfinite(r) and r < geometry.max_range_m - FREE_MARGIN_M):
            continue
        sigma = float(sigma) if np.isfinite(sigma) else float(r)
        near = max(float(r) - max(sigma - max_sigma_m, 0.0), 0.05)
        radius = max(near * math.tan(half), 0.05)
        angle = yaw + float(bearing)
        d = near + radius
        centre = np.array([camera[0] + d * math.cos(angle), camera[1] + d * math.sin(angle), height_m / 2.0])
        out.append(SectorCylinder(centre=centre, radius_m=radius, sigma_m=min(sigma, max_sigma_m), stamp=stamp))
    return out


class SectorMemory:
    """The sector cylinders seen now plus those remembered out of view (see the module docstring)."""

    def __init__(self, geometry: SectorGeometry, memory_s: float = 60.0, cell_m: float = 0.2, max_obstacles: int = 64) -> None:
        self.geometry = geometry
        self.memory_s = memory_s
        self.cell_m = cell_m
        self.max_obstacles = max_obstacles
        self._kept: list[SectorCylinder] = []

    def reset(self) -> None:
        self._kept = []

    def update(self, seen: list[SectorCylinder], position: np.ndarray, rotation: np.ndarray, stamp: float) -> list[SectorCylinder]:
        """Forget what is in view now (it is in ``seen`` or free) and what is older than memory; add ``seen``; return all."""
        g = self.geometry
        camera = position + rotation @ np.asarray(g.mount_xyz_m)
        yaw = math.atan2(rotation[1, 0], rotation[0, 0])
        half_fov = g.sector_width_rad * g.sectors / 2.0
        kept = []
        for c in self._kept:
            if c.stamp < stamp - self.memory_s:
                continue
            dx, dy = c.centre[0] - camera[0], c.centre[1] - camera[1]
            bearing = math.remainder(math.atan2(dy, dx) - yaw, math.tau)
            if abs(bearing) <= half_fov and math.hypot(dx, dy) - c.radius_m <= g.max_range_m:
                continue  # in view: this frame says what is there
            kept.append(c)
        cells: dict[tuple[int, int], SectorCylinder] = {}
        for c in kept + seen:  # newest last: one per cell, the newest
            cells[(int(math.floor(c.centre[0] / self.cell_m)), int(math.floor(c.centre[1] / self.cell_m)))] = c
        everything = sorted(cells.values(), key=lambda c: c.stamp)
        self._kept = everything[-self.max_obstacles :]
        return list(self._kept)
