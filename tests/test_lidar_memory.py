"""The lidar memory's rule alone (aegis.perception.lidar_memory): kept while the scan cannot look, dropped when it does or when old."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aegis.perception.lidar_memory import MemoryParams, Remembered, distance_outside, ray_span, recall
from aegis.perception.lidar_merge import MergedObstacle

ANGLES = -math.pi + np.arange(360) * (2 * math.pi / 360)
PLANES = np.array([0.94, 1.0, 1.06])


def pillar(x: float, y: float, r: float = 0.1, sigma: float = 0.01) -> MergedObstacle:
    return MergedObstacle("circle", (x, y), r, 0.0, 0.0, 0.0, sigma, 0.99, 4.0, (2,))


def wall(x: float) -> MergedObstacle:
    """A box across the x axis at ``x``, 2 m long (along y), 0.1 m deep."""
    return MergedObstacle("box", (x, 0.0), 0.0, 2.0, 0.1, 0.5 * math.pi, 0.01, 0.0, 4.0, (0, 1, 2))


def remembered(o: MergedObstacle, stamp: float = 1.0, low: float = 1.06, high: float = 1.06) -> Remembered:
    return Remembered(o, stamp, low, high)


def free(rows: int = 3) -> np.ndarray:
    return np.full((rows, 360), np.nan)  # no return anywhere


def ranges_to(x_wall: float, origin_x: float = 0.0) -> np.ndarray:
    """Every plane's ranges from (origin_x, 0) to a wall across x = x_wall (only beams heading +x hit it)."""
    with np.errstate(divide="ignore"):
        r = np.where(np.cos(ANGLES) > 0.05, (x_wall - origin_x) / np.cos(ANGLES), np.nan)
    return np.tile(r, (3, 1))


def test_ray_span_enters_and_leaves_a_circle_and_a_box() -> None:
    enter, leave = ray_span(pillar(1.0, 0.0, 0.2), (0.0, 0.0), np.array([0.0, math.pi]))
    assert enter[0] == pytest.approx(0.8) and leave[0] == pytest.approx(1.2) and np.isnan(enter[1])
    enter, leave = ray_span(wall(2.0), (0.0, 0.0), np.array([0.0, 0.4, 0.5 * math.pi]))
    assert enter[0] == pytest.approx(1.95) and leave[0] == pytest.approx(2.05)
    assert enter[1] == pytest.approx(1.95 / math.cos(0.4)) and np.isnan(enter[2])
    assert distance_outside(pillar(1.0, 0.0, 0.2), (0.0, 0.0)) == pytest.approx(0.8)
    assert distance_outside(wall(2.0), (2.0, 0.5)) == 0.0


def test_an_obstacle_the_emitter_is_inside_is_kept_with_its_uncertainty_grown_until_memory_s() -> None:
    memory = [remembered(pillar(0.5, 0.0))]
    params = MemoryParams(memory_s=0.5, growth_mps=0.05)
    after, published = recall(memory, [], free(), PLANES, (0.45, 0.0), ANGLES, 1.2, params)
    assert len(published) == 1 and published[0].sigma_m == pytest.approx(0.01 + 0.05 * 0.2)
    assert published[0].bottom == 0.99 and after == memory  # never re-stamped
    assert recall(after, [], free(), PLANES, (0.45, 0.0), ANGLES, 1.51, params) == ([], [])


def test_an_obstacle_seen_through_at_its_height_from_outside_is_dropped() -> None:
    memory = [remembered(pillar(0.5, 0.0))]
    assert recall(memory, [], free(), PLANES, (-0.5, 0.0), ANGLES, 1.1)[1] == []
    # the same rays from within blind_margin_m of the footprint may start inside the thing: kept
    assert len(recall(memory, [], free(), PLANES, (0.35, 0.0), ANGLES, 1.1)[1]) == 1
    # planes that have moved away from the height it was seen at cannot look at it: kept
    assert len(recall(memory, [], free(), PLANES - 0.1, (-0.5, 0.0), ANGLES, 1.1)[1]) == 1


def test_an_obstacle_behind_another_is_kept_and_one_seen_again_is_carried_by_the_scan_alone() -> None:
    memory = [remembered(pillar(2.0, 0.0))]
    occluded = ranges_to(1.0)  # a wall at x = 1 stops every beam toward the pillar at x = 2
    assert len(recall(memory, [], occluded, PLANES, (0.0, 0.0), ANGLES, 1.1)[1]) == 1
    seen_again = ranges_to(1.9)  # the beams return from the pillar's face
    assert recall(memory, [], seen_again, PLANES, (0.0, 0.0), ANGLES, 1.1)[1] == []
    # no plane at its height, but the scan's own obstacle is alike it and seen over its heights: not published twice
    current = [remembered(pillar(2.01, 0.0), stamp=1.1)]
    after, published = recall(memory, current, free(), PLANES + 0.3, (0.0, 0.0), ANGLES, 1.1)
    assert published == [] and after == current


def test_no_memory_with_memory_s_zero() -> None:
    memory = [remembered(pillar(0.5, 0.0))]
    assert recall(memory, [], free(), PLANES, (0.45, 0.0), ANGLES, 1.1, MemoryParams(memory_s=0.0)) == ([], [])
