"""Depth obstacles (aegis.perception.depth and the depth_obstacles node) on images from the real PyBullet camera."""

from __future__ import annotations

import math

import numpy as np
import pybullet
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aegis.msgs import Image, RobotState
from aegis.node import Received
from aegis.nodes.depth_obstacles import DepthObstacles
from aegis.perception.depth import DepthMapperSettings, DepthObstacleMapper
from aegis.sim.sensors.camera import Camera, CameraParams

IDENTITY = np.eye(3)


@pytest.fixture
def world():
    client = pybullet.connect(pybullet.DIRECT)
    yield client
    pybullet.disconnect(client)


def _sphere(client: int, centre, radius: float) -> int:
    shape = pybullet.createCollisionShape(pybullet.GEOM_SPHERE, radius=radius, physicsClientId=client)
    return pybullet.createMultiBody(0, shape, basePosition=list(centre), physicsClientId=client)


def _box(client: int, centre, half_extents) -> None:
    shape = pybullet.createCollisionShape(pybullet.GEOM_BOX, halfExtents=list(half_extents), physicsClientId=client)
    pybullet.createMultiBody(0, shape, basePosition=list(centre), physicsClientId=client)


def _depth(client: int, position, yaw: float = 0.0, pitch: float = 0.0, width: int = 64, height: int = 48) -> np.ndarray:
    camera = Camera(client, CameraParams(width_px=width, height_px=height, rgb=False, mount_pitch_rad=pitch))
    return camera.capture(position, [0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)], 0.0)["depth"].data


def _yaw(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _inside(box, points: np.ndarray, slack: float = 0.0) -> bool:
    if box.shape == "cylinder":
        radial = np.hypot(points[:, 0] - box.centre[0], points[:, 1] - box.centre[1])
        return bool(np.all(radial <= box.extents[0] / 2 + slack) and np.all(np.abs(points[:, 2] - box.centre[2]) <= box.extents[2] / 2 + slack))
    c, s = math.cos(box.yaw_rad), math.sin(box.yaw_rad)
    offset = points - box.centre
    local = np.stack([c * offset[:, 0] + s * offset[:, 1], -s * offset[:, 0] + c * offset[:, 1], offset[:, 2]], axis=1)
    return bool(np.all(np.abs(local) <= box.extents / 2 + slack))


def _sphere_surface(centre, radius: float, n: int = 400) -> np.ndarray:
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(n, 3))
    return np.asarray(centre) + radius * directions / np.linalg.norm(directions, axis=1, keepdims=True)


def test_a_sphere_ahead_is_one_box_that_holds_all_of_it(world):
    _sphere(world, (2.0, 0.2, 1.0), 0.3)
    mapper = DepthObstacleMapper(DepthMapperSettings())
    boxes = mapper.update(_depth(world, (0.0, 0.0, 1.0)), np.array([0.0, 0.0, 1.0]), IDENTITY, 0.0)
    assert len(boxes) == 1
    # the camera saw the near half; the box covers the far half too, to within half a voxel (grown away
    # from the camera until as deep as it is wide)
    assert _inside(boxes[0], _sphere_surface((2.0, 0.2, 1.0), 0.3), slack=0.05)
    assert not _inside(boxes[0], _sphere_surface((2.0, 0.2, 1.0), 0.3), slack=-0.05)  # and not much more
    assert np.linalg.norm(boxes[0].centre - [2.0, 0.2, 1.0]) < 0.3
    assert 0.0 < boxes[0].sigma_m < 0.05  # 1 % of the 1.7 m range


def test_a_pillar_is_a_cylinder_of_its_radius_and_a_box_is_not(world):
    shape = pybullet.createCollisionShape(pybullet.GEOM_CYLINDER, radius=0.3, height=2.0, physicsClientId=world)
    pybullet.createMultiBody(0, shape, basePosition=[2.5, 0.3, 1.0], physicsClientId=world)
    _box(world, (2.5, -1.2, 1.0), (0.3, 0.3, 0.3))
    mapper = DepthObstacleMapper(DepthMapperSettings(voxel_m=0.05))
    shapes = mapper.update(_depth(world, (0.0, 0.0, 1.0), width=160, height=120), np.array([0.0, 0.0, 1.0]), IDENTITY, 0.0)
    [pillar] = [s for s in shapes if s.shape == "cylinder"]
    assert np.hypot(*(pillar.centre[:2] - [2.5, 0.3])) < 0.08
    assert 0.3 <= pillar.extents[0] / 2 < 0.4  # every voxel column inside: the pillar held, not much more
    assert [s.shape for s in shapes if s is not pillar] == ["box"]


