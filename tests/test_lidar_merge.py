"""The planes' copies of one thing joined (aegis.perception.lidar_merge): a wall is one obstacle from the ground up, a sill one bounded obstacle, a window stays open, two pillars stay two."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aegis.nodes.lidar_obstacles import obstacles_from_merged
from aegis.perception.lidar_layers import detect_layers
from aegis.perception.lidar_merge import merge_layers
from aegis.perception.synthetic import render_scan

RANGE_MIN, RANGE_MAX = 0.1, 10.0
PLANE_Z = 1.0 + np.array([-0.12, -0.06, 0.0, 0.06, 0.12])  # the quadrotor's five planes at 1 m
MARGIN, THICKNESS, MERGE = 0.01, 0.1, 0.05
NOISE = 0.01


def merged(circles=(), surfaces=()):
    """The merged fit of pillars ((x, y, r), bottom, top) and faces ((x0, y0, x1, y1), bottom, top), each plane's scan
    drawn with its own noise (seed = plane)."""
    planes = []
    for k, z in enumerate(PLANE_Z):
        ranges, angle_min, increment = render_scan(
            [c for c, bottom, top in circles if bottom <= z <= top], [s for s, bottom, top in surfaces if bottom <= z <= top],
            noise_std=NOISE, seed=k,
        )
        planes.append(ranges)
    layers = detect_layers(np.array(planes), PLANE_Z, angle_min, increment, RANGE_MIN, RANGE_MAX, (0.0, 0.0, 0.0), z_margin_m=MARGIN)
    return layers, merge_layers(layers, THICKNESS, MERGE)


def test_a_wall_seen_by_all_five_planes_is_one_obstacle_from_the_ground_up() -> None:
    wall = ((2.0, -1.0, 2.0, 1.0), -np.inf, np.inf)
    layers, result = merged(surfaces=[wall])
    assert sum(len(layer.found) for layer in layers) == 5  # a copy in each plane
    assert len(result) == 1
    (one,) = result
    assert one.shape == "box" and one.planes == (0, 1, 2, 3, 4)
    assert one.bottom == -np.inf and one.top == np.inf
    (obstacle,) = obstacles_from_merged(result, 0.0, 4.0)
    assert obstacle.position[2] - obstacle.size[2] / 2 == pytest.approx(0.0) and obstacle.position[2] + obstacle.size[2] / 2 == pytest.approx(4.0)
    # it contains each plane's face and the box behind it
    assert obstacle.position[0] - obstacle.size[1] / 2 <= 2.0 + 0.03 and obstacle.size[0] >= 1.9
    assert one.sigma_m == max(float(layer.found.segment_sigma_m.max()) for layer in layers)


def test_a_sill_seen_by_the_lower_two_planes_is_one_bounded_obstacle() -> None:
    sill = ((2.0, -1.0, 2.0, 1.0), -np.inf, 0.97)  # its top 3 cm under the sensor: planes -0.12 and -0.06 see it
    _, result = merged(surfaces=[sill])
    (one,) = result
    assert one.planes == (0, 1) and one.bottom == -np.inf
    assert one.top == pytest.approx(1.0 + MARGIN)  # the first plane that saw over it, plus the margin
    (obstacle,) = obstacles_from_merged(result, 0.0, 4.0)
    assert obstacle.position[2] + obstacle.size[2] / 2 == pytest.approx(1.0 + MARGIN)  # bounded: the drone may pass over it


def test_a_window_stays_open_sill_and_lintel_are_not_joined_across_it() -> None:
    """A wall with a window: the sill (lower two planes), the lintel (top plane), the pieces beside the window (every plane).
    The sill's long face overlaps the side pieces but is not like them, and the lintel is like the sill but not adjacent."""
    sill = ((2.0, -1.0, 2.0, 1.0), -np.inf, 0.97)
    lintel = ((2.0, -1.0, 2.0, 1.0), 1.09, np.inf)
    left = ((2.0, 0.3, 2.0, 1.0), -np.inf, np.inf)
    right = ((2.0, -1.0, 2.0, -0.3), -np.inf, np.inf)
    _, result = merged(surfaces=[sill, lintel, left, right])
    at_centre = [m for m in result if m.bottom < 1.03 < m.top]  # what stands between the planes at 0 and +0.06
    assert at_centre and all(abs(m.centre[1]) > 0.3 and m.length < 0.9 for m in at_centre)  # only the pieces beside it
    y_extent = [(m.centre[1] - m.length / 2, m.centre[1] + m.length / 2) for m in at_centre]
    assert all(hi <= -0.25 or lo >= 0.25 for lo, hi in y_extent)  # the window (|y| < 0.3) is free there
    assert any(m.top <= 1.0 + MARGIN + 1e-9 and m.length > 1.9 for m in result)  # the sill, bounded above
    assert any(m.bottom >= 1.06 - MARGIN - 1e-9 and m.length > 1.9 for m in result)  # the lintel, bounded below
    assert len(result) == 4  # the planes' 7 copies joined: sill, two side pieces, lintel


