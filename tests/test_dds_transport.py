"""Conformance of the DDS transport with ROS 2's wire, on real cyclonedds: names, bytes, QoS, namespaces, round trips.

The reference is what a ROS 2 node using rmw_cyclonedds puts on the wire, as its published
conventions describe it (rclpy cannot be installed here, so no real ROS 2 node takes part):
DDS topic ``rt`` + the ROS topic, type ``pkg::msg::dds_::Name_`` (written out by hand below),
payload = the CDR of the ROS 2 message from the rosbags definitions (CDR_LE encapsulation
``00 01 00 00``, padded to 4 bytes), checked against a second encoder (cyclonedds's own, through
the IDL types generated from the same definitions) and, for two messages, against bytes laid out
by hand from the CDR rules. Two participants of one process exchange every aegis message type;
tests/test_dds_processes.py does the same between two processes and reads the bytes off the network.
"""

from __future__ import annotations

import os
import struct
import sys
import time
from typing import Any

import pytest

pytest.importorskip("cyclonedds")

from test_msgs import examples  # noqa: E402

from aegis.msgs import MESSAGE_TYPES, RobotState, ThrustRatesCommand, messages_equal, rosbags_types  # noqa: E402
from aegis.node import Port  # noqa: E402
from aegis.ros_shell import QosSettings  # noqa: E402
from aegis.transport import (  # noqa: E402
    DdsTransport,
    DdsUnavailable,
    dds_topic_name,
    dds_type_name,
    discovered_endpoints,
    require_cyclonedds,
    ros_topic_name,
    ros_type_name,
    wait_for_match,
)
from aegis.transport.dds import pad4  # noqa: E402
from aegis.transport.idl import idl_type  # noqa: E402
from aegis.transport.ros_names import domain_id_from_env  # noqa: E402

DOMAIN = 100 + os.getpid() % 100
"""A domain of its own per test process, so that test runs side by side do not hear each other."""

ROS2_DDS_TYPE_NAMES = {
    "nav_msgs/msg/Odometry": "nav_msgs::msg::dds_::Odometry_",
    "sensor_msgs/msg/Imu": "sensor_msgs::msg::dds_::Imu_",
    "sensor_msgs/msg/LaserScan": "sensor_msgs::msg::dds_::LaserScan_",
    "sensor_msgs/msg/Image": "sensor_msgs::msg::dds_::Image_",
    "sensor_msgs/msg/PointCloud2": "sensor_msgs::msg::dds_::PointCloud2_",
    "geometry_msgs/msg/TwistStamped": "geometry_msgs::msg::dds_::TwistStamped_",
    "geometry_msgs/msg/Twist": "geometry_msgs::msg::dds_::Twist_",
    "geometry_msgs/msg/AccelStamped": "geometry_msgs::msg::dds_::AccelStamped_",
    "sensor_msgs/msg/JointState": "sensor_msgs::msg::dds_::JointState_",
    "std_msgs/msg/Float64MultiArray": "std_msgs::msg::dds_::Float64MultiArray_",
    "visualization_msgs/msg/MarkerArray": "visualization_msgs::msg::dds_::MarkerArray_",
    "diagnostic_msgs/msg/DiagnosticArray": "diagnostic_msgs::msg::dds_::DiagnosticArray_",
    "rosgraph_msgs/msg/Clock": "rosgraph_msgs::msg::dds_::Clock_",
    "std_msgs/msg/Bool": "std_msgs::msg::dds_::Bool_",
}
"""The DDS type names rmw_cyclonedds gives the ROS 2 types aegis uses, written out (not computed)."""

TYPES = rosbags_types("jazzy")
RECEIVE_QOS = QosSettings(depth=10, reliability="best_effort")


@pytest.fixture(scope="module")
def pair() -> Any:
    """Two participants of this process on one domain: what one publishes, the other receives."""
    with DdsTransport(domain_id=DOMAIN) as a, DdsTransport(domain_id=DOMAIN) as b:
        yield a, b


def deliver(pub: Any, sub: Any, publish: Any, timeout_s: float = 5.0) -> list[bytes]:
    """Publish (again every 0.2 s: a best-effort reader may match a moment after the writer) until ``sub`` has payloads."""
    assert wait_for_match([pub, sub], timeout_s=timeout_s), f"{pub.dds_topic}: no match"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        publish()
        if sub.wait(0.2):
            return sub.take_cdr()
    raise AssertionError(f"nothing arrived on {sub.dds_topic}")