@pytest.mark.parametrize("centre_xy, radius", [((2.5, 0.3), 0.3), ((2.0, 1.2), 0.25), ((1.5, -0.4), 0.15)])
def test_a_pillar_is_fitted_where_its_surface_is_not_where_its_voxels_are(world, centre_xy, radius):
    # the circle goes through the points' centroid in each voxel column: on the surface, so the centre is
    # found to within a centimetre and the radius holds the surface with half a voxel to spare (fitted to
    # the voxel columns' centres instead, the centre was 2-2.5 cm off and the near face 6-7 cm too near)
    shape = pybullet.createCollisionShape(pybullet.GEOM_CYLINDER, radius=radius, height=2.0, physicsClientId=world)
    pybullet.createMultiBody(0, shape, basePosition=[*centre_xy, 1.0], physicsClientId=world)
    mapper = DepthObstacleMapper(DepthMapperSettings(voxel_m=0.05))
    [pillar] = mapper.update(_depth(world, (0.0, 0.0, 1.0), width=80, height=48), np.array([0.0, 0.0, 1.0]), IDENTITY, 0.0)
    assert pillar.shape == "cylinder"
    assert np.hypot(*(pillar.centre[:2] - centre_xy)) < 0.01
    assert radius <= pillar.extents[0] / 2 <= radius + 0.03


def test_a_box_seen_at_an_angle_is_held_and_two_things_apart_are_two_boxes(world):
    _box(world, (2.5, -0.8, 1.0), (0.2, 0.3, 0.4))
    _sphere(world, (2.0, 0.8, 1.2), 0.25)
    mapper = DepthObstacleMapper(DepthMapperSettings())
    boxes = mapper.update(_depth(world, (0.0, 0.0, 1.0)), np.array([0.0, 0.0, 1.0]), IDENTITY, 0.0)
    assert len(boxes) == 2
    box_corners = np.array([[2.5 + sx * 0.2, -0.8 + sy * 0.3, 1.0 + sz * 0.4] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    assert any(_inside(b, box_corners, slack=0.05) for b in boxes)
    assert any(_inside(b, _sphere_surface((2.0, 0.8, 1.2), 0.25), slack=0.05) for b in boxes)


def test_a_yawed_box_seen_at_its_corner_is_that_box(world):
    # husky_goal's first box (1 m cube, yaw 0.3) from the Husky's camera at the start: two faces, an L of equal legs
    shape = pybullet.createCollisionShape(pybullet.GEOM_BOX, halfExtents=[0.5, 0.5, 0.5], physicsClientId=world)
    orientation = pybullet.getQuaternionFromEuler([0.0, 0.0, 0.3])
    pybullet.createMultiBody(0, shape, basePosition=[2.0, -0.6, 0.5], baseOrientation=orientation, physicsClientId=world)
    mapper = DepthObstacleMapper(DepthMapperSettings(voxel_m=0.05, ground_z_m=0.1))
    [box] = mapper.update(_depth(world, (0.0, 0.0, 0.5), width=80, height=48), np.array([0.0, 0.0, 0.5]), IDENTITY, 0.0)
    assert box.shape == "box"
    assert abs((math.degrees(box.yaw_rad) - 17.19 + 45.0) % 90.0 - 45.0) < 5.0  # its yaw, modulo a quarter turn
    assert np.hypot(*(box.centre[:2] - [2.0, -0.6])) < 0.1
    corners = np.array([[2.0 + sx * 0.5 * math.cos(0.3) - sy * 0.5 * math.sin(0.3), -0.6 + sx * 0.5 * math.sin(0.3) + sy * 0.5 * math.cos(0.3), 0.5]
                        for sx in (-1, 1) for sy in (-1, 1)])
    assert _inside(box, corners, slack=0.05)


def test_the_floor_is_not_an_obstacle_and_nothing_seen_is_no_box(world):
    plane = pybullet.createCollisionShape(pybullet.GEOM_PLANE, physicsClientId=world)
    pybullet.createMultiBody(0, plane, physicsClientId=world)
    settings_ = DepthMapperSettings(mount_pitch_rad=0.5)
    mapper = DepthObstacleMapper(settings_)
    depth = _depth(world, (0.0, 0.0, 1.0), pitch=0.5)
    assert np.isfinite(depth).sum() > 100  # the camera does see the floor
    assert mapper.update(depth, np.array([0.0, 0.0, 1.0]), IDENTITY, 0.0) == []


def test_a_pose_moves_the_obstacle_into_the_world_frame(world):
    # the camera 1 m to the left and turned 90 degrees: the sphere at (0, 3) is 2 m straight ahead of it
    _sphere(world, (0.0, 3.0, 1.0), 0.3)
    mapper = DepthObstacleMapper(DepthMapperSettings())
    boxes = mapper.update(_depth(world, (0.0, 1.0, 1.0), yaw=math.pi / 2), np.array([0.0, 1.0, 1.0]), _yaw(math.pi / 2), 0.0)
    assert len(boxes) == 1 and _inside(boxes[0], _sphere_surface((0.0, 3.0, 1.0), 0.3), slack=0.05)


def test_the_map_remembers_what_it_saw_for_memory_s_then_forgets(world):
    _sphere(world, (2.0, 0.0, 1.0), 0.3)
    mapper = DepthObstacleMapper(DepthMapperSettings(memory_s=1.0))
    here = np.array([0.0, 0.0, 1.0])
    assert len(mapper.update(_depth(world, here), here, IDENTITY, 0.0)) == 1
    away = _depth(world, here, yaw=math.pi)  # looking the other way: nothing in view
    assert len(mapper.update(away, here, _yaw(math.pi), 0.9)) == 1  # beside the robot still
    assert mapper.update(away, here, _yaw(math.pi), 1.1) == []


def test_what_moved_away_in_view_is_forgotten_at_once(world):
    body = _sphere(world, (2.0, 0.0, 1.0), 0.3)
    _sphere(world, (3.5, 1.5, 1.0), 0.3)
    mapper = DepthObstacleMapper(DepthMapperSettings())
    here = np.array([0.0, 0.0, 1.0])
    assert len(mapper.update(_depth(world, here), here, IDENTITY, 0.0)) == 2
    pybullet.removeBody(body, physicsClientId=world)  # the first one walks off; the camera now sees through its place
    [left] = mapper.update(_depth(world, here), here, IDENTITY, 0.1)
    assert np.hypot(*(left.centre[:2] - [3.5, 1.5])) < 0.3


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, (12, 16), elements=st.floats(width=32, allow_nan=True, allow_infinity=True)))
def test_any_depth_values_give_finite_boxes_and_never_raise(depth):
    mapper = DepthObstacleMapper(DepthMapperSettings(min_voxels=1))
    for box in mapper.update(depth, np.array([0.0, 0.0, 1.0]), IDENTITY, 0.0):
        assert np.all(np.isfinite(box.centre)) and np.all(box.extents > 0) and math.isfinite(box.sigma_m)


