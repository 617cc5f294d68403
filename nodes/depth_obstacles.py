"""The depth_obstacles node: a depth image (/camera/depth/image_raw) and odometry -> world-frame Obstacles with their uncertainty.

Triggered by each depth image. The robot's pose at the image's stamp is the latest odometry moved to
that stamp with its own velocity (constant velocity and attitude over the gap, at most
``max_pose_gap_s``). The image goes into aegis.perception.depth's voxel map (back-projection with
the camera's pinhole model and mounting, a world voxel grid that remembers what it saw for
``memory_s``, 26-connected clusters), and every cluster is published on /obstacles as an upright
cylinder (when a circle fits it) or a box yawed about z, in the odometry's frame, stamped with the image's stamp, with ``uncertainty_m``
(the range noise at the box's nearest point and the odometry's position uncertainty), which the
safety filter inflates it by.

The camera's geometry (``fov_deg``, ``mount_xyz_m``, ``mount_pitch_rad``) must be the camera's: in
simulation the sim bridge's ``camera`` parameters, on a robot its calibration (CameraInfo's K and
the mount's transform). ``aegis check`` compares them with the sim bridge's camera in the same plan.

What the node cannot use it says by not publishing, counted in its metrics: no odometry, odometry
unusable or further than ``max_pose_gap_s`` from the image (``frames_without_pose``), an image that
is not 32FC1 depth. The filter then sees its obstacles go stale and brakes (its backup layer):
unknown space is not free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from aegis.controllers.quadrotor_model import quaternion_to_matrix
from aegis.msgs import Image, Obstacle, Obstacles, RobotState
from aegis.node import Node, NodeParams, Port, Received
from aegis.perception.depth import DepthMapperSettings, DepthObstacleMapper

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_Finite = Annotated[float, Field(allow_inf_nan=False)]


class DepthObstaclesParams(NodeParams):
    fov_deg: Annotated[float, Field(gt=0, lt=180)] = Field(60.0, description="the camera's vertical field of view (deg), as the sim bridge's camera")
    mount_xyz_m: tuple[_Finite, _Finite, _Finite] = Field((0.0, 0.0, 0.0), description="camera origin in the body frame, FLU (m)")
    mount_pitch_rad: _Finite = Field(0.0, description="camera tilt about body +y; positive looks down (rad)")
    min_range_m: Positive = Field(0.05, description="depth nearer than this is not used (m)")
    max_range_m: Positive = Field(4.0, description="depth further than this is not used (m)")
    ground_z_m: _Finite = Field(0.05, description="points below this height are the floor, not obstacles (m)")
    self_radius_m: Annotated[float, Field(ge=0, le=10.0)] = Field(
        0.0, description="points nearer the body origin than this, horizontally, are the robot itself (m)"
    )
    voxel_m: Annotated[float, Field(ge=0.02, le=1.0)] = Field(0.1, description="voxel edge of the map (m)")
    memory_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        60.0, description="how long a voxel out of view is kept after it was last seen (s); one seen through in view is forgotten at once"
    )
    cluster_gap_m: Annotated[float, Field(ge=0, le=1.0)] = Field(0.15, description="voxels this close belong to one obstacle (m)")
    min_voxels: Annotated[int, Field(ge=1, le=1000)] = Field(2, description="clusters with fewer voxels are noise")
    margin_m: Annotated[float, Field(ge=0, le=1.0)] = Field(0.0, description="every box grown by this on each side (m)")
    max_depth_extension_m: Annotated[float, Field(ge=0, le=5.0)] = Field(
        0.6, description="a box grown on its far side until as deep as it is wide, by at most this: the camera sees only the near side (m)"
    )
    circle_residual_m: Annotated[float, Field(gt=0, le=0.5)] = Field(0.04, description="largest rms residual of a cylinder's circle fit to the voxel columns (m)")
    max_circle_radius_m: Annotated[float, Field(gt=0, le=10.0)] = Field(1.0, description="largest radius fitted as a cylinder (m)")
    min_arc_deg: Annotated[float, Field(ge=10, le=360)] = Field(60.0, description="a circle is trusted over at least this arc (deg)")
    range_noise_fraction: Annotated[float, Field(ge=0, le=1.0)] = Field(0.01, description="depth noise, 1 sigma, as a fraction of the range")
    max_voxels: Annotated[int, Field(ge=100, le=1_000_000)] = Field(20000, description="voxels the map keeps at most (the most recent)")
    max_pose_gap_s: Positive = Field(0.1, description="odometry further than this from the image's stamp is not used (s)")

    def mapper_settings(self) -> DepthMapperSettings:
        return DepthMapperSettings(
            fov_deg=self.fov_deg, mount_xyz_m=tuple(self.mount_xyz_m), mount_pitch_rad=self.mount_pitch_rad,
            min_range_m=self.min_range_m, max_range_m=self.max_range_m, ground_z_m=self.ground_z_m, self_radius_m=self.self_radius_m,
            voxel_m=self.voxel_m, memory_s=self.memory_s, min_voxels=self.min_voxels, cluster_gap_m=self.cluster_gap_m, margin_m=self.margin_m,
            max_depth_extension_m=self.max_depth_extension_m, range_noise_fraction=self.range_noise_fraction,
            max_voxels=self.max_voxels, circle_residual_m=self.circle_residual_m, max_circle_radius_m=self.max_circle_radius_m,
            min_arc_deg=self.min_arc_deg,
        )


class DepthObstacles(Node):
    """Depth image in, obstacles out (world frame, with uncertainty), posed with the odometry at the image's stamp."""

    type_name = "depth_obstacles"
    inputs = (
        Port("depth", Image, "/camera/depth/image_raw", description="z-depth in metres, 32FC1 (REP 118)"),
        Port("state", RobotState, "/odom", description="odometry (pose, velocity and covariance)"),
    )
    outputs = (Port("obstacles", Obstacles, "/obstacles", description="obstacles seen, world frame, with uncertainty_m"),)
    Params = DepthObstaclesParams
    trigger = "depth"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mapper = DepthObstacleMapper(self.params.mapper_settings())
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self._mapper.reset()
        self.frames = 0
        self.frames_without_pose = 0
        self.frames_not_depth = 0
        self.obstacles_published = 0

    def metrics(self) -> dict[str, Any]:
        """Frames processed, frames dropped (no pose at their stamp; not a depth image), obstacles published."""
        return {
            "perception_frames": self.frames,
            "perception_frames_without_pose": self.frames_without_pose,
            "perception_frames_not_depth": self.frames_not_depth,
            "perception_obstacles": self.obstacles_published,
        }

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        received = inputs.get("depth")
        if received is None:
            return {}
        image: Image = received.msg
        self.frames += 1
        if image.encoding != "32FC1":
            self.frames_not_depth += 1
            return {}
        pose = self._pose_at(image.stamp, inputs.get("state"))
        if pose is None:
            self.frames_without_pose += 1
            return {}
        position, rotation, position_sigma, frame_id = pose
        boxes = self._mapper.update(image.data, position, rotation, image.stamp)
        obstacles = [
            Obstacle(
                id=i, shape=box.shape, position=box.centre, size=box.extents,
                orientation=np.array([0.0, 0.0, math.sin(box.yaw_rad / 2.0), math.cos(box.yaw_rad / 2.0)]),
                uncertainty_m=float(np.hypot(box.sigma_m, position_sigma)),
            )
            for i, box in enumerate(boxes)
        ]
        self.obstacles_published += len(obstacles)
        return {"obstacles": Obstacles(stamp=image.stamp, frame_id=frame_id, obstacles=obstacles)}

    def _pose_at(self, stamp: float, received: Received | None) -> tuple[np.ndarray, np.ndarray, float, str] | None:
        """(position, rotation body -> world, position sigma, frame) at ``stamp`` from the latest odometry; None when unusable."""
        if received is None or not received.msg.is_usable():
            return None
        state: RobotState = received.msg
        gap = stamp - state.stamp
        if abs(gap) > self.params.max_pose_gap_s:
            return None
        rotation = quaternion_to_matrix(np.asarray(state.orientation, dtype=float))
        position = np.asarray(state.position, dtype=float) + rotation @ np.asarray(state.linear_velocity, dtype=float) * gap
        covariance = np.asarray(state.pose_covariance, dtype=float)
        sigma = float(np.sqrt(max(np.max(np.diag(covariance)[:3]), 0.0))) if covariance.size else 0.0
        return position, rotation, sigma if np.isfinite(sigma) else 0.0, state.frame_id
