"""aegis.msgs against the real ROS 2 message definitions (rosbags' Humble and Jazzy typestores)."""

from __future__ import annotations

import array
import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aegis.msgs as msgs
from aegis.msgs import (
    MESSAGE_TYPES,
    AccelCommand,
    Image,
    ImuSample,
    JointCommand,
    LaserScan,
    PointCloud,
    LoopDiagnostics,
    MotorSpeeds,
    Obstacle,
    Obstacles,
    PolicyReport,
    RobotState,
    SafetyFilterReport,
    ThrustRatesCommand,
    EStop,
    SupervisorStatus,
    TwistCommand,
    UnstampedTwist,
    WheelSpeeds,
    messages_equal,
    rclpy_types,
    rosbags_types,
)
from aegis.msgs.ros_types import build_message, number_sequence, read_byte
from aegis.msgs.stamp import time_from_ros, time_to_ros

DISTROS = ("humble", "jazzy")
STAMP = 12345 / 240  # 51.4375 s: what an executor hands out as t_ns / 1e9


@pytest.fixture(scope="module", params=DISTROS)
def types(request: pytest.FixtureRequest) -> msgs.RosbagsTypes:
    return rosbags_types(request.param)


def wire(msg: Any, types: msgs.RosbagsTypes, **from_ros_kwargs: Any) -> Any:
    """msg -> ROS message -> CDR bytes -> ROS message -> msg, checking the ROS type on the way."""
    ros = msg.to_ros(types)
    assert ros.__msgtype__ == msg.ROS_TYPE
    raw = types.typestore.serialize_cdr(ros, msg.ROS_TYPE)
    back = types.typestore.deserialize_cdr(raw, msg.ROS_TYPE)
    assert type(back).__msgtype__ == msg.ROS_TYPE
    assert types.typestore.serialize_cdr(back, msg.ROS_TYPE) == raw
    return type(msg).from_ros(back, **from_ros_kwargs)


