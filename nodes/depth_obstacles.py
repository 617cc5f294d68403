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

``method`` picks the path (default ``geometric``, the above). ``learned`` runs the large depth-sector
CNN on every frame; ``cascade`` runs the cheap one on every frame and the large network only on the
sectors the cheap one is unsure of (its window model: the large one's columns around each sector),
in ONE call, the most unsure ones, as many as the frame's ``budget_us`` left covers the measured p99 of a call on that many
(or the whole large model, when its p99 is below that of the windows of every unsure sector and fits)
(aegis.inference.depth_model: models made by ``aegis train-depth``, loaded through the policy
contract and runtime; default: the shipped ``models/husky_depth_{cheap,large,window}.onnx``, trained for
husky_depth_sim's camera). A learned frame gives K sector ranges with their sigmas, and each
sector nearer than max range becomes a small upright cylinder at that distance and bearing (world
frame, with the pose at the image's stamp; uncertainty: the sector's sigma and the odometry's), kept
after it leaves the view by aegis.perception.depth_sectors' ``SectorMemory`` for ``memory_s``. The
metrics count which stage answered each frame and the node's own time per learned frame.

What the node cannot use it says by not publishing, counted in its metrics: no odometry, odometry
unusable or further than ``max_pose_gap_s`` from the image (``frames_without_pose``), an image that
is not 32FC1 depth. The filter then sees its obstacles go stale and brakes (its backup layer):
unknown space is not free.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from aegis.controllers.quadrotor_model import quaternion_to_matrix
from aegis.config_files import ConfigError
from aegis.inference.contract import ContractError
from aegis.msgs import Image, Obstacle, Obstacles, RobotState
from aegis.node import Node, NodeParams, Port, Received
from aegis.perception.depth import DepthMapperSettings, DepthObstacleMapper
from aegis.perception.depth_sectors import SectorMemory, sector_obstacles


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
    method: Literal["geometric", "learned", "cascade"] = Field(
        "geometric", description="geometric: the voxel map; learned: the large depth-sector CNN every frame; cascade: the cheap CNN, the large one on its unsure sectors in budget"
    )
    shipped_models: Literal["husky", "quadrotor"] = Field(
        "husky", description="whose shipped depth-sector models the learned path uses when no model file is given: husky_depth_sim's camera or quadrotor_depth_sim's"
    )
    cheap_model: Path | None = Field(None, description="the cascade's cheap depth-sector ONNX model (default: the shipped models/husky_depth_cheap.onnx)")
    large_model: Path | None = Field(
        None, description="the large depth-sector ONNX model: method learned runs it on every frame, cascade when it is cheaper than the windows of the unsure sectors (default: the shipped models/husky_depth_large.onnx)"
    )
    window_model: Path | None = Field(
        None, description="the cascade's second stage: the large model's window model, run on the unsure sectors in one call (default: the shipped models/husky_depth_window.onnx)"
    )
    budget_us: Annotated[float, Field(gt=0, le=10_000_000)] = Field(
        10000.0, description="the cascade's time per frame (µs): the large network's one call takes as many unsure sectors as what is left covers the p99 of a call on that many (default: a third of a 30 Hz frame)"
    )
    sigma_threshold_m: Annotated[float, Field(gt=0, le=100)] | None = Field(
        None, description="the cascade refines each sector whose cheap sigma is above this with the large network (m; default: the cheap model's threshold and rule, "
        "chosen at training: its sigma, its sigma / range, or its predicted gain of the large model (a model with a gain output), as the model says)"
    )
    max_sector_sigma_m: Annotated[float, Field(gt=0, le=10.0)] = Field(
        0.1, description="learned path: a sector sigma up to this inflates its cylinder all round; beyond it, moves the cylinder closer along the ray (m)"
    )
    obstacle_height_m: Annotated[float, Field(gt=0, le=100.0)] = Field(
        1.0, description="learned path: each sector cylinder stands from the ground to this height (m; above a drone's flight height, so it goes around)"
    )
    max_sector_obstacles: Annotated[int, Field(ge=1, le=10000)] = Field(64, description="learned path: sector cylinders kept at most (seen and remembered)")

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
        self._learned = self._load_learned() if self.params.method != "geometric" else None
        self.reset()

    def _load_learned(self) -> tuple[Any, Any, SectorMemory]:
        """(cheap model or None, cascade or the large model, sector memory), checked against this node's camera geometry."""
        from aegis.inference.depth_cascade import DepthCascade
        from aegis.inference.depth_model import DepthSectorModel, DepthWindowModel
        from aegis.paths import share_dir

        p = self.params

        def load(which: str, given: Path | None) -> Any:
            path = given or share_dir() / "models" / f"{p.shipped_models}_depth_{which}.onnx"
            try:
                model = DepthWindowModel(path) if which == "window" else DepthSectorModel(path)
            except (ValueError, ContractError) as exc:  # not a depth-sector model, or its contract does not fit its graph
                raise ConfigError(f"nodes.{self.name}.params.{which}_model: {exc}") from None
            problems = model.spec.mismatches(model.spec.width_px, model.spec.height_px, p.fov_deg, tuple(p.mount_xyz_m), p.mount_pitch_rad)
            if problems:
                raise ConfigError(f"nodes.{self.name}.params.{which}_model {path}: trained for another camera: {'; '.join(problems)}")
            return model

        if p.method == "learned":
            large = load("large", p.large_model)
            return None, large, SectorMemory(large.geometry, p.memory_s, max_obstacles=p.max_sector_obstacles)
        cheap = load("cheap", p.cheap_model)
        window = load("window", p.window_model)
        if (window.spec.width_px, window.spec.height_px, window.spec.sectors) != (cheap.spec.width_px, cheap.spec.height_px, cheap.spec.sectors):
            raise ConfigError(f"nodes.{self.name}.params.window_model {window.path}: made for another image or sectors than the cheap model {cheap.path}")
        threshold = p.sigma_threshold_m if p.sigma_threshold_m is not None else cheap.spec.cascade_sigma_threshold_m
        if threshold is None:
            raise ConfigError(f"nodes.{self.name}.params.sigma_threshold_m: not set, and the cheap model {cheap.path} carries none")
        large = load("large", p.large_model)  # the whole frame: cheaper than the windows when most sectors are unsure
        if (large.spec.width_px, large.spec.height_px, large.spec.sectors) != (cheap.spec.width_px, cheap.spec.height_px, cheap.spec.sectors):
            raise ConfigError(f"nodes.{self.name}.params.large_model {large.path}: made for another image or sectors than the cheap model {cheap.path}")
        gain = cheap.spec.cascade_gain and p.sigma_threshold_m is None  # the gain rule the cheap model carries; a configured threshold is a sigma (m)
        cascade = DepthCascade(
            cheap.predict_with_gain if gain else cheap.predict, window.predict_sectors, window.p99_us, threshold, p.budget_us, whole=large.predict, whole_p99_us=large.p99_us,
            large_median_us=window.median_us, whole_median_us=large.median_us,
            relative=cheap.spec.cascade_relative and p.sigma_threshold_m is None,  # a configured threshold is a sigma (m)
            gain=gain,
        )
        return cheap, cascade, SectorMemory(cheap.geometry, p.memory_s, max_obstacles=p.max_sector_obstacles)

    def reset(self, seed: int | None = None) -> None:
        self._mapper.reset()
        if self._learned is not None:
            self._learned[2].reset()
            if self._learned[0] is not None:
                self._learned[1].reset()
        self.stages = {"cheap": 0, "cheap_budget": 0, "large": 0}
        self.frame_us: deque[float] = deque(maxlen=4096)  # the learned path's time per frame (µs), the last 4096
        self.frame_max_us = 0.0
        self.frames_over_budget = 0
        self.frames_over_budget_with_large = 0  # over budget on a frame the large network refined: the cascade's doing
        self.frames = 0
        self.frames_without_pose = 0
        self.frames_not_depth = 0
        self.obstacles_published = 0

    def metrics(self) -> dict[str, Any]:
        """Frames processed, frames dropped (no pose at their stamp; not a depth image), obstacles published; learned: stages and time."""
        out: dict[str, Any] = {
            "perception_frames": self.frames,
            "perception_frames_without_pose": self.frames_without_pose,
            "perception_frames_not_depth": self.frames_not_depth,
            "perception_obstacles": self.obstacles_published,
        }
        if self._learned is not None:
            out.update({
                "perception_method": self.params.method,
                "perception_stage_cheap": self.stages["cheap"],
                "perception_stage_cheap_budget": self.stages["cheap_budget"],
                "perception_stage_large": self.stages["large"],
                "perception_sectors_refined": self._learned[1].counts.sectors_refined if self._learned[0] is not None else None,
                "perception_sectors_over_budget": self._learned[1].counts.sectors_budget if self._learned[0] is not None else None,
                "perception_frames_whole_large": self._learned[1].counts.whole_frames if self._learned[0] is not None else None,
                "perception_budget_us": self.params.budget_us,
                "perception_frame_p99_us": float(np.percentile(self.frame_us, 99)) if self.frame_us else None,
                "perception_frame_max_us": self.frame_max_us,
                "perception_frames_over_budget": self.frames_over_budget,
                "perception_frames_over_budget_with_large": self.frames_over_budget_with_large,
            })
        return out

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
        if self._learned is not None:
            return self._learned_step(image, position, rotation, position_sigma, frame_id)
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

    def _learned_step(self, image: Image, position: np.ndarray, rotation: np.ndarray, position_sigma: float, frame_id: str) -> Mapping[str, Any]:
        """The learned path's frame: sectors (the large model, or the cascade) -> cylinders -> the sector memory -> Obstacles."""
        started = time.perf_counter_ns()
        cheap, predictor, memory = self._learned
        spec = predictor.spec if cheap is None else cheap.spec
        if image.data.shape != (spec.height_px, spec.width_px):
            self.frames_not_depth += 1
            return {}
        if cheap is None:
            sectors = predictor.predict(image.data)
            answer = None if sectors is None else (*sectors, "large")
        else:
            answer = predictor.predict(image.data, started)
        if answer is None:  # the network's output was not finite: publish nothing; the filter brakes on stale obstacles
            return {}
        ranges, sigmas, stage = answer
        self.stages[stage] += 1
        p = self.params
        seen = sector_obstacles(
            ranges, sigmas, memory.geometry, position, rotation, image.stamp, height_m=p.obstacle_height_m, max_sigma_m=p.max_sector_sigma_m
        )
        cylinders = memory.update(seen, position, rotation, image.stamp)
        obstacles = [
            Obstacle(
                id=i, shape="cylinder", position=c.centre, size=np.array([2.0 * c.radius_m, 2.0 * c.radius_m, p.obstacle_height_m]),
                orientation=np.array([0.0, 0.0, 0.0, 1.0]), uncertainty_m=float(np.hypot(c.sigma_m, position_sigma)),
            )
            for i, c in enumerate(cylinders)
        ]
        self.obstacles_published += len(obstacles)
        spent_us = (time.perf_counter_ns() - started) / 1e3
        self.frame_us.append(spent_us)
        self.frame_max_us = max(self.frame_max_us, spent_us)
        self.frames_over_budget += spent_us > self.params.budget_us
        self.frames_over_budget_with_large += spent_us > self.params.budget_us and stage == "large"
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
