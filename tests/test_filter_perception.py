"""The safety filter with perceived obstacles: grown by their uncertainty and the robot's, perception age reported, stale -> backup."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aegis.msgs import Obstacle, Obstacles, RobotState, TwistCommand
from aegis.node import Received
from aegis.nodes.diff_drive_safety_filter import DiffDriveSafetyFilter, DiffDriveSafetyFilterParams

RADIUS, LOOKAHEAD = 0.6, 0.15


def fresh(msg) -> Received:
    return Received(msg, 0.0, False)


def pillar(uncertainty_m: float, stamp: float = 0.0) -> Obstacles:
    """A 0.4 m pillar 3 m ahead of the robot."""
    return Obstacles(stamp=stamp, obstacles=[Obstacle(id=0, shape="cylinder", position=np.array([3.0, 0.0, 0.5]),
                                                       size=np.array([0.4, 0.4, 1.0]), uncertainty_m=uncertainty_m)])


def odometry(position_std_m: float = 0.0) -> RobotState:
    return RobotState(stamp=0.0, pose_covariance=np.diag([position_std_m**2] * 3 + [0.0] * 3))


def pillar_h(obstacles: Obstacles, position_std_m: float = 0.0, now: float = 0.0, **params) -> tuple[float, object]:
    """The filter's h for the pillar (its first barrier row) and the report."""
    node = DiffDriveSafetyFilter("filter", DiffDriveSafetyFilterParams(robot_radius_m=RADIUS, lookahead_m=LOOKAHEAD, **params), rate_hz=50)
    node.reset(0)
    nominal = TwistCommand(stamp=0.0, linear=np.array([0.2, 0.0, 0.0]))
    out = node.step(now, {"state": fresh(odometry(position_std_m)), "nominal": fresh(nominal), "obstacles": fresh(obstacles)})
    report = out["report"]
    return (float(report.h[0]) if report.h.size else math.nan), report


def test_a_known_obstacle_is_used_as_it_is() -> None:
    h, _ = pillar_h(pillar(0.0), position_std_m=0.05)  # the robot's covariance is ignored by default
    assert h == pytest.approx((3.0 - LOOKAHEAD - 0.2) - (RADIUS + LOOKAHEAD), abs=1e-9)  # look-ahead point to surface, less the margin


def test_a_perceived_obstacle_is_grown_by_its_uncertainty_times_the_sigmas() -> None:
    known, _ = pillar_h(pillar(0.0))
    two_sigma, _ = pillar_h(pillar(0.05))
    three_sigma, _ = pillar_h(pillar(0.05), obstacle_uncertainty_sigmas=3.0)
    assert known - two_sigma == pytest.approx(0.10, abs=1e-9)
    assert known - three_sigma == pytest.approx(0.15, abs=1e-9)


def test_the_robots_own_position_uncertainty_adds_root_sum_square() -> None:
    known, _ = pillar_h(pillar(0.0))
    robot_only, _ = pillar_h(pillar(0.0), position_std_m=0.03, state_uncertainty_sigmas=2.0)
    both, _ = pillar_h(pillar(0.04), position_std_m=0.03, state_uncertainty_sigmas=2.0)
    assert known - robot_only == pytest.approx(0.06, abs=1e-9)
    assert known - both == pytest.approx(math.hypot(0.08, 0.06), abs=1e-9)


def test_the_report_carries_the_perception_age_from_the_obstacles_stamp() -> None:
    _, report = pillar_h(pillar(0.02, stamp=0.9), now=1.0)
    assert report.perception_age_s == pytest.approx(0.1)
    assert report.layer == "qp"


def test_stale_perception_is_unknown_space_the_backup_brakes_and_the_age_is_reported() -> None:
    node = DiffDriveSafetyFilter("filter", DiffDriveSafetyFilterParams(robot_radius_m=RADIUS, lookahead_m=LOOKAHEAD), rate_hz=50)
    node.reset(0)
    nominal = fresh(TwistCommand(stamp=0.0, linear=np.array([0.8, 0.0, 0.0])))
    moving = RobotState(stamp=1.0, linear_velocity=np.array([0.8, 0.0, 0.0]))
    out = node.step(0.0, {"state": fresh(moving), "nominal": nominal, "obstacles": None})
    assert out["report"].layer == "qp" and math.isnan(out["report"].perception_age_s)  # start-up grace: nothing yet
    out = node.step(1.0, {"state": fresh(moving), "nominal": nominal, "obstacles": Received(pillar(0.02, stamp=0.6), 0.4, True)})
    assert out["report"].layer == "backup" and "obstacles 0.400 s old" in out["report"].solver_status
    assert out["command"].linear[0] < 0.8  # braking, whatever the nominal asks
    assert out["report"].perception_age_s == pytest.approx(0.4)
    assert node.metrics()["unusable_obstacles_ticks"] == 1


def test_an_obstacle_with_a_bad_uncertainty_is_unusable() -> None:
    _, report = pillar_h(pillar(float("inf")))
    assert report.layer == "backup" and "uncertainty_m inf" in report.solver_status