def examples() -> dict[str, Any]:
    """One instance of every message class with non-default, non-trivial values."""
    rng = np.random.default_rng(7)

    def covariance(n: int) -> np.ndarray:
        a = rng.normal(size=(n, n))
        return a @ a.T

    return {
        "RobotState": RobotState(
            stamp=STAMP, frame_id="map", child_frame_id="base_footprint",
            position=rng.normal(size=3), orientation=[0.1, -0.2, 0.3, 0.927],
            linear_velocity=rng.normal(size=3), angular_velocity=rng.normal(size=3),
            pose_covariance=covariance(6), twist_covariance=covariance(6),
        ),
        "ImuSample": ImuSample(
            stamp=STAMP, frame_id="imu", orientation=[0.0, 0.6, 0.0, 0.8],
            angular_velocity=rng.normal(size=3), linear_acceleration=[0.1, -0.2, 9.81],
            orientation_covariance=covariance(3), angular_velocity_covariance=covariance(3),
            linear_acceleration_covariance=covariance(3),
        ),
        "LaserScan": LaserScan(
            stamp=STAMP, frame_id="scan", angle_min=-np.pi, angle_max=np.pi, angle_increment=2 * np.pi / 7,
            time_increment=1e-4, scan_time=0.1, range_min=0.12, range_max=12.0,
            ranges=rng.uniform(0.1, 12.0, size=7), intensities=rng.uniform(0.0, 100.0, size=7),
        ),
        "PointCloud": PointCloud(stamp=STAMP, frame_id="laser",
                                 points=np.where(rng.uniform(size=(2, 5, 1)) < 0.2, np.nan, rng.normal(size=(2, 5, 3)))),
        "Image": Image(stamp=STAMP, frame_id="cam", encoding="rgb8",
                       data=rng.integers(0, 256, size=(3, 5, 3), dtype=np.uint8)),
        "TwistCommand": TwistCommand(stamp=STAMP, linear=[0.5, -0.1, 0.0], angular=[0.0, 0.0, 1.25]),
        # geometry_msgs/Twist has no header: only the default stamp and frame survive (Clearpath's cmd_vel).
        "UnstampedTwist": UnstampedTwist(linear=[0.4, 0.0, 0.0], angular=[0.0, 0.0, -0.75]),
        "AccelCommand": AccelCommand(stamp=STAMP, frame_id="odom", linear=rng.normal(size=3),
                                     angular=rng.normal(size=3)),
        "WheelSpeeds": WheelSpeeds(stamp=STAMP, velocities=[3.5, -2.25]),
        "MotorSpeeds": MotorSpeeds(stamp=STAMP, velocities=rng.uniform(300.0, 900.0, size=4)),
        "JointCommand": JointCommand(stamp=STAMP, names=("shoulder", "elbow", "wrist"),
                                     position=[0.1, -1.2, 2.3], velocity=[], effort=[1.5, 0.0, -2.0]),
        # Float64MultiArray has no header: only the default stamp and frame survive without help.
        "ThrustRatesCommand": ThrustRatesCommand(collective_thrust=14.715, body_rates=[0.1, -0.2, 0.05]),
        "Obstacles": Obstacles(stamp=STAMP, frame_id="map", obstacles=[
            Obstacle(id=4, shape="sphere", position=[1.0, 2.0, 0.5], size=[0.6, 0.6, 0.6]),
            Obstacle(id=9, shape="cylinder", position=[-1.0, 0.5, 1.0], size=[0.3, 0.3, 2.0],
                     orientation=[0.0, 0.0, 0.38268343236508984, 0.9238795325112867]),
            Obstacle(id=11, shape="box", position=[3.0, -2.0, 0.25], size=[1.0, 2.0, 0.5], uncertainty_m=0.0375),
        ]),
        "SafetyFilterReport": SafetyFilterReport(
            stamp=STAMP, name="aegis/safety_filter", layer="relaxed_qp", intervened=True,
            h=[0.1 + 0.2, -1e-300, 3.0, float("inf")], active=[True, False, True, False],
            slack=1 / 3, solver_status="solved inaccurate", solve_time_s=3.7e-5, perception_age_s=0.0625,
        ),
        "LoopDiagnostics": LoopDiagnostics(
            stamp=STAMP, name="aegis/mpc", period_s=0.01, last_duration_s=0.0031, p50_duration_s=2.9e-3,
            p99_duration_s=0.0123456789, deadline_misses=3, ticks=100_000, level=1,
        ),
        "PolicyReport": PolicyReport(
            stamp=STAMP, name="aegis/policy", proposed=False, reason="nonfinite", latency_s=2.25e-5, ticks=961,
            no_nominal_ticks=2, providers="CPUExecutionProvider",
        ),
        "EStop": EStop(engaged=True),  # std_msgs/Bool: no header, so no stamp on the wire
        "SupervisorStatus": SupervisorStatus(
            stamp=STAMP, name="cf1/supervisor", state="degraded", reason="odometry stale (0.120 s)", passed=False,
            ticks=480, gated_ticks=12, transitions=3,
        ),
    }


def test_examples_and_message_types_cover_every_message_class() -> None:
    exported = {name for name in msgs.__all__ if hasattr(getattr(msgs, name), "ROS_TYPE")}
    assert set(MESSAGE_TYPES) == exported
    assert all(MESSAGE_TYPES[name].__name__ == name for name in MESSAGE_TYPES)
    assert set(examples()) == set(MESSAGE_TYPES)


@pytest.mark.parametrize("name", sorted(MESSAGE_TYPES))
def test_every_message_round_trips_through_cdr(types: msgs.RosbagsTypes, name: str) -> None:
    msg = examples()[name]
    assert type(msg) is MESSAGE_TYPES[name]
    assert messages_equal(wire(msg, types), msg)


