"""The safety_filter nodes alone, with fixed inputs: what they do with good, missing and stale inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aegis.config import load_config
from aegis.launch_plan import bypass_overrides, make_plan
from aegis.msgs import AccelCommand, Obstacle, Obstacles, RobotState, SafetyFilterReport, TwistCommand
from aegis.node import Received
from aegis.nodes.safety_filter import DiffDriveSafetyFilter, DiffDriveSafetyFilterParams, QuadrotorSafetyFilterParams, SafetyFilter

REPO = Path(__file__).resolve().parent.parent
SPHERE = Obstacles(stamp=0.0, obstacles=[Obstacle(id=0, shape="sphere", position=np.array([1.0, 0.0, 1.0]), size=np.full(3, 0.4))])


def fresh(msg) -> Received:
    return Received(msg, 0.0, False)


def state(position, velocity) -> RobotState:
    return RobotState(stamp=0.0, position=np.array(position, float), linear_velocity=np.array(velocity, float))


def quadrotor_filter() -> SafetyFilter:
    node = SafetyFilter("filter", QuadrotorSafetyFilterParams(robot_radius_m=0.07), rate_hz=48)
    node.reset(0)
    return node


def test_a_safe_nominal_passes_unchanged_and_is_reported() -> None:
    node = quadrotor_filter()
    nominal = AccelCommand(stamp=0.0, linear=np.array([0.0, 0.5, 0.0]))  # sideways, away from the sphere's line
    out = node.step(0.0, {"state": fresh(state([0, 0, 1], [0, 0, 0])), "nominal": fresh(nominal), "obstacles": fresh(SPHERE)})
    np.testing.assert_allclose(out["command"].linear, nominal.linear, atol=1e-6)
    report = out["report"]
    assert isinstance(report, SafetyFilterReport) and report.layer == "qp" and not report.intervened
    assert report.h.size == 2  # the sphere and the speed limit (no geofence given)


def test_a_nominal_straight_at_an_obstacle_is_corrected() -> None:
    node = quadrotor_filter()
    nominal = AccelCommand(stamp=0.0, linear=np.array([5.0, 0.0, 0.0]))
    inputs = {"state": fresh(state([0.5, 0, 1], [1.5, 0, 0])), "nominal": fresh(nominal), "obstacles": fresh(SPHERE)}
    out = node.step(0.0, inputs)
    assert out["report"].intervened and out["command"].linear[0] < 0.0  # it brakes
    assert node.metrics()["filter_interventions"] == 1


def test_stale_nominal_is_filtered_as_zero_and_missing_obstacles_are_said() -> None:
    node = quadrotor_filter()
    stale = Received(AccelCommand(stamp=0.0, linear=np.array([5.0, 0.0, 0.0])), 1.0, True)
    out = node.step(1.0, {"state": fresh(state([0, 0, 1], [0, 0, 0])), "nominal": stale, "obstacles": None})
    np.testing.assert_allclose(out["command"].linear, 0.0, atol=1e-6)
    assert "no obstacles received" in out["report"].solver_status


@pytest.mark.parametrize("odometry", [None, Received(state([0, 0, 1], [0, 0, 0]), 0.5, True)], ids=["missing", "stale"])
def test_without_odometry_no_command_goes_out_and_the_report_says_estop(odometry) -> None:
    node = quadrotor_filter()
    nominal = fresh(AccelCommand(stamp=0.0, linear=np.array([1.0, 0.0, 0.0])))
    out = node.step(0.0, {"state": odometry, "nominal": nominal, "obstacles": fresh(SPHERE)})
    assert "command" not in out and out["report"].layer == "estop"
    assert node.metrics()["fallbacks"] == 1


def test_diff_drive_filter_stops_short_of_a_wall_ahead() -> None:
    params = DiffDriveSafetyFilterParams(robot_radius_m=0.6, lookahead_m=0.15)
    node = DiffDriveSafetyFilter("filter", params, rate_hz=50)
    node.reset(0)
    box = Obstacles(stamp=0.0, obstacles=[Obstacle(id=0, shape="box", position=np.array([1.0, 0.0, 0.5]), size=np.ones(3))])
    nominal = TwistCommand(stamp=0.0, linear=np.array([1.0, 0.0, 0.0]))
    out = node.step(0.0, {"state": fresh(state([0, 0, 0], [0, 0, 0])), "nominal": fresh(nominal), "obstacles": fresh(box)})
    # the look-ahead point is 0.15 m ahead, the box face at 0.5 m: h = 0.35 - 0.75 < 0 => it must back off
    assert out["command"].linear[0] < 0.0 and out["report"].intervened


def test_bypass_overrides_rewire_the_filtered_chain() -> None:
    config = load_config(REPO / "hw_configs" / "quadrotor_sim.yaml")
    overrides = bypass_overrides(config)
    assert overrides == ["nodes.attitude.topics.acceleration=/cmd_accel_nominal", "nodes.filter.enabled=false"]
    plan = make_plan(load_config(REPO / "hw_configs" / "quadrotor_sim.yaml", overrides))
    assert [n.name for n in plan.nodes] == ["sim", "controller", "attitude"] and plan.warnings == ()
