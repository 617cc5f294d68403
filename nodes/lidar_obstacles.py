"""The lidar_obstacles node: a LaserScan (/scan; with several planes, their cloud on /points) and odometry -> world-frame Obstacles.

Triggered by each scan. The robot's pose at the scan's stamp is the latest odometry moved to that
stamp with its own twist (constant forward speed and turn rate over the gap, which is at most
``max_pose_gap_s``); its pose covariance goes into every obstacle's uncertainty. The scan is turned
into circles and line segments by aegis.perception.lidar (adaptive breakpoints, Kasa circle fits,
iterative end-point line fits), published on /obstacles in the odometry's frame, stamped with the
scan's stamp (when it was measured):

- a circle -> an upright cylinder of diameter 2 r and height ``obstacle_height_m`` standing on z = 0;
- a segment -> a box ``wall_thickness_m`` deep behind the face the lidar saw (yawed along it), as
  long as the face and ``obstacle_height_m`` tall;
- each with ``uncertainty_m``, its 1-sigma position uncertainty (aegis.perception.lidar's doc),
  which the safety filter inflates it by.

With ``plane_offsets_m`` (a multi-plane lidar: the sim's ``lidar.point_cloud``) each row of the organized
cloud on /points taken at the scan's stamp is fitted alone (aegis.perception.lidar_layers) and what plane
``k`` saw stands between planes ``k - 1`` and ``k + 1`` (widened by ``plane_margin_m`` and the odometry's
z sigma; the ground and ``obstacle_height_m`` at the outermost), at the odometry's z plus ``mount_z_m``.
The planes' copies of one thing (adjacent planes, footprints within ``merge_distance_m`` plus their
uncertainties of each other) are then one obstacle from the lowest copy's bottom to the highest's top
(aegis.perception.lidar_merge): a wall seen by five planes is one box from the ground up, not five
stacked boxes that would take five of the safety filter's rows.
With planes the node also remembers (aegis.perception.lidar_memory): an obstacle seen within ``memory_s`` that
no plane of the current scan could look at (its emitter within ``memory_blind_margin_m`` of it, perhaps inside it,
whose rays do not see it; occluded; no plane at a height it was seen at) is published again after this scan's own,
its uncertainty grown by ``memory_growth_mps`` per second of age, and counted (``perception_remembered_obstacles``).
A plane that looks at it either sees it (this scan's obstacle carries it) or through it (gone): it is dropped then.
A scan without its cloud (missing, another stamp, another shape) is fitted flattened, as without planes,
and counted (``scans_without_points``): every return full height, the conservative reading.

The laser frame is the robot's yaw-only frame at ``mount_xy_m`` (a level scanner, the sim bridge's
``lidar.level: true``). What the node cannot use it says by not publishing, counted in its metrics:
no odometry, odometry unusable or further than ``max_pose_gap_s`` from the scan (``scans_without_pose``).
The filter then sees its obstacles go stale and brakes (its backup layer): unknown space is not free.
A scan with no returns publishes an empty list: the lidar saw nothing within its range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from pydantic import Field, field_validator

from aegis.msgs import LaserScan, Obstacle, Obstacles, PointCloud, RobotState
from aegis.node import Node, NodeParams, Port, Received
from aegis.perception.lidar import LidarFitParams, ScanObstacles, detect
from aegis.perception.lidar_layers import detect_layers
from aegis.perception.lidar_memory import MemoryParams, Remembered, recall, seen
from aegis.perception.lidar_merge import MergedObstacle, merge_layers

Positive = Annotated[float, Field(gt=0)]


class LidarObstaclesParams(NodeParams):
    mount_xy_m: tuple[float, float] = Field((0.0, 0.0), description="the laser's origin in the body frame, x forward, y left (m)")
    range_noise_std_m: Annotated[float, Field(ge=0)] = Field(0.01, description="the lidar's range noise, 1 sigma (m)")
    breakpoint_angle_deg: Annotated[float, Field(gt=0, lt=90)] = Field(
        10.0, description="adaptive breakpoint detector's lambda: shallowest incidence still one surface (deg)"
    )
    max_gap_beams: Annotated[int, Field(ge=0)] = Field(2, description="missing beams a cluster may bridge")
    min_points: Annotated[int, Field(ge=1)] = Field(2, description="clusters with fewer returns are dropped")
    max_circle_radius_m: Positive = Field(1.0, description="largest pillar radius fitted as a circle (m)")
    circle_residual_m: Positive = Field(0.03, description="largest rms residual of a circle fit (m)")
    split_distance_m: Positive = Field(0.05, description="line splitting threshold (m)")
    obstacle_height_m: Positive = Field(
        2.0, description="height given to every obstacle (a planar scan has none), and the top of what the highest plane saw (m)"
    )
    wall_thickness_m: Positive = Field(0.1, description="depth of the box behind each face seen (m)")
    max_pose_gap_s: Positive = Field(0.1, description="odometry further than this from the scan's stamp is not used (s)")
    plane_offsets_m: tuple[float, ...] = Field(
        (),
        max_length=16,
        description="a multi-plane lidar's planes along the laser's z (m, ascending; the sim's lidar.plane_offsets_m with "
        "point_cloud: true): each row of /points fitted alone and bounded in z by its neighbours; empty: the flattened /scan alone",
    )
    mount_z_m: float = Field(0.0, description="the laser's origin above the body origin (m): the planes' heights with the odometry's z")
    plane_margin_m: Annotated[float, Field(ge=0)] = Field(
        0.01, description="added to each plane-bounded bottom and top, beyond the pose's z sigma (m)"
    )
    merge_distance_m: Annotated[float, Field(ge=0)] = Field(
        0.05,
        description="with plane_offsets_m: copies in adjacent planes whose footprints lie within this (plus both "
        "uncertainties) of each other, as Hausdorff distance, are one obstacle spanning their planes (m)",
    )

    memory_s: Annotated[float, Field(ge=0)] = Field(
        0.5,
        description="with plane_offsets_m: an obstacle seen within this long is published again while the current scan "
        "neither sees it nor shows a plane passing through it at a height it was seen at (aegis.perception.lidar_memory); 0: off (s)",
    )
    memory_growth_mps: Annotated[float, Field(ge=0)] = Field(
        0.05, description="a remembered obstacle's uncertainty grows by this per second since it was seen (m/s)"
    )
    memory_blind_margin_m: Annotated[float, Field(ge=0)] = Field(
        0.1,
        description="a plane whose emitter lies within this of a remembered footprint is no evidence it is gone: the "
        "emitter may be inside the thing, whose rays do not see it (m)",
    )

    @field_validator("plane_offsets_m")
    @classmethod
    def _ascending(cls, offsets: tuple[float, ...]) -> tuple[float, ...]:
        if any(b <= a for a, b in zip(offsets, offsets[1:])) or not all(map(math.isfinite, offsets)):
            raise ValueError(f"plane_offsets_m must be finite and strictly ascending, got {list(offsets)}")
        return offsets

    def fit_params(self) -> LidarFitParams:
        return LidarFitParams(
            range_noise_std_m=self.range_noise_std_m,
            breakpoint_angle_rad=math.radians(self.breakpoint_angle_deg),
            max_gap_beams=self.max_gap_beams,
            min_points=self.min_points,
            max_circle_radius_m=self.max_circle_radius_m,
            circle_residual_m=self.circle_residual_m,
            split_distance_m=self.split_distance_m,
        )


class LidarObstacles(Node):
    """Scan in, obstacles out (world frame, with uncertainty), posed with the odometry at the scan's stamp."""

    type_name = "lidar_obstacles"
    inputs = (
        Port("scan", LaserScan, "/scan", description="planar range scan (laser frame: yaw-only, at mount_xy_m)"),
        Port("state", RobotState, "/odom", description="odometry (pose and covariance; twist in the body frame)"),
        Port("points", PointCloud, "/points", description="the planes' own returns, organized (with plane_offsets_m)"),
    )
    outputs = (Port("obstacles", Obstacles, "/obstacles", description="obstacles seen, world frame, with uncertainty_m"),)
    Params = LidarObstaclesParams
    trigger = "scan"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fit = self.params.fit_params()
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self.scans = 0
        self.scans_without_pose = 0
        self.scans_without_points = 0
        self.obstacles_published = 0
        self.remembered_published = 0
        self._memory: list[Remembered] = []

    def metrics(self) -> dict[str, Any]:
        """Scans processed, scans dropped for want of a pose at their stamp, obstacles published (and, with planes, scans
        fitted flattened for want of their cloud)."""
        counts = {
            "perception_scans": self.scans,
            "perception_scans_without_pose": self.scans_without_pose,
            "perception_obstacles": self.obstacles_published,
        }
        if self.params.plane_offsets_m:  # scans fitted flattened for want of their cloud
            counts["perception_scans_without_points"] = self.scans_without_points
            counts["perception_remembered_obstacles"] = self.remembered_published
        return counts

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        received = inputs.get("scan")
        if received is None:
            return {}
        scan: LaserScan = received.msg
        self.scans += 1
        pose = self._pose_at(scan.stamp, inputs.get("state"))
        if pose is None:
            self.scans_without_pose += 1
            return {}
        xy_yaw, covariance, frame_id = pose
        planes = self._planes(scan, inputs.get("points")) if self.params.plane_offsets_m else None
        if planes is not None:
            obstacles = self._layered(scan, planes, xy_yaw, covariance, float(inputs["state"].msg.position[2]))
        else:
            found = detect(
                scan.ranges, scan.angle_min, scan.angle_increment, scan.range_min, scan.range_max,
                xy_yaw, covariance, self.params.mount_xy_m, self._fit,
            )
            obstacles = self._obstacles(found)
        msg = Obstacles(stamp=scan.stamp, frame_id=frame_id, obstacles=obstacles)
        self.obstacles_published += len(msg.obstacles)
        return {"obstacles": msg}

    def _pose_at(self, stamp: float, received: Received | None) -> tuple[tuple[float, float, float], np.ndarray, str] | None:
        """(x, y, yaw) at ``stamp`` from the latest odometry and its twist, its pose covariance and frame; None when unusable."""
        if received is None or not received.msg.is_usable():
            return None
        state: RobotState = received.msg
        gap = stamp - state.stamp
        if abs(gap) > self.params.max_pose_gap_s:
            return None
        qx, qy, qz, qw = state.orientation
        yaw = math.atan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz))
        v, omega = float(state.linear_velocity[0]), float(state.angular_velocity[2])
        x, y = float(state.position[0]), float(state.position[1])
        if gap != 0.0:  # unicycle motion over the gap (the midpoint heading: exact enough for a few ms)
            mid = yaw + 0.5 * omega * gap
            x, y, yaw = x + v * gap * math.cos(mid), y + v * gap * math.sin(mid), yaw + omega * gap
        return (x, y, yaw), state.pose_covariance, state.frame_id

    def _planes(self, scan: LaserScan, received: Received | None) -> np.ndarray | None:
        """Each plane's ranges (planes, beams) from the cloud taken with ``scan``; None (counted) when there is none, it is
        from another instant, or its shape is not (planes, beams): the flattened scan is used then (every return full height)."""
        cloud = None if received is None else received.msg
        if cloud is None or cloud.stamp != scan.stamp or cloud.points.shape[:2] != (len(self.params.plane_offsets_m), scan.ranges.size):
            self.scans_without_points += 1
            return None
        return np.hypot(cloud.points[..., 0], cloud.points[..., 1])

    def _layered(self, scan: LaserScan, planes: np.ndarray, xy_yaw: tuple[float, float, float], covariance: np.ndarray, z: float) -> list[Obstacle]:
        p = self.params
        z_var = float(covariance[2, 2])
        margin = p.plane_margin_m + (math.sqrt(z_var) if math.isfinite(z_var) and z_var > 0 else 0.0)
        plane_z = z + p.mount_z_m + np.asarray(p.plane_offsets_m)
        layers = detect_layers(
            planes, plane_z, scan.angle_min, scan.angle_increment, scan.range_min, scan.range_max,
            xy_yaw, covariance, p.mount_xy_m, self._fit, margin,
        )
        merged = merge_layers(layers, p.wall_thickness_m, p.merge_distance_m)
        obstacles = obstacles_from_merged(merged, 0.0, p.obstacle_height_m)
        if p.memory_s <= 0.0 or not np.all(np.isfinite(plane_z)):
            return obstacles
        x, y, yaw = xy_yaw
        c, s = math.cos(yaw), math.sin(yaw)
        origin = (x + c * p.mount_xy_m[0] - s * p.mount_xy_m[1], y + s * p.mount_xy_m[0] + c * p.mount_xy_m[1])
        angles = yaw + scan.angle_min + scan.angle_increment * np.arange(planes.shape[1])
        memory = MemoryParams(p.memory_s, p.memory_growth_mps, p.memory_blind_margin_m, margin,
                              3.0 * p.range_noise_std_m, p.merge_distance_m)
        self._memory, remembered = recall(self._memory, seen(merged, plane_z, scan.stamp), planes, plane_z, origin, angles,
                                          scan.stamp, memory)
        recalled = obstacles_from_merged(remembered, 0.0, p.obstacle_height_m)
        self.remembered_published += len(recalled)
        for k, obstacle in enumerate(recalled):
            obstacle.id = len(obstacles) + k
        return obstacles + recalled

    def _obstacles(self, found: ScanObstacles) -> list[Obstacle]:
        return obstacles_from_fit(found, 0.0, self.params.obstacle_height_m, self.params.wall_thickness_m)


