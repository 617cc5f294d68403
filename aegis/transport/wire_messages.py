"""Which message a frame carries and how its payload is laid out: the link's message table and the fixed float32 layouts.

A link carries a fixed set of topics, each with a message id (1..0xFEFF; 0 and 0xFF00 up are
reserved). :class:`MessageTable` holds them; :meth:`MessageTable.for_topics` numbers topics from 1
in sorted order, so both ends of a link (and a firmware's generated header) agree from the topic
list alone, and :meth:`MessageTable.digest` lets them check that they do.

The payload is one of two encodings, said by the frame's flags (docs/wire-format.md):

- the **fixed layout** (flags bit 0 clear): the message's numbers as little-endian float32 in a
  stated order, nothing else: what a Cortex-M4F (single-precision FPU) reads with one ``memcpy``
  into a struct. The frame ids, covariances and joint names are not sent; the receiver fills in
  the aegis message's defaults. Odometry is 52 bytes this way, and 724 as CDR, 7.9 ms at
  921600 baud: the fixed layout is what lets a sensor frame and its command cross a serial line
  within the 2 ms budget. float32 resolves a position 4 m away to 0.5 µm; the stamp travels as
  integer ns in the frame header.
- **CDR** (flags bit 0 set): the ROS 2 message's XCDR1 bytes as the DDS transport sends them
  (rosbags' serialiser, encapsulation header included), for every type without a fixed layout
  (obstacles, scans, reports) or when a topic asks for it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np

from aegis.msgs import AccelCommand, ImuSample, MotorSpeeds, RobotState, TwistCommand, WheelSpeeds
from aegis.msgs.ros_types import rosbags_types
from aegis.msgs.stamp import stamp_to_ns
from aegis.transport.framing import FLAG_CDR, Frame

_F32 = np.dtype("<f4")
FIRST_MSG_ID = 1
LAST_MSG_ID = 0xFEFF
"""Ids 0xFF00..0xFFFF are reserved for the link's own frames (a future hello / heartbeat)."""

Encoding = Literal["fixed", "cdr"]


class PayloadError(ValueError):
    """A checked frame whose payload does not fit its message id (wrong length, wrong encoding, undecodable CDR)."""


@dataclass(frozen=True)
class FixedLayout:
    """A message's fixed layout: its float32 fields in order (name, count), and how to get them from and back into the message."""

    fields: tuple[tuple[str, int], ...]
    pack_values: Callable[[Any], list[float]]
    """The message's numbers in layout order."""
    build: Callable[[float, np.ndarray], Any]
    """The message from its stamp and the payload's numbers as one float64 array (its fields may be views of it)."""

    @property
    def count(self) -> int:
        return sum(n for _, n in self.fields)

    @property
    def size(self) -> int:
        return 4 * self.count

    @cached_property
    def packer(self) -> struct.Struct:
        """The payload's float32s, little-endian, in one C call."""
        return struct.Struct(f"<{self.count}f")


_ODOM_FRAMES = (RobotState().frame_id, RobotState().child_frame_id)


def _odometry(stamp: float, v: np.ndarray) -> RobotState:
    return RobotState.of_typed(stamp, *_ODOM_FRAMES, v[0:3], v[3:7], v[7:10], v[10:13])  # the defaults' frames; shapes fit


def _imu(stamp: float, v: np.ndarray) -> ImuSample:
    return ImuSample(stamp=stamp, orientation=v[0:4], angular_velocity=v[4:7], linear_acceleration=v[7:10])


def _linear_angular(cls: type) -> FixedLayout:
    return FixedLayout((("linear", 3), ("angular", 3)), lambda m: m.linear.tolist() + m.angular.tolist(),
                       lambda stamp, v: cls(stamp=stamp, linear=v[0:3], angular=v[3:6]))


def _speeds(cls: type) -> FixedLayout:
    default = cls()
    return FixedLayout((("velocities", len(default.names)),), lambda m: m.velocities.tolist(),
                       lambda stamp, v: cls.of_typed(stamp, default.frame_id, v))  # unchecked: decode checked the length


FIXED_LAYOUTS: dict[type, FixedLayout] = {
    RobotState: FixedLayout(
        (("position", 3), ("orientation_xyzw", 4), ("linear_velocity_body", 3), ("angular_velocity_body", 3)),
        lambda m: m.position.tolist() + m.orientation.tolist() + m.linear_velocity.tolist() + m.angular_velocity.tolist(),
        _odometry,
    ),
    ImuSample: FixedLayout(
        (("orientation_xyzw", 4), ("angular_velocity", 3), ("linear_acceleration", 3)),
        lambda m: m.orientation.tolist() + m.angular_velocity.tolist() + m.linear_acceleration.tolist(),
        _imu,
    ),
    AccelCommand: _linear_angular(AccelCommand),
    TwistCommand: _linear_angular(TwistCommand),
    MotorSpeeds: _speeds(MotorSpeeds),
    WheelSpeeds: _speeds(WheelSpeeds),
}
"""aegis message class -> its fixed layout (float32, little-endian). Other classes travel as CDR."""