def test_two_separate_pillars_stay_two_each_joined_over_its_planes() -> None:
    pillars = [((2.0, 0.5, 0.15), -np.inf, np.inf), ((2.0, -0.5, 0.15), -np.inf, np.inf)]
    layers, result = merged(circles=pillars)
    assert sum(len(layer.found.radii) for layer in layers) == 10
    assert len(result) == 2 and all(m.shape == "circle" and m.planes == (0, 1, 2, 3, 4) for m in result)
    for m, ((x, y, r), _, _) in zip(sorted(result, key=lambda m: -m.centre[1]), pillars):
        assert math.hypot(m.centre[0] - x, m.centre[1] - y) + r <= m.radius + 0.03  # contains the pillar (within the fit's error)
    obstacles = obstacles_from_merged(result, 0.0, 4.0)
    assert [o.shape for o in obstacles] == ["cylinder", "cylinder"] and [o.id for o in obstacles] == [0, 1]


def test_a_ball_in_the_upper_planes_is_one_cylinder_that_ends_below_them() -> None:
    """A sphere above the path seen by the top two planes (its slices: two circles of different radii): one obstacle,
    the larger slice's radius (its slices differ by 4 cm), bounded below by the plane under them."""
    centre_z, radius = 1.2, 0.2
    circles = []
    for z in PLANE_Z:
        if abs(z - centre_z) < radius:
            circles.append(((2.0, 0.0, math.sqrt(radius**2 - (z - centre_z) ** 2)), z - 1e-6, z + 1e-6))
    _, result = merged(circles=circles)
    (one,) = result
    assert one.shape == "circle" and one.planes == (3, 4)
    assert one.bottom == pytest.approx(1.0 - MARGIN) and one.top == np.inf


def _inside(m, points: np.ndarray) -> bool:
    """Whether every point lies in merged obstacle ``m``'s footprint (1e-9 slack)."""
    rel = points - np.array(m.centre)
    if m.shape == "circle":
        return bool(np.all(np.hypot(rel[:, 0], rel[:, 1]) <= m.radius + 1e-9))
    u = np.array([math.cos(m.yaw), math.sin(m.yaw)])
    n = np.array([-u[1], u[0]])
    return bool(np.all(np.abs(rel @ u) <= m.length / 2 + 1e-9) and np.all(np.abs(rel @ n) <= m.depth / 2 + 1e-9))


def test_every_copy_lies_inside_one_merged_obstacle_that_spans_its_heights() -> None:
    """Conservative: on random scenes of pillars and faces, each ending between the planes (seed 0), every plane's circle
    (its rim) and face (the box behind it) lies inside a merged obstacle that spans at least that plane's z bounds."""
    rng = np.random.default_rng(0)
    rim = np.column_stack([np.cos(np.linspace(0, 2 * math.pi, 16)), np.sin(np.linspace(0, 2 * math.pi, 16))])
    merged_count = copies = 0
    for _ in range(20):
        circles = [((*rng.uniform(-3, 3, 2), rng.uniform(0.1, 0.4)), rng.uniform(0.8, 1.0), rng.uniform(1.0, 1.2)) for _ in range(4)]
        faces = []
        for _ in range(3):
            a = rng.uniform(-3, 3, 2)
            faces.append(((*a, *(a + rng.uniform(-1, 1, 2))), rng.uniform(0.8, 1.0), rng.uniform(1.0, 1.2)))
        layers, result = merged(circles=circles, surfaces=faces)
        merged_count += len(result)
        for layer in layers:
            f = layer.found
            shapes = [c + r * rim for c, r in zip(f.centres, f.radii)]
            shapes += [np.array([s, e, e + THICKNESS * n, s + THICKNESS * n]) for s, e, n in zip(f.starts, f.ends, f.normals)]
            for points in shapes:
                copies += 1
                assert any(m.bottom <= layer.bottom and m.top >= layer.top and _inside(m, points) for m in result)
    assert merged_count < copies  # and copies were joined