def obstacles_from_fit(found: ScanObstacles, bottom: float, top: float, thickness: float, first_id: int = 0) -> list[Obstacle]:
    """A planar fit's circles as upright cylinders and its faces as boxes ``thickness`` deep behind them, each standing
    from z = ``bottom`` to z = ``top`` (world frame; finite, top > bottom), ids counting up from ``first_id``.

    The planar scan's obstacles stand from the ground (0) to ``obstacle_height_m``; a multi-plane lidar's are
    :func:`obstacles_from_merged`.
    """
    height, z_centre = top - bottom, 0.5 * (top + bottom)
    obstacles: list[Obstacle] = []
    for (cx, cy), radius, sigma in zip(found.centres.tolist(), found.radii.tolist(), found.circle_sigma_m.tolist()):
        diameter = 2.0 * radius
        obstacles.append(Obstacle(
            id=first_id + len(obstacles), shape="cylinder", position=np.array([cx, cy, z_centre]),
            size=np.array([diameter, diameter, height]), uncertainty_m=sigma,
        ))
    for start, end, normal, sigma in zip(found.starts, found.ends, found.normals, found.segment_sigma_m.tolist()):
        direction = end - start
        length = float(np.hypot(direction[0], direction[1]))
        yaw = math.atan2(direction[1], direction[0]) if length > 1e-9 else math.atan2(normal[1], normal[0]) + 0.5 * math.pi
        centre = 0.5 * (start + end) + 0.5 * thickness * normal
        obstacles.append(Obstacle(
            id=first_id + len(obstacles), shape="box", position=np.array([centre[0], centre[1], z_centre]),
            size=np.array([max(length, 1e-3), thickness, height]),
            orientation=np.array([0.0, 0.0, math.sin(0.5 * yaw), math.cos(0.5 * yaw)]), uncertainty_m=sigma,
        ))
    return obstacles