def _node() -> DepthObstacles:
    return DepthObstacles("depth")


def test_the_node_publishes_boxes_with_uncertainty_at_the_image_stamp(world):
    _sphere(world, (2.0, 0.0, 1.0), 0.3)
    node = _node()
    image = Image(stamp=1.0, frame_id="camera_optical_frame", encoding="32FC1", data=_depth(world, (0.0, 0.0, 1.0)))
    state = RobotState(stamp=0.99, position=np.array([0.0, 0.0, 1.0]))
    out = node.step(1.0, {"depth": Received(image, 0.0, False), "state": Received(state, 0.01, False)})
    [obstacle] = out["obstacles"].obstacles
    assert out["obstacles"].stamp == 1.0 and obstacle.shape == "box" and obstacle.uncertainty_m > 0
    assert abs(obstacle.position[1]) < 0.1


def test_the_node_publishes_nothing_without_a_pose_or_a_depth_image(world):
    node = _node()
    depth = _depth(world, (0.0, 0.0, 1.0))
    image = Image(stamp=1.0, frame_id="camera_optical_frame", encoding="32FC1", data=depth)
    assert node.step(1.0, {"depth": Received(image, 0.0, False), "state": None}) == {}
    old = RobotState(stamp=0.5, position=np.array([0.0, 0.0, 1.0]))
    assert node.step(1.0, {"depth": Received(image, 0.0, False), "state": Received(old, 0.5, False)}) == {}
    rgb = Image(stamp=1.0, frame_id="camera", encoding="mono8", data=np.zeros((48, 64), dtype=np.uint8))
    assert node.step(1.0, {"depth": Received(rgb, 0.0, False), "state": Received(old, 0.0, False)}) == {}
    assert node.metrics() == {
        "perception_frames": 3, "perception_frames_without_pose": 2,
        "perception_frames_not_depth": 1, "perception_obstacles": 0,
    }
