"""A multi-plane lidar's fit (aegis.perception.lidar_layers): a sill, a lintel and a full wall get the heights their planes bound."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aegis.perception.lidar_layers import detect_layers, vertical_bounds
from aegis.perception.synthetic import render_scan

RANGE_MIN, RANGE_MAX = 0.1, 10.0
PLANE_Z = 1.0 + np.array([-0.12, -0.06, 0.0, 0.06, 0.12])  # the quadrotor's five planes at 1 m
MARGIN = 0.01
# A window 2 m ahead, its sill's top 3 cm below the sensor and its lintel's bottom 9 cm above; a full wall to the left.
SILL = ((2.0, -0.5, 2.0, 0.5), -np.inf, 0.97)
LINTEL = ((2.5, -0.5, 2.5, 0.5), 1.09, np.inf)
WALL = ((-1.0, 3.0, 3.0, 3.0), -np.inf, np.inf)


def scans(surfaces) -> tuple[np.ndarray, float, float]:
    """Each plane's full-turn scan of the surfaces ((x0, y0, x1, y1), bottom z, top z) that reach its height."""
    planes = []
    for z in PLANE_Z:
        ranges, angle_min, increment = render_scan([], [s for s, bottom, top in surfaces if bottom <= z <= top])
        planes.append(ranges)
    return np.array(planes), angle_min, increment


def extents(surface, layers) -> tuple[float, float]:
    """The lowest bottom and highest top over the planes' faces lying on ``surface``'s line (within 2 cm)."""
    (x0, y0, x1, y1), _, _ = surface
    bottoms, tops = [], []
    for layer in layers:
        for start, end in zip(layer.found.starts, layer.found.ends):
            mid = 0.5 * (start + end)
            # distance of the face's midpoint from the surface's line
            d = abs((x1 - x0) * (mid[1] - y0) - (y1 - y0) * (mid[0] - x0)) / math.hypot(x1 - x0, y1 - y0)
            if d < 0.02:
                bottoms.append(layer.bottom)
                tops.append(layer.top)
    assert bottoms, f"no face found on {surface}"
    return min(bottoms), max(tops)


def run(surfaces):
    ranges, angle_min, increment = scans(surfaces)
    return detect_layers(ranges, PLANE_Z, angle_min, increment, RANGE_MIN, RANGE_MAX, (0.0, 0.0, 0.0), z_margin_m=MARGIN)


def test_a_sill_below_ends_at_the_first_plane_that_saw_over_it() -> None:
    bottom, top = extents(SILL, run([SILL]))
    assert bottom == -np.inf  # the lowest plane saw it: down to the ground
    assert top == pytest.approx(1.0 + MARGIN)  # seen at -0.12 and -0.06, not at 0: below the centre plane (+ margin)
    assert top >= SILL[2]  # conservative: the true top is inside


def test_a_lintel_above_starts_at_the_first_plane_that_saw_under_it() -> None:
    bottom, top = extents(LINTEL, run([LINTEL]))
    assert top == np.inf
    assert bottom == pytest.approx(1.06 - MARGIN)  # seen at +0.12 only: above the +0.06 plane (- margin)
    assert bottom <= LINTEL[1]


def test_a_full_wall_is_unbounded_both_ways_and_the_window_leaves_the_centre_free() -> None:
    layers = run([SILL, LINTEL, WALL])
    assert extents(WALL, layers) == (-np.inf, np.inf)
    assert extents(SILL, layers)[1] < 1.0 + 0.02 and extents(LINTEL, layers)[0] > 1.0 + 0.04
    centre = layers[2]  # the plane at the sensor's height sees through the window: only the wall
    assert len(centre.found.starts) == 1 and len(centre.found.radii) == 0


def test_bounds_need_ascending_planes_and_an_unknown_height_gives_nothing() -> None:
    bottoms, tops = vertical_bounds(np.array([0.0, 1.0]), 0.1)
    np.testing.assert_allclose(bottoms, [-np.inf, -0.1])
    np.testing.assert_allclose(tops, [1.1, np.inf])
    with pytest.raises(ValueError, match="ascending"):
        vertical_bounds(np.array([1.0, 0.0]), 0.0)
    ranges, angle_min, increment = scans([WALL])
    assert detect_layers(ranges, PLANE_Z + np.nan, angle_min, increment, RANGE_MIN, RANGE_MAX, (0.0, 0.0, 0.0)) == []


def test_the_node_stands_each_merged_obstacle_between_its_bounds_clamped_to_ground_and_ceiling() -> None:
    from aegis.nodes.lidar_obstacles import obstacles_from_merged
    from aegis.perception.lidar_merge import merge_layers

    obstacles = obstacles_from_merged(merge_layers(run([SILL, LINTEL, WALL]), 0.1, 0.05), 0.0, 4.0)
    ids = [o.id for o in obstacles]
    assert ids == list(range(len(obstacles)))  # unique Marker ids
    spans = {(round(o.position[2] - o.size[2] / 2, 6), round(o.position[2] + o.size[2] / 2, 6)) for o in obstacles}
    assert spans == {(0.0, 1.01), (1.05, 4.0), (0.0, 4.0)}  # the sill (planes -0.12, -0.06), the lintel (+0.12), the wall (all)
    assert all(o.shape == "box" for o in obstacles) and len(obstacles) == 3
    # bounds clamped to nothing: a ceiling below the lowest plane's top leaves only what lies under it
    low = obstacles_from_merged(merge_layers(run([WALL]), 0.1, 0.05), 0.0, 0.9)
    assert len(low) == 1 and low[0].position[2] + low[0].size[2] / 2 == pytest.approx(0.9)
    assert obstacles_from_merged(merge_layers(run([LINTEL]), 0.1, 0.05), 0.0, 0.9) == []  # the lintel starts above 0.9
