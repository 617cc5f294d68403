"""The wire frame (aegis.transport.framing): round trips, any bytes decode to frames or counted rejections, corruption is caught."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from cobs import cobs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aegis.msgs import AccelCommand, ImuSample, MotorSpeeds, Obstacle, Obstacles, RobotState
from aegis.transport.framing import (
    FLAG_CDR,
    HEADER_SIZE,
    PROTOCOL_VERSION,
    Frame,
    FrameDecoder,
    check_frame,
    encode_frame,
    pack_frame,
    split_frames,
    wire_time_s,
)
from aegis.transport.wire_messages import MessageTable, PayloadError, WireTopic

frames = st.builds(
    Frame,
    msg_id=st.integers(0, 0xFFFF),
    seq=st.integers(0, 2**32 - 1),
    stamp_ns=st.integers(0, 2**64 - 1),
    payload=st.binary(max_size=600),
    flags=st.sampled_from([0, FLAG_CDR]),
)


def _wire(frame: Frame) -> bytes:
    return encode_frame(frame.msg_id, frame.seq, frame.stamp_ns, frame.payload, frame.flags)


def test_the_layout_is_the_documented_one() -> None:
    """Version 2: a 16-byte header at the documented offsets, little-endian; CRC-32 (zlib) of everything before it; COBS then one zero."""
    body = pack_frame(msg_id=0x0102, seq=7, stamp_ns=1_500_000_000, payload=b"\x00\x01\x02", flags=FLAG_CDR)
    assert (HEADER_SIZE, PROTOCOL_VERSION) == (16, 2)
    assert body[:16] == bytes([2, 1, 0x02, 0x01, 7, 0, 0, 0]) + struct.pack("<Q", 1_500_000_000)
    assert body[16:19] == b"\x00\x01\x02"
    assert struct.unpack("<I", body[19:]) == (zlib.crc32(body[:19]),)
    wire = encode_frame(0x0102, 7, 1_500_000_000, b"\x00\x01\x02", FLAG_CDR)
    assert wire[-1] == 0 and 0 not in wire[:-1] and cobs.decode(wire[:-1]) == body


def _with_crc(body: bytes) -> bytes:
    """``body`` (a frame without its CRC) with its CRC-32 appended: a frame the CRC check passes whatever its header says."""
    return body + struct.pack("<I", zlib.crc32(body))


def test_a_version_1_frame_is_refused_as_a_bad_version() -> None:
    """Version 1's 20-byte header (payload_len and reserved after the stamp), with a good CRC: rejected as ``version``, not delivered."""
    v1 = _with_crc(struct.pack("<BBHIQHH", 1, 0, 2, 7, 1_500_000_000, 8, 0) + bytes(8))
    assert check_frame(cobs.encode(v1)) == "version"
    # the shortest version 2 frame (no payload) is delivered; a byte fewer is short, whatever it holds
    assert check_frame(cobs.encode(_with_crc(struct.pack("<BBHIQ", 2, 0, 1, 0, 0)))) == Frame(1, 0, 0, b"")
    assert check_frame(cobs.encode(_with_crc(struct.pack("<BBHIQ", 2, 0, 1, 0, 0)[:-1]))) == "short"


@given(st.lists(frames, max_size=8), st.integers(1, 64))
@settings(max_examples=200, deadline=None)
def test_frames_round_trip_through_a_stream_cut_anywhere(sent: list[Frame], chunk: int) -> None:
    """Back-to-back frames, fed in chunks of any size, come out equal and in order."""
    stream = b"".join(_wire(f) for f in sent)
    decoder = FrameDecoder()
    got: list[Frame] = []
    for start in range(0, len(stream), chunk):
        got += decoder.feed(stream[start : start + chunk])
    assert got == sent
    assert decoder.rejected.total == 0 and decoder.accepted == len(sent)