@dataclass(frozen=True)
class WireTopic:
    """One entry of a link's message table."""

    msg_id: int
    topic: str
    msg_type: type
    encoding: Encoding

    @property
    def ros_type(self) -> str:
        return self.msg_type.ROS_TYPE


class MessageTable:
    """The topics a link carries, by message id; encodes messages into (msg_id, stamp_ns, payload, flags) and decodes frames back."""

    def __init__(self, entries: Iterable[WireTopic], distro: str = "jazzy") -> None:
        self.entries = tuple(sorted(entries, key=lambda e: e.msg_id))
        self.by_id: dict[int, WireTopic] = {}
        self.by_topic: dict[str, WireTopic] = {}
        for entry in self.entries:
            if not FIRST_MSG_ID <= entry.msg_id <= LAST_MSG_ID:
                raise ValueError(f"topic {entry.topic}: msg_id {entry.msg_id} is outside {FIRST_MSG_ID}..{LAST_MSG_ID}")
            if entry.msg_id in self.by_id or entry.topic in self.by_topic:
                raise ValueError(f"topic {entry.topic} (msg_id {entry.msg_id}): a topic or id appears twice in the message table")
            if entry.encoding == "fixed" and entry.msg_type not in FIXED_LAYOUTS:
                raise ValueError(f"topic {entry.topic}: {entry.msg_type.__name__} has no fixed layout (use cdr)")
            self.by_id[entry.msg_id] = entry
            self.by_topic[entry.topic] = entry
        self.distro = distro
        self._codecs: dict[type, Any] = {}

    @classmethod
    def for_topics(cls, topics: Iterable[tuple[str, type]], cdr: Iterable[str] = (), distro: str = "jazzy") -> MessageTable:
        """Ids from 1 in sorted topic order; the fixed layout where the type has one, unless the topic is in ``cdr``."""
        forced = set(cdr)
        unique = dict(topics)
        return cls(
            (WireTopic(FIRST_MSG_ID + i, topic, unique[topic], "cdr" if topic in forced or unique[topic] not in FIXED_LAYOUTS else "fixed")
             for i, topic in enumerate(sorted(unique))),
            distro,
        )

    def digest(self) -> int:
        """A 32-bit fingerprint of the table (ids, topics, ROS types, encodings): equal on both ends, or they disagree."""
        text = "".join(f"{e.msg_id} {e.topic} {e.ros_type} {e.encoding}\n" for e in self.entries)
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")

    def _cdr(self, msg_type: type) -> Any:
        codec = self._codecs.get(msg_type)
        if codec is None:
            from aegis.transport.dds import CdrCodec

            codec = self._codecs[msg_type] = CdrCodec(rosbags_types(self.distro), msg_type)
        return codec

    def encode(self, topic: str, msg: Any) -> tuple[int, int, bytes, int]:
        """(msg_id, stamp_ns, payload, flags) of ``msg`` on ``topic``; KeyError for a topic the link does not carry."""
        entry = self.by_topic[topic]
        stamp_ns = max(0, stamp_to_ns(msg.stamp))
        if entry.encoding == "cdr":
            return entry.msg_id, stamp_ns, self._cdr(entry.msg_type).encode(msg), FLAG_CDR
        layout = FIXED_LAYOUTS[entry.msg_type]
        values = layout.pack_values(msg)
        try:
            payload = layout.packer.pack(*values)  # one C call: in the link's processes, woken for each frame, fewer than numpy's
        except OverflowError:  # beyond float32's range is an infinity: the receiver judges it as it would a NaN
            with np.errstate(over="ignore"):
                payload = np.asarray(values, dtype=np.float64).astype(_F32).tobytes()
        return entry.msg_id, stamp_ns, payload, 0

    def decode(self, frame: Frame) -> tuple[str, Any]:
        """(topic, message) of a checked frame; PayloadError if its id is unknown or its payload does not fit."""
        entry = self.by_id.get(frame.msg_id)
        if entry is None:
            raise PayloadError(f"msg_id {frame.msg_id} is not in the link's message table")
        if frame.is_cdr != (entry.encoding == "cdr"):
            raise PayloadError(f"{entry.topic}: frame says {'cdr' if frame.is_cdr else 'fixed'}, the table says {entry.encoding}")
        stamp = frame.stamp_ns / 1e9
        if entry.encoding == "cdr":
            try:
                msg = self._cdr(entry.msg_type).decode(frame.payload)
            except Exception as exc:  # rosbags raises several kinds on bad bytes; all mean the same here
                raise PayloadError(f"{entry.topic}: undecodable CDR ({exc})") from None
            msg.stamp = stamp
            return entry.topic, msg
        layout = FIXED_LAYOUTS[entry.msg_type]
        if len(frame.payload) != layout.size:
            raise PayloadError(f"{entry.topic}: {len(frame.payload)} payload bytes, its fixed layout has {layout.size}")
        values = np.frombuffer(frame.payload, dtype=_F32).astype(np.float64)  # one array; the message's fields are views of it
        return entry.topic, layout.build(stamp, values)