def typed_pairs() -> list[tuple[Any, Any]]:
    """(the unchecked per-tick constructor's message, the checked constructor's) for each message with ``of_typed``."""
    position, velocity, heading = np.array([1.0, -2.0, 0.5]), np.array([0.25, 0.0, -1.5]), np.array([0.0, 0.0, 0.6, 0.8])
    return [
        (
            RobotState.of_typed(3, "odom", "reference", position, heading, velocity),  # an int stamp becomes a float, as checked
            RobotState(stamp=3, frame_id="odom", child_frame_id="reference", position=position, orientation=heading, linear_velocity=velocity),
        ),
        (
            RobotState.of_typed(2.0, "odom", "base_link", position, heading, velocity, -velocity, np.eye(6) * 1e-4, np.eye(6) * 4e-4),
            RobotState(stamp=2.0, frame_id="odom", child_frame_id="base_link", position=position, orientation=heading, linear_velocity=velocity,
                       angular_velocity=-velocity, pose_covariance=np.eye(6) * 1e-4, twist_covariance=np.eye(6) * 4e-4),
        ),
        (
            ImuSample.of_typed(0.5, "base_link", heading, velocity, position),
            ImuSample(stamp=0.5, frame_id="base_link", orientation=heading, angular_velocity=velocity, linear_acceleration=position),
        ),
        (
            ImuSample.of_typed(1, "base_link", heading, velocity, position, np.eye(3) * 1e-5, np.full((3, 3), -1.0), np.eye(3) * 4e-4),
            ImuSample(stamp=1, frame_id="base_link", orientation=heading, angular_velocity=velocity, linear_acceleration=position,
                      orientation_covariance=np.eye(3) * 1e-5, angular_velocity_covariance=np.full((3, 3), -1.0),
                      linear_acceleration_covariance=np.eye(3) * 4e-4),
        ),
        (AccelCommand.of_typed(0.5, "odom", velocity), AccelCommand(stamp=0.5, frame_id="odom", linear=velocity)),
        (TwistCommand.of_typed(0.5, "base_link", velocity), TwistCommand(stamp=0.5, frame_id="base_link", linear=velocity)),
        (
            PolicyReport.of_typed(0.25, "controller", "ok", 2.5e-5, 12, 1, "CPUExecutionProvider"),
            PolicyReport(stamp=0.25, name="controller", proposed=True, reason="ok", latency_s=2.5e-5, ticks=12, no_nominal_ticks=1,
                         providers="CPUExecutionProvider"),
        ),
        (
            PolicyReport.of_typed(0.25, "controller", "lost_state", 0.0, 12, 2, "CPUExecutionProvider"),
            PolicyReport(stamp=0.25, name="controller", proposed=False, reason="lost_state", latency_s=0.0, ticks=12, no_nominal_ticks=2,
                         providers="CPUExecutionProvider"),
        ),
        (
            SupervisorStatus.of_typed(1.5, "supervisor", "degraded", "odometry stale", False, 480, 12, 3),
            SupervisorStatus(stamp=1.5, name="supervisor", state="degraded", reason="odometry stale", passed=False, ticks=480,
                             gated_ticks=12, transitions=3),
        ),
        (MotorSpeeds.of_typed(0.75, "base_link", np.full(4, 1800.0)), MotorSpeeds(stamp=0.75, frame_id="base_link", velocities=np.full(4, 1800.0))),
        (WheelSpeeds.of_typed(0.75, "base_link", np.array([1.0, 2.0])), WheelSpeeds(stamp=0.75, frame_id="base_link", velocities=np.array([1.0, 2.0]))),
    ]


@pytest.mark.parametrize("index", range(len(typed_pairs())))
def test_per_tick_constructors_build_what_the_checked_ones_build(types: msgs.RosbagsTypes, index: int) -> None:
    fast, checked = typed_pairs()[index]
    assert messages_equal(fast, checked)
    assert [type(getattr(fast, f.name)) for f in dataclasses.fields(fast)] == [type(getattr(checked, f.name)) for f in dataclasses.fields(checked)]
    assert messages_equal(wire(fast, types), checked)
    again = typed_pairs()[index][0]
    for name in ("angular_velocity", "pose_covariance", "twist_covariance", "angular", "orientation_covariance",
                 "angular_velocity_covariance", "linear_acceleration_covariance"):  # the zero defaults: fresh arrays, never shared
        if hasattr(fast, name):
            assert getattr(fast, name) is not getattr(again, name)


