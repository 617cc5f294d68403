"""nav_msgs/Odometry's CDR straight from a RobotState and back, without building rosbags' message objects: the DDS hot path.

The DDS transport sends every message as its ROS 2 CDR (XCDR1, little-endian, as rmw_cyclonedds
does), made by rosbags' ``serialize_cdr`` from the ROS message that ``to_ros`` builds. For the
odometry a 1 kHz loop publishes, building that message and walking it costs most of the transport's
own time (about 14 µs to encode and 16 to decode on the development machine, against 2-3 here). An
Odometry's CDR has one layout once its two strings are known: the stamp, ``header.frame_id`` and
``child_frame_id`` (each a uint32 length with the NUL, the bytes, the NUL, padded to 4), padding to 8,
then 87 float64 (position, orientation, pose covariance, linear and angular velocity, twist
covariance). :func:`encode_odometry` writes it; :func:`decode_odometry` reads it back or answers
None for anything else (a big-endian sample, a short or odd one, a string that is not UTF-8), which
the codec then hands to rosbags as before. rosbags stays the reference: tests/test_odometry_cdr.py
checks both directions against it byte for byte on fuzzed states and frame names.
"""

from __future__ import annotations

import struct
from functools import lru_cache

import numpy as np

from aegis.msgs import RobotState
from aegis.msgs.stamp import NS_PER_S, stamp_to_ns

ENCAPSULATION = b"\x00\x01\x00\x00"
"""CDR_LE, options 0: the 4 bytes before every sample (the alignment of what follows counts from after them)."""
DOUBLES = 3 + 4 + 36 + 3 + 3 + 36
_STAMP = struct.Struct("<iI")
_LENGTH = struct.Struct("<I")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def _padded(offset: int, alignment: int) -> int:
    return offset + (-offset % alignment)


@lru_cache(maxsize=64)
def _strings(frame_id: bytes, child_frame_id: bytes) -> bytes:
    """The bytes between the stamp and the first float64 for these two strings (lengths, characters, NULs, padding)."""
    body = bytearray()
    offset = _STAMP.size
    for text in (frame_id, child_frame_id):
        pad = _padded(offset, 4) - offset
        body += b"\0" * pad + _LENGTH.pack(len(text) + 1) + text + b"\0"
        offset += pad + _LENGTH.size + len(text) + 1
    body += b"\0" * (_padded(offset, 8) - offset)
    return bytes(body)


def encode_odometry(state: RobotState) -> bytes:
    """The CDR rosbags writes for ``state.to_ros`` (with the encapsulation; a multiple of 4 bytes). ValueError for a stamp
    that is not finite or beyond int32 seconds, as the message's conversion raises."""
    sec, nanosec = divmod(stamp_to_ns(state.stamp), NS_PER_S)
    if not _INT32_MIN <= sec <= _INT32_MAX:
        raise ValueError(f"stamp {state.stamp!r} s does not fit builtin_interfaces/Time (int32 seconds)")
    values = np.concatenate(
        (state.position, state.orientation, state.pose_covariance.ravel(), state.linear_velocity, state.angular_velocity,
         state.twist_covariance.ravel())
    )  # fmt: skip
    strings = _strings(state.frame_id.encode(), state.child_frame_id.encode())
    return ENCAPSULATION + _STAMP.pack(sec, nanosec) + strings + values.astype("<f8", copy=False).tobytes()


def decode_odometry(data: bytes | bytearray | memoryview) -> RobotState | None:
    """The RobotState of an Odometry's little-endian CDR, or None where this layout does not apply (the caller asks rosbags)."""
    if type(data) is not bytes:
        data = bytes(data)  # a frame's payload may be a view: the strings' decode needs bytes
    if data[:4] != ENCAPSULATION or len(data) < 4 + _STAMP.size + 2 * _LENGTH.size:
        return None
    sec, nanosec = _STAMP.unpack_from(data, 4)
    offset = _STAMP.size  # from the body's start: the alignment's origin
    texts = []
    for _ in range(2):
        offset = _padded(offset, 4)
        if 4 + offset + _LENGTH.size > len(data):
            return None
        (length,) = _LENGTH.unpack_from(data, 4 + offset)
        start = 4 + offset + _LENGTH.size
        if length == 0 or start + length > len(data) or data[start + length - 1] != 0:
            return None
        try:
            texts.append(data[start : start + length - 1].decode())
        except UnicodeDecodeError:
            return None
        offset += _LENGTH.size + length
    offset = _padded(offset, 8)
    if len(data) - (4 + offset) < 8 * DOUBLES:
        return None
    v = np.frombuffer(data, dtype="<f8", count=DOUBLES, offset=4 + offset).astype(np.float64)  # a copy the message owns
    return RobotState.of_typed(
        (sec * NS_PER_S + nanosec) / NS_PER_S, texts[0], texts[1], v[0:3], v[3:7], v[43:46], v[46:49],
        v[7:43].reshape(6, 6), v[49:85].reshape(6, 6),
    )  # fmt: skip
