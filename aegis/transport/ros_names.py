"""ROS 2's names on DDS, as rmw_cyclonedds forms them: ``rt/<namespace>/<topic>`` topics, ``pkg::msg::dds_::Name_`` types.

Plain string functions, no DDS import. The conventions (from rmw_cyclonedds and rmw_dds_common,
the ROS 2 middleware layer that runs over Cyclone DDS):

- a ROS topic, fully qualified (``/robot1/odom``), is the DDS topic ``rt`` + that name
  (``rt/robot1/odom``); ``rq``/``rr`` prefix services, which aegis does not use;
- a ROS message type ``pkg/msg/Name`` is the DDS type ``pkg::msg::dds_::Name_``;
- from ROS 2 Iron on, every reader and writer carries ``typehash=RIHS01_<hex>;`` in its
  USER_DATA QoS (the type description hash that ``ros2 topic info -v`` shows); Humble sends none;
- a participant carries ``enclave=/;`` in its USER_DATA (the default security enclave).
"""

from __future__ import annotations

import os

from aegis.ros_shell.wiring import resolved_topic

ROS_TOPIC_PREFIX = "rt"
"""rmw_cyclonedds's prefix of a ROS topic's DDS topic name (services use ``rq``/``rr``)."""

DEFAULT_ENCLAVE = "/"

DISTROS_WITH_TYPE_HASH = frozenset({"jazzy"})
"""Distros (of those aegis speaks: humble, jazzy) whose endpoints announce their type hash in USER_DATA."""

MAX_DOMAIN_ID = 232
"""The largest domain id Cyclone DDS accepts with its default port mapping (ROS 2 documents 0..101 and 215..232 as safe)."""


def dds_topic_name(namespace: str, topic: str) -> str:
    """The DDS topic of aegis ``topic`` ("/odom") under ROS ``namespace`` ("" or "/robot1"): "rt/robot1/odom"."""
    return ROS_TOPIC_PREFIX + resolved_topic(namespace, topic)


def ros_topic_name(dds_topic: str) -> str:
    """The ROS topic of a DDS topic that follows ROS 2's convention ("rt/robot1/odom" -> "/robot1/odom")."""
    prefix = ROS_TOPIC_PREFIX + "/"
    if not dds_topic.startswith(prefix) or dds_topic == prefix:
        raise ValueError(f"DDS topic {dds_topic!r} is not a ROS 2 topic (those start with {prefix!r})")
    return dds_topic[len(ROS_TOPIC_PREFIX):]


def dds_type_name(ros_type: str) -> str:
    """The DDS type name of a ROS 2 message type ("nav_msgs/msg/Odometry" -> "nav_msgs::msg::dds_::Odometry_")."""
    parts = ros_type.split("/")
    if len(parts) != 3 or not all(parts) or parts[1] != "msg":
        raise ValueError(f"ROS message type {ros_type!r} is not of the form 'pkg/msg/Name'")
    package, kind, name = parts
    return f"{package}::{kind}::dds_::{name}_"


def ros_type_name(dds_type: str) -> str:
    """The ROS 2 message type of a DDS type name ("nav_msgs::msg::dds_::Odometry_" -> "nav_msgs/msg/Odometry")."""
    parts = dds_type.split("::")
    if len(parts) != 4 or parts[1] != "msg" or parts[2] != "dds_" or not parts[3].endswith("_") or len(parts[3]) < 2:
        raise ValueError(f"DDS type {dds_type!r} is not a ROS 2 message type (pkg::msg::dds_::Name_)")
    return f"{parts[0]}/msg/{parts[3][:-1]}"


def type_hash_user_data(type_hash: str | None) -> bytes:
    """An endpoint's USER_DATA: ``typehash=RIHS01_...;`` as rmw_dds_common encodes it, or nothing (Humble)."""
    return f"typehash={type_hash};".encode() if type_hash else b""


def participant_user_data(enclave: str = DEFAULT_ENCLAVE) -> bytes:
    """A participant's USER_DATA as rmw_cyclonedds sets it: ``enclave=/;``."""
    return f"enclave={enclave};".encode()


def domain_id_from_env(default: int = 0) -> int:
    """``ROS_DOMAIN_ID`` from the environment (as ROS 2 reads it), else ``default``; ValueError when it is not a domain id."""
    text = os.environ.get("ROS_DOMAIN_ID", "").strip()
    if not text:
        return check_domain_id(default)
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"ROS_DOMAIN_ID={text!r} is not an integer") from None
    return check_domain_id(value, "ROS_DOMAIN_ID")


def check_domain_id(domain_id: int, what: str = "domain id") -> int:
    """``domain_id`` if it is one Cyclone DDS accepts (0..232), else ValueError naming ``what``."""
    if isinstance(domain_id, bool) or not isinstance(domain_id, int) or not 0 <= domain_id <= MAX_DOMAIN_ID:
        raise ValueError(f"{what} must be an integer in 0..{MAX_DOMAIN_ID}, got {domain_id!r}")
    return domain_id
