"""Simulated sensors alone (aegis.sim.sensors): lidar and camera against analytic geometry, noise, latency, rates.

PyBullet in DIRECT mode, static scenes built here, fixed seeds. Every expected range or depth is
computed from the scene's geometry in the test, not recorded from a run.
"""

from __future__ import annotations

import ast
import copy
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

pybullet = pytest.importorskip("pybullet")

from aegis.msgs import ImuSample, RobotState, messages_equal  # noqa: E402
from aegis.sim.sensors import camera as camera_module  # noqa: E402
from aegis.sim.sensors import lidar as lidar_module  # noqa: E402
from aegis.sim.sensors import (  # noqa: E402
    Camera,
    CameraParams,
    DelayLine,
    Lidar2D,
    LidarParams,
    NoiseParams,
    decimation,
    noisy_imu,
    noisy_state,
    perturb_quaternion,
)

IDENTITY = (0.0, 0.0, 0.0, 1.0)


def yaw_q(yaw: float) -> tuple[float, float, float, float]:
    return (0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0))


def pitch_q(pitch: float) -> tuple[float, float, float, float]:
    return (0.0, math.sin(pitch / 2.0), 0.0, math.cos(pitch / 2.0))


@pytest.fixture
def client() -> Iterator[int]:
    cid = pybullet.connect(pybullet.DIRECT)
    yield cid
    pybullet.disconnect(physicsClientId=cid)


def box(cid: int, centre: tuple[float, float, float], half: tuple[float, float, float], mass: float = 0.0) -> int:
    shape = pybullet.createCollisionShape(pybullet.GEOM_BOX, halfExtents=list(half), physicsClientId=cid)
    return pybullet.createMultiBody(mass, shape, -1, list(centre), physicsClientId=cid)


def cylinder(cid: int, centre: tuple[float, float, float], radius: float, height: float) -> int:
    shape = pybullet.createCollisionShape(pybullet.GEOM_CYLINDER, radius=radius, height=height, physicsClientId=cid)
    return pybullet.createMultiBody(0.0, shape, -1, list(centre), physicsClientId=cid)


def ground(cid: int) -> int:
    shape = pybullet.createCollisionShape(pybullet.GEOM_PLANE, physicsClientId=cid)
    return pybullet.createMultiBody(0.0, shape, -1, physicsClientId=cid)


# A wall whose near face is the plane x = WALL_X, |y| <= WALL_HALF_Y, |z| <= 1.
WALL_X, WALL_HALF_Y = 2.0, 3.0


def wall(cid: int) -> int:
    return box(cid, (WALL_X + 0.05, 0.0, 0.0), (0.05, WALL_HALF_Y, 1.0))


