"""Transports between processes: ROS 2's own wire (DDS through cyclonedds, ROS 2 names and CDR), without rclpy.

:class:`DdsTransport` is one DDS participant; its publishers and subscriptions carry aegis
messages (or rosbags ROS messages) as a ROS 2 node using rmw_cyclonedds would, so a ROS 2 graph
on the same domain reads and feeds aegis. :class:`DdsBridge` connects one process group of a
launch plan to the others over it. The names are in :mod:`.ros_names` (no DDS needed); cyclonedds
is an optional dependency (``pip install 'aegis[dds]'``), imported only when a transport is made.

For serial lines and UDP (firmware, hardware in the loop) the wire is aegis's own frame
(docs/wire-format.md), in its own modules, imported from them: :mod:`.framing` (COBS + CRC-32
frames), :mod:`.wire_messages` (message ids and payload layouts), :mod:`.links` (pty and UDP links),
:mod:`.faults` (the fault proxy and its timeline), :mod:`.link_setup` (a two-process run's link) and
:mod:`.wire_bridge` (a process group's side of a plan cut over a link).
"""

from aegis.transport.bridge import BoundaryTopic, DdsBridge, boundary_topics
from aegis.transport.dds import (
    CYCLONEDDS_REQUIREMENT,
    INSTALL_HINT,
    DdsPublisher,
    DdsSubscription,
    DdsTransport,
    DdsUnavailable,
    dds_qos,
    require_cyclonedds,
    wait_for_match,
)
from aegis.transport.discovery import DiscoveredEndpoint, discovered_endpoints
from aegis.transport.ros_names import (
    dds_topic_name,
    dds_type_name,
    domain_id_from_env,
    ros_topic_name,
    ros_type_name,
)

__all__ = [
    "BoundaryTopic",
    "DdsBridge",
    "CYCLONEDDS_REQUIREMENT",
    "INSTALL_HINT",
    "DdsPublisher",
    "DdsSubscription",
    "DdsTransport",
    "DdsUnavailable",
    "DiscoveredEndpoint",
    "boundary_topics",
    "dds_qos",
    "dds_topic_name",
    "dds_type_name",
    "discovered_endpoints",
    "domain_id_from_env",
    "require_cyclonedds",
    "ros_topic_name",
    "ros_type_name",
    "wait_for_match",
]
