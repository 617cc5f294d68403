"""Lidar scan -> obstacles (aegis.perception.lidar): known circles and walls recovered from exact synthetic scans, no input raises."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aegis.perception.lidar import FACE_NOISE_SIGMAS, LidarFitParams, detect, fit_circles, split_lines
from aegis.perception.synthetic import box_faces, render_scan

RANGE_MIN, RANGE_MAX = 0.1, 10.0


def run(ranges: np.ndarray, angle_min: float, increment: float, pose=(0.0, 0.0, 0.0), covariance=None, mount=(0.0, 0.0)):
    return detect(ranges, angle_min, increment, RANGE_MIN, RANGE_MAX, pose, covariance, mount)


def test_pillars_are_recovered_as_circles_within_two_centimetres() -> None:
    circles = [(3.0, 0.5, 0.4), (-1.0, -2.5, 0.25), (-4.0, 3.0, 0.5)]
    found = run(*render_scan(circles, [], noise_std=0.01))
    assert len(found.radii) == 3 and len(found.starts) == 0
    for cx, cy, r in circles:
        k = int(np.argmin(np.hypot(*(found.centres - [cx, cy]).T)))
        assert np.hypot(*(found.centres[k] - [cx, cy])) < 0.02
        assert abs(found.radii[k] - r) < 0.02
    # the range noise averaged over each arc's returns (2 sigma / sqrt(n)): a few mm, and the near face within 2 of them
    assert np.all((found.circle_sigma_m > 0.002) & (found.circle_sigma_m < 0.01))
    for (cx, cy, r), centre, radius, sigma in zip(sorted(circles), *zip(*sorted(zip(found.centres.tolist(), found.radii, found.circle_sigma_m)))):
        near_face_true, near_face = math.hypot(cx, cy) - r, math.hypot(*centre) - radius
        assert abs(near_face - near_face_true) < 2.0 * sigma


def test_walls_are_recovered_as_segments_on_their_line_facing_the_sensor() -> None:
    walls = [(5.0, -3.0, 5.0, 3.0), (-3.0, -4.0, 2.0, -4.0)]
    found = run(*render_scan([], walls, noise_std=0.005))
    assert len(found.radii) == 0 and len(found.starts) == 2
    east = int(np.argmax(found.starts[:, 0]))
    south = 1 - east
    assert np.all(np.abs(np.r_[found.starts[east, 0], found.ends[east, 0]] - 5.0) < 0.02)
    assert np.all(np.abs(np.r_[found.starts[south, 1], found.ends[south, 1]] + 4.0) < 0.02)
    low, high = sorted(np.r_[found.starts[east, 1], found.ends[east, 1]])
    assert -3.0 - 0.15 < low < -3.0 + 0.01 and 3.0 - 0.01 < high < 3.0 + 0.15  # the whole face, and at most a beam more
    np.testing.assert_allclose(found.normals[east], [1.0, 0.0], atol=0.01)  # pointing away from the sensor, into the wall
    np.testing.assert_allclose(found.normals[south], [0.0, -1.0], atol=0.01)


def test_a_box_corner_gives_two_faces_and_an_occluded_wall_two_pieces() -> None:
    box = [(2.0, 1.0, 3.0, 1.0), (2.0, 1.0, 2.0, 2.0)]  # two faces of a box, seen from the origin
    wall = [(6.0, -3.0, 6.0, 3.0)]
    found = run(*render_scan([(4.0, 0.0, 0.5)], box + wall))
    assert len(found.radii) == 1
    assert len(found.starts) == 4  # the corner's two faces; the wall cut in two by the pillar's shadow
    lengths = np.sort(np.hypot(*(found.ends - found.starts).T))
    assert lengths[0] > 0.5


def test_the_pose_places_the_obstacles_in_the_world() -> None:
    """The same scene seen from a moved, turned robot with an offset laser gives the same world positions."""
    pose = (1.0, -2.0, math.radians(70.0))
    mount = (0.3, 0.1)
    c, s = math.cos(pose[2]), math.sin(pose[2])
    sensor = (pose[0] + c * mount[0] - s * mount[1], pose[1] + s * mount[0] + c * mount[1], pose[2])
    found = run(*render_scan([(3.0, 1.0, 0.3)], [], sensor_xy_yaw=sensor), pose=pose, mount=mount)
    assert found.centres.shape == (1, 2)
    np.testing.assert_allclose(found.centres[0], [3.0, 1.0], atol=1e-3)
    np.testing.assert_allclose(found.sensor_xy, sensor[:2], atol=1e-12)


def test_uncertainty_grows_with_the_pose_covariance_and_with_distance_under_heading_error() -> None:
    scan = render_scan([(2.0, 0.0, 0.3), (8.0, 3.0, 0.3)], [])
    exact = run(*scan)
    covariance = np.diag([0.05**2, 0.02**2, 0.0, 0.0, 0.0, 0.01**2])
    unsure = run(*scan, covariance=covariance)
    near, far = np.argsort(np.hypot(*unsure.centres.T))
    assert np.all(unsure.circle_sigma_m > exact.circle_sigma_m + 0.04)  # at least the 5 cm position sigma
    assert unsure.circle_sigma_m[far] > unsure.circle_sigma_m[near] + 0.02  # 8.5 m x 0.01 rad of heading
    np.testing.assert_array_equal(unsure.centres, exact.centres)  # the estimate itself does not move


def test_circle_fits_of_many_clusters_at_once_match_one_at_a_time() -> None:
    rng = np.random.default_rng(3)
    clusters = []
    for cx, cy, r in [(1.0, 2.0, 0.5), (-3.0, 0.5, 0.2), (4.0, -4.0, 1.0)]:
        a = rng.uniform(0.0, 2.0, 12)
        clusters.append(np.column_stack([cx + r * np.cos(a), cy + r * np.sin(a)]))
    xy = np.concatenate(clusters)
    counts = np.array([12, 12, 12])
    centres, radii, rms, fitted = fit_circles(xy, np.array([0, 12, 24]), counts)
    assert fitted.all()
    np.testing.assert_allclose(centres, [[1.0, 2.0], [-3.0, 0.5], [4.0, -4.0]], atol=1e-9)
    np.testing.assert_allclose(radii, [0.5, 0.2, 1.0], atol=1e-9)
    assert np.all(rms < 1e-9)
    _, _, _, collinear = fit_circles(np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]), np.array([0]), np.array([3]))
    assert not collinear[0]


def test_split_lines_cuts_an_l_at_its_corner() -> None:
    leg = np.linspace(0.0, 1.0, 11)
    corner = np.concatenate([np.column_stack([leg, np.zeros(11)]), np.column_stack([np.ones(10), leg[1:]])])
    assert split_lines(corner, 0.02) == [(0, 10), (10, 20)]


@pytest.mark.parametrize(
    "ranges",
    [
        np.zeros(0, dtype=np.float32),
        np.full(360, np.inf, dtype=np.float32),
        np.full(360, RANGE_MAX, dtype=np.float32),  # a driver's "no return" on every beam
        np.full(360, np.nan, dtype=np.float32),
        np.full(360, -np.inf, dtype=np.float32),
    ],
    ids=["empty", "all_inf", "all_max_range", "all_nan", "all_too_close"],
)
def test_scans_without_returns_give_no_obstacles(ranges: np.ndarray) -> None:
    assert len(run(ranges, -math.pi, 2 * math.pi / 360)) == 0


def test_a_ring_around_the_robot_is_faces_not_a_pillar_it_stands_in() -> None:
    """Every beam hits at 3 m (the robot inside a round room): no circle with the robot inside it."""
    found = run(np.full(360, 3.0, dtype=np.float32), -math.pi, 2 * math.pi / 360)
    assert len(found.radii) == 0 and len(found.starts) > 0


_RANGES = arrays(
    np.float32,
    st.integers(0, 400),
    elements=st.one_of(
        st.floats(-20.0, 20.0, width=32), st.sampled_from([np.inf, -np.inf, np.nan, 0.0, RANGE_MIN, RANGE_MAX])
    ),
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    ranges=_RANGES,
    angle_min=st.floats(-4.0, 4.0) | st.sampled_from([np.nan, np.inf]),
    increment=st.floats(-0.1, 0.1) | st.sampled_from([0.0, np.nan]),
    pose=st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3), st.floats(-10.0, 10.0) | st.just(np.nan)),
    sigma=st.floats(0.0, 1.0) | st.just(np.nan),
)
def test_no_scan_raises_and_every_result_is_finite(ranges, angle_min, increment, pose, sigma) -> None:
    found = detect(ranges, angle_min, increment, RANGE_MIN, RANGE_MAX, pose, np.eye(6) * sigma, (0.1, 0.0), LidarFitParams())
    for values in (found.centres, found.radii, found.circle_sigma_m, found.starts, found.ends, found.normals, found.segment_sigma_m):
        assert np.all(np.isfinite(values))
    assert np.all(found.radii > 0) and np.all(found.circle_sigma_m >= 0) and np.all(found.segment_sigma_m >= 0)


def test_a_face_is_on_its_returns_not_in_front_of_the_nearest_one() -> None:
    """A noisy flat wall: its face goes through its returns (the noise is in the uncertainty, not in the face), and no
    return lies more than FACE_NOISE_SIGMAS range sigmas in front of it."""
    ranges, angle_min, increment = render_scan([], [(5.0, -2.0, 5.0, 2.0)], noise_std=0.01, seed=4)
    found = run(ranges, angle_min, increment)
    assert len(found.starts) == 1
    depth = (_returns(ranges, angle_min, increment) - found.starts[0]) @ found.normals[0]
    assert depth.min() >= -FACE_NOISE_SIGMAS * 0.01 - 1e-9
    assert abs(found.starts[0][0] - 5.0) < 0.005 and abs(found.ends[0][0] - 5.0) < 0.005  # on the wall within its sigma or so
    assert found.segment_sigma_m[0] < 0.005  # 2 x 1 cm / sqrt(40 or so returns)


def test_a_bulge_beyond_the_noise_moves_the_face_toward_the_sensor() -> None:
    """An arc too big for a pillar (radius 3 m) seen as one piece: no return more than FACE_NOISE_SIGMAS sigmas in front
    of the face, and its residual (a shape, not noise) in the uncertainty."""
    ranges, angle_min, increment = render_scan([(7.0, 0.0, 3.0)], [], noise_std=0.002, seed=1)
    found = detect(ranges, angle_min, increment, RANGE_MIN, RANGE_MAX, (0.0, 0.0, 0.0), None, (0.0, 0.0),
                   LidarFitParams(range_noise_std_m=0.002, split_distance_m=0.2))
    assert len(found.radii) == 0 and len(found.starts) >= 1
    returns = _returns(ranges, angle_min, increment)
    for start, normal, sigma in zip(found.starts, found.normals, found.segment_sigma_m):
        depth = (returns - start) @ normal
        mine = np.abs((returns - start) @ np.array([-normal[1], normal[0]])) < 10.0
        assert depth[mine].min() >= -FACE_NOISE_SIGMAS * 0.002 - 1e-9
    assert np.all(found.segment_sigma_m > 0.002)


def test_more_beams_on_a_face_give_a_smaller_uncertainty() -> None:
    wall = [(4.0, -1.0, 4.0, 1.0)]
    coarse = run(*render_scan([], wall, beams=360, noise_std=0.01))
    fine = run(*render_scan([], wall, beams=1440, noise_std=0.01))
    assert fine.segment_sigma_m[0] < 0.6 * coarse.segment_sigma_m[0]


BOX = (2.0, -0.6, 1.0, 1.0, 0.3)  # husky_goal's first box: centre x, y, length, width, yaw
MARGIN_M = 0.77  # the Husky filter's robot_radius_m + lookahead_m


def _returns(ranges: np.ndarray, angle_min: float, increment: float, sensor=(0.0, 0.0, 0.0)) -> np.ndarray:
    angles = angle_min + np.arange(ranges.size) * increment + sensor[2]
    hit = np.isfinite(ranges)
    return np.asarray(sensor[:2]) + np.column_stack([ranges[hit] * np.cos(angles[hit]), ranges[hit] * np.sin(angles[hit])])


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = np.asarray(b) - np.asarray(a)
    t = np.clip(((points - a) @ ab) / max(float(ab @ ab), 1e-18), 0.0, 1.0)
    return np.hypot(*(points - a - t[:, None] * ab).T)


def _seen_side_probes(sensor: tuple[float, float, float], faces: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points MARGIN_M from the true box whose nearest box point is on a face turned to the sensor: (points, their true
    distance (MARGIN_M), their nearest box point's distance from the box's corner nearest the sensor)."""
    centre = np.array(BOX[:2])
    corners = np.array([f[0] for f in faces])
    seen = []
    for a, b in faces:
        normal = np.array([b[1] - a[1], a[0] - b[0]])
        normal *= np.sign(normal @ (0.5 * (a + b) - centre))
        if normal @ (np.array(sensor[:2]) - 0.5 * (a + b)) > 0.0:
            seen.append((a, b))
    angles = np.linspace(0.0, 2.0 * math.pi, 720, endpoint=False)
    directions = np.column_stack([np.cos(angles), np.sin(angles)])
    low, high = np.zeros(len(directions)), np.ones(len(directions))
    for _ in range(40):  # along each direction from the centre, the point MARGIN_M from the box (bisection)
        mid = 0.5 * (low + high)
        d = np.min([_segment_distance(centre + directions * (0.5 + 2.0 * mid[:, None]), a, b) for a, b in faces], axis=0)
        low, high = np.where(d < MARGIN_M, mid, low), np.where(d < MARGIN_M, high, mid)
    probes = centre + directions * (0.5 + 2.0 * low[:, None])
    true = np.min([_segment_distance(probes, a, b) for a, b in faces], axis=0)
    on_seen = np.min([_segment_distance(probes, a, b) for a, b in seen], axis=0) <= true + 1e-9
    probes, true = probes[on_seen], true[on_seen]
    near_corner = corners[np.argmin(np.hypot(*(corners - np.asarray(sensor[:2])).T))]
    from_corner = np.sqrt(np.maximum(np.sum((probes - near_corner) ** 2, axis=1) - true**2, 0.0))  # of the nearest box point
    return probes, true, from_corner


