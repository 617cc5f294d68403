"""What a DDS participant has discovered on its domain: every reader and writer, with its topic, type and QoS, ROS 2 or not.

Reads cyclonedds's built-in DCPSPublication/DCPSSubscription topics (with its BuiltinDataReader:
a plain DataReader on a built-in topic aborts the process in cyclonedds 11). Useful to see what a
ROS 2 graph or another aegis process offers (``ros2 topic list`` without ROS), to wait for peers,
and in tests to check what the transport announces, as a remote participant sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aegis.transport.ros_names import ROS_TOPIC_PREFIX, ros_topic_name, ros_type_name


@dataclass(frozen=True)
class DiscoveredEndpoint:
    """One reader or writer seen through discovery (possibly one of this participant's own)."""

    kind: Literal["publication", "subscription"]
    dds_topic: str
    dds_type: str
    reliability: Literal["reliable", "best_effort"]
    depth: int | None
    """KEEP_LAST depth; None for KEEP_ALL."""
    durability: str
    user_data: bytes
    participant: str
    """The participant's key (a GUID prefix as text): endpoints of one participant share it."""

    @property
    def is_ros(self) -> bool:
        """Whether the topic follows ROS 2's naming (``rt/...``)."""
        return self.dds_topic.startswith(ROS_TOPIC_PREFIX + "/")

    @property
    def ros_topic(self) -> str:
        """The ROS topic ("/robot1/odom"); ValueError when this is no ROS 2 topic."""
        return ros_topic_name(self.dds_topic)

    @property
    def ros_type(self) -> str:
        """The ROS message type ("nav_msgs/msg/Odometry"); ValueError when this is no ROS 2 type."""
        return ros_type_name(self.dds_type)


def discovered_endpoints(participant: Any, kinds: tuple[str, ...] = ("publication", "subscription")) -> list[DiscoveredEndpoint]:
    """Every reader/writer ``participant`` (a cyclonedds DomainParticipant) knows of now, its own included."""
    from cyclonedds.builtin import BuiltinDataReader, BuiltinTopicDcpsPublication, BuiltinTopicDcpsSubscription

    topics = {"publication": BuiltinTopicDcpsPublication, "subscription": BuiltinTopicDcpsSubscription}
    found = []
    for kind in kinds:
        reader = BuiltinDataReader(participant, topics[kind])
        try:
            samples = reader.read(N=100_000)
        finally:
            reader.__del__()  # cyclonedds's own delete: a built-in reader per call, not one left behind
        found += [_endpoint(kind, sample) for sample in samples if getattr(sample, "topic_name", None)]
    return found


def _endpoint(kind: str, sample: Any) -> DiscoveredEndpoint:
    from cyclonedds.qos import Policy

    qos = sample.qos
    reliability = qos[Policy.Reliability] if Policy.Reliability in qos else None
    history = qos[Policy.History] if Policy.History in qos else None
    durability = qos[Policy.Durability] if Policy.Durability in qos else None
    user_data = qos[Policy.Userdata].data if Policy.Userdata in qos else b""
    return DiscoveredEndpoint(
        kind=kind,  # type: ignore[arg-type]
        dds_topic=sample.topic_name,
        dds_type=sample.type_name,
        reliability="best_effort" if reliability is None or reliability == Policy.Reliability.BestEffort else "reliable",
        depth=getattr(history, "depth", None),
        durability=_policy_name(durability),
        user_data=user_data,
        participant=str(sample.participant_key),
    )


def _policy_name(policy: Any) -> str:
    """The variant of a singleton policy in snake case (Policy.Durability.TransientLocal -> "transient_local")."""
    if policy is None:
        return "volatile"
    text = repr(policy).rsplit(".", 1)[-1]
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in text).lstrip("_")