def expected_payload(msg: Any) -> bytes:
    """What ROS 2 puts on the wire for ``msg``: rosbags' CDR of its ROS message, padded to 4 bytes."""
    return pad4(bytes(TYPES.typestore.serialize_cdr(msg.to_ros(TYPES), msg.ROS_TYPE)))


# ---- names (no DDS needed) ------------------------------------------------------------------


def test_every_ros_type_aegis_sends_has_its_ros2_dds_name() -> None:
    aegis_types = {cls.ROS_TYPE for cls in MESSAGE_TYPES.values()} | {"rosgraph_msgs/msg/Clock"}
    assert aegis_types == set(ROS2_DDS_TYPE_NAMES)
    for ros_type, dds_type in ROS2_DDS_TYPE_NAMES.items():
        assert dds_type_name(ros_type) == dds_type
        assert ros_type_name(dds_type) == ros_type
        assert idl_type(TYPES, ros_type).__idl_typename__ == dds_type


def test_topic_names_follow_the_rt_prefix_under_the_namespace() -> None:
    assert dds_topic_name("", "/odom") == "rt/odom"
    assert dds_topic_name("/robot1", "/odom") == "rt/robot1/odom"
    assert dds_topic_name("/fleet/robot1", "/aegis/cmd_vel") == "rt/fleet/robot1/aegis/cmd_vel"
    assert ros_topic_name("rt/robot1/odom") == "/robot1/odom"


@pytest.mark.parametrize(
    ("call", "text"),
    [
        (lambda: dds_topic_name("robot1", "/odom"), "namespace"),
        (lambda: dds_topic_name("/robot1/", "/odom"), "namespace"),
        (lambda: dds_topic_name("", "odom"), "absolute"),
        (lambda: dds_type_name("nav_msgs/Odometry"), "pkg/msg/Name"),
        (lambda: dds_type_name("example_interfaces/srv/AddTwoInts"), "pkg/msg/Name"),
        (lambda: ros_type_name("Odometry"), "not a ROS 2 message type"),
        (lambda: ros_topic_name("DCPSPublication"), "not a ROS 2 topic"),
        (lambda: DdsTransport(domain_id=233), "0..232"),
    ],
)
def test_malformed_names_are_refused_saying_why(call: Any, text: str) -> None:
    with pytest.raises(ValueError, match=text):
        call()


def test_domain_id_comes_from_ros_domain_id_as_in_ros2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROS_DOMAIN_ID", raising=False)
    assert domain_id_from_env() == 0
    monkeypatch.setenv("ROS_DOMAIN_ID", "42")
    assert domain_id_from_env() == 42
    monkeypatch.setenv("ROS_DOMAIN_ID", "forty")
    with pytest.raises(ValueError, match="ROS_DOMAIN_ID"):
        domain_id_from_env()