@given(st.binary(max_size=2000), st.integers(1, 300))
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_bytes_give_frames_or_counted_rejections_never_an_exception(noise: bytes, max_payload: int) -> None:
    decoder = FrameDecoder(max_payload=max_payload)
    got = decoder.feed(noise)
    decoder.end_of_datagram()
    pieces = [p for p in noise.split(b"\x00")[:-1] if p]
    # every delimited piece was either accepted or counted once (an oversize run may span several pieces' worth)
    assert len(got) + decoder.rejected.total >= min(1, len(pieces))
    assert all(len(f.payload) <= max_payload for f in got)


@given(frames, st.data())
@settings(max_examples=500, deadline=None)
def test_a_corrupted_byte_is_never_delivered(frame: Frame, data: st.DataObject) -> None:
    """Any one byte of the encoded frame changed to any other value: the frame is rejected (a CRC or COBS failure), none delivered."""
    wire = bytearray(_wire(frame))
    index = data.draw(st.integers(0, len(wire) - 2), label="index")
    value = data.draw(st.integers(0, 255).filter(lambda v: v != wire[index]), label="value")
    wire[index] = value
    decoder = FrameDecoder()
    got = decoder.feed(bytes(wire))
    assert got == []
    assert decoder.rejected.total >= 1


@given(frames, st.data())
@settings(max_examples=300, deadline=None)
def test_flipped_bits_inside_the_frame_are_caught_by_the_crc(frame: Frame, data: st.DataObject) -> None:
    """Up to 3 bits flipped in the frame before COBS (a UART's noise): the CRC rejects it (CRC-32 detects any 3 bit errors here)."""
    body = bytearray(pack_frame(frame.msg_id, frame.seq, frame.stamp_ns, frame.payload, frame.flags))
    bits = data.draw(st.sets(st.integers(0, len(body) * 8 - 1), min_size=1, max_size=3), label="bits")
    for bit in bits:
        body[bit // 8] ^= 1 << (bit % 8)
    assert check_frame(cobs.encode(bytes(body))) == "crc"


def test_rejections_are_counted_by_reason() -> None:
    decoder = FrameDecoder(max_payload=16)
    good = encode_frame(1, 0, 0, b"ok")
    body = bytearray(pack_frame(1, 0, 0, b"ok"))
    body[0] = 1  # version 1, with a CRC that matches it
    body[-4:] = struct.pack("<I", zlib.crc32(body[:-4]))
    bad_flags = bytearray(pack_frame(1, 0, 0, b"ok"))
    bad_flags[1] = 0x02  # a flag version 2 does not define
    bad_flags[-4:] = struct.pack("<I", zlib.crc32(bad_flags[:-4]))
    stream = (
        good
        + b"\x05ab\x00"  # COBS code past the end
        + cobs.encode(b"short") + b"\x00"
        + b"\x01" * 200 + b"\x00"  # too long for max_payload=16
        + good[:-3] + b"\x7f" + good[-2:]  # a flipped byte
        + cobs.encode(bytes(body)) + b"\x00"
        + cobs.encode(bytes(bad_flags)) + b"\x00"
        + b"\x00\x00"  # empty frames: padding, not counted
        + good
    )
    got = decoder.feed(stream)
    decoder.feed(b"\x02\x03")
    decoder.end_of_datagram()
    assert [f.payload for f in got] == [b"ok", b"ok"]
    assert decoder.rejected.as_dict() == {"cobs": 1, "short": 1, "oversize": 1, "crc": 1, "version": 1, "malformed": 1, "truncated": 1}


def test_a_stream_without_delimiters_does_not_grow_the_buffer() -> None:
    decoder = FrameDecoder(max_payload=32)
    for _ in range(100):
        decoder.feed(b"\x01" * 1000)
    assert decoder.rejected.oversize == 1
    assert decoder.feed(b"\x00" + encode_frame(3, 1, 2, b"after")) == [Frame(3, 1, 2, b"after")]


def test_split_frames_keeps_delimiters_and_the_tail() -> None:
    a, b = encode_frame(1, 0, 0, b"a"), encode_frame(2, 1, 0, b"b")
    parts, tail = split_frames(a + b + b"\x03x")
    assert parts == [a, b] and tail == b"\x03x"


def test_wire_time_is_ten_bits_a_byte() -> None:
    assert wire_time_s(92160, 921600) == pytest.approx(1.0)


def _table() -> MessageTable:
    return MessageTable.for_topics(
        [("/odom", RobotState), ("/imu", ImuSample), ("/cmd_motors", MotorSpeeds), ("/cmd_accel", AccelCommand), ("/obstacles", Obstacles)]
    )


def test_message_table_numbers_topics_in_sorted_order_and_picks_encodings() -> None:
    table = _table()
    assert [(e.msg_id, e.topic, e.encoding) for e in table.entries] == [
        (1, "/cmd_accel", "fixed"), (2, "/cmd_motors", "fixed"), (3, "/imu", "fixed"), (4, "/obstacles", "cdr"), (5, "/odom", "fixed"),
    ]
    assert table.digest() == _table().digest()
    assert MessageTable.for_topics([("/odom", RobotState)], cdr=["/odom"]).digest() != MessageTable.for_topics([("/odom", RobotState)]).digest()
    with pytest.raises(ValueError, match="no fixed layout"):
        MessageTable([WireTopic(1, "/obstacles", Obstacles, "fixed")])


def test_messages_round_trip_through_frames() -> None:
    table = _table()
    odom = RobotState(stamp=1.25, position=[1.0, -2.0, 0.5], orientation=[0.0, 0.0, 0.6, 0.8], linear_velocity=[0.1, 0.2, 0.3],
                      angular_velocity=[0.01, 0.02, 0.03])
    obstacles = Obstacles(stamp=1.25, obstacles=[Obstacle(id=3, shape="sphere", position=np.array([1.0, 2.0, 0.5]), size=np.array([0.2, 0.2, 0.2]))])
    decoder = FrameDecoder()
    stream = b""
    for seq, (topic, msg) in enumerate([("/odom", odom), ("/cmd_motors", MotorSpeeds(stamp=1.25, velocities=[1.0, 2.0, 3.0, 4.0])),
                                        ("/obstacles", obstacles)]):
        msg_id, stamp_ns, payload, flags = table.encode(topic, msg)
        stream += encode_frame(msg_id, seq, stamp_ns, payload, flags)
    got = [table.decode(f) for f in decoder.feed(stream)]
    assert [topic for topic, _ in got] == ["/odom", "/cmd_motors", "/obstacles"]
    back = got[0][1]
    assert back.stamp == 1.25
    np.testing.assert_allclose(back.position, odom.position, rtol=1e-7)
    np.testing.assert_allclose(back.orientation, odom.orientation, rtol=1e-7)
    np.testing.assert_allclose(back.angular_velocity, odom.angular_velocity, rtol=1e-7)
    assert len(table.encode("/odom", odom)[2]) == 52
    np.testing.assert_array_equal(got[1][1].velocities, [1.0, 2.0, 3.0, 4.0])
    assert got[2][1].obstacles[0].id == 3


def test_a_payload_that_does_not_fit_its_id_is_refused() -> None:
    table = _table()
    with pytest.raises(PayloadError, match="not in the link's message table"):
        table.decode(Frame(99, 0, 0, b""))
    with pytest.raises(PayloadError, match="52"):
        table.decode(Frame(5, 0, 0, b"\x00" * 8))
    with pytest.raises(PayloadError, match="says cdr"):
        table.decode(Frame(5, 0, 0, b"\x00" * 52, FLAG_CDR))
    with pytest.raises(PayloadError, match="undecodable CDR"):
        table.decode(Frame(4, 0, 0, b"\x00\x01\x00\x00\xff\xff\xff\x7f", FLAG_CDR))


def test_non_finite_values_survive_the_fixed_layout_for_the_receiver_to_judge() -> None:
    table = _table()
    msg_id, stamp_ns, payload, flags = table.encode("/odom", RobotState(position=[np.nan, 1e39, 0.0]))
    _, back = table.decode(Frame(msg_id, 0, stamp_ns, payload, flags))
    assert np.isnan(back.position[0]) and np.isinf(back.position[1]) and not back.is_usable()
