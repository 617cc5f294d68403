"""The quadrotor safety_filter node with neighbours: other robots' odometry in, kept clear of; stale, unusable and unknown ones."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aegis.controllers.cbf import NO_NEIGHBOURS, CbfSafetyFilter, DoubleIntegratorModel, Environment
from aegis.msgs import AccelCommand, RobotState
from aegis.node import Received
from aegis.nodes.neighbours import NeighbourTracker
from aegis.nodes.quadrotor_safety_filter import QuadrotorSafetyFilterParams, SafetyFilter
from aegis.nodes.safety_filter import NEIGHBOUR_TIMEOUT_S

YAW_90 = np.array([0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4)])
NEIGHBOUR_TOPICS = ["/cf2/odom", "/cf3/odom"]


def fresh(msg) -> Received:
    return Received(msg, 0.0, False)


def odometry(position, velocity_body=(0, 0, 0), orientation=(0, 0, 0, 1)) -> RobotState:
    return RobotState(
        stamp=0.0, position=np.array(position, float), orientation=np.array(orientation, float), linear_velocity=np.array(velocity_body, float)
    )


def make_filter(neighbours: list[str] | None = None, **params) -> SafetyFilter:
    topics = {} if neighbours is None else {"neighbours": neighbours}
    node = SafetyFilter("filter", QuadrotorSafetyFilterParams(robot_radius_m=0.07, **params), rate_hz=48, topics=topics)
    node.reset(0)
    return node


def inputs(own: RobotState, nominal, neighbours=()) -> dict:
    return {"state": fresh(own), "nominal": fresh(AccelCommand(stamp=0.0, linear=np.array(nominal, float))), "obstacles": None,
            "neighbours": tuple(neighbours)}


HEAD_ON = odometry([0.6, 0.0, 1.0], velocity_body=(-1.0, 0.0, 0.0))  # 0.6 m ahead, coming at 1 m/s
OWN = odometry([0.0, 0.0, 1.0], velocity_body=(1.0, 0.0, 0.0))


def test_without_neighbours_wired_the_filter_is_the_one_robot_filter() -> None:
    node = make_filter()
    out = node.step(0.0, {k: v for k, v in inputs(OWN, [3.0, 0.0, 0.0]).items() if k != "neighbours"})
    reference = CbfSafetyFilter(DoubleIntegratorModel(max_acceleration=10.0, robot_radius=0.07, max_speed=2.0, speed_alpha=5.0),
                                solver="closed-form")
    expected, _ = reference.compute(np.array([0, 0, 1, 1, 0, 0.0]), np.array([3.0, 0, 0]), Environment.build(), NO_NEIGHBOURS, alpha=2.0)
    np.testing.assert_array_equal(out["command"].linear, expected)
    assert "stale_neighbour_ticks" not in node.metrics() and "neighbours" not in out["report"].solver_status


def test_a_neighbour_coming_head_on_makes_the_robot_brake() -> None:
    alone = make_filter(NEIGHBOUR_TOPICS).step(0.0, inputs(OWN, [3.0, 0.0, 0.0], [None, None]))
    node = make_filter(NEIGHBOUR_TOPICS)
    out = node.step(0.0, inputs(OWN, [3.0, 0.0, 0.0], [fresh(HEAD_ON), None]))
    assert alone["command"].linear[0] > 0.0  # nothing known of the neighbours: the nominal goes on
    assert out["report"].intervened and out["command"].linear[0] < 0.0  # it brakes
    assert out["report"].h.size == alone["report"].h.size + 1  # one row for the one neighbour heard
    assert math.isclose(out["report"].h[0], 0.6 - 0.07 - 0.07)  # centre distance minus both radii
    assert "neighbours: 1 unknown" in out["report"].solver_status


def test_neighbour_velocity_is_turned_into_the_world_frame() -> None:
    tracker = NeighbourTracker(1, radius=0.1, max_age_s=0.05, max_speed=2.0)
    body_forward = odometry([1.0, 2.0, 1.0], velocity_body=(0.5, 0.0, 0.0), orientation=YAW_90)  # heading +y
    neighbours = tracker.update(0.0, [fresh(body_forward)], np.zeros(3))
    np.testing.assert_allclose(neighbours.velocities, [[0.0, 0.5, 0.0]], atol=1e-12)
    np.testing.assert_array_equal(neighbours.positions, [[1.0, 2.0, 1.0]])
    np.testing.assert_array_equal(neighbours.radii, [0.1])


def test_a_stale_neighbour_is_kept_inflated_to_where_it_may_be_and_coming_at_us() -> None:
    tracker = NeighbourTracker(1, radius=0.1, max_age_s=0.05, max_speed=2.0)
    own = np.array([0.0, 0.0, 1.0])
    old = Received(odometry([3.0, 4.0, 1.0], velocity_body=(0.0, 1.0, 0.0)), 0.25, True)
    neighbours = tracker.update(1.0, [old], own)
    np.testing.assert_allclose(neighbours.radii, [0.1 + 2.0 * 0.25])
    np.testing.assert_allclose(neighbours.velocities, [[-1.2, -1.6, 0.0]])  # 2 m/s from (3, 4) straight at us
    assert tracker.stale_ticks == 1 and "1 stale" in tracker.last_status
    later = tracker.update(1.5, [None], own)  # nothing new: the same message, half a second older still
    np.testing.assert_allclose(later.radii, [0.1 + 2.0 * 0.75])


def test_unusable_odometry_keeps_the_last_usable_one_ageing() -> None:
    tracker = NeighbourTracker(1, radius=0.1, max_age_s=0.05, max_speed=2.0)
    tracker.update(0.0, [fresh(odometry([1.0, 0.0, 1.0]))], np.zeros(3))
    broken = fresh(odometry([np.nan, 0.0, 1.0]))
    neighbours = tracker.update(0.2, [broken], np.zeros(3))
    np.testing.assert_array_equal(neighbours.positions, [[1.0, 0.0, 1.0]])  # where it was last seen
    np.testing.assert_allclose(neighbours.radii, [0.1 + 2.0 * 0.2])  # and 0.2 s of growth
    assert neighbours.finite and tracker.stale_ticks == 1


def test_never_heard_neighbours_are_ignored_and_counted() -> None:
    tracker = NeighbourTracker(2, radius=0.1, max_age_s=0.05, max_speed=2.0)
    assert tracker.update(0.0, [None, None], np.zeros(3)) is NO_NEIGHBOURS
    assert tracker.unknown_ticks == 2 and tracker.last_status == " (neighbours: 2 unknown)"


def test_the_filter_counts_stale_and_unknown_neighbour_ticks_and_brakes_harder_for_a_stale_one() -> None:
    node = make_filter(NEIGHBOUR_TOPICS)
    stale = Received(HEAD_ON, 0.2, True)
    fresh_out = make_filter(NEIGHBOUR_TOPICS).step(0.0, inputs(OWN, [3.0, 0.0, 0.0], [fresh(HEAD_ON), None]))
    stale_out = node.step(0.0, inputs(OWN, [3.0, 0.0, 0.0], [stale, None]))
    assert stale_out["command"].linear[0] <= fresh_out["command"].linear[0]  # never less conservative than fresh
    assert stale_out["report"].h[0] < fresh_out["report"].h[0]  # the inflated sphere is closer
    assert node.metrics()["stale_neighbour_ticks"] == 1 and node.metrics()["unknown_neighbour_ticks"] == 1
    assert "neighbours: 1 stale, 1 unknown" in stale_out["report"].solver_status


def test_neighbour_radius_defaults_to_the_robot_radius_and_the_port_bound_is_the_odometry_one() -> None:
    assert make_filter(NEIGHBOUR_TOPICS)._neighbours.radius == 0.07
    assert make_filter(NEIGHBOUR_TOPICS, neighbour_radius_m=0.1)._neighbours.radius == 0.1
    assert SafetyFilter.input_port("neighbours").max_age_s == NEIGHBOUR_TIMEOUT_S == SafetyFilter.input_port("state").max_age_s


@pytest.mark.parametrize("adaptive", [False, True])
def test_the_filter_never_raises_on_any_neighbour_input(adaptive: bool) -> None:
    node = make_filter(NEIGHBOUR_TOPICS, adaptive_alpha=adaptive)
    weird = [None, fresh(odometry([np.inf, 0, 1])), fresh(odometry([0.0, 0.0, 1.0])), Received(HEAD_ON, 99.0, True)]
    for a in weird:
        for b in weird:
            out = node.step(0.0, inputs(OWN, [1.0, 0.0, 0.0], [a, b]))
            assert out["report"].layer in ("qp", "relaxed_qp", "backup") and np.all(np.isfinite(out["command"].linear))