@pytest.mark.parametrize("name", sorted(MESSAGE_TYPES))
def test_ros_type_exists_in_both_distros(name: str) -> None:
    for distro in DISTROS:
        assert rosbags_types(distro)(MESSAGE_TYPES[name].ROS_TYPE).__msgtype__ == MESSAGE_TYPES[name].ROS_TYPE


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
vec3 = st.lists(finite, min_size=3, max_size=3)
t_ns = st.integers(min_value=-(2**51), max_value=2**51)


@settings(max_examples=60, deadline=None)
@given(ns=t_ns, position=vec3, velocity=vec3, quaternion=st.lists(finite, min_size=4, max_size=4))
def test_robot_state_round_trips_any_floats_and_executor_stamps(ns, position, velocity, quaternion) -> None:
    types = rosbags_types("jazzy")
    msg = RobotState(stamp=ns / 1e9, position=position, orientation=quaternion, linear_velocity=velocity)
    ros = msg.to_ros(types)
    assert ros.header.stamp.sec * 1_000_000_000 + ros.header.stamp.nanosec == ns
    assert 0 <= ros.header.stamp.nanosec < 1_000_000_000
    assert messages_equal(wire(msg, types), msg)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(min_value=0, max_value=12))
def test_joint_command_round_trips_any_length(data, n: int) -> None:
    types = rosbags_types("humble")
    names = tuple(f"joint_{i}" for i in range(n))
    optional = st.one_of(st.just([]), st.lists(finite, min_size=n, max_size=n))
    msg = JointCommand(stamp=STAMP, names=names, position=data.draw(optional),
                       velocity=data.draw(optional), effort=data.draw(optional))
    assert messages_equal(wire(msg, types), msg)


def test_executor_stamp_round_trips_exactly(types: msgs.RosbagsTypes) -> None:
    time = time_to_ros(types, STAMP)
    assert (time.sec, time.nanosec) == (51, 437_500_000)
    assert time_from_ros(time) == STAMP
    back = wire(TwistCommand(stamp=STAMP), types)
    assert back.stamp == STAMP


@pytest.mark.parametrize(
    ("stamp", "sec", "nanosec"),
    [(-0.25, -1, 750_000_000), (-1e-9, -1, 999_999_999), (0.9999999999, 1, 0), (2.0, 2, 0)],
)
def test_stamp_normalises_negatives_and_carries(stamp: float, sec: int, nanosec: int) -> None:
    time = time_to_ros(rosbags_types("jazzy"), stamp)
    assert (time.sec, time.nanosec) == (sec, nanosec)


@pytest.mark.parametrize("stamp", [float("nan"), float("inf"), 2.0**31])
def test_stamp_that_time_cannot_hold_is_refused(stamp: float) -> None:
    with pytest.raises(ValueError, match="stamp"):
        time_to_ros(rosbags_types("jazzy"), stamp)


def test_odometry_quaternion_is_x_y_z_w_and_twist_is_body_frame(types: msgs.RosbagsTypes) -> None:
    msg = RobotState(orientation=[0.1, 0.2, 0.3, 0.9], linear_velocity=[1.0, 2.0, 3.0],
                     angular_velocity=[4.0, 5.0, 6.0], child_frame_id="base_link")
    ros = msg.to_ros(types)
    q = ros.pose.pose.orientation
    assert (q.x, q.y, q.z, q.w) == (0.1, 0.2, 0.3, 0.9)
    assert ros.child_frame_id == "base_link"
    assert (ros.twist.twist.linear.x, ros.twist.twist.angular.z) == (1.0, 6.0)


def test_odometry_covariance_is_row_major() -> None:
    cov = np.arange(36.0).reshape(6, 6)
    ros = RobotState(pose_covariance=cov).to_ros(rosbags_types("jazzy"))
    assert ros.pose.covariance[1] == cov[0, 1] and ros.pose.covariance[6] == cov[1, 0]