def expected_wall_ranges(angles: np.ndarray, range_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distance to the wall plane along each beam from the origin, beams surely hitting, beams surely missing)."""
    cos = np.cos(angles)
    with np.errstate(divide="ignore"):
        distance = np.where(cos > 0, WALL_X / cos, np.inf)
    y = np.abs(distance * np.sin(angles))
    margin = 0.01  # keep beams that graze the wall's edge or the range limit out of both sets
    hit = (cos > 0) & (y < WALL_HALF_Y - margin) & (distance < range_max - margin)
    miss = (cos <= 0) | (y > WALL_HALF_Y + margin) | (distance > range_max + margin)
    return distance, hit, miss


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- lidar ------------------------------------------------------------------------------------


def test_lidar_ranges_to_a_wall_match_geometry_and_misses_are_inf(client: int) -> None:
    wall(client)
    params = LidarParams(num_beams=360, range_max_m=5.0)
    scan = Lidar2D(client, params).scan((0.0, 0.0, 0.0), IDENTITY, stamp=1.25, rng=rng())
    distance, hit, miss = expected_wall_ranges(Lidar2D(client, params).angles, params.range_max_m)
    assert hit.sum() > 80 and miss.sum() > 150  # both cases are really exercised (5 m reaches +-63 deg)
    assert scan.ranges.dtype == np.float32 and scan.ranges.shape == (360,)
    np.testing.assert_allclose(scan.ranges[hit], distance[hit], atol=1e-3)
    assert np.all(np.isposinf(scan.ranges[miss]))
    assert scan.stamp == 1.25 and scan.frame_id == "laser"
    assert scan.angle_min == np.float32(params.angle_min_rad) and scan.angle_max == np.float32(params.angle_max_rad)
    assert scan.angle_increment == pytest.approx(math.radians(1.0), rel=1e-6)
    assert scan.scan_time == pytest.approx(1.0 / params.rate_hz) and scan.time_increment == 0.0
    assert (scan.range_min, scan.range_max) == (np.float32(0.1), np.float32(5.0))


def test_lidar_mount_offset_moves_the_laser_origin(client: int) -> None:
    wall(client)
    params = LidarParams(num_beams=3, angle_min_rad=-0.2, angle_max_rad=0.2, mount_xyz_m=(0.5, 0.0, 0.3))
    scan = Lidar2D(client, params).scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng())
    expected = (WALL_X - 0.5) / np.cos([-0.2, 0.0, 0.2])
    np.testing.assert_allclose(scan.ranges, expected, atol=1e-3)


def test_lidar_planes_see_what_one_plane_misses_above_and_below_and_keep_the_nearest_return(client: int) -> None:
    """A panel whose lower edge is 4 cm above the laser and a bar 4 cm below it: one plane sees neither, the band both."""
    box(client, (1.0, 0.0, 0.04 + 0.5), (0.05, 0.3, 0.5))   # ahead (+x), from 4 cm above the laser upwards
    box(client, (0.0, 2.0, -0.04 - 0.02), (0.3, 0.05, 0.02))  # to the left (+y), a 4 cm bar just below it
    beams = {"num_beams": 4, "angle_min_rad": 0.0, "angle_max_rad": 1.5 * math.pi, "range_max_m": 5.0}
    one = Lidar2D(client, LidarParams(**beams)).scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng())
    assert np.all(np.isposinf(one.ranges))
    band = LidarParams(**beams, plane_offsets_m=(-0.06, 0.0, 0.06))
    scan = Lidar2D(client, band).scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng())
    np.testing.assert_allclose(scan.ranges[:2], [0.95, 1.95], atol=1e-3)
    assert np.all(np.isposinf(scan.ranges[2:]))
    with pytest.raises(ValidationError, match="plane_offsets_m"):
        LidarParams(plane_offsets_m=())


def test_lidar_point_cloud_keeps_each_planes_own_returns_in_rows_nan_where_none(client: int) -> None:
    """The same panel and bar: the cloud's row k is plane k alone, beam i in column i, in the laser frame (z = the plane)."""
    box(client, (1.0, 0.0, 0.04 + 0.5), (0.05, 0.3, 0.5))
    box(client, (0.0, 2.0, -0.04 - 0.02), (0.3, 0.05, 0.02))
    beams = {"num_beams": 4, "angle_min_rad": 0.0, "angle_max_rad": 1.5 * math.pi, "range_max_m": 5.0}
    lidar = Lidar2D(client, LidarParams(**beams, plane_offsets_m=(-0.06, 0.0, 0.06), point_cloud=True))
    scan = lidar.scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.5, rng=rng())
    cloud = lidar.cloud(scan.stamp, rng())
    assert cloud.stamp == 0.5 and cloud.frame_id == scan.frame_id and cloud.points.shape == (3, 4, 3)
    np.testing.assert_allclose(cloud.points[2, 0], [0.95, 0.0, 0.06], atol=1e-3)  # only the top plane sees the panel
    np.testing.assert_allclose(cloud.points[0, 1], [0.0, 1.95, -0.06], atol=1e-3)  # only the bottom one the bar
    seen = np.isfinite(cloud.points[..., 0])
    assert seen.sum() == 2 and np.array_equal(np.isfinite(cloud.points).all(axis=-1), seen)
    with pytest.raises(RuntimeError, match="point_cloud"):
        Lidar2D(client, LidarParams(**beams)).cloud(0.0, rng())


def test_lidar_inside_its_own_body_sees_out_of_it(client: int) -> None:
    wall(client)
    robot = box(client, (0.0, 0.0, 0.0), (0.3, 0.2, 0.1), mass=1.0)
    params = LidarParams(num_beams=360, range_max_m=5.0)
    lidar = Lidar2D(client, params, exclude_body=robot)
    scan = lidar.scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng())
    distance, hit, miss = expected_wall_ranges(lidar.angles, params.range_max_m)
    np.testing.assert_allclose(scan.ranges[hit], distance[hit], atol=1e-3)
    assert np.all(np.isposinf(scan.ranges[miss]))


