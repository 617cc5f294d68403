"""The lidar_obstacles node alone, with fixed inputs: obstacles placed with the pose at the scan's stamp, nothing without a pose."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aegis.msgs import LaserScan, PointCloud, RobotState
from aegis.node import Received
from aegis.nodes.lidar_obstacles import LidarObstacles, LidarObstaclesParams
from aegis.perception.synthetic import render_scan


def scan_of(circles, segments, sensor, stamp: float) -> LaserScan:
    ranges, angle_min, increment = render_scan(circles, segments, sensor, noise_std=0.005)
    return LaserScan(stamp=stamp, angle_min=angle_min, angle_max=angle_min + 359 * increment, angle_increment=increment,
                     range_min=0.1, range_max=10.0, ranges=ranges)


def odom(x: float, y: float, yaw: float, stamp: float, v: float = 0.0, omega: float = 0.0, std: float = 0.0) -> RobotState:
    return RobotState(stamp=stamp, position=np.array([x, y, 0.0]), orientation=np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]),
                      linear_velocity=np.array([v, 0.0, 0.0]), angular_velocity=np.array([0.0, 0.0, omega]),
                      pose_covariance=np.eye(6) * std**2)


def fresh(msg) -> Received:
    return Received(msg, 0.0, False)


def node(**params) -> LidarObstacles:
    n = LidarObstacles("lidar", LidarObstaclesParams(**params))
    n.reset(0)
    return n


def test_a_pillar_and_a_wall_become_a_cylinder_and_a_box_behind_the_face() -> None:
    sensor = (1.0, 2.0, 0.4)
    scan = scan_of([(3.0, 2.5, 0.3)], [(5.0, -1.0, 5.0, 5.0)], sensor, stamp=2.0)
    out = node(wall_thickness_m=0.2, obstacle_height_m=1.5).step(2.0, {"scan": fresh(scan), "state": fresh(odom(*sensor, stamp=2.0, std=0.01))})
    msg = out["obstacles"]
    assert msg.stamp == 2.0 and msg.frame_id == "odom" and not msg.problems()
    shapes = sorted(o.shape for o in msg.obstacles)
    assert shapes[0] == "box" and shapes.count("cylinder") == 1
    cylinder = next(o for o in msg.obstacles if o.shape == "cylinder")
    np.testing.assert_allclose(cylinder.position, [3.0, 2.5, 0.75], atol=0.02)
    assert cylinder.size[0] == pytest.approx(0.6, abs=0.03) and cylinder.size[2] == 1.5
    assert 0.01 <= cylinder.uncertainty_m < 0.03
    for box in (o for o in msg.obstacles if o.shape == "box"):  # the wall's face at x = 5, its 0.2 m depth behind it
        assert box.position[0] == pytest.approx(5.1, abs=0.02) and box.size[1] == 0.2
        yaw = 2.0 * math.atan2(box.orientation[2], box.orientation[3])
        assert abs(math.cos(yaw)) < 0.01  # along y


def test_the_pose_is_moved_to_the_scans_stamp_with_the_odometrys_twist() -> None:
    """Odometry 50 ms older than the scan, driving at 1 m/s: the pillar is placed from where the robot was at the scan."""
    scan = scan_of([(4.0, 0.0, 0.3)], [], (1.05, 0.0, 0.0), stamp=1.0)
    late = node().step(1.0, {"scan": fresh(scan), "state": fresh(odom(1.0, 0.0, 0.0, stamp=0.95, v=1.0))})["obstacles"]
    np.testing.assert_allclose(late.obstacles[0].position[:2], [4.0, 0.0], atol=0.01)


@pytest.mark.parametrize(
    "state",
    [None, fresh(odom(0.0, 0.0, 0.0, stamp=0.5)), fresh(RobotState(stamp=1.0, position=np.array([np.nan, 0.0, 0.0])))],
    ids=["no_odometry", "odometry_too_old", "odometry_not_finite"],
)
def test_without_a_pose_at_the_scan_nothing_is_published_and_it_is_counted(state) -> None:
    n = node()
    out = n.step(1.0, {"scan": fresh(scan_of([(3.0, 0.0, 0.3)], [], (0.0, 0.0, 0.0), stamp=1.0)), "state": state})
    assert out == {}
    assert n.metrics() == {"perception_scans": 1, "perception_scans_without_pose": 1, "perception_obstacles": 0}


def test_a_scan_with_no_returns_publishes_an_empty_list() -> None:
    scan = LaserScan(stamp=1.0, angle_min=-math.pi, angle_max=math.pi, angle_increment=2 * math.pi / 360, range_min=0.1,
                     range_max=10.0, ranges=np.full(360, np.inf, dtype=np.float32))
    out = node().step(1.0, {"scan": fresh(scan), "state": fresh(odom(0.0, 0.0, 0.0, stamp=1.0))})
    assert out["obstacles"].obstacles == [] and out["obstacles"].stamp == 1.0


def test_with_planes_a_sill_seen_by_the_lower_planes_stands_only_up_to_the_first_that_saw_over_it() -> None:
    """Three planes at -0.06, 0, +0.06 around a drone at z = 1: a sill ahead seen by the lowest plane alone, a wall to the left
    by all three. The sill's box tops out at the centre plane (+ margin), the wall's spans ground to obstacle_height_m; a
    cloud from another instant is not used (the flattened scan is, every return full height) and is counted."""
    sill, wall = (2.0, -0.5, 2.0, 0.5), (-1.0, 3.0, 3.0, 3.0)
    rows = [render_scan([], segments, (0.0, 0.0, 0.0))[0] for segments in ([sill, wall], [wall], [wall])]
    flat = scan_of([], [sill, wall], (0.0, 0.0, 0.0), stamp=1.0)
    angles = flat.angle_min + np.arange(360) * flat.angle_increment
    points = np.stack([np.array(rows) * np.cos(angles), np.array(rows) * np.sin(angles), np.zeros((3, 360))], axis=-1)
    state = odom(0.0, 0.0, 0.0, stamp=1.0)
    state.position[2] = 1.0
    n = node(plane_offsets_m=(-0.06, 0.0, 0.06), plane_margin_m=0.01, obstacle_height_m=3.0)

    def tops_over(cloud_stamp: float) -> tuple[list[float], list[float]]:
        cloud = PointCloud(stamp=cloud_stamp, points=points)
        out = n.step(1.0, {"scan": fresh(flat), "state": fresh(state), "points": fresh(cloud)})["obstacles"]
        bottoms = [o.position[2] - o.size[2] / 2 for o in out.obstacles]
        on_sill = [o.position[2] + o.size[2] / 2 for o in out.obstacles if abs(o.position[0] - 2.05) < 0.03]
        return on_sill, bottoms

    on_sill, bottoms = tops_over(1.0)
    assert on_sill == [pytest.approx(1.01)] and min(bottoms) == 0.0
    assert n.metrics()["perception_scans_without_points"] == 0
    on_sill, _ = tops_over(0.9)
    assert on_sill and all(top == 3.0 for top in on_sill)  # flattened: full height
    assert n.metrics()["perception_scans_without_points"] == 1


def test_with_planes_an_obstacle_the_scan_cannot_look_at_is_remembered_for_memory_s_and_dropped_once_seen_through() -> None:
    """A hanging sphere's slice seen by the top plane alone (clutter seed 964's geometry, docs/campaigns.md): once the drone
    is under it the top plane's emitter is inside it and no plane returns from it. The node publishes it again from memory
    (uncertainty grown, counted); it drops it when a plane at its height looks through it from outside, and once it is older
    than memory_s; with memory_s 0 it forgets at once."""
    offsets, slice_ = (-0.06, 0.0, 0.06), (0.5, 0.0, 0.1)

    def step(n: LidarObstacles, x: float, stamp: float, top_sees: bool) -> list:
        rows = [render_scan([slice_] if (k == 2 and top_sees) else [], [], (x, 0.0, 0.0))[0] for k in range(3)]
        flat = np.fmin.reduce(np.array(rows), axis=0)
        angle_min, increment = -math.pi, 2 * math.pi / 360
        scan = LaserScan(stamp=stamp, angle_min=angle_min, angle_max=angle_min + 359 * increment, angle_increment=increment,
                         range_min=0.05, range_max=10.0, ranges=flat.astype(np.float32))
        angles = angle_min + np.arange(360) * increment
        with np.errstate(invalid="ignore"):
            points = np.stack([np.array(rows) * np.cos(angles), np.array(rows) * np.sin(angles), np.zeros((3, 360))], axis=-1)
        points[~np.isfinite(np.array(rows))] = np.nan  # no return: NaN in an organized cloud
        state = odom(x, 0.0, 0.0, stamp=stamp)
        state.position[2] = 1.0
        out = n.step(stamp, {"scan": fresh(scan), "state": fresh(state), "points": fresh(PointCloud(stamp=stamp, points=points))})
        return out["obstacles"].obstacles

    n = node(plane_offsets_m=offsets, obstacle_height_m=3.0)
    seen = step(n, 0.0, 1.0, top_sees=True)
    under = step(n, 0.45, 1.0625, top_sees=False)  # the emitter inside the slice: nothing returns from it
    assert len(seen) == 1 and len(under) == 1 and n.metrics()["perception_remembered_obstacles"] == 1
    np.testing.assert_allclose(under[0].position[:2], seen[0].position[:2])
    assert under[0].uncertainty_m == pytest.approx(seen[0].uncertainty_m + 0.05 * 0.0625)
    assert under[0].position[2] - under[0].size[2] / 2 == pytest.approx(seen[0].position[2] - seen[0].size[2] / 2)
    assert step(n, 0.45, 1.4, top_sees=False)  # still within memory_s of when it was seen
    assert step(n, 0.45, 1.55, top_sees=False) == []  # older than memory_s: forgotten, however blind the scan

    n = node(plane_offsets_m=offsets, obstacle_height_m=3.0)
    step(n, 0.0, 1.0, top_sees=True)
    assert step(n, -0.5, 1.0625, top_sees=False) == []  # the top plane looks through it from outside: gone
    n = node(plane_offsets_m=offsets, obstacle_height_m=3.0, memory_s=0.0)
    step(n, 0.0, 1.0, top_sees=True)
    assert step(n, 0.45, 1.0625, top_sees=False) == [] and n.metrics()["perception_remembered_obstacles"] == 0


def test_an_unknown_memory_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match="memory_sec"):
        LidarObstaclesParams(memory_sec=1.0)
    with pytest.raises(ValueError, match="memory_s"):
        LidarObstaclesParams(memory_s=-0.1)