@pytest.mark.parametrize(
    ("build", "text"),
    [
        (lambda: RobotState(position=[1.0, 2.0]), "RobotState.position: expected shape (3,), got (2,)"),
        (lambda: RobotState(pose_covariance=np.zeros(36)), "RobotState.pose_covariance: expected shape (6, 6)"),
        (lambda: ImuSample(orientation=[0.0, 0.0, 1.0]), "ImuSample.orientation: expected shape (4,)"),
        (lambda: TwistCommand(angular=np.zeros((3, 1))), "TwistCommand.angular: expected shape (3,)"),
        (lambda: WheelSpeeds(velocities=[1.0, 2.0, 3.0]), "WheelSpeeds.velocities: expected shape (2,)"),
        (lambda: MotorSpeeds(names=("a", "b"), velocities=np.zeros(4)), "MotorSpeeds.velocities"),
        (lambda: JointCommand(names=("a", "b"), effort=[1.0]), "JointCommand.effort: expected shape (0,) or (2,)"),
        (lambda: LaserScan(ranges=[1.0, 2.0], intensities=[1.0]), "LaserScan.intensities"),
        (lambda: Image(encoding="rgb8", data=np.zeros((4, 4), np.uint8)), "Image.data: expected shape (n, n, 3)"),
        (lambda: Image(encoding="mono8", data=np.full((2, 2), 300)), "Image.data: encoding 'mono8' needs uint8"),
        (lambda: ThrustRatesCommand(body_rates=[0.0, 1.0]), "ThrustRatesCommand.body_rates"),
        (lambda: SafetyFilterReport(h=np.zeros((2, 2))), "SafetyFilterReport.h: expected shape (n,)"),
        (lambda: LoopDiagnostics(level=3), "LoopDiagnostics.level"),
        (lambda: LoopDiagnostics(ticks=-1), "LoopDiagnostics.ticks"),
        (lambda: Obstacle(id=1, shape="box", position=[0, 0], size=[1, 1, 1]), "Obstacle.position"),
        (lambda: Obstacle(id=1, shape="sphere", position=[0, 0, 0], size=[1, 2, 1]), "Obstacle.size"),
        (lambda: WheelSpeeds(names="left_wheel"), "WheelSpeeds.names"),
    ],
)
def test_invalid_fields_are_refused_naming_the_field(build, text: str) -> None:
    with pytest.raises(ValueError) as info:
        build()
    assert text in str(info.value)


def test_lists_become_float64_arrays() -> None:
    msg = TwistCommand(linear=[1, 2, 3])
    assert msg.linear.dtype == np.float64 and msg.linear.tolist() == [1.0, 2.0, 3.0]


def test_thrust_rates_layout_and_header_less_stamp(types: msgs.RosbagsTypes) -> None:
    msg = ThrustRatesCommand(stamp=STAMP, frame_id="fcu", collective_thrust=9.81, body_rates=[0.1, 0.2, 0.3])
    ros = msg.to_ros(types)
    assert [d.label for d in ros.layout.dim] == ["collective_thrust_N,body_rate_x,body_rate_y,body_rate_z"]
    assert ros.data.tolist() == [9.81, 0.1, 0.2, 0.3]
    assert messages_equal(wire(msg, types, stamp=STAMP, frame_id="fcu"), msg)
    assert wire(msg, types).stamp == 0.0


def test_thrust_rates_refuses_another_layout(types: msgs.RosbagsTypes) -> None:
    dim = types("std_msgs/msg/MultiArrayDimension")(label="motor_pwm", size=4, stride=4)
    other = types("std_msgs/msg/Float64MultiArray")(
        layout=types("std_msgs/msg/MultiArrayLayout")(dim=[dim], data_offset=0),
        data=np.array([1.0, 2.0, 3.0, 4.0]),
    )
    with pytest.raises(ValueError, match="motor_pwm"):
        ThrustRatesCommand.from_ros(other)


