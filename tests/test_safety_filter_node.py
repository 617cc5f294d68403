"""The safety_filter nodes alone, with fixed inputs: what they do with good, missing and stale inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aegis.config import load_config
from aegis.launch_plan import bypass_overrides, make_plan
from aegis.msgs import AccelCommand, Obstacle, Obstacles, RobotState, SafetyFilterReport, TwistCommand
from aegis.node import Received
from aegis.nodes.diff_drive_safety_filter import DiffDriveSafetyFilter, DiffDriveSafetyFilterParams
from aegis.nodes.quadrotor_safety_filter import QuadrotorSafetyFilterParams, SafetyFilter

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
    config = load_config(REPO / "hw_configs" / "quadrotor_oracle_sim.yaml")
    overrides = bypass_overrides(config)
    assert overrides == ["nodes.supervisor.topics.filtered=/cmd_accel_nominal", "nodes.filter.enabled=false"]
    plan = make_plan(load_config(REPO / "hw_configs" / "quadrotor_oracle_sim.yaml", overrides))
    assert [n.name for n in plan.nodes] == ["sim", "controller", "supervisor", "attitude"] and plan.warnings == ()


def moving_at_the_sphere() -> RobotState:
    return state([0.5, 0, 1], [1.0, 0, 0])  # 0.5 m from the sphere's centre, flying at it


@pytest.mark.parametrize(
    ("obstacle", "problem"),
    [
        (Obstacle(id=7, shape="sphere", position=np.array([1.0, 0.0, 1.0]), size=np.full(3, -0.4)), "size [-0.4, -0.4, -0.4] not finite and > 0"),
        (Obstacle(id=7, shape="box", position=np.array([1.0, 0.0, 1.0]), size=np.array([0.4, 0.0, 0.4])), "size [0.4, 0.0, 0.4] not finite and > 0"),
        (Obstacle(id=7, shape="sphere", position=np.array([1.0, 0.0, 1.0]), size=np.full(3, np.inf)), "size [inf, inf, inf] not finite and > 0"),
        (Obstacle(id=7, shape="cylinder", position=np.array([1.0, np.nan, 1.0]), size=np.full(3, 0.4)), "position [1.0, nan, 1.0] not finite"),
        (
            Obstacle(id=7, shape="box", position=np.array([1.0, 0.0, 1.0]), size=np.full(3, 0.4), orientation=np.array([0.0, 0.0, 0.0, 0.5])),
            "orientation quaternion norm 0.5 is off 1",
        ),
        (
            Obstacle(id=7, shape="box", position=np.array([1.0, 0.0, 1.0]), size=np.full(3, 0.4), orientation=np.array([0.6, 0.0, 0.0, 0.8])),
            "box obstacle tilted",
        ),
    ],
    ids=["negative-sphere", "flat-box", "infinite-sphere", "nan-position", "non-unit-orientation", "tilted-box"],
)
def test_an_unusable_obstacle_is_never_shrunk_the_filter_brakes_and_names_it(obstacle: Obstacle, problem: str) -> None:
    """The sphere (or what the message says of it) is 0.5 m ahead; a negative size used to make it smaller (h > 0 inside it)."""
    node = quadrotor_filter()
    good = Obstacle(id=1, shape="sphere", position=np.array([-2.0, 0.0, 1.0]), size=np.full(3, 0.2))
    message = Obstacles(stamp=0.0, obstacles=[good, obstacle])
    nominal = fresh(AccelCommand(stamp=0.0, linear=np.array([3.0, 0.0, 0.0])))
    out = node.step(0.0, {"state": fresh(moving_at_the_sphere()), "nominal": nominal, "obstacles": fresh(message)})
    report = out["report"]
    assert report.layer == "backup" and report.level == 1
    assert f"obstacle 7 ({obstacle.shape})" in report.solver_status and problem in report.solver_status
    np.testing.assert_allclose(out["command"].linear, [-2.0, 0.0, 0.0])  # brake: -brake_gain v, not the nominal
    metrics = node.metrics()
    assert metrics["unusable_obstacles_ticks"] == 1 and metrics["fallbacks"] == 1
    # the next good message is used again
    out = node.step(0.02, {"state": fresh(moving_at_the_sphere()), "nominal": nominal, "obstacles": fresh(SPHERE)})
    assert out["report"].layer in ("qp", "relaxed_qp") and node.metrics()["unusable_obstacles_ticks"] == 1


def test_stale_obstacles_are_unusable_past_the_safety_timeout() -> None:
    node = quadrotor_filter()
    assert node.max_ages["obstacles"] == 0.25  # safety.stale_input_timeout_s's default: obstacles at 10 Hz, one lost
    nominal = fresh(AccelCommand(stamp=0.0, linear=np.array([0.0, 0.5, 0.0])))
    inputs = {"state": fresh(state([0, 0, 1], [0, 0, 0])), "nominal": nominal, "obstacles": Received(SPHERE, 0.3, True)}
    out = node.step(1.0, inputs)
    assert out["report"].layer == "backup" and "obstacles 0.300 s old (bound 0.25 s)" in out["report"].solver_status
    np.testing.assert_allclose(out["command"].linear, 0.0)  # at rest, the brake is no acceleration
    assert node.metrics()["unusable_obstacles_ticks"] == 1


def test_obstacles_never_received_mean_the_geofence_alone_for_the_grace_then_the_backup_layer() -> None:
    params = QuadrotorSafetyFilterParams(robot_radius_m=0.07, obstacles_grace_s=0.5)
    node = SafetyFilter("filter", params, rate_hz=48)
    node.reset(0)
    nominal = fresh(AccelCommand(stamp=0.0, linear=np.array([1.0, 0.0, 0.0])))
    inputs = {"state": fresh(state([0, 0, 1], [0.5, 0, 0])), "nominal": nominal, "obstacles": None}
    first = node.step(10.0, inputs)  # the grace counts from the first tick, whatever the clock says
    assert first["report"].layer == "qp" and "no obstacles received yet: geofence only" in first["report"].solver_status
    np.testing.assert_allclose(first["command"].linear, [1.0, 0.0, 0.0])
    late = node.step(10.52, inputs)
    assert late["report"].layer == "backup" and "no obstacles received in 0.520 s" in late["report"].solver_status
    np.testing.assert_allclose(late["command"].linear, [-1.0, 0.0, 0.0])
    metrics = node.metrics()
    assert metrics["geofence_only_ticks"] == 1 and metrics["unusable_obstacles_ticks"] == 1 and metrics["fallbacks"] == 1
    node.reset(0)  # a new run has its own grace
    assert node.step(20.0, inputs)["report"].layer == "qp"


def test_a_filter_declared_without_obstacle_source_runs_on_the_geofence_and_says_so() -> None:
    params = QuadrotorSafetyFilterParams(robot_radius_m=0.07, obstacle_source="none")
    node = SafetyFilter("filter", params, rate_hz=48)
    node.reset(0)
    assert SafetyFilter.unread_inputs(params) == ("obstacles",)
    nominal = fresh(AccelCommand(stamp=0.0, linear=np.array([1.0, 0.0, 0.0])))
    for t in (0.0, 5.0):
        out = node.step(t, {"state": fresh(state([0, 0, 1], [0.5, 0, 0])), "nominal": nominal, "obstacles": None})
        assert out["report"].layer == "qp" and "no obstacle source: geofence only" in out["report"].solver_status
    assert node.metrics()["geofence_only_ticks"] == 2 and node.metrics()["fallbacks"] == 0


QUAD_ODOM_BOUND = QuadrotorSafetyFilterParams(robot_radius_m=0.07)


@pytest.mark.parametrize("robot", ["quadrotor", "diff_drive"])
@pytest.mark.parametrize(
    ("odometry", "reason"),
    [
        (RobotState(position=np.array([0.0, 0.0, 1.0]), orientation=np.array([0.0, 0.0, 0.0, 0.5]), linear_velocity=np.array([1.0, 0, 0])),
         "orientation quaternion norm 0.5 is off 1 by more than 0.001"),
        (RobotState(position=np.array([0.0, 0.0, 1.0]), orientation=np.array([0.0, 0.0, 0.0, 1.0015])), "quaternion norm 1.0015"),
        (RobotState(position=np.array([0.0, np.nan, 1.0])), "position not finite"),
        (RobotState(position=np.array([0.0, 0.0, 1.0]), linear_velocity=np.array([np.inf, 0, 0])), "linear_velocity not finite"),
    ],
    ids=["half-norm", "norm-off-by-1.5e-3", "nan-position", "infinite-velocity"],
)
def test_unusable_odometry_publishes_no_command_for_either_robot(robot: str, odometry: RobotState, reason: str) -> None:
    """A non-unit quaternion would scale the speed the filter sees (a norm of 0.5 halves it, and the braking)."""
    if robot == "quadrotor":
        node = quadrotor_filter()
        nominal = AccelCommand(stamp=0.0, linear=np.array([1.0, 0.0, 0.0]))
    else:
        node = DiffDriveSafetyFilter("filter", DiffDriveSafetyFilterParams(robot_radius_m=0.6), rate_hz=50)
        node.reset(0)
        nominal = TwistCommand(stamp=0.0, linear=np.array([1.0, 0.0, 0.0]))
    out = node.step(0.0, {"state": fresh(odometry), "nominal": fresh(nominal), "obstacles": fresh(SPHERE)})
    assert "command" not in out and out["report"].layer == "estop" and out["report"].level == 2
    assert "odometry unusable: " in out["report"].solver_status and reason in out["report"].solver_status
    assert node.metrics()["unusable_odometry_ticks"] == 1 and node.metrics()["fallbacks"] == 1


def test_a_quaternion_within_the_tolerance_is_used() -> None:
    node = quadrotor_filter()
    odometry = RobotState(position=np.array([0.0, 0.0, 1.0]), orientation=np.array([0.0, 0.0, 0.0, 1.0009]))
    nominal = fresh(AccelCommand(stamp=0.0, linear=np.array([0.0, 0.5, 0.0])))
    out = node.step(0.0, {"state": fresh(odometry), "nominal": nominal, "obstacles": fresh(SPHERE)})
    assert out["report"].layer == "qp" and "command" in out


def test_stale_odometry_and_nominal_name_their_age_and_bound() -> None:
    node = quadrotor_filter()
    nominal = Received(AccelCommand(stamp=0.0, linear=np.array([1.0, 0.0, 0.0])), 0.15, True)
    out = node.step(1.0, {"state": fresh(state([0, 0, 1], [0, 0, 0])), "nominal": nominal, "obstacles": fresh(SPHERE)})
    assert "(nominal 0.150 s old: filtered as zero)" in out["report"].solver_status
    out = node.step(1.0, {"state": Received(state([0, 0, 1], [0, 0, 0]), 0.06, True), "nominal": nominal, "obstacles": fresh(SPHERE)})
    assert out["report"].solver_status == "odometry 0.060 s old (bound 0.05 s)"
    metrics = node.metrics()
    assert metrics["stale_nominal_ticks"] == 1 and metrics["unusable_odometry_ticks"] == 1


@pytest.mark.parametrize(
    ("node_type", "params", "timeout", "bounds"),
    [
        (SafetyFilter, QuadrotorSafetyFilterParams, None, {"state": 0.05, "nominal": 0.1, "obstacles": 0.25, "neighbours": 0.05, "imu": 0.1}),
        (SafetyFilter, QuadrotorSafetyFilterParams, 0.02, {"state": 0.02, "nominal": 0.02, "obstacles": 0.02, "neighbours": 0.02, "imu": 0.02}),
        (SafetyFilter, QuadrotorSafetyFilterParams, 0.08, {"state": 0.05, "nominal": 0.08, "obstacles": 0.08, "neighbours": 0.05, "imu": 0.08}),
        (DiffDriveSafetyFilter, DiffDriveSafetyFilterParams, None, {"state": 0.1, "nominal": 0.25, "obstacles": 0.25}),
        (DiffDriveSafetyFilter, DiffDriveSafetyFilterParams, 0.2, {"state": 0.1, "nominal": 0.2, "obstacles": 0.2}),
    ],
)
def test_every_filter_input_is_bounded_by_the_safety_timeout_unless_its_port_is_tighter(node_type, params, timeout, bounds) -> None:
    safety = {} if timeout is None else {"stale_input_timeout_s": timeout}
    node = node_type("filter", params(robot_radius_m=0.1, safety=safety), rate_hz=50)
    assert node.max_ages == bounds


def test_the_safety_timeout_comes_from_the_hw_config_into_the_filters_bounds() -> None:
    config = REPO / "hw_configs" / "quadrotor_oracle_sim.yaml"
    plan = make_plan(load_config(config, ["safety.stale_input_timeout_s=0.03"]))
    nodes = {n.name: n.instantiate() for n in plan.nodes if n.name == "filter"}
    assert nodes["filter"].max_ages == {"state": 0.03, "nominal": 0.03, "obstacles": 0.03, "neighbours": 0.03, "imu": 0.03}


@pytest.mark.parametrize("path", sorted((REPO / "hw_configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_filter_tolerates_a_lost_obstacles_message(path: Path) -> None:
    """Its obstacles' staleness bound is at least two periods of the node publishing them (one message may be lost)."""
    plan = make_plan(load_config(path))
    publishers = {topic: launch for launch in plan.nodes for topic in launch.outputs.values() if isinstance(topic, str)}
    filters = [  # a filter with obstacle_source none (a robot without perception yet) has no obstacles to lose
        launch for launch in plan.nodes
        if "obstacles" in launch.inputs and launch.type_name.endswith("safety_filter") and launch.params["obstacle_source"] == "topic"
    ]
    for launch in filters:
        source = publishers[launch.inputs["obstacles"]]
        if source.type_name == "lidar_obstacles":  # triggered by each scan: the scanner's rate
            period = 1.0 / publishers[source.inputs["scan"]].params["lidar"]["rate_hz"]
        elif source.type_name == "depth_obstacles":  # triggered by each depth image: the camera's rate
            period = 1.0 / publishers[source.inputs["depth"]].params["camera"]["rate_hz"]
        else:
            period = 1.0 / source.params["obstacles_rate_hz"]
        assert launch.instantiate().max_ages["obstacles"] >= 2 * period, f"{launch.name}: obstacles from {source.name} every {period} s"