def test_lidar_beams_blocked_by_its_own_body_see_past_it(client: int) -> None:
    """A part of the robot in front of the laser (a mast, a bumper) is looked through, not reported."""
    wall(client)
    part_near_face = 0.4
    part = box(client, (part_near_face + 0.1, 0.0, 0.0), (0.1, 0.1, 0.1), mass=1.0)
    params = LidarParams(num_beams=3, angle_min_rad=-0.05, angle_max_rad=0.05)
    blocked = Lidar2D(client, params).scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng())
    np.testing.assert_allclose(blocked.ranges, part_near_face / np.cos([-0.05, 0.0, 0.05]), atol=1e-3)
    seen_past = Lidar2D(client, params, exclude_body=part).scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng())
    np.testing.assert_allclose(seen_past.ranges, WALL_X / np.cos([-0.05, 0.0, 0.05]), atol=1e-3)


def test_lidar_inside_its_own_sphere_sees_out_of_it(client: int) -> None:
    """Bullet reports a ray starting inside a sphere and heading past its centre as a hit at 0: such beams are cast again."""
    wall(client)
    sphere = pybullet.createCollisionShape(pybullet.GEOM_SPHERE, radius=0.25, physicsClientId=client)
    robot = pybullet.createMultiBody(1.0, sphere, -1, [0.0, 0.0, 0.0], physicsClientId=client)
    params = LidarParams(num_beams=90, angle_min_rad=-0.8, angle_max_rad=0.8, mount_xyz_m=(-0.1, 0.0, 0.0))
    lidar = Lidar2D(client, params, exclude_body=robot)
    scan = lidar.scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng())
    np.testing.assert_allclose(scan.ranges, (WALL_X + 0.1) / np.cos(lidar.angles), atol=1e-3)
    housing = Lidar2D(client, params).scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng())
    assert np.isneginf(housing.ranges).any()  # without exclude_body the laser reads its own housing


def test_lidar_beams_still_blocked_by_the_robot_read_nan(client: int, monkeypatch: pytest.MonkeyPatch) -> None:
    wall(client)
    part = box(client, (0.5, 0.0, 0.0), (0.1, 0.1, 0.1), mass=1.0)
    monkeypatch.setattr(lidar_module, "MAX_SELF_PASSES", 0)
    params = LidarParams(num_beams=3, angle_min_rad=-0.05, angle_max_rad=0.05)
    scan = Lidar2D(client, params, exclude_body=part).scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng())
    assert np.isnan(scan.ranges).all()


def test_lidar_yaw_moves_the_hit_to_the_expected_beam(client: int) -> None:
    radius, centre_x = 0.2, 3.0
    cylinder(client, (centre_x, 0.0, 0.0), radius, 1.0)
    params = LidarParams(num_beams=360)  # 1 degree apart, beam i at -180 + i degrees
    lidar = Lidar2D(client, params)
    for yaw_deg in (0.0, 30.0, -75.0):
        scan = lidar.scan((0.0, 0.0, 0.0), yaw_q(math.radians(yaw_deg)), stamp=0.0, rng=rng())
        # The pillar is at world bearing 0, so at bearing -yaw in the laser frame.
        index = round((math.radians(-yaw_deg) - params.angle_min_rad) / params.angle_increment_rad)
        assert int(np.nanargmin(scan.ranges)) == index
        assert scan.ranges[index] == pytest.approx(centre_x - radius, abs=1e-3)
        # Beams that cannot reach the pillar (angular radius atan(0.2/3) < 4 deg) read +inf.
        far = np.abs(np.angle(np.exp(1j * (lidar.angles - lidar.angles[index])))) > math.radians(5.0)
        assert np.all(np.isposinf(scan.ranges[far]))