def test_without_cyclonedds_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "cyclonedds" or m.startswith("cyclonedds.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "cyclonedds", None)
    with pytest.raises(DdsUnavailable, match=r"pip install 'aegis\[dds\]'"):
        require_cyclonedds()
    with pytest.raises(DdsUnavailable, match="cyclonedds>=11"):
        DdsTransport(domain_id=DOMAIN)


# ---- bytes --------------------------------------------------------------------------------


def test_clock_and_twist_bytes_match_the_cdr_layout_written_by_hand(pair: Any) -> None:
    """Two payloads laid out from the CDR rules: CDR_LE header, each field aligned to its size from after the header."""
    a, b = pair
    clock_type, time_type = TYPES("rosgraph_msgs/msg/Clock"), TYPES("builtin_interfaces/msg/Time")
    pub, sub = a.publisher("/hand/clock", "rosgraph_msgs/msg/Clock"), b.subscription("/hand/clock", "rosgraph_msgs/msg/Clock", RECEIVE_QOS)
    clock = clock_type(clock=time_type(sec=7, nanosec=250_000_000))
    (payload,) = deliver(pub, sub, lambda: pub.publish(clock))[-1:]
    assert payload == b"\x00\x01\x00\x00" + struct.pack("<iI", 7, 250_000_000)
    assert sub.codec.decode(payload) == clock

    from aegis.msgs import TwistCommand

    twist = TwistCommand(stamp=1.5, frame_id="ab", linear=[1.0, 2.0, 3.0], angular=[4.0, 5.0, 6.0])
    pub, sub = a.publisher("/hand/twist", TwistCommand), b.subscription("/hand/twist", TwistCommand, RECEIVE_QOS)
    (payload,) = deliver(pub, sub, lambda: pub.publish(twist))[-1:]
    frame = struct.pack("<I", 3) + b"ab\x00"  # string: uint32 length counting the NUL, the bytes, the NUL
    header = struct.pack("<iI", 1, 500_000_000) + frame  # ends at body offset 15
    body = header + b"\x00" + struct.pack("<6d", 1.0, 2.0, 3.0, 4.0, 5.0, 6.0)  # float64 aligned to 8 from the body start
    assert payload == b"\x00\x01\x00\x00" + body


@pytest.mark.parametrize("name", sorted(MESSAGE_TYPES))
def test_every_message_type_crosses_byte_for_byte_and_round_trips(pair: Any, name: str) -> None:
    a, b = pair
    msg = examples()[name]
    topic = f"/conformance/{name.lower()}"
    pub, sub = a.publisher(topic, type(msg)), b.subscription(topic, type(msg), RECEIVE_QOS)
    payload = deliver(pub, sub, lambda: pub.publish(msg))[-1]

    assert payload == expected_payload(msg)
    assert payload[:4] == b"\x00\x01\x00\x00" and len(payload) % 4 == 0
    # a second, independent encoder of the same definitions agrees: cyclonedds's own XCDR1
    unpadded = bytes(TYPES.typestore.serialize_cdr(msg.to_ros(TYPES), msg.ROS_TYPE))
    assert idl_type(TYPES, msg.ROS_TYPE).deserialize(payload).serialize() == unpadded
    assert messages_equal(sub.codec.decode(payload), msg)

    seen = [e for e in discovered_endpoints(b.participant, ("publication",)) if e.dds_topic == f"rt{topic}"]
    assert [(e.dds_type, e.reliability, e.depth) for e in seen] == [(ROS2_DDS_TYPE_NAMES[msg.ROS_TYPE], "reliable", 1)]


def test_take_delivers_aegis_messages_oldest_first(pair: Any) -> None:
    a, b = pair
    pub, sub = a.publisher("/order/odom", RobotState), b.subscription("/order/odom", RobotState, RECEIVE_QOS)
    deliver(pub, sub, lambda: pub.publish(RobotState(stamp=0.0)))
    for k in range(1, 6):
        pub.publish(RobotState(stamp=float(k), position=[k, 0.0, 0.0]))
    got: list[RobotState] = []
    deadline = time.monotonic() + 5.0
    while len(got) < 5 and time.monotonic() < deadline:
        if sub.wait(0.2):
            got += sub.take()
    assert [m.stamp for m in got] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert isinstance(got[0], RobotState) and got[0].position[0] == 1.0


def test_a_payload_aegis_cannot_read_is_counted_not_raised(pair: Any) -> None:
    """A ROS 2 node's Float64MultiArray in another layout reaches a ThrustRatesCommand subscription: counted, named, skipped."""
    a, b = pair
    array_type, layout_type = TYPES("std_msgs/msg/Float64MultiArray"), TYPES("std_msgs/msg/MultiArrayLayout")
    foreign = array_type(layout=layout_type(dim=[], data_offset=0), data=__import__("numpy").array([1.0, 2.0]))
    pub = a.publisher("/foreign/thrust", "std_msgs/msg/Float64MultiArray")
    sub = b.subscription("/foreign/thrust", ThrustRatesCommand, RECEIVE_QOS)
    assert wait_for_match([pub, sub])
    deadline = time.monotonic() + 5.0
    while sub.rejected == 0 and time.monotonic() < deadline:
        pub.publish(foreign)
        if sub.wait(0.2):
            assert sub.take() == []
    assert sub.rejected >= 1 and "rt/foreign/thrust" in sub.last_rejection


def test_a_topic_keeps_one_type_per_transport(pair: Any) -> None:
    a, _ = pair
    a.publisher("/typed/once", RobotState)
    with pytest.raises(ValueError, match="already carries nav_msgs/msg/Odometry"):
        a.publisher("/typed/once", "sensor_msgs/msg/Imu")
    with pytest.raises(TypeError, match="expected a RobotState"):
        a.publisher("/typed/once", RobotState).publish(ThrustRatesCommand())


# ---- QoS ----------------------------------------------------------------------------------


def test_port_qos_reaches_dds_as_ros2_sets_it(pair: Any) -> None:
    """Publisher: reliable, KEEP_LAST(depth); subscription: best effort, KEEP_LAST(depth); both volatile, typehash in USER_DATA."""
    a, b = pair
    endpoints = a.publisher_for(Port("out", RobotState, "/qos/odom", depth=7)), a.subscription_for(Port("in", RobotState, "/qos/cmd", depth=4))
    time.sleep(0.3)
    seen = {(e.kind, e.dds_topic): e for e in discovered_endpoints(b.participant) if e.dds_topic.startswith("rt/qos/")}
    writer, reader = seen["publication", "rt/qos/odom"], seen["subscription", "rt/qos/cmd"]
    assert (writer.reliability, writer.depth, writer.durability) == ("reliable", 7, "volatile")
    assert (reader.reliability, reader.depth, reader.durability) == ("best_effort", 4, "volatile")
    type_hash = TYPES.typestore.hash_rihs01("nav_msgs/msg/Odometry")
    assert type_hash.startswith("RIHS01_") and len(type_hash) == 7 + 64
    assert writer.user_data == reader.user_data == f"typehash={type_hash};".encode()
    del endpoints


def test_reliability_is_applied_not_just_announced(pair: Any) -> None:
    """DDS matching itself: a best-effort writer cannot serve a reliable reader; a reliable writer serves a best-effort one."""
    a, b = pair
    best_effort_writer = a.publisher("/match/a", RobotState, QosSettings(depth=1, reliability="best_effort"))
    reliable_reader = b.subscription("/match/a", RobotState, QosSettings(depth=1, reliability="reliable"))
    best_effort_reader = b.subscription("/match/a", RobotState, QosSettings(depth=1, reliability="best_effort"))
    assert wait_for_match([best_effort_reader])
    time.sleep(0.2)
    assert reliable_reader.matched() == 0 and best_effort_writer.matched() == 1


def test_humble_sends_no_type_hash_and_still_round_trips() -> None:
    with DdsTransport(domain_id=DOMAIN, distro="humble") as a, DdsTransport(domain_id=DOMAIN, distro="humble") as b:
        msg = examples()["RobotState"]
        pub, sub = a.publisher("/humble/odom", RobotState), b.subscription("/humble/odom", RobotState, RECEIVE_QOS)
        payload = deliver(pub, sub, lambda: pub.publish(msg))[-1]
        assert messages_equal(sub.codec.decode(payload), msg)
        (writer,) = [e for e in discovered_endpoints(b.participant, ("publication",)) if e.dds_topic == "rt/humble/odom"]
        assert writer.user_data == b""


# ---- namespaces ---------------------------------------------------------------------------


def test_a_namespace_separates_two_robots_on_one_domain() -> None:
    with (
        DdsTransport(domain_id=DOMAIN, namespace="/robot1") as robot1,
        DdsTransport(domain_id=DOMAIN, namespace="/robot1") as same_robot,
        DdsTransport(domain_id=DOMAIN, namespace="/robot2") as other_robot,
        DdsTransport(domain_id=DOMAIN) as root,
    ):
        pub = robot1.publisher("/odom", RobotState)
        assert pub.dds_topic == "rt/robot1/odom"
        mine = same_robot.subscription("/odom", RobotState, RECEIVE_QOS)
        other = other_robot.subscription("/odom", RobotState, RECEIVE_QOS)
        fully_qualified = root.subscription("/robot1/odom", RobotState, RECEIVE_QOS)  # a ROS 2 tool naming the full topic
        msg = RobotState(stamp=3.0, frame_id="robot1/odom")
        assert messages_equal(mine.codec.decode(deliver(pub, mine, lambda: pub.publish(msg))[-1]), msg)
        assert messages_equal(fully_qualified.codec.decode(deliver(pub, fully_qualified, lambda: pub.publish(msg))[-1]), msg)
        assert other.matched() == 0 and other.take() == []


def test_from_config_takes_namespace_and_distro_from_ros_settings() -> None:
    from types import SimpleNamespace

    config = SimpleNamespace(ros=SimpleNamespace(namespace="/r7", distro="humble"))
    with DdsTransport.from_config(config, domain_id=DOMAIN) as transport:
        assert (transport.namespace, transport.types.distro, transport.domain_id) == ("/r7", "humble", DOMAIN)
        assert transport.publisher("/odom", RobotState).dds_topic == "rt/r7/odom"


def test_closing_leaves_the_domain(pair: Any) -> None:
    """An endpoint lives as long as its transport (not only while Python holds it); close() takes it off the domain."""
    _, b = pair
    sub = b.subscription("/closing/odom", RobotState, RECEIVE_QOS)
    with DdsTransport(domain_id=DOMAIN) as leaving:
        leaving.publisher("/closing/odom", RobotState)  # not kept: the transport keeps it
        assert wait_for_match([sub])
        second = leaving.publisher("/closing/odom", RobotState)
        assert wait_for_match([sub], count=2)
        second.close()
        assert wait_for_match([sub], count=1) and _eventually(lambda: sub.matched() == 1)
    assert _eventually(lambda: sub.matched() == 0)


def _eventually(condition: Any, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_plain_cyclonedds_application_reads_and_writes_what_aegis_does(pair: Any) -> None:
    """Another DDS program with typed samples (cyclonedds's own DataReader/DataWriter and encoder) on the same topic and type."""
    from cyclonedds.pub import DataWriter
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic

    from aegis.transport.dds import dds_qos

    a, b = pair
    t = {name: idl_type(TYPES, f"{pkg}/msg/{name}") for pkg, name in (
        ("nav_msgs", "Odometry"), ("std_msgs", "Header"), ("builtin_interfaces", "Time"),
        ("geometry_msgs", "PoseWithCovariance"), ("geometry_msgs", "TwistWithCovariance"), ("geometry_msgs", "Pose"),
        ("geometry_msgs", "Twist"), ("geometry_msgs", "Point"), ("geometry_msgs", "Quaternion"), ("geometry_msgs", "Vector3"))}
    topic = Topic(b.participant, "rt/plain/odom", t["Odometry"])
    reader = DataReader(b.participant, topic, qos=dds_qos(RECEIVE_QOS, writer=False))
    writer = DataWriter(b.participant, topic, qos=dds_qos(QosSettings(depth=1, reliability="reliable"), writer=True))

    ours = RobotState(stamp=2.5, frame_id="map", child_frame_id="base", position=[1.0, 2.0, 3.0], linear_velocity=[0.5, 0.0, 0.0])
    pub = a.publisher("/plain/odom", RobotState)
    assert wait_for_match([pub], count=1)
    deadline, samples = time.monotonic() + 5.0, []
    while not samples and time.monotonic() < deadline:
        pub.publish(ours)
        time.sleep(0.1)
        samples = reader.take(10)
    sample = samples[-1]
    assert (sample.header.stamp.sec, sample.header.stamp.nanosec, sample.header.frame_id) == (2, 500_000_000, "map")
    assert (sample.child_frame_id, sample.pose.pose.position.z, sample.twist.twist.linear.x) == ("base", 3.0, 0.5)

    theirs = t["Odometry"](
        header=t["Header"](stamp=t["Time"](sec=4, nanosec=1), frame_id="odom"), child_frame_id="body",
        pose=t["PoseWithCovariance"](pose=t["Pose"](position=t["Point"](x=-1.0, y=0.0, z=0.25), orientation=t["Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)), covariance=[0.0] * 36),
        twist=t["TwistWithCovariance"](twist=t["Twist"](linear=t["Vector3"](x=0.0, y=0.0, z=0.0), angular=t["Vector3"](x=0.0, y=0.0, z=0.1)), covariance=[0.0] * 36),
    )
    sub = a.subscription("/plain/odom", RobotState, RECEIVE_QOS)
    assert wait_for_match([sub], count=2)  # aegis's own writer on the topic and the plain one
    deadline, got = time.monotonic() + 5.0, []
    while not got and time.monotonic() < deadline:
        writer.write(theirs)
        if sub.wait(0.1):
            got = [m for m in sub.take() if m.frame_id == "odom"]
    (msg,) = got[-1:]
    assert (msg.stamp, msg.child_frame_id, list(msg.position), msg.angular_velocity[2]) == (4.000000001, "body", [-1.0, 0.0, 0.25], 0.1)