@pytest.mark.parametrize("sensor", [(3.0, 0.7, -0.8), (2.9, 0.9, 0.0), (1.0, -2.2, 0.5)], ids=["pass", "above", "below"])
def test_a_box_seen_from_its_corner_is_an_l_within_a_centimetre_of_it_and_not_inside_it_by_more_than_its_sigma(sensor) -> None:
    """husky_goal's first box, two faces in view, 20 noise seeds (1 cm): two faces meeting at one point, within 1.5 cm of
    the true corner; from the points the Husky's filter keeps MARGIN_M clear, the perceived box within 1.5 cm of the
    true one near that corner, and nowhere on its seen side farther than 2.5 of its sigmas (its own noise) from them."""
    faces = [np.array(f).reshape(2, 2) for f in box_faces(*BOX)]
    corners = np.array([f[0] for f in faces])
    corner = corners[np.argmin(np.hypot(*(corners - np.asarray(sensor[:2])).T))]
    probes, true, from_corner = _seen_side_probes(sensor, faces)
    near = from_corner < 0.25
    for seed in range(20):
        ranges, angle_min, increment = render_scan([], [tuple(f.ravel()) for f in faces], sensor, noise_std=0.01, seed=seed)
        found = detect(ranges, angle_min, increment, RANGE_MIN, RANGE_MAX, sensor)
        assert len(found.starts) == 2 and len(found.radii) == 0
        shared = [p for p in found.ends if np.min(np.hypot(*(found.starts - p).T)) < 1e-12]
        assert len(shared) == 1 and np.hypot(*(shared[0] - corner)) < 0.015
        perceived = np.min([_segment_distance(probes, a, b) for a, b in zip(found.starts, found.ends)], axis=0)
        assert np.all(np.abs(perceived - true)[near] < 0.015)
        assert np.all(perceived - true < 2.5 * found.segment_sigma_m.min())


