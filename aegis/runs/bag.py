"""rosbag2 recording and replay (MCAP storage, through rosbags): every topic of a run, as standard ROS 2 messages.

Bags are written as rosbag2 metadata version 8 with MCAP storage and the message definitions of
the chosen distro, so `ros2 bag info`/`ros2 bag play` (Jazzy and later) and Foxglove open them.
Several aegis messages share one ROS type (three use sensor_msgs/JointState), so the bag's
custom_data also records each topic's aegis message type; replay uses it, and falls back to the
ROS type where that is unambiguous (bags written by other tools).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from aegis.msgs import MESSAGE_TYPES, rosbags_types

TOPIC_TYPES_KEY = "aegis.topic_types"
DISTRO_KEY = "aegis.ros_distro"


class BagRecorder:
    """Writes published messages to a new bag; use as a context manager and pass ``write`` as a listener."""

    def __init__(self, path: str | Path, distro: str = "jazzy") -> None:
        self.path = Path(path)
        self.types = rosbags_types(distro)
        self._writer = Writer(self.path, version=8, storage_plugin=StoragePlugin.MCAP)
        self._connections: dict[str, Any] = {}
        self._topic_types: dict[str, str] = {}
        self.count = 0

    def __enter__(self) -> BagRecorder:
        self._writer.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._writer.set_custom_data(TOPIC_TYPES_KEY, json.dumps(self._topic_types, sort_keys=True))
        self._writer.set_custom_data(DISTRO_KEY, self.types.distro)
        self._writer.close()

    def write(self, topic: str, msg: Any, t_ns: int) -> None:
        """Serialize ``msg`` to CDR as its ROS 2 type and append it at log time ``t_ns``."""
        connection = self._connections.get(topic)
        type_name = type(msg).__name__
        if connection is None:
            connection = self._writer.add_connection(topic, msg.ROS_TYPE, typestore=self.types.typestore)
            self._connections[topic] = connection
            self._topic_types[topic] = type_name
        elif self._topic_types[topic] != type_name:
            raise TypeError(f"topic {topic}: recorded as {self._topic_types[topic]}, now given {type_name}")
        data = self.types.typestore.serialize_cdr(msg.to_ros(self.types), msg.ROS_TYPE)
        self._writer.write(connection, t_ns, data)
        self.count += 1


def read_bag(path: str | Path, topics: Iterable[str] | None = None) -> Iterator[tuple[int, str, Any]]:
    """Yield (log time ns, topic, aegis message) in time order; ``topics`` limits which are read."""
    with Reader(Path(path)) as reader:
        custom = _custom_data(path)
        distro = custom.get(DISTRO_KEY, "jazzy")
        types = rosbags_types(distro)
        recorded = json.loads(custom.get(TOPIC_TYPES_KEY, "{}"))
        wanted = set(topics) if topics is not None else None
        connections = [c for c in reader.connections if wanted is None or c.topic in wanted]
        if wanted is not None:
            missing = wanted - {c.topic for c in connections}
            if missing:
                raise KeyError(f"{path}: no topic {', '.join(sorted(missing))} in the bag")
        classes = {c.topic: _aegis_class(c.topic, c.msgtype, recorded.get(c.topic), path) for c in connections}
        for connection, t_ns, raw in reader.messages(connections=connections):
            ros_msg = types.typestore.deserialize_cdr(raw, connection.msgtype)
            msg_cls = classes[connection.topic]
            msg = msg_cls.from_ros(ros_msg)
            yield t_ns, connection.topic, msg


def bag_info(path: str | Path) -> dict[str, Any]:
    """Topics with ROS and aegis types and counts, total messages, duration and storage of a bag."""
    with Reader(Path(path)) as reader:
        recorded = json.loads(_custom_data(path).get(TOPIC_TYPES_KEY, "{}"))
        counts: dict[str, int] = {}
        for connection in reader.connections:
            counts[connection.topic] = counts.get(connection.topic, 0) + connection.msgcount
        return {
            "messages": reader.message_count,
            "duration_s": reader.duration / 1e9,
            "storage": "mcap" if any(Path(path).glob("*.mcap")) else "sqlite3",
            "topics": [
                {"topic": c.topic, "ros_type": c.msgtype, "aegis_type": recorded.get(c.topic), "count": counts[c.topic]}
                for c in sorted(reader.connections, key=lambda c: c.topic)
            ],
        }


def _custom_data(path: str | Path) -> dict[str, str]:
    """The bag's metadata.yaml custom_data (rosbag2 metadata version 6 and later), empty if absent."""
    metadata = yaml.safe_load((Path(path) / "metadata.yaml").read_text())
    return metadata["rosbag2_bagfile_information"].get("custom_data") or {}


def _aegis_class(topic: str, ros_type: str, recorded_name: str | None, path: str | Path) -> type:
    if recorded_name is not None:
        if recorded_name not in MESSAGE_TYPES:
            raise TypeError(f"{path}: topic {topic} was recorded as {recorded_name}, which this aegis does not know")
        return MESSAGE_TYPES[recorded_name]
    candidates = [cls for cls in MESSAGE_TYPES.values() if cls.ROS_TYPE == ros_type]
    if len(candidates) != 1:
        names = ", ".join(c.__name__ for c in candidates) or "none"
        raise TypeError(f"{path}: topic {topic} has ROS type {ros_type}, which maps to {len(candidates)} aegis types ({names})")
    return candidates[0]