def test_image_depth_round_trips_as_little_endian_float32(types: msgs.RosbagsTypes) -> None:
    depth = np.array([[0.5, 1.25, np.inf], [2.0, 3.5, 10.0]], dtype=np.float32)
    msg = Image(stamp=STAMP, encoding="32FC1", data=depth)
    ros = msg.to_ros(types)
    assert (ros.height, ros.width, ros.step, ros.is_bigendian) == (2, 3, 12, 0)
    assert ros.data.tobytes() == depth.astype("<f4").tobytes()
    assert messages_equal(wire(msg, types), msg)
    mono = Image(encoding="mono8", data=np.arange(12, dtype=np.uint8).reshape(3, 4))
    assert messages_equal(wire(mono, types), mono)


def test_image_reads_big_endian_and_padded_rows(types: msgs.RosbagsTypes) -> None:
    depth = np.array([[1.5, -2.0], [3.25, 4.0]], dtype=">f4")
    padded = np.zeros((2, 12), dtype=np.uint8)  # 8 bytes of pixels + 4 bytes of padding per row
    padded[:, :8] = depth.view(np.uint8).reshape(2, 8)
    ros = types("sensor_msgs/msg/Image")(
        header=types("std_msgs/msg/Header")(stamp=time_to_ros(types, 1.0), frame_id="cam"),
        height=2, width=2, encoding="32FC1", is_bigendian=1, step=12, data=padded.reshape(-1),
    )
    img = Image.from_ros(ros)
    assert img.data.dtype == np.float32
    assert img.data.tolist() == [[1.5, -2.0], [3.25, 4.0]]


def test_image_unknown_encoding_is_refused(types: msgs.RosbagsTypes) -> None:
    with pytest.raises(ValueError, match="'bgra16'"):
        Image(encoding="bgra16", data=np.zeros((2, 2, 4), np.uint16))
    ros = Image(encoding="mono8", data=np.zeros((2, 2), np.uint8)).to_ros(types)
    ros.encoding = "yuv422"
    with pytest.raises(ValueError, match="'yuv422'"):
        Image.from_ros(ros)


def test_laser_scan_scalars_hold_float32_precision() -> None:
    scan = LaserScan(angle_increment=0.1, ranges=np.array([1.0, 2.0]))
    assert scan.angle_increment == float(np.float32(0.1))
    assert scan.ranges.dtype == np.float32


def test_obstacle_markers_are_complete_and_typed(types: msgs.RosbagsTypes) -> None:
    obstacles = examples()["Obstacles"]
    ros = obstacles.to_ros(types)
    clear, *markers = ros.markers
    assert clear.action == 3  # DELETEALL first, so removed obstacles disappear in RViz
    assert [m.type for m in markers] == [2, 3, 1]  # SPHERE, CYLINDER, CUBE
    assert [m.id for m in markers] == [4, 9, 11]
    assert all(m.ns == "obstacles" and m.action == 0 and m.header.frame_id == "map" for m in markers)
    assert (markers[1].scale.x, markers[1].scale.y, markers[1].scale.z) == (0.3, 0.3, 2.0)
    assert markers[1].pose.orientation.w == 0.9238795325112867
    assert markers[0].lifetime.sec == 0 and markers[0].color.a > 0


def test_obstacle_uncertainty_rides_in_the_marker_text(types: msgs.RosbagsTypes) -> None:
    """A perceived obstacle's 1-sigma uncertainty survives the wire; a known one (0) leaves the text empty."""
    markers = examples()["Obstacles"].to_ros(types).markers[1:]
    assert [m.text for m in markers] == ["", "", "uncertainty_m=0.0375"]
    assert [o.uncertainty_m for o in Obstacles.from_ros(examples()["Obstacles"].to_ros(types)).obstacles] == [0.0, 0.0, 0.0375]
    bad = Obstacle(id=3, shape="sphere", position=[0, 0, 0], size=[1, 1, 1], uncertainty_m=float("nan"))
    assert "uncertainty_m nan" in bad.problem()
    ros = examples()["Obstacles"].to_ros(types)
    ros.markers[3].text = "uncertainty_m=lots"
    with pytest.raises(ValueError, match="marker id 11"):
        Obstacles.from_ros(ros)


def test_empty_obstacles_keep_stamp_and_frame(types: msgs.RosbagsTypes) -> None:
    msg = Obstacles(stamp=STAMP, frame_id="map")
    assert messages_equal(wire(msg, types), msg)