def test_lidar_follows_full_attitude_unless_level(client: int) -> None:
    """Pitched 30 deg nose down at height h, the forward beam of a strapdown lidar hits the floor at h / sin(30 deg)."""
    ground(client)
    height, pitch = 0.8, math.radians(30.0)
    params = LidarParams(num_beams=360)
    forward = round(-params.angle_min_rad / params.angle_increment_rad)  # the beam at angle 0
    strapdown = Lidar2D(client, params).scan((0.0, 0.0, height), pitch_q(pitch), stamp=0.0, rng=rng())
    assert strapdown.ranges[forward] == pytest.approx(height / math.sin(pitch), abs=1e-3)
    level = Lidar2D(client, params.model_copy(update={"level": True}))
    scan = level.scan((0.0, 0.0, height), pitch_q(pitch), stamp=0.0, rng=rng())
    assert np.all(np.isposinf(scan.ranges))


def test_lidar_reports_too_close_as_minus_inf(client: int) -> None:
    box(client, (0.1, 0.0, 0.0), (0.05, 0.5, 0.5))  # near face at x = 0.05, inside range_min 0.1
    params = LidarParams(num_beams=1, angle_min_rad=0.0, angle_max_rad=0.0, range_min_m=0.1)
    scan = Lidar2D(client, params).scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng())
    assert np.isneginf(scan.ranges[0])


def test_lidar_noise_is_zero_mean_with_the_given_std_and_seeded(client: int) -> None:
    wall(client)
    angle = math.radians(40.0)
    base = LidarParams(num_beams=2000, angle_min_rad=-angle, angle_max_rad=angle)
    distance = WALL_X / np.cos(Lidar2D(client, base).angles)
    exact = Lidar2D(client, base).scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng(1))
    np.testing.assert_allclose(exact.ranges, distance, atol=1e-3)

    noisy = Lidar2D(client, base.model_copy(update={"noise_std_m": 0.02}))
    a = noisy.scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng(7))
    b = noisy.scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng(7))
    c = noisy.scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng(8))
    assert np.array_equal(a.ranges, b.ranges) and not np.array_equal(a.ranges, c.ranges)
    error = a.ranges - distance
    assert abs(error.mean()) < 0.003  # 2000 samples: the mean's std is 0.02 / sqrt(2000) = 0.00045
    assert 0.018 < error.std() < 0.022  # the std's std is about 0.02 / sqrt(4000) = 0.0003


def test_lidar_dropouts_are_nan_at_the_given_rate(client: int) -> None:
    wall(client)
    angle = math.radians(40.0)
    params = LidarParams(num_beams=2000, angle_min_rad=-angle, angle_max_rad=angle, dropout_prob=0.3)
    scan = Lidar2D(client, params).scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng(3))
    dropped = np.isnan(scan.ranges)
    assert 0.25 < dropped.mean() < 0.35  # binomial std sqrt(0.3 * 0.7 / 2000) = 0.01
    np.testing.assert_allclose(scan.ranges[~dropped], (WALL_X / np.cos(Lidar2D(client, params).angles))[~dropped], atol=1e-3)
    everything = Lidar2D(client, params.model_copy(update={"dropout_prob": 1.0}))
    assert np.all(np.isnan(everything.scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng()).ranges))


def test_lidar_sees_only_its_own_client(client: int) -> None:
    other = pybullet.connect(pybullet.DIRECT)
    try:
        wall(other)
        scan = Lidar2D(client, LidarParams()).scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng())
        assert np.all(np.isposinf(scan.ranges))
        scan = Lidar2D(other, LidarParams()).scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng())
        assert np.isfinite(scan.ranges).sum() > 50
    finally:
        pybullet.disconnect(physicsClientId=other)


def test_lidar_params_default_to_one_even_turn_for_any_beam_count() -> None:
    for beams in (1, 360, 720, 1081):
        params = LidarParams(num_beams=beams)
        if beams > 1:
            assert params.angle_increment_rad == pytest.approx(2.0 * math.pi / beams)
        assert params.angle_max_rad == pytest.approx(-math.pi + 2.0 * math.pi * (beams - 1) / beams)
    assert LidarParams(num_beams=4, angle_min_rad=0.0).angle_max_rad == pytest.approx(1.5 * math.pi)
    assert LidarParams(num_beams=3, angle_min_rad=-0.5, angle_max_rad=0.5).angle_increment_rad == 0.5


