"""rosbag2 recording and replay (MCAP storage, through rosbags): every topic of a run, as standard ROS 2 messages.

Bags are written as rosbag2 metadata version 8 with MCAP storage and the message definitions of
the chosen distro, so `ros2 bag info`/`ros2 bag play` (Jazzy and later) and Foxglove open them.
Several aegis messages share one ROS type (three use sensor_msgs/JointState), so the bag's
custom_data also records each topic's aegis message type; replay uses it, and falls back to the
ROS type where that is unambiguous (bags written by other tools).

A bag that cannot be read (metadata.yaml missing, not UTF-8 or not rosbag2's; a storage file
missing, truncated or not MCAP; a message whose bytes do not decode) raises :class:`BagError`
naming the bag and what is wrong, never the storage library's own exception.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from aegis.config_files import ConfigError, parse_yaml, read_text, shorten
from aegis.msgs import MESSAGE_TYPES, rosbags_types
from aegis.msgs.ros_types import ROSBAGS_DISTROS

class BagError(ValueError):
    """A bag that cannot be read; the message names the bag (and the topic and time of a message that does not decode)."""


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


def merge_bags(sources: list[Path], target: Path, distro: str = "jazzy") -> int:
    """Write the messages of ``sources`` (bags this module wrote, each with its own topics) into one new bag ``target``,
    in time order, their CDR bytes copied as they are; the number of messages. BagError for a source it cannot read."""
    import heapq

    types = rosbags_types(distro)
    topic_types: dict[str, str] = {}
    for source in sources:
        topic_types.update(_recorded_types(_custom_data(source), source))
    writer = Writer(target, version=8, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    connections: dict[str, Any] = {}
    count = 0
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(_reader(source)) for source in sources]
        streams = [((t_ns, index, c.topic, c.msgtype, raw) for c, t_ns, raw in reader.messages()) for index, reader in enumerate(readers)]
        for t_ns, _, topic, msgtype, raw in heapq.merge(*streams, key=lambda m: (m[0], m[1])):
            connection = connections.get(topic)
            if connection is None:
                connection = connections[topic] = writer.add_connection(topic, msgtype, typestore=types.typestore)
            writer.write(connection, t_ns, raw)
            count += 1
    writer.set_custom_data(TOPIC_TYPES_KEY, json.dumps(topic_types, sort_keys=True))
    writer.set_custom_data(DISTRO_KEY, types.distro)
    writer.close()
    return count


def read_bag(path: str | Path, topics: Iterable[str] | None = None) -> Iterator[tuple[int, str, Any]]:
    """Yield (log time ns, topic, aegis message) in time order; ``topics`` limits which are read. BagError for a bad bag."""
    custom = _custom_data(path)
    distro = custom.get(DISTRO_KEY, "jazzy")
    if distro not in ROSBAGS_DISTROS:
        raise BagError(f"{path}/metadata.yaml: custom_data {DISTRO_KEY} is {shorten(repr(distro))}: one of {', '.join(ROSBAGS_DISTROS)}")
    types = rosbags_types(distro)
    recorded = _recorded_types(custom, path)
    with _reader(path) as reader:
        wanted = set(topics) if topics is not None else None
        connections = [c for c in reader.connections if wanted is None or c.topic in wanted]
        if wanted is not None:
            missing = wanted - {c.topic for c in connections}
            if missing:
                raise KeyError(f"{path}: no topic {', '.join(sorted(missing))} in the bag")
        classes = {c.topic: _aegis_class(c.topic, c.msgtype, recorded.get(c.topic), path) for c in connections}
        messages = reader.messages(connections=connections)
        while True:
            try:
                connection, t_ns, raw = next(messages)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 - whatever the storage library raises on a damaged file
                raise BagError(f"{path}: the storage file is damaged past its start: {_why(exc)}") from None
            try:
                msg = classes[connection.topic].from_ros(types.typestore.deserialize_cdr(raw, connection.msgtype))
            except Exception as exc:  # noqa: BLE001 - any decoding failure of recorded bytes is the bag's fault
                raise BagError(f"{path}: the message on {connection.topic} at {t_ns / 1e9:.6f} s does not decode as "
                               f"{connection.msgtype}: {_why(exc)}") from None
            yield t_ns, connection.topic, msg


def bag_info(path: str | Path) -> dict[str, Any]:
    """Topics with ROS and aegis types and counts, total messages, duration and storage of a bag; BagError for a bad bag."""
    recorded = _recorded_types(_custom_data(path), path)
    with _reader(path) as reader:
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


@contextmanager
def _reader(path: str | Path) -> Iterator[Reader]:
    """An open rosbags Reader; whatever it raises on a bag it cannot open (a storage file missing, truncated, not MCAP,
    a record claiming a terabyte) as BagError naming the bag."""
    try:
        reader = Reader(Path(path))
        reader.open()
    except Exception as exc:  # noqa: BLE001 - the storage library's errors on a damaged file are many (and MemoryError)
        raise BagError(f"{path}: not a readable rosbag2 bag: {_why(exc)}") from None
    try:
        yield reader
    finally:
        reader.close()


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {shorten(str(exc) or 'no detail')}"


def _custom_data(path: str | Path) -> dict[str, str]:
    """The bag's metadata.yaml custom_data (rosbag2 metadata version 6 and later), empty if absent; BagError for a
    metadata.yaml that is missing, not UTF-8 or not rosbag2's (read with aegis' loader: no alias bomb reaches rosbags)."""
    try:
        metadata = parse_yaml(read_text(Path(path) / "metadata.yaml"), Path(path) / "metadata.yaml")
    except ConfigError as exc:
        raise BagError(str(exc)) from None
    info = metadata.get("rosbag2_bagfile_information") if isinstance(metadata, dict) else None
    if not isinstance(info, dict):
        raise BagError(f"{path}/metadata.yaml: not rosbag2 metadata (no rosbag2_bagfile_information mapping)")
    custom = info.get("custom_data") or {}
    return custom if isinstance(custom, dict) else {}


def _recorded_types(custom: dict[str, Any], path: str | Path) -> dict[str, str]:
    """The aegis message type of each topic, as the recorder wrote it in custom_data (empty for other tools' bags)."""
    try:
        recorded = json.loads(custom.get(TOPIC_TYPES_KEY, "{}"))
    except (TypeError, ValueError):
        recorded = None
    if not isinstance(recorded, dict):
        raise BagError(f"{path}/metadata.yaml: custom_data {TOPIC_TYPES_KEY} is not a JSON mapping of topic to type")
    return {str(k): str(v) for k, v in recorded.items()}


def _aegis_class(topic: str, ros_type: str, recorded_name: str | None, path: str | Path) -> type:
    if recorded_name is not None:
        if recorded_name not in MESSAGE_TYPES:
            raise BagError(f"{path}: topic {topic} was recorded as {shorten(recorded_name)}, which this aegis does not know")
        return MESSAGE_TYPES[recorded_name]
    candidates = [cls for cls in MESSAGE_TYPES.values() if cls.ROS_TYPE == ros_type]
    if len(candidates) != 1:
        names = ", ".join(c.__name__ for c in candidates) or "none"
        raise BagError(f"{path}: topic {topic} has ROS type {ros_type}, which maps to {len(candidates)} aegis types ({names})")
    return candidates[0]