def test_a_box_seen_from_its_corner_without_noise_is_never_smaller_than_it() -> None:
    faces = [np.array(f).reshape(2, 2) for f in box_faces(*BOX)]
    for sensor in [(3.0, 0.7, -0.8), (2.9, 0.9, 0.0), (1.0, -2.2, 0.5), (3.3, 0.2, 2.5)]:
        probes, true, _ = _seen_side_probes(sensor, faces)
        found = detect(*render_scan([], [tuple(f.ravel()) for f in faces], sensor), RANGE_MIN, RANGE_MAX, sensor)
        perceived = np.min([_segment_distance(probes, a, b) for a, b in zip(found.starts, found.ends)], axis=0)
        assert np.all(perceived <= true + 1e-6)


# One plane of quadrotor_sim's lidar (gaps seed 905, 6 s, the drone 13 cm from a window's left piece): its face from
# 0.47 m away to 0.13 m and round its edge, beams 106 on, noise 1 cm.
CLOSE_FACE_RANGES = [
    0.467, 0.441, 0.396, 0.384, 0.368, 0.358, 0.32, 0.341, 0.317, 0.311, 0.271, 0.292, 0.266, 0.262, 0.272, 0.243, 0.24,
    0.236, 0.228, 0.22, 0.228, 0.208, 0.219, 0.198, 0.199, 0.197, 0.192, 0.177, 0.175, 0.182, 0.159, 0.175, 0.177, 0.18,
    0.155, 0.135, 0.181, 0.164, 0.151, 0.174, 0.146, 0.149, 0.161, 0.149, 0.158, 0.134, 0.144, 0.173, 0.18, 0.187, 0.189,
    0.209, 0.204, 0.225, 0.217, 0.253,
]


def test_a_face_seen_from_centimetres_is_not_a_circle_centred_on_the_sensors_side() -> None:
    """Wide in angle and close, a flat face's returns fitted a circle (r 0.28 m) whose centre lay on the sensor's side of
    them and whose rim passed 1 cm from the sensor: a pillar around the robot. A pillar's centre lies beyond its points'
    centroid as seen from the sensor; this one is refused, and the returns are faces."""
    ranges = np.full(360, np.inf)
    ranges[106 : 106 + len(CLOSE_FACE_RANGES)] = CLOSE_FACE_RANGES
    found = detect(ranges, -math.pi, 2.0 * math.pi / 360, 0.05, 6.0, (0.0, 0.0, 0.0), None, (0.0, 0.0), LidarFitParams(min_points=1))
    assert len(found.radii) == 0
    assert len(found.starts) >= 1 and np.all(found.starts[:, 0] > 0.1)  # the face ahead, at x ~ 0.13 m
