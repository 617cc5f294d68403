"""Perception against the truth (aegis.runs.perception): matching, recall and precision, campaign aggregates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aegis.msgs import Obstacle, Obstacles
from aegis.runs.evaluation import aggregate
from aegis.runs.perception import PerceptionLog, aggregate_perception, faces, perception_counts, perception_summary, true_min_h
from aegis.scenario.schema import ObstacleSpec

TRUTH = [
    ObstacleSpec(shape="cylinder", position=(3.0, 0.0, 0.5), size=(0.6, 0.6, 1.0)),
    ObstacleSpec(shape="box", position=(0.0, 4.0, 0.5), size=(2.0, 1.0, 1.0)),
    ObstacleSpec(shape="cylinder", position=(30.0, 0.0, 0.5), size=(0.6, 0.6, 1.0)),  # beyond the 10 m range
]


def seen(*obstacles: Obstacle, stamp: float = 0.0) -> PerceptionLog:
    log = PerceptionLog(frozenset({"/obstacles"}), ("lidar",), 10.0)
    log("/obstacles", Obstacles(stamp=stamp, obstacles=list(obstacles)), 0)
    log("/sim/obstacles", Obstacles(stamp=stamp), 0)  # not a perception topic: ignored
    return log


def cylinder(i: int, x: float, y: float, diameter: float) -> Obstacle:
    return Obstacle(id=i, shape="cylinder", position=np.array([x, y, 1.0]), size=np.array([diameter, diameter, 2.0]))


def test_faces_are_the_points_nearest_the_robot() -> None:
    yaw = math.pi / 2
    box = Obstacle(id=1, shape="box", position=np.array([0.0, 4.05, 1.0]), size=np.array([2.0, 0.1, 2.0]),
                   orientation=np.array([0.0, 0.0, math.sin(yaw / 4), math.cos(yaw / 4)]))  # yawed 45 degrees
    points = faces(Obstacles(obstacles=[cylinder(0, 3.0, 0.0, 0.6), box]), np.zeros(2))
    np.testing.assert_allclose(points[0], [2.7, 0.0])
    assert np.hypot(*points[1]) < 4.05  # the box's nearest point is nearer than its centre


def test_a_perfect_detection_of_what_is_in_range_has_recall_and_precision_one() -> None:
    face = Obstacle(id=1, shape="box", position=np.array([0.0, 3.55, 1.0]), size=np.array([2.0, 0.1, 2.0]))
    log = seen(cylinder(0, 3.0, 0.0, 0.6), face)
    counts = perception_counts(log, np.array([0.0]), np.zeros((1, 3)), TRUTH)
    summary = perception_summary(counts, [100, 200, 300])
    assert counts["in_range"] == 2 and counts["detected"] == 2  # the far pillar is out of range
    assert summary["recall"] == 1.0 and summary["precision"] == 1.0
    assert summary["position_error_m"] == pytest.approx(0.0, abs=1e-9)
    assert summary["latency_p50_us"] == pytest.approx(0.2)


def test_a_ghost_lowers_precision_a_miss_lowers_recall_an_offset_is_the_error() -> None:
    log = seen(cylinder(0, 3.1, 0.0, 0.6), cylinder(1, -5.0, -5.0, 0.4))  # the pillar 10 cm off, and a ghost
    summary = perception_summary(perception_counts(log, np.array([0.0]), np.zeros((1, 3)), TRUTH), [])
    assert summary["recall"] == 0.5 and summary["precision"] == 0.5  # the box missed; the ghost matches nothing
    assert summary["position_error_m"] == pytest.approx(0.1, abs=1e-9)
    assert summary["latency_p99_us"] is None


def test_campaign_aggregates_sum_the_counts_and_keep_the_worst_latency() -> None:
    rows = []
    for detected, p99 in ((2, 400.0), (1, 900.0)):
        counts = {"in_range": 2, "detected": detected, "perceived": 2, "matched": 2, "error_sum_m": 0.1}
        rows.append({"perception": {**perception_summary(counts, []), "latency_p50_us": 100.0, "latency_p99_us": p99}})
    total = aggregate_perception(rows)
    assert total["recall"] == 0.75 and total["precision"] == 1.0 and total["latency_p99_us"] == 900.0
    assert aggregate_perception([{"collisions": 0}]) is None


def test_an_eval_aggregate_carries_perception_only_when_an_episode_has_it() -> None:
    row = {"collisions": 0, "crashes": 0, "success": True, "outcome": "success", "min_clearance_m": 0.3, "tracking_rmse_m": 0.1}
    assert "perception" not in aggregate([row])
    counts = {"in_range": 4, "detected": 3, "perceived": 3, "matched": 3, "error_sum_m": 0.06}
    with_perception = {**row, "perception": {**perception_summary(counts, [50, 60]), "latency_p99_us": 60.0}}
    assert aggregate([with_perception])["perception"]["recall"] == 0.75


def test_the_filters_barrier_on_the_true_obstacles_follows_the_true_look_ahead_point() -> None:
    """A diff-drive filter (look-ahead 0.15 m, margin 0.77 m) heading +x at the origin: its point is 2.55 m from the pillar's axis."""
    log = PerceptionLog(frozenset({"/obstacles"}), ("lidar",), 10.0, truth_topic="/sim/ground_truth", barrier=(0.15, 0.77))
    from aegis.msgs import RobotState

    log("/sim/ground_truth", RobotState(position=np.zeros(3)), 0)
    log("/sim/ground_truth", RobotState(position=np.array([0.0, -2.0, 0.0]), orientation=np.array([0.0, 0.0, -math.sin(math.pi / 4), math.cos(math.pi / 4)])), 1)
    h = true_min_h(log, TRUTH[:1])
    assert h == pytest.approx((3.0 - 0.15) - 0.3 - 0.77)  # the second pose (facing -y, farther) is not the lowest
    assert true_min_h(PerceptionLog(frozenset(), (), 10.0), TRUTH) is None  # no filter: nothing to evaluate
