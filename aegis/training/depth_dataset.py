"""The learned depth path's dataset: noisy depth images rendered among procedural layouts, labelled from the clean render.

:func:`generate` opens one PyBullet DIRECT client, and for each layout (the Husky's procedural
families, ``husky_clutter``, ``husky_gaps``, ``husky_wall``, ``husky_pocket``, drawn by
aegis.scenario.layouts for seeds from the dataset's stream, and the fixed ``husky_goal``, in turn)
spawns the obstacles and the Husky itself (its bumper is in the camera's view, as on the robot),
then renders ``poses_per_layout`` frames from random poses (uniform in the geofence, yaw toward the
goal +-100 degrees, or, half of them, toward a random obstacle +-30 degrees, at least ``min_clearance_m`` from every obstacle) with the camera of
husky_depth_sim.yaml (:data:`HUSKY_CAMERA`). Another robot is another :class:`DepthRig` (:data:`RIGS`):
the Crazyflie's (quadrotor_depth_sim.yaml's level forward camera, :data:`QUADROTOR_CAMERA`) takes
its frames among the quadrotor scenarios' layouts at a random flight height, nothing of itself in
view. Each frame gives:

* the INPUT: the render with a stereo camera's errors (aegis.sim.sensors.depth_noise, default
  parameters: z² noise, disparity quantisation, random and depth-edge holes), what the node will see;
* the LABEL: the K sector ranges of the CLEAN render (aegis.perception.depth_sectors
  ``SectorGeometry.labels``: nearest obstacle point above the floor per column band, the robot's own
  bumper excluded).

Everything is drawn from ``default_rng([seed, 13])``, so the same seed gives the same arrays (a test
checks it). `aegis train-depth`'s default 2,800 frames (2,000 + 400 + 400) render in under a minute here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aegis.perception.depth_sectors import SectorGeometry
from aegis.scenario.geometry import clearances
from aegis.sim.sensors.camera import CameraParams
from aegis.sim.sensors.depth_noise import DepthNoiseParams

HUSKY_CAMERA = CameraParams(
    width_px=80, height_px=48, fov_deg=58.0, near_m=0.1, far_m=10.0, mount_xyz_m=(0.35, 0.0, 0.45), mount_pitch_rad=0.2, rgb=False
)
"""The depth camera of hw_configs/husky_depth_sim.yaml (the models are trained for it)."""
QUADROTOR_CAMERA = CameraParams(
    width_px=80, height_px=48, fov_deg=58.0, near_m=0.05, far_m=10.0, mount_xyz_m=(0.05, 0.0, 0.0), mount_pitch_rad=0.0, rgb=False,
    rate_hz=48.0,
)
"""The forward depth camera of hw_configs/quadrotor_depth_sim.yaml: level, at the front of the body, one frame per control tick."""
LAYOUT_SCENARIOS = ("husky_clutter", "husky_gaps", "husky_wall", "husky_pocket", "husky_goal")
SECTORS = 16
MAX_RANGE_M = 5.0
GROUND_Z_M = 0.1
SELF_RADIUS_M = 0.6
STREAM = 13
FACING_OBSTACLE = 0.5


@dataclass(frozen=True)
class DepthRig:
    """A robot's depth camera and the scenes its depth-sector models learn from (``aegis train-depth --robot NAME``)."""

    name: str
    """The models' file prefix: ``<name>_depth_{cheap,large,window}.onnx``."""
    robot_kind: str
    camera: CameraParams
    scenarios: tuple[str, ...]
    """Shipped scenarios whose layouts (procedural ones drawn anew per batch of frames) the frames are taken among."""
    ground_z_m: float
    self_radius_m: float
    body_z_m: tuple[float, float]
    """The body origin's height, drawn uniformly in [low, high] per frame (a ground robot's is 0)."""
    min_clearance_m: float
    urdf: str | None
    """The robot's pybullet_data URDF, rendered where it stands (its bumper is in view); None: nothing of it in view."""


RIGS = {
    "husky": DepthRig("husky", "diff_drive", HUSKY_CAMERA, LAYOUT_SCENARIOS, GROUND_Z_M, SELF_RADIUS_M, (0.0, 0.0), 0.7, "husky/husky.urdf"),
    "quadrotor": DepthRig(
        "quadrotor", "quadrotor", QUADROTOR_CAMERA,
        ("quadrotor_clutter", "quadrotor_gaps", "quadrotor_wall", "quadrotor_pocket", "quadrotor_figure8"),
        GROUND_Z_M, 0.0, (0.6, 1.4), 0.3, None,
    ),
}
"""The rigs ``aegis train-depth --robot`` knows: the Husky of husky_depth_sim, the Crazyflie of quadrotor_depth_sim."""


def husky_geometry(sectors: int = SECTORS) -> SectorGeometry:
    """The sector geometry of :data:`HUSKY_CAMERA` with husky_depth_sim's depth node settings (max range, floor, bumper)."""
    return rig_geometry(RIGS["husky"], sectors)