def test_a_stalled_quadrotor_escapes_to_a_free_passage_against_the_nominal_pull_back_and_stops_there() -> None:
    """``deadlock_escape.aim: free_passage``: held in front of a column, the drone is sent sideways to the nearest point
    its nominal's line passes from; the nominal's pull back toward its line (a policy's, once the escape takes the drone
    off it) is dropped, and at that point the escape asks for no more sideways speed."""
    from aegis.nodes.safety_filter import DeadlockEscapeParams

    escape = DeadlockEscapeParams(stall_speed_mps=0.15, stall_s=0.5, aim="free_passage")
    node = SafetyFilter("filter", QuadrotorSafetyFilterParams(robot_radius_m=0.07, deadlock_escape=escape), rate_hz=48)
    node.reset(0)
    column = Obstacles(stamp=0.0, obstacles=[Obstacle(id=0, shape="cylinder", position=np.array([1.0, 0.0, 1.0]), size=np.array([0.4, 0.4, 10.0]))])
    ahead = fresh(AccelCommand(stamp=0.0, linear=np.array([5.0, 0.0, 0.0])))  # straight into the column
    here = state([0.6, 0.02, 1.0], [0, 0, 0])
    tick = 0
    while node._escape is None and tick < 48:
        node.step(tick / 48, {"state": fresh(here), "nominal": ahead, "obstacles": fresh(column)})
        tick += 1
    assert node._escape is not None, "no escape in 1 s held in front of the column"
    direction, _, start, distance = node._escape
    np.testing.assert_allclose(direction, [0.0, 1.0, 0.0], atol=1e-9)  # to the side it leans to
    assert 0.2 + 0.07 <= distance <= 0.2 + 0.07 + 0.1  # the column's radius and the body, plus the passage's margin
    back = fresh(AccelCommand(stamp=0.0, linear=np.array([5.0, -2.0, 0.0])))  # the policy pulling back to y = 0
    out = node.step(tick / 48, {"state": fresh(here), "nominal": back, "obstacles": fresh(column)})
    assert "to a passage" in out["report"].solver_status and out["command"].linear[1] > 0.5
    speeds = [node._escape_speed(start + f * distance * direction, node._escape) for f in (0.0, 0.9, 1.0, 1.2)]
    assert speeds == pytest.approx([0.5, 2.0 * 0.1 * distance, 0.0, 0.0])  # escape_speed_mps, slowing to stop there
    # within the passage's margin (5 cm) of it the nominal is whole again: its pull back to the flight altitude (and to its
    # line) with it; dropped to the end, the barriers alone took a drone under a lintel into a sill (wall seed 1402)
    pulled = np.array([5.0, -2.0, 3.0])
    arrived = np.concatenate([start + (distance - 0.04) * direction, np.zeros(3)])
    np.testing.assert_allclose(node._escaping_nominal(arrived, None, pulled, node._escape), pulled + 2.0 * 0.08 * direction)
    on_the_way = np.concatenate([start, np.zeros(3)])
    np.testing.assert_allclose(node._escaping_nominal(on_the_way, None, pulled, node._escape), [5.0, 1.0, 3.0])  # -2 dropped, +0.5 m/s * 2