def test_obstacle_unknown_shape_and_marker_type_refused(types: msgs.RosbagsTypes) -> None:
    with pytest.raises(ValueError, match="'cone'"):
        Obstacle(id=1, shape="cone", position=[0, 0, 0], size=[1, 1, 1])
    with pytest.raises(ValueError, match="duplicate id 1"):
        Obstacles(obstacles=[Obstacle(id=1, shape="box", position=[0, 0, 0], size=[1, 1, 1])] * 2)
    ros = examples()["Obstacles"].to_ros(types)
    ros.markers[2].type = 0  # ARROW
    with pytest.raises(ValueError, match="marker id 9 has type 0"):
        Obstacles.from_ros(ros)


def test_an_unusable_obstacle_is_received_and_named_not_refused(types: msgs.RosbagsTypes) -> None:
    """A negative or zero scale, or a non-unit quaternion, comes off the wire as it is; problems() names each (a filter brakes)."""
    assert examples()["Obstacles"].problems() == []
    ros = examples()["Obstacles"].to_ros(types)
    ros.markers[1].scale.x = ros.markers[1].scale.y = ros.markers[1].scale.z = -0.4  # the sphere, id 4
    ros.markers[3].scale.y = 0.0  # the box, id 11
    ros.markers[2].pose.orientation.w = 2.0  # the cylinder, id 9
    problems = Obstacles.from_ros(ros).problems()
    nan_sphere = Obstacle(id=5, shape="sphere", position=[0, 0, 0], size=[np.nan, 0.4, 0.4])  # not refused as unequal
    assert nan_sphere.problem() == "obstacle 5 (sphere): size [nan, 0.4, 0.4] not finite and > 0"
    assert problems == [
        "obstacle 4 (sphere): size [-0.4, -0.4, -0.4] not finite and > 0",
        "obstacle 9 (cylinder): orientation quaternion norm 2.03628 is off 1 by more than 0.001",
        "obstacle 11 (box): size [1.0, 0.0, 0.5] not finite and > 0",
    ]


def test_build_message_fills_only_fields_the_class_has(types: msgs.RosbagsTypes) -> None:
    vector3 = types("geometry_msgs/msg/Vector3")

    def never() -> float:
        raise AssertionError("a factory for a field the class lacks must not run")

    v = build_message(vector3, {"x": 1.0, "y": 2.0, "z": 3.0}, {"w": never})
    assert (v.x, v.y, v.z) == (1.0, 2.0, 3.0)
    v = build_message(vector3, {"x": 1.0, "y": 2.0}, {"z": lambda: 5.0})
    assert v.z == 5.0
    with pytest.raises(ValueError, match="no value for field"):
        build_message(vector3, {"x": 1.0, "y": 2.0})
    with pytest.raises(ValueError, match="has no field"):
        build_message(vector3, {"x": 1.0, "y": 2.0, "z": 3.0, "w": 4.0})


@pytest.mark.parametrize(("layer", "level"), [("qp", 0), ("relaxed_qp", 1), ("backup", 1), ("estop", 2)])
def test_safety_report_level_follows_layer(types: msgs.RosbagsTypes, layer: str, level: int) -> None:
    msg = SafetyFilterReport(layer=layer, h=[0.5], active=[True])
    ros = types.typestore.deserialize_cdr(types.typestore.serialize_cdr(msg.to_ros(types), msg.ROS_TYPE),
                                          msg.ROS_TYPE)
    (status,) = ros.status
    assert (status.level, status.hardware_id) == (level, "aegis")
    assert messages_equal(SafetyFilterReport.from_ros(ros), msg)


@pytest.mark.parametrize(("reason", "level"), [("ok", 0), ("lost_state", 1), ("nonfinite", 1), ("error", 2)])
def test_policy_report_level_follows_reason(types: msgs.RosbagsTypes, reason: str, level: int) -> None:
    msg = PolicyReport(proposed=reason == "ok", reason=reason, latency_s=1e-5, ticks=3, no_nominal_ticks=int(reason != "ok"))
    ros = types.typestore.deserialize_cdr(types.typestore.serialize_cdr(msg.to_ros(types), msg.ROS_TYPE), msg.ROS_TYPE)
    assert ros.status[0].level == level
    assert messages_equal(PolicyReport.from_ros(ros), msg)
    with pytest.raises(ValueError, match="proposed is"):
        PolicyReport(proposed=reason != "ok", reason=reason)