def rig_geometry(rig: DepthRig, sectors: int = SECTORS) -> SectorGeometry:
    """The sector geometry of a rig's camera with its depth node's settings (max range, floor, the robot itself)."""
    c = rig.camera
    return SectorGeometry(
        c.width_px, c.height_px, c.fov_deg, tuple(c.mount_xyz_m), c.mount_pitch_rad,
        sectors=sectors, max_range_m=MAX_RANGE_M, ground_z_m=rig.ground_z_m, self_radius_m=rig.self_radius_m,
    )


@dataclass(frozen=True)
class DepthDataset:
    """Noisy depth images (N, H, W) float32 (NaN holes, +inf no return) and their true sector ranges (N, K) float32 (m)."""

    depth: np.ndarray
    ranges: np.ndarray

    def __len__(self) -> int:
        return len(self.ranges)


def generate(frames: int, seed: int, poses_per_layout: int = 20, min_clearance_m: float | None = None, rig: DepthRig = RIGS["husky"]) -> DepthDataset:
    """``frames`` labelled frames of ``rig``'s camera (module docstring); the same ``seed`` gives the same arrays."""
    import pybullet
    import pybullet_data

    from aegis.scenario.layouts import draw_layout
    from aegis.scenario.loader import load_scenario, shipped_scenario
    from aegis.sim import stdout_to_devnull
    from aegis.sim.obstacles import spawn_obstacles
    from aegis.sim.sensors.camera import Camera

    rng = np.random.default_rng([seed, STREAM])
    clearance = rig.min_clearance_m if min_clearance_m is None else min_clearance_m
    geometry = rig_geometry(rig)
    noise = DepthNoiseParams()
    scenarios = [load_scenario(shipped_scenario(name)) for name in rig.scenarios]
    depth = np.empty((frames, rig.camera.height_px, rig.camera.width_px), dtype=np.float32)
    ranges = np.empty((frames, geometry.sectors), dtype=np.float32)
    client = pybullet.connect(pybullet.DIRECT)
    try:
        camera = Camera(client, rig.camera)
        plane = pybullet.createCollisionShape(pybullet.GEOM_PLANE, physicsClientId=client)  # the floor, as aegis.sim.open_world makes it
        pybullet.createMultiBody(0.0, plane, -1, physicsClientId=client)
        body = None
        if rig.urdf is not None:
            with stdout_to_devnull():  # PyBullet warns about each link without inertia
                body = pybullet.loadURDF(str(Path(pybullet_data.getDataPath()) / rig.urdf), physicsClientId=client)
        low_z, high_z = rig.body_z_m
        n, layout_index = 0, 0
        while n < frames:
            scenario = scenarios[layout_index % len(scenarios)]
            layout_index += 1
            obstacles = draw_layout(scenario, int(rng.integers(2**31))) if scenario.layout is not None else scenario.obstacles
            spawned = spawn_obstacles(client, obstacles)
            low, high = np.asarray(scenario.geofence.min_m), np.asarray(scenario.geofence.max_m)
            goal = np.asarray(scenario.goal.position) if scenario.goal is not None else np.asarray(scenario.start.position) + [1.0, 0.0, 0.0]
            placed = 0
            for _ in range(poses_per_layout * 20):
                if placed == poses_per_layout or n == frames:
                    break
                xy = rng.uniform(low[:2] + 0.5, high[:2] - 0.5)
                z = float(rng.uniform(low_z, high_z)) if high_z > low_z else low_z  # a ground robot draws nothing: its frames as before
                if obstacles and clearances(obstacles, [xy[0], xy[1], z if high_z > 0 else 0.5]) < clearance:
                    continue
                if obstacles and rng.random() < FACING_OBSTACLE:  # half the frames look at an obstacle: near ones are what matters
                    target = np.asarray(obstacles[int(rng.integers(len(obstacles)))].position)[:2]
                    yaw = math.atan2(target[1] - xy[1], target[0] - xy[0]) + rng.uniform(-0.5, 0.5)
                else:
                    yaw = math.atan2(goal[1] - xy[1], goal[0] - xy[0]) + rng.uniform(-1.75, 1.75)
                orientation = [0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0)]
                if body is not None:
                    pybullet.resetBasePositionAndOrientation(body, [xy[0], xy[1], z], orientation, physicsClientId=client)
                clean = camera.capture([xy[0], xy[1], z], orientation, 0.0)["depth"].data
                ranges[n] = geometry.labels(clean, body_z_m=z)
                depth[n] = noisy_copy(clean, noise, rng)
                n += 1
                placed += 1
            spawned.remove()
    finally:
        pybullet.disconnect(client)
    return DepthDataset(depth=depth, ranges=ranges)


def noisy_copy(clean: np.ndarray, noise: DepthNoiseParams, rng: np.random.Generator) -> np.ndarray:
    """The stereo camera's view of a clean render (aegis.sim.sensors.depth_noise)."""
    from aegis.sim.sensors.depth_noise import noisy_depth

    return noisy_depth(clean, noise, rng)
