"""A simulated RGB + depth camera: PyBullet's TinyRenderer (works in DIRECT) -> rgb8 and 32FC1 depth Images in metres.

Conventions
-----------
* The camera sits at ``mount_xyz_m`` in the body frame (FLU) and looks along body +x, tipped by
  ``mount_pitch_rad`` about body +y (REP 103 right hand: positive pitch looks DOWN). Image "up" is
  body +z after that pitch, so row 0 is the top of the picture and column 0 its left (body +y)
  side, as in any camera image; the pixel grid is that of the optical frame (z forward, x right,
  y down, REP 103's ``_optical`` frames), hence the default frame_id ``camera_optical_frame``.
* ``fov_deg`` is the VERTICAL field of view, edge to edge (PyBullet's convention); pixels are
  square, so the horizontal one follows from width / height. The image is an ideal pinhole
  centred on the optical axis: ``Camera.camera_matrix`` is its K (fx = fy = H / 2 / tan(fov / 2),
  cx = (W - 1) / 2, cy = (H - 1) / 2, pixel centres at integer coordinates), for CameraInfo and
  for turning depth into points.
* Depth follows REP 118 (https://www.ros.org/reps/rep-0118.html): float32 metres along the
  optical axis (z-depth, not the length of the pixel's ray), converted from the renderer's
  non-linear z-buffer with ``depth = far * near / (far - (far - near) * z)``. Pixels where nothing
  was drawn (z-buffer 1: nothing nearer than ``far_m``) are +inf, REP 117's "no return". Geometry
  nearer than ``near_m`` is clipped by the renderer and not seen at all (no -inf): pick ``near_m``
  below the closest distance that matters.
* ``noise`` (default none: the clean render) adds a stereo camera's errors to the depth image
  (aegis.sim.sensors.depth_noise: z² range noise, quantisation, NaN holes), drawn from the
  generator ``capture`` is given (the sim bridge's sensor stream).
* Bodies without a visual shape are drawn from their collision shapes (PyBullet does that), so
  obstacles spawned for physics only are visible too. Empty background is white in rgb.
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
import pybullet
from numpy.typing import ArrayLike
from pydantic import Field, model_validator

from aegis.msgs import Image
from aegis.node import NodeParams
from aegis.sim.sensors._pose import body_pose, pitch_matrix
from aegis.sim.sensors.depth_noise import DepthNoiseParams, noisy_depth

_Finite = Annotated[float, Field(allow_inf_nan=False)]
_Pixels = Annotated[int, Field(ge=1, le=4096)]


class CameraParams(NodeParams):
    """A pinhole camera: image size, vertical field of view, clip planes (m), mounting, rate and which images."""

    width_px: _Pixels = Field(64, description="image width (pixels)")
    height_px: _Pixels = Field(48, description="image height (pixels)")
    fov_deg: Annotated[float, Field(gt=0, lt=180)] = Field(60.0, description="vertical field of view (deg)")
    near_m: Annotated[float, Field(gt=0, allow_inf_nan=False)] = Field(0.05, description="near clip plane (m)")
    far_m: Annotated[float, Field(gt=0, allow_inf_nan=False)] = Field(20.0, description="far clip plane (m); beyond: +inf")
    mount_xyz_m: tuple[_Finite, _Finite, _Finite] = Field((0.0, 0.0, 0.0), description="camera origin in the body frame (FLU)")
    mount_pitch_rad: _Finite = Field(0.0, description="tilt about body +y; positive looks down")
    rgb: bool = Field(True, description="produce an rgb8 image under key 'rgb'")
    depth: bool = Field(True, description="produce a 32FC1 depth image (m) under key 'depth'")
    rate_hz: Annotated[float, Field(gt=0, allow_inf_nan=False)] = Field(30.0, description="frames per second")
    frame_id: str = Field("camera_optical_frame", description="frame_id of the images")
    noise: DepthNoiseParams | None = Field(None, description="a stereo camera's depth errors (z² noise, quantisation, holes); none: the clean render")

    @model_validator(mode="after")
    def _consistent(self) -> CameraParams:
        if self.far_m <= self.near_m:
            raise ValueError(f"far_m ({self.far_m}) must be greater than near_m ({self.near_m})")
        if not (self.rgb or self.depth):
            raise ValueError("a camera must produce something: rgb and depth are both false")
        return self


class Camera:
    """A camera in one PyBullet client; ``capture`` renders from the body pose with ER_TINY_RENDERER."""

    def __init__(self, client: int, params: CameraParams) -> None:
        self.client = client
        self.params = params
        w, h = params.width_px, params.height_px
        # TinyRenderer samples pixel (row i, column j) at a pixel corner: NDC x = 2 j / W - 1 and
        # y = 1 - 2 (i + 1) / H (measured; tests pin it). Shifting the frustum by half a pixel puts
        # the samples at pixel centres, so the image is an ideal pinhole centred on the optical axis.
        top = params.near_m * math.tan(math.radians(params.fov_deg) / 2.0)
        right = top * w / h
        self._projection = pybullet.computeProjectionMatrix(
            -right + right / w, right + right / w, -top + top / h, top + top / h, params.near_m, params.far_m,
            physicsClientId=client,
        )
        fy = h / 2.0 / math.tan(math.radians(params.fov_deg) / 2.0)
        self.camera_matrix = np.array([[fy, 0.0, (w - 1) / 2.0], [0.0, fy, (h - 1) / 2.0], [0.0, 0.0, 1.0]])
        """K of sensor_msgs/CameraInfo (pixels; pixel centres at integer coordinates, as OpenCV and ROS count)."""
        tilt = pitch_matrix(params.mount_pitch_rad)
        self._forward_body = tilt[:, 0]  # optical axis in the body frame
        self._up_body = tilt[:, 2]  # image up in the body frame
        self._mount = np.asarray(params.mount_xyz_m, dtype=np.float64)
        # Reused by every capture (each Image gets its own array).
        self._metres = np.empty((h, w))
        self._background = np.empty((h, w), dtype=bool)
        self._rng = np.random.default_rng(0)  # the noise's draws when capture is given no generator

    def capture(
        self, position: ArrayLike, orientation_xyzw: ArrayLike, stamp: float, rng: np.random.Generator | None = None
    ) -> dict[str, Image]:
        """Images stamped ``stamp`` from the body at ``position`` (world, m) with ``orientation_xyzw``.

        Keys: "rgb" (rgb8, (H, W, 3) uint8) and/or "depth" (32FC1, (H, W) float32 m), as configured.
        With ``noise`` configured, the depth image's errors are drawn from ``rng`` (a fixed
        ``default_rng(0)`` when none is given).
        """
        p = self.params
        position, rotation = body_pose("Camera.capture", position, orientation_xyzw)
        eye = position + rotation @ self._mount
        target = eye + rotation @ self._forward_body
        up = rotation @ self._up_body
        view = pybullet.computeViewMatrix(eye.tolist(), target.tolist(), up.tolist(), physicsClientId=self.client)
        w, h = p.width_px, p.height_px
        _, _, rgba, z_buffer, _ = pybullet.getCameraImage(
            w,
            h,
            view,
            self._projection,
            renderer=pybullet.ER_TINY_RENDERER,
            flags=pybullet.ER_NO_SEGMENTATION_MASK,
            physicsClientId=self.client,
        )
        images: dict[str, Image] = {}
        if p.rgb:
            pixels = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[:, :, :3]
            images["rgb"] = Image(stamp=stamp, frame_id=p.frame_id, encoding="rgb8", data=np.ascontiguousarray(pixels))
        if p.depth:
            depth = self._depth_metres(z_buffer)
            if p.noise is not None:
                depth = noisy_depth(depth, p.noise, self._rng if rng is None else rng)
            images["depth"] = Image(stamp=stamp, frame_id=p.frame_id, encoding="32FC1", data=depth)
        return images

    def _depth_metres(self, z_buffer: ArrayLike) -> np.ndarray:
        """Metres along the optical axis from the z-buffer (in float64, then float32); +inf where nothing was drawn."""
        near, far = self.params.near_m, self.params.far_m
        metres = self._metres
        metres[:] = np.asarray(z_buffer).reshape(metres.shape)
        np.greater_equal(metres, 1.0, out=self._background)
        metres *= -(far - near)
        metres += far
        np.divide(far * near, metres, out=metres)
        metres[self._background] = np.inf  # REP 117/118: no return -> +Inf
        return metres.astype(np.float32)
