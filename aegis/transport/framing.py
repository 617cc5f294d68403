"""The aegis wire frame for serial lines and UDP: a 16-byte header, a payload and a CRC-32, COBS-encoded, ended by a zero byte.

The format is written for a robot's firmware to implement in C (docs/wire-format.md is its
specification; this module is the reference). Before COBS, a frame is, little-endian::

    offset  size  field
    0       1     version        PROTOCOL_VERSION (2); any other is rejected
    1       1     flags          bit 0: the payload is the message's XCDR1 CDR (else its fixed layout); others 0
    2       2     msg_id         which message (topic and type) the payload is, from the link's message table
    4       4     seq            the sender's frame counter, +1 per frame sent on the link, wrapping at 2**32
    8       8     stamp_ns       the message's time stamp in ns (its header stamp)
    16      n     payload        n = the decoded frame's length - 16 - 4
    16+n    4     crc            CRC-32 (IEEE 802.3, zlib's) of bytes [0, 16+n)

Version 1 had a 20-byte header, with ``payload_len`` (2) and ``reserved`` (2) after the stamp: the
first repeated what the decoded frame's length already says and the second carried nothing, so
version 2 drops both, 4 bytes a frame (87 µs a sensor frame and its command at 921600 baud). A
version 1 frame is rejected as ``version``.

On the wire: ``cobs(frame) + b"\\0"``. COBS (Consistent Overhead Byte Stuffing) removes every zero
byte from the frame at a cost of one byte in 254, so the zero byte delimits frames: a receiver that
joins a stream in the middle, or loses bytes, resynchronises at the next zero. Over UDP a datagram
carries the same bytes (one or more whole frames).

A receiver (:class:`FrameDecoder`) checks, in order: the COBS encoding, the length (at least a
header and a CRC, at most ``max_payload``), the CRC, the version and the flags; only then does a
frame reach the caller. Anything else is counted under its reason in :class:`RejectCounts` and
dropped: the decoder never raises on received bytes.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field, fields

from cobs import cobs

PROTOCOL_VERSION = 2
"""Version 1 (a 20-byte header with payload_len and reserved) is rejected as ``version``: docs/wire-format.md."""
FLAG_CDR = 0x01
"""flags bit 0: the payload is the ROS 2 message's CDR (XCDR1, with its encapsulation header), not its fixed layout."""
KNOWN_FLAGS = FLAG_CDR
HEADER = struct.Struct("<BBHIQ")
HEADER_SIZE = HEADER.size  # 16
CRC = struct.Struct("<I")
CRC_SIZE = CRC.size
DELIMITER = b"\x00"
MAX_PAYLOAD = 4096
"""The default largest payload a decoder accepts (a firmware picks its own; docs/wire-format.md)."""
MAX_MSG_ID = 0xFFFF
MAX_SEQ = 0xFFFFFFFF
MAX_FRAME_PAYLOAD = 0xFFFF
"""The longest payload a sender may frame (the C frame's payload_len is a uint16_t); a receiver's ``max_payload`` is smaller."""


@dataclass(frozen=True, slots=True)
class Frame:
    """A checked frame: which message, its sequence number and stamp, its payload and flags."""

    msg_id: int
    seq: int
    stamp_ns: int
    payload: bytes
    flags: int = 0

    @property
    def is_cdr(self) -> bool:
        return bool(self.flags & FLAG_CDR)


def crc32(data: bytes | bytearray | memoryview) -> int:
    """CRC-32 as zlib, Ethernet and PNG compute it (reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF)."""
    return zlib.crc32(data) & 0xFFFFFFFF


def pack_frame(msg_id: int, seq: int, stamp_ns: int, payload: bytes, flags: int = 0) -> bytes:
    """The frame before COBS: header, payload, CRC. Out-of-range fields raise ValueError (a sender's bug, not the wire's)."""
    if not 0 <= msg_id <= MAX_MSG_ID:
        raise ValueError(f"msg_id {msg_id} is outside 0..{MAX_MSG_ID}")
    if not 0 <= len(payload) <= MAX_FRAME_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes: at most {MAX_FRAME_PAYLOAD} fit a frame")
    if flags & ~KNOWN_FLAGS:
        raise ValueError(f"flags 0x{flags:02x} set bits this protocol version does not define")
    body = HEADER.pack(PROTOCOL_VERSION, flags, msg_id, seq & MAX_SEQ, stamp_ns & 0xFFFFFFFFFFFFFFFF) + bytes(payload)
    return body + CRC.pack(crc32(body))


def encode_frame(msg_id: int, seq: int, stamp_ns: int, payload: bytes, flags: int = 0) -> bytes:
    """The bytes to put on the wire for one frame: COBS of :func:`pack_frame`, then the zero delimiter."""
    return cobs.encode(pack_frame(msg_id, seq, stamp_ns, payload, flags)) + DELIMITER