def obstacles_from_merged(merged: list[MergedObstacle], ground_z: float, ceiling_z: float) -> list[Obstacle]:
    """A multi-plane fit's obstacles after the planes' copies are joined (aegis.perception.lidar_merge): circles as
    upright cylinders, the rest as yawed boxes, each from its bottom (an unbounded one at ``ground_z``) to its top (an
    unbounded one at ``ceiling_z``); one whose clamped extent is empty gives none."""
    obstacles: list[Obstacle] = []
    for m in merged:
        bottom, top = max(m.bottom, ground_z), min(m.top, ceiling_z)
        if not top > bottom:
            continue
        position = np.array([m.centre[0], m.centre[1], 0.5 * (bottom + top)])
        if m.shape == "circle":
            diameter = 2.0 * m.radius
            obstacles.append(Obstacle(
                id=len(obstacles), shape="cylinder", position=position, size=np.array([diameter, diameter, top - bottom]),
                uncertainty_m=m.sigma_m,
            ))
        else:
            obstacles.append(Obstacle(
                id=len(obstacles), shape="box", position=position, size=np.array([max(m.length, 1e-3), m.depth, top - bottom]),
                orientation=np.array([0.0, 0.0, math.sin(0.5 * m.yaw), math.cos(0.5 * m.yaw)]), uncertainty_m=m.sigma_m,
            ))
    return obstacles