@pytest.mark.parametrize(
    ("update", "named"),
    [
        ({"range_min_m": 2.0, "range_max_m": 1.0}, "range_max_m"),
        ({"angle_min_rad": 0.0, "angle_max_rad": 7.0}, "angle_max_rad"),
        ({"num_beams": 1, "angle_min_rad": 0.0, "angle_max_rad": 0.5}, "angle_min_rad == angle_max_rad"),
        ({"dropout_prob": 1.5}, "dropout_prob"),
        ({"noise_std_m": -0.1}, "noise_std_m"),
        ({"beams": 10}, "beams"),
    ],
)
def test_lidar_params_refuse_bad_values_by_name(update: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        LidarParams(**update)


def test_lidar_refuses_a_bad_pose(client: int) -> None:
    lidar = Lidar2D(client, LidarParams())
    with pytest.raises(ValueError, match="zero length"):
        lidar.scan((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0), stamp=0.0, rng=rng())
    with pytest.raises(ValueError, match="position"):
        lidar.scan((0.0, math.nan, 0.0), IDENTITY, stamp=0.0, rng=rng())


# --- camera -----------------------------------------------------------------------------------


def test_camera_depth_of_a_plane_ahead_is_its_distance_everywhere(client: int) -> None:
    """REP 118 depth is along the optical axis, so a plane facing the camera reads the same in every pixel."""
    box(client, (3.05, 0.0, 1.0), (0.05, 10.0, 10.0))  # near face: x = 3
    for mount_x, yaw in ((0.0, 0.0), (0.5, 0.0)):
        camera = Camera(client, CameraParams(width_px=64, height_px=48, mount_xyz_m=(mount_x, 0.0, 0.0)))
        images = camera.capture((0.0, 0.0, 1.0), yaw_q(yaw), stamp=2.5)
        depth = images["depth"]
        assert depth.encoding == "32FC1" and depth.data.dtype == np.float32 and depth.data.shape == (48, 64)
        assert depth.stamp == 2.5 and depth.frame_id == "camera_optical_frame"
        np.testing.assert_allclose(depth.data, 3.0 - mount_x, atol=0.01)
        rgb = images["rgb"]
        assert rgb.encoding == "rgb8" and rgb.data.dtype == np.uint8 and rgb.data.shape == (48, 64, 3)
        assert rgb.data.flags.c_contiguous


def test_camera_turns_with_the_body_yaw(client: int) -> None:
    box(client, (0.0, 2.05, 1.0), (10.0, 0.05, 10.0))  # near face: y = 2
    camera = Camera(client, CameraParams(depth=True, rgb=False))
    looking_left = camera.capture((0.0, 0.0, 1.0), yaw_q(math.pi / 2.0), stamp=0.0)
    assert set(looking_left) == {"depth"}
    np.testing.assert_allclose(looking_left["depth"].data, 2.0, atol=0.01)
    looking_ahead = camera.capture((0.0, 0.0, 1.0), IDENTITY, stamp=0.0)["depth"].data
    assert np.isposinf(looking_ahead[:, looking_ahead.shape[1] // 2]).all()


def test_camera_rows_run_top_to_bottom_and_pitch_looks_down(client: int) -> None:
    ground(client)
    height = 1.0
    level = Camera(client, CameraParams(width_px=33, height_px=25, rgb=False)).capture(
        (0.0, 0.0, height), IDENTITY, stamp=0.0
    )["depth"].data
    assert np.isposinf(level[:13]).all() and np.isfinite(level[-6:]).all()  # sky on top, floor at the bottom
    pitch = math.radians(35.0)
    tilted = Camera(client, CameraParams(width_px=33, height_px=25, rgb=False, mount_pitch_rad=pitch)).capture(
        (0.0, 0.0, height), IDENTITY, stamp=0.0
    )["depth"].data
    # The odd-sized image's centre pixel lies on the optical axis, which meets the floor at h / sin(pitch).
    assert tilted[12, 16] == pytest.approx(height / math.sin(pitch), abs=0.01)


@pytest.mark.parametrize(("width", "height"), [(33, 25), (64, 48), (40, 30)])
def test_camera_depth_follows_its_pinhole_model_in_every_pixel(client: int, width: int, height: int) -> None:
    """Floor 1 m below and a wall 1 m to the right: each pixel's depth is what K says its ray meets."""
    ground(client)
    box(client, (0.0, -1.05, 0.0), (50.0, 0.05, 50.0))  # wall face: y = -1
    camera = Camera(client, CameraParams(width_px=width, height_px=height, rgb=False, far_m=30.0))
    depth = camera.capture((0.0, 0.0, 1.0), IDENTITY, stamp=0.0)["depth"].data.astype(np.float64)
    k = camera.camera_matrix
    assert k[0, 0] == k[1, 1] == pytest.approx(height / 2.0 / math.tan(math.radians(30.0)))
    assert (k[0, 2], k[1, 2]) == ((width - 1) / 2.0, (height - 1) / 2.0)
    # Optical frame: x right, y down, z forward. Pixel (u, v) looks along ((u - cx) / f, (v - cy) / f, 1);
    # that ray meets the floor (y = 1 m) at z = f / (v - cy) and the wall (x = 1 m) at z = f / (u - cx).
    u, v = np.meshgrid(np.arange(width) - k[0, 2], np.arange(height) - k[1, 2])
    with np.errstate(divide="ignore"):
        floor = np.where(v > 0, k[1, 1] / v, np.inf)
        side_wall = np.where(u > 0, k[0, 0] / u, np.inf)
    expected = np.minimum(floor, side_wall)
    seen = expected < 25.0
    assert seen.sum() > width * height / 3
    np.testing.assert_allclose(depth[seen], expected[seen], rtol=1e-3)
    assert np.isposinf(depth[expected > 35.0]).all()

def test_camera_columns_run_left_to_right(client: int) -> None:
    """An obstacle on the body's left (+y) shows in the left half, at the column its bearing gives."""
    cylinder(client, (3.0, 1.0, 1.0), 0.15, 4.0)
    camera = Camera(client, CameraParams(width_px=64, height_px=48, rgb=False))
    depth = camera.capture((0.0, 0.0, 1.0), IDENTITY, stamp=0.0)["depth"].data
    columns = np.flatnonzero(np.isfinite(depth[24]))
    assert columns.size > 0 and columns.max() < 32
    k = camera.camera_matrix
    assert columns.mean() == pytest.approx(k[0, 2] - k[0, 0] * 1.0 / 3.0, abs=1.0)

def test_camera_sees_nothing_as_plus_inf(client: int) -> None:
    images = Camera(client, CameraParams()).capture((0.0, 0.0, 1.0), IDENTITY, stamp=0.0)
    assert np.isposinf(images["depth"].data).all()
    assert images["rgb"].data.shape == (48, 64, 3)


def test_camera_params_refuse_bad_values_by_name() -> None:
    with pytest.raises(ValidationError, match="far_m"):
        CameraParams(near_m=1.0, far_m=0.5)
    with pytest.raises(ValidationError, match="rgb and depth"):
        CameraParams(rgb=False, depth=False)
    with pytest.raises(ValidationError, match="fov_deg"):
        CameraParams(fov_deg=180.0)
    with pytest.raises(ValidationError, match="width"):
        CameraParams(width=10)


class _ClientCheckingPyBullet:
    """Stands in for the pybullet module: every function call must name its client."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(pybullet, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            assert "physicsClientId" in kwargs, f"pybullet.{name} called without physicsClientId"
            self.calls.append(name)
            return attr(*args, **kwargs)

        return call


def test_every_pybullet_call_names_its_client(client: int, monkeypatch: pytest.MonkeyPatch) -> None:
    wall(client)
    part = box(client, (0.5, 0.0, 0.0), (0.1, 0.1, 0.1), mass=1.0)  # makes the lidar cast a second batch
    checker = _ClientCheckingPyBullet()
    monkeypatch.setattr(lidar_module, "pybullet", checker)
    monkeypatch.setattr(camera_module, "pybullet", checker)
    Lidar2D(client, LidarParams(), exclude_body=part).scan((0.0, 0.0, 0.0), IDENTITY, stamp=0.0, rng=rng())
    Camera(client, CameraParams()).capture((0.0, 0.0, 0.0), IDENTITY, stamp=0.0)
    assert checker.calls.count("rayTestBatch") == 2 and checker.calls.count("getAABB") == 1
    assert {"computeProjectionMatrix", "computeViewMatrix", "getCameraImage"} <= set(checker.calls)


def test_every_pybullet_call_in_the_source_names_its_client() -> None:
    calls = [
        (Path(module.__file__).name, node)
        for module in (lidar_module, camera_module)
        for node in ast.walk(ast.parse(Path(module.__file__).read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "pybullet"
    ]
    assert len(calls) >= 6
    missing = [f"{name}:{c.lineno} pybullet.{c.func.attr}" for name, c in calls if "physicsClientId" not in {k.arg for k in c.keywords}]
    assert not missing, missing


# --- odometry and IMU noise -------------------------------------------------------------------


def sample_state() -> RobotState:
    q = np.array([0.1, -0.2, 0.3, 0.9])
    return RobotState(
        stamp=4.0,
        position=[1.0, 2.0, 3.0],
        orientation=q / np.linalg.norm(q),
        linear_velocity=[0.5, -0.1, 0.2],
        angular_velocity=[0.01, 0.02, -0.3],
    )


def sample_imu() -> ImuSample:
    return ImuSample(
        stamp=4.0,
        orientation=np.array(yaw_q(0.4)),
        angular_velocity=[0.01, 0.02, -0.3],
        linear_acceleration=[0.1, 0.0, 9.81],
    )


NOISY = NoiseParams(
    position_std_m=0.02,
    orientation_std_rad=0.01,
    velocity_std_mps=0.05,
    angular_velocity_std_radps=0.03,
    imu_orientation_std_rad=0.01,
    gyro_std_radps=0.004,
    accel_std_mps2=0.08,
)


def test_zero_noise_is_exact_and_returns_new_messages() -> None:
    state, imu = sample_state(), sample_imu()
    out_state = noisy_state(state, NoiseParams(), rng())
    out_imu = noisy_imu(imu, NoiseParams(), rng())
    assert messages_equal(out_state, state) and out_state is not state and out_state.position is not state.position
    assert messages_equal(out_imu, imu) and out_imu is not imu and out_imu.orientation is not imu.orientation


def test_noise_is_seeded_and_leaves_its_inputs_alone() -> None:
    state, imu = sample_state(), sample_imu()
    state_before, imu_before = copy.deepcopy(state), copy.deepcopy(imu)
    a = noisy_state(state, NOISY, rng(5)), noisy_imu(imu, NOISY, rng(5))
    b = noisy_state(state, NOISY, rng(5)), noisy_imu(imu, NOISY, rng(5))
    c = noisy_state(state, NOISY, rng(6)), noisy_imu(imu, NOISY, rng(6))
    assert messages_equal(a[0], b[0]) and messages_equal(a[1], b[1])
    assert not messages_equal(a[0], c[0]) and not messages_equal(a[1], c[1])
    assert messages_equal(state, state_before) and messages_equal(imu, imu_before)
    assert a[0].stamp == state.stamp and a[1].frame_id == imu.frame_id


def test_noise_has_the_given_std_and_fills_the_covariance() -> None:
    state, generator = sample_state(), rng(11)
    draws = [noisy_state(state, NOISY, generator) for _ in range(2000)]
    position_error = np.array([d.position for d in draws]) - state.position
    velocity_error = np.array([d.linear_velocity for d in draws]) - state.linear_velocity
    assert np.all(np.abs(position_error.std(axis=0) / NOISY.position_std_m - 1.0) < 0.1)
    assert np.all(np.abs(velocity_error.std(axis=0) / NOISY.velocity_std_mps - 1.0) < 0.1)
    angles = [
        2.0 * math.acos(min(1.0, abs(float(np.dot(d.orientation, state.orientation))))) for d in draws
    ]
    # |d| for d ~ N(0, s^2 I3) has mean s * sqrt(8 / pi) (the Maxwell distribution).
    assert np.mean(angles) == pytest.approx(NOISY.orientation_std_rad * math.sqrt(8.0 / math.pi), rel=0.05)
    assert all(abs(np.linalg.norm(d.orientation) - 1.0) < 1e-12 for d in draws[:50])
    np.testing.assert_allclose(np.diag(draws[0].pose_covariance), [0.02**2] * 3 + [0.01**2] * 3)
    np.testing.assert_allclose(np.diag(draws[0].twist_covariance), [0.05**2] * 3 + [0.03**2] * 3)


def test_one_fields_noise_does_not_shift_anothers() -> None:
    state = sample_state()
    position_only = noisy_state(state, NoiseParams(position_std_m=0.02), rng(9))
    everything = noisy_state(state, NOISY, rng(9))
    assert np.array_equal(position_only.position, everything.position)


def test_imu_fields_marked_not_measured_stay_as_they_are() -> None:
    imu = ImuSample(orientation_covariance=np.diag([-1.0, 0.0, 0.0]), angular_velocity=[0.0, 0.0, 1.0])
    out = noisy_imu(imu, NOISY, rng())
    assert np.array_equal(out.orientation, imu.orientation)
    assert np.array_equal(out.orientation_covariance, imu.orientation_covariance)
    assert not np.array_equal(out.angular_velocity, imu.angular_velocity)
    np.testing.assert_allclose(np.diag(out.angular_velocity_covariance), [0.004**2] * 3)


def test_perturb_quaternion_turns_about_the_body_axis() -> None:
    q = np.array(yaw_q(0.3))
    np.testing.assert_allclose(perturb_quaternion(q, np.array([0.0, 0.0, 0.2])), yaw_q(0.5), atol=1e-15)
    assert np.array_equal(perturb_quaternion(q, np.zeros(3)), q)


def test_noise_params_scale_and_refuse_bad_values() -> None:
    doubled = NOISY.scaled(2.0)
    assert doubled.gyro_std_radps == 2.0 * NOISY.gyro_std_radps and doubled.position_std_m == 0.04
    assert NOISY.scaled(0.0) == NoiseParams()
    with pytest.raises(ValueError, match="scale factor"):
        NOISY.scaled(-1.0)
    with pytest.raises(ValidationError, match="accel_std_mps2"):
        NoiseParams(accel_std_mps2=-0.1)
    with pytest.raises(ValidationError, match="acc_std"):
        NoiseParams(acc_std=0.1)


# --- latency and rates ------------------------------------------------------------------------


def test_delay_line_releases_after_exactly_its_latency_and_keeps_stamps() -> None:
    line: DelayLine[RobotState] = DelayLine(0.03)
    measured = RobotState(stamp=0.1)
    line.push(measured, now=0.1)
    assert line.pop_ready(0.1) == [] and line.pop_ready(0.129_999_99) == []
    assert len(line) == 1
    released = line.pop_ready(0.13)  # 0.1 + 0.03 > 0.13 in floats; in nanoseconds it is exact
    assert len(released) == 1 and released[0] is measured and released[0].stamp == 0.1
    assert line.pop_ready(1.0) == [] and len(line) == 0


def test_delay_line_in_a_240_hz_loop_delivers_each_sample_latency_late() -> None:
    ticks = 240
    latency_ticks = 7
    line: DelayLine[RobotState] = DelayLine(latency_ticks / 240)
    delivered: list[tuple[int, float]] = []
    for k in range(ticks):
        now = k / 240
        line.push(RobotState(stamp=now), now)
        delivered += [(k, msg.stamp) for msg in line.pop_ready(now)]
    assert len(delivered) == ticks - latency_ticks
    assert all(stamp == (k - latency_ticks) / 240 for k, stamp in delivered)  # original stamps, in order


def test_delay_line_with_zero_latency_passes_through() -> None:
    line: DelayLine[str] = DelayLine(0.0)
    line.push("a", 0.5)
    line.push("b", 0.5)
    assert line.pop_ready(0.5) == ["a", "b"]


def test_delay_line_refuses_bad_latency_and_time_going_back() -> None:
    with pytest.raises(ValueError, match="latency_s"):
        DelayLine(-0.01)
    line: DelayLine[str] = DelayLine(0.01)
    line.push("a", 1.0)
    with pytest.raises(ValueError, match="backwards"):
        line.push("b", 0.5)
    line.clear()
    line.push("b", 0.5)
    assert line.pop_ready(0.51) == ["b"]


def test_decimation_divides_the_physics_rate_or_names_both_rates() -> None:
    assert decimation(10.0, 240.0) == 24
    assert decimation(240.0, 240.0) == 1
    assert decimation(30.0, 240.0, "camera") == 8
    with pytest.raises(ValueError, match=r"lidar: rate 7 Hz does not divide the physics rate 240 Hz"):
        decimation(7.0, 240.0, "lidar")
    with pytest.raises(ValueError, match="above the physics rate"):
        decimation(500.0, 240.0, "imu")