@dataclass(slots=True)
class RejectCounts:
    """Received frames dropped, by reason (each frame counts once, under the first check it failed)."""

    cobs: int = 0
    """Not valid COBS (a zero-length code, a code running past the frame's end)."""
    short: int = 0
    """Fewer bytes than a header and a CRC."""
    oversize: int = 0
    """More bytes than ``max_payload`` allows before a delimiter came: dropped up to the next delimiter."""
    crc: int = 0
    """The CRC does not match: corrupted on the way."""
    version: int = 0
    """A protocol version this decoder does not speak."""
    malformed: int = 0
    """CRC and version right but a flag this version does not define is set."""
    truncated: int = 0
    """A datagram that ended inside a frame (UDP: no delimiter at its end)."""

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def check_frame(raw: bytes, max_payload: int = MAX_PAYLOAD) -> Frame | str:
    """The checked Frame in ``raw`` (one COBS-encoded frame, without its delimiter), else the reason it is rejected."""
    if len(raw) > _encoded_limit(max_payload):
        return "oversize"
    try:
        body = cobs.decode(raw)
    except cobs.DecodeError:
        return "cobs"
    if len(body) < HEADER_SIZE + CRC_SIZE:
        return "short"
    if len(body) - HEADER_SIZE - CRC_SIZE > max_payload:
        return "oversize"
    (crc,) = CRC.unpack_from(body, len(body) - CRC_SIZE)
    if crc32(memoryview(body)[: len(body) - CRC_SIZE]) != crc:
        return "crc"
    version, flags, msg_id, seq, stamp_ns = HEADER.unpack_from(body)
    if version != PROTOCOL_VERSION:
        return "version"
    if flags & ~KNOWN_FLAGS:
        return "malformed"
    return Frame(msg_id, seq, stamp_ns, body[HEADER_SIZE : len(body) - CRC_SIZE], flags)


def _encoded_limit(max_payload: int) -> int:
    """The longest COBS encoding of a frame with ``max_payload`` bytes of payload."""
    size = HEADER_SIZE + max_payload + CRC_SIZE
    return size + size // 254 + 1


@dataclass
class FrameDecoder:
    """Splits a received byte stream at the zero delimiters and checks each frame; never raises on what it is fed.

    ``feed(bytes)`` returns the frames completed by those bytes, in order; rejected ones are
    counted in :attr:`rejected`. A frame split over several reads is joined; bytes beyond the
    longest frame ``max_payload`` allows are dropped up to the next delimiter (counted once as
    ``oversize``), so a stream without delimiters cannot grow the buffer without bound.
    """

    max_payload: int = MAX_PAYLOAD
    rejected: RejectCounts = field(default_factory=RejectCounts)
    accepted: int = 0
    _buffer: bytearray = field(default_factory=bytearray, repr=False)
    _discarding: bool = field(default=False, repr=False)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        frames: list[Frame] = []
        data = bytes(data)
        if not self._buffer and not self._discarding and data.endswith(DELIMITER):
            for raw in data.split(DELIMITER)[:-1]:  # whole frames, nothing held over: the usual read; check_frame counts oversize ones
                if raw:
                    self._take(raw, frames)
            return frames
        limit = _encoded_limit(self.max_payload)
        start = 0
        while True:
            end = data.find(0, start)
            piece = data[start:] if end < 0 else data[start:end]
            if not self._discarding:
                self._buffer += piece
                if len(self._buffer) > limit:
                    self.rejected.oversize += 1
                    self._buffer.clear()
                    self._discarding = True
            if end < 0:
                return frames
            if self._discarding:
                self._discarding = False
            elif self._buffer:  # back-to-back delimiters are empty frames: padding, not errors
                self._take(bytes(self._buffer), frames)
                self._buffer.clear()
            start = end + 1

    def end_of_datagram(self) -> None:
        """A datagram ended: bytes left without a delimiter are a truncated frame (counted, dropped)."""
        if self._buffer or self._discarding:
            if self._buffer:
                self.rejected.truncated += 1
            self._buffer.clear()
            self._discarding = False

    def _take(self, raw: bytes, frames: list[Frame]) -> None:
        checked = check_frame(raw, self.max_payload)
        if isinstance(checked, Frame):
            self.accepted += 1
            frames.append(checked)
        else:
            setattr(self.rejected, checked, getattr(self.rejected, checked) + 1)


def split_frames(data: bytes) -> tuple[list[bytes], bytes]:
    """(each complete frame in ``data`` with its delimiter, the bytes after the last delimiter): what a wire-level proxy forwards, unchecked."""
    parts = data.split(DELIMITER)
    return [part + DELIMITER for part in parts[:-1] if part], parts[-1]


def wire_time_s(n_bytes: int, baud: int, bits_per_byte: int = 10) -> float:
    """Seconds ``n_bytes`` take on a UART at ``baud`` (8N1: a start bit, 8 data bits, a stop bit = 10 bits a byte)."""
    return n_bytes * bits_per_byte / baud
