"""aegis.transport.odometry_cdr: an Odometry's CDR written and read without rosbags' message objects, byte for byte as rosbags does."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aegis.msgs import RobotState
from aegis.msgs.fields import messages_equal
from aegis.msgs.ros_types import rosbags_types
from aegis.transport.dds import CdrCodec, pad4
from aegis.transport.odometry_cdr import decode_odometry, encode_odometry

TYPES = rosbags_types("jazzy")
ODOMETRY = "nav_msgs/msg/Odometry"

any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
frame_name = st.text(min_size=0, max_size=40).filter(lambda s: "\0" not in s)
stamp_ns = st.integers(min_value=-(2**31) * 10**9, max_value=(2**31 - 1) * 10**9)


def rosbags_bytes(state: RobotState, little_endian: bool = True) -> bytes:
    return pad4(bytes(TYPES.typestore.serialize_cdr(state.to_ros(TYPES), ODOMETRY, little_endian=little_endian)))


def state_of(stamp: int, frame: str, child: str, values: list[float]) -> RobotState:
    v = np.array(values, dtype=np.float64)
    return RobotState(
        stamp=stamp / 1e9, frame_id=frame, child_frame_id=child, position=v[0:3], orientation=v[3:7], linear_velocity=v[7:10],
        angular_velocity=v[10:13], pose_covariance=v[13:49].reshape(6, 6), twist_covariance=v[49:85].reshape(6, 6),
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(stamp=stamp_ns, frame=frame_name, child=frame_name, values=st.lists(any_float, min_size=85, max_size=85))
def test_encode_and_decode_agree_with_rosbags_byte_for_byte(stamp, frame, child, values) -> None:
    state = state_of(stamp, frame, child, values)
    data = encode_odometry(state)
    assert data == rosbags_bytes(state)  # NaN payloads and signed zeros included: the same bits
    decoded = decode_odometry(data)
    assert messages_equal(decoded, RobotState.from_ros(TYPES.typestore.deserialize_cdr(data, ODOMETRY)))
    assert messages_equal(decoded, CdrCodec(TYPES, RobotState).decode(data))
    assert messages_equal(decode_odometry(memoryview(bytearray(data))), decoded)  # a frame's payload may come as a view


def test_the_codec_takes_the_direct_path_and_falls_back_to_rosbags_for_what_it_does_not_read() -> None:
    codec = CdrCodec(TYPES, RobotState)
    state = RobotState(stamp=12.5, position=np.array([1.0, -2.0, 0.5]), linear_velocity=np.array([0.25, 0.0, -1.0]))
    assert codec.encode(state) == rosbags_bytes(state) == encode_odometry(state)

    big_endian = rosbags_bytes(state, little_endian=False)  # a peer may send CDR_BE: rosbags reads it
    assert big_endian[:4] == b"\x00\x00\x00\x00" and decode_odometry(big_endian) is None
    assert messages_equal(codec.decode(big_endian), state)

    data = encode_odometry(state)
    for cut in (3, 8, 20, len(data) - 8):  # a short sample: not this layout (rosbags then raises its own error)
        assert decode_odometry(data[:cut]) is None
    broken_length = bytearray(data)
    broken_length[12:16] = (10_000).to_bytes(4, "little")  # frame_id's length past the end
    assert decode_odometry(bytes(broken_length)) is None
    not_utf8 = bytearray(data)
    not_utf8[16] = 0xFF  # the first byte of "odom"
    assert decode_odometry(bytes(not_utf8)) is None


def test_decoded_arrays_are_the_message_s_own_and_writable() -> None:
    data = encode_odometry(RobotState(stamp=1.0, position=np.array([1.0, 2.0, 3.0])))
    first, second = decode_odometry(data), decode_odometry(data)
    first.position[0] = 9.0  # a consumer may update in place: neither the bytes nor another decode change
    assert second.position[0] == 1.0 and decode_odometry(data).position[0] == 1.0


def test_a_stamp_beyond_int32_seconds_is_refused_as_the_ros_conversion_refuses_it() -> None:
    with pytest.raises(ValueError, match="does not fit builtin_interfaces/Time"):
        encode_odometry(RobotState(stamp=2.0**31))
    with pytest.raises(ValueError, match="stamp must be finite"):
        encode_odometry(RobotState(stamp=float("nan")))
