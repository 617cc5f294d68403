"""The DDS transport between two processes on loopback: every aegis message type goes over, byte for byte, and comes back.

A second process (tests/dds_peer.py) subscribes to one topic per message type under a namespace,
reports the payload bytes it received and what it discovered of this process (topic and type
names, QoS), and sends each message back after decoding and re-encoding it itself. Where this
process may open a packet socket (root, CAP_NET_RAW), the RTPS DATA submessages are also read off
the network, so the bytes compared are the ones that crossed it. The reference is the same as in
tests/test_dds_transport.py: ROS 2's published conventions and the rosbags definitions, not a
running ROS 2 node (rclpy cannot be installed here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("cyclonedds")

from rtps_capture import RtpsCapture, capture_available  # noqa: E402
from test_dds_transport import ROS2_DDS_TYPE_NAMES, expected_payload  # noqa: E402
from test_msgs import examples  # noqa: E402

from aegis.msgs import messages_equal, rosbags_types  # noqa: E402
from aegis.ros_shell import QosSettings  # noqa: E402
from aegis.transport import DdsTransport  # noqa: E402

DOMAIN = 100 + (os.getpid() + 50) % 100
NAMESPACE = "/proc_test"
PEER = Path(__file__).resolve().parent / "dds_peer.py"
MAX_UNFRAGMENTED = 1200
"""Payloads up to this size travel in one DATA submessage (cyclone fragments from 1344 bytes by default)."""


@pytest.fixture(scope="module")
def exchange() -> dict[str, Any]:
    """Run the peer; publish every example until it comes back; return what both sides and the network saw."""
    messages = examples()
    topics = {f"/xproc/{name.lower()}": name for name in messages}
    peer = subprocess.Popen(
        [sys.executable, str(PEER), "--domain-id", str(DOMAIN), "--namespace", NAMESPACE, "--topics", json.dumps(topics)],
        stdout=subprocess.PIPE,
        text=True,
    )
    capture = RtpsCapture() if capture_available() else None
    back: dict[str, Any] = {}
    try:
        assert peer.stdout is not None and peer.stdout.readline().strip() == "ready"
        with DdsTransport(domain_id=DOMAIN, namespace=NAMESPACE) as transport:
            if capture is not None:
                capture.__enter__()
            publishers = {topic: transport.publisher(topic, type(messages[name])) for topic, name in topics.items()}
            returns = {
                topic: transport.subscription(topic + "_back", type(messages[name]), QosSettings(depth=10, reliability="best_effort"))
                for topic, name in topics.items()
            }
            deadline = time.monotonic() + 30.0
            while len(back) < len(topics) and time.monotonic() < deadline:
                for topic, name in topics.items():
                    if topic not in back:
                        publishers[topic].publish(messages[name])
                time.sleep(0.05)
                for topic, sub in returns.items():
                    got = sub.take()
                    if got and topic not in back:
                        back[topic] = got[-1]
            out, _ = peer.communicate(timeout=60.0)
    finally:
        if capture is not None:
            capture.__exit__(None, None, None)
        if peer.poll() is None:
            peer.kill()
            peer.wait()
    report = json.loads(out.strip().splitlines()[-1])
    return {"topics": topics, "messages": messages, "back": back, "peer": report,
            "wire": None if capture is None else capture.payloads()}


def test_the_other_process_receives_ros2_cdr_of_every_type(exchange: dict[str, Any]) -> None:
    peer = exchange["peer"]
    assert peer["rejected"] == {}
    assert set(peer["received"]) == set(exchange["topics"])
    for topic, name in exchange["topics"].items():
        assert bytes.fromhex(peer["received"][topic]) == expected_payload(exchange["messages"][name]), topic


def test_every_type_comes_back_equal_after_the_other_process_decoded_and_encoded_it(exchange: dict[str, Any]) -> None:
    assert set(exchange["back"]) == set(exchange["topics"])
    for topic, name in exchange["topics"].items():
        assert messages_equal(exchange["back"][topic], exchange["messages"][name]), topic


def test_the_other_process_discovers_ros2_names_and_qos(exchange: dict[str, Any]) -> None:
    seen = {(e["kind"], e["topic"]): e for e in exchange["peer"]["discovered"]}
    types = rosbags_types("jazzy")
    for topic, name in exchange["topics"].items():
        ros_type = exchange["messages"][name].ROS_TYPE
        writer = seen["publication", f"rt{NAMESPACE}{topic}"]
        reader = seen["subscription", f"rt{NAMESPACE}{topic}_back"]
        assert writer["type"] == reader["type"] == ROS2_DDS_TYPE_NAMES[ros_type]
        assert (writer["reliability"], writer["depth"]) == ("reliable", 1)
        assert (reader["reliability"], reader["depth"]) == ("best_effort", 10)
        assert writer["user_data"] == f"typehash={types.typestore.hash_rihs01(ros_type)};"


def test_the_bytes_on_the_network_are_ros2_cdr(exchange: dict[str, Any]) -> None:
    if exchange["wire"] is None:
        pytest.skip("reading the network needs a packet socket (root or CAP_NET_RAW)")
    wire = set(exchange["wire"])
    small = {name: expected_payload(msg) for name, msg in exchange["messages"].items() if len(expected_payload(msg)) <= MAX_UNFRAGMENTED}
    assert len(small) >= 8, sorted(small)
    missing = [name for name, payload in small.items() if payload not in wire]
    assert not missing, f"not seen on the network as sent: {missing}"