def test_diagnostics_refuse_missing_keys(types: msgs.RosbagsTypes) -> None:
    ros = LoopDiagnostics(ticks=5).to_ros(types)
    ros.status[0].values = [kv for kv in ros.status[0].values if kv.key != "ticks"]
    with pytest.raises(ValueError, match="ticks"):
        LoopDiagnostics.from_ros(ros)


def test_messages_equal_compares_every_field() -> None:
    a = examples()["RobotState"]
    assert messages_equal(a, dataclasses.replace(a))
    assert not messages_equal(a, dataclasses.replace(a, child_frame_id="other"))
    moved = a.position.copy()
    moved[2] += 1e-12
    assert not messages_equal(a, dataclasses.replace(a, position=moved))
    assert not messages_equal(TwistCommand(), AccelCommand())
    b = examples()["Obstacles"]
    shifted = [dataclasses.replace(o) for o in b.obstacles]
    shifted[0].position = shifted[0].position + 1.0
    assert not messages_equal(b, dataclasses.replace(b, obstacles=shifted))


def test_unknown_distro_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="humble, jazzy"):
        rosbags_types("rolling")
    with pytest.raises(ValueError, match="'nav_msgs/msg/Odometer'"):
        rosbags_types("humble")("nav_msgs/msg/Odometer")


def test_rclpy_lookup_checks_names_without_importing_ros() -> None:
    lookup = rclpy_types()
    with pytest.raises(ValueError, match="pkg/msg/Name"):
        lookup("Odometry")


def test_rclpy_flavour_values() -> None:
    # rclpy message classes are not dataclasses: their unbounded sequences take array.array and
    # their byte fields bytes; rosbags classes take numpy arrays and ints.
    seq = number_sequence(object, np.array([1.5, -2.0]), np.float32)
    assert isinstance(seq, array.array) and seq.typecode == "f" and seq.tolist() == [1.5, -2.0]
    rosbags_seq = number_sequence(rosbags_types("jazzy")("sensor_msgs/msg/JointState"), [1.0], np.float64)
    assert isinstance(rosbags_seq, np.ndarray) and rosbags_seq.dtype == np.float64
    assert read_byte(b"\x02") == 2 and read_byte(1) == 1


def test_a_wall_clock_group_builds_every_codec_it_will_use_before_its_clock_starts() -> None:
    """rosbags builds a type's CDR codec on its first message (tens of ms: a plant's first tick fell 90 ms behind, the
    supervisor saw its odometry stale and braked half a second). aegis.runs.wall_group warms the codecs of every port of
    its nodes first: here the plant group of quadrotor_oracle_sim with the attitude loop beside it (aegis hil's PIL layout)."""
    from pathlib import Path

    from aegis.config import load_config
    from aegis.launch_plan import make_plan
    from aegis.msgs.ros_types import _typestore, warm_codecs
    from aegis.runs.wall_group import _ros_types

    plan = make_plan(load_config(Path(__file__).resolve().parents[1] / "hw_configs" / "quadrotor_oracle_sim.yaml", ["nodes.attitude.process=plant"]))
    nodes = [launch.instantiate() for launch in plan.nodes if launch.process == "plant"]
    names = _ros_types(nodes)
    assert {"nav_msgs/msg/Odometry", "sensor_msgs/msg/Imu", "visualization_msgs/msg/MarkerArray", "geometry_msgs/msg/AccelStamped",
            "diagnostic_msgs/msg/DiagnosticArray"} <= names
    warm_codecs(plan.ros_distro, names)
    assert names <= set(_typestore(plan.ros_distro).cache)  # built: the first message's serialisation finds them
    assert warm_codecs(plan.ros_distro, names) == 0  # and once only
