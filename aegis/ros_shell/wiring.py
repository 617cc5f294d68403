"""How a node's ports become ROS 2 endpoints: topic names under the node's namespace and QoS settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aegis.node import Port

# QoS choice: publishers RELIABLE, subscriptions BEST_EFFORT, both VOLATILE and KEEP_LAST(port
# depth). It is the one combination that connects with every peer at its defaults: a reliable
# writer serves reliable and best-effort readers (`ros2 topic echo`, `ros2 bag record`, rviz, other
# stacks), and a best-effort reader accepts reliable writers (`ros2 topic pub`, rclpy defaults)
# as well as best-effort ones (sensor drivers using SensorDataQoS), where a reliable reader would
# silently get nothing. A node only wants the latest sample: a lost one shows up as age and
# staleness, which the node already handles; a retransmitted old one would only arrive late.


@dataclass(frozen=True)
class QosSettings:
    """A ROS 2 QoS profile in plain values; the adapter turns it into an rclpy QoSProfile."""

    depth: int
    reliability: Literal["reliable", "best_effort"]
    durability: Literal["volatile"] = "volatile"
    history: Literal["keep_last"] = "keep_last"


def publisher_qos(port: Port) -> QosSettings:
    """QoS of the publisher of an output port: reliable, keep the last ``port.depth``."""
    return QosSettings(depth=port.depth, reliability="reliable")


def subscription_qos(port: Port) -> QosSettings:
    """QoS of the subscription of an input port: best effort, keep the last ``port.depth``."""
    return QosSettings(depth=port.depth, reliability="best_effort")


def relative_topic(topic: str) -> str:
    """The name the adapter gives rclpy for an aegis topic ("/odom" -> "odom").

    aegis topics are absolute within one robot; made relative, rclpy resolves them under the
    node's namespace (ros.namespace, or a launch-time ``__ns`` remap), so two robots with two
    namespaces do not share topics, and ROS remapping rules still apply.
    """
    if not topic.startswith("/") or topic == "/":
        raise ValueError(f"topic {topic!r} must be absolute and non-empty (start with '/')")
    return topic[1:]


def resolved_topic(namespace: str, topic: str) -> str:
    """The fully qualified ROS topic an aegis topic resolves to under ``namespace`` ("" or "/a/b")."""
    if namespace and (not namespace.startswith("/") or namespace.endswith("/")):
        raise ValueError(f"namespace {namespace!r} must be empty or absolute without a trailing '/'")
    return f"{namespace}/{relative_topic(topic)}"
