"""The wire frame's C implementation (aegis/export/c_templates/aegis_wire.c) against the Python reference, on the host compiler."""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from cobs import cobs

from aegis.export.toolchain import host_cc
from aegis.export.wire_c import build_wire_host_tool
from aegis.transport.framing import FrameDecoder, encode_frame, pack_frame

MAX_PAYLOAD = 256
pytestmark = pytest.mark.skipif(host_cc() is None, reason="needs a host C compiler")


@pytest.fixture(scope="module")
def tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wire_host_tool(tmp_path_factory.mktemp("wire_c"), max_payload=MAX_PAYLOAD)


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def _stream(seed: int) -> bytes:
    """Good frames of every size around COBS's 254-byte blocks, corrupted, oversized, short, version 1 and unknown-flag ones and noise, back to back."""
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(400):
        size = int(rng.choice([0, 1, 52, 230, 231, 232, 253, 254, 255, 256, 257, 300, int(rng.integers(0, 300))]))
        payload = rng.integers(0, 256, size, dtype=np.uint8)
        if rng.random() < 0.3:
            payload[rng.random(size) < 0.5] = 0  # runs of zeros
        if rng.random() < 0.1:
            payload[:] = 1  # no zeros at all: full COBS blocks
        wire = bytearray(encode_frame(int(rng.integers(0, 65536)), i, int(rng.integers(0, 2**64, dtype=np.uint64)), bytes(payload),
                                      int(rng.integers(0, 2))))
        kind = rng.random()
        if kind < 0.15:
            wire[int(rng.integers(0, len(wire) - 1))] ^= 1 << int(rng.integers(0, 8))
        elif kind < 0.2:
            wire = bytearray(rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8).tobytes()) + b"\x00"
        elif kind < 0.22:
            wire = bytearray(rng.integers(1, 256, 600, dtype=np.uint8).tobytes()) + b"\x00"  # past the receiver's buffer
        elif kind < 0.26:  # a version 1 frame (20-byte header: payload_len, reserved), its CRC right
            v1 = struct.pack("<BBHIQHH", 1, 0, int(rng.integers(0, 65536)), i, 0, min(size, 60), 0) + bytes(payload[:60])
            wire = bytearray(cobs.encode(_with_crc(v1)) + b"\x00")
        elif kind < 0.29:  # a flag version 2 does not define, its CRC right
            body = bytearray(pack_frame(1, i, 0, bytes(payload[:60])))
            body[1] |= 1 << int(rng.integers(1, 8))
            wire = bytearray(cobs.encode(_with_crc(bytes(body[:-4]))) + b"\x00")
        elif kind < 0.31:  # shorter than a header and a CRC, its "CRC" right
            wire = bytearray(cobs.encode(_with_crc(bytes(payload[: int(rng.integers(0, 16))]))) + b"\x00")
        parts.append(bytes(wire))
    return b"".join(parts)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_c_receiver_accepts_and_rejects_exactly_what_python_does(tool: Path, seed: int) -> None:
    stream = _stream(seed)
    out = subprocess.run([str(tool)], input=stream, capture_output=True, check=True).stdout.decode().splitlines()
    decoder = FrameDecoder(max_payload=MAX_PAYLOAD)
    frames = decoder.feed(stream)
    expected = []
    for f in frames:
        expected.append(f"F {f.msg_id} {f.seq} {f.stamp_ns} {f.flags} {f.payload.hex() or '-'}")
        expected.append(f"E {encode_frame(f.msg_id, f.seq, f.stamp_ns, f.payload, f.flags).hex()}")
    r = decoder.rejected
    expected.append(f"R {r.cobs} {r.short} {r.oversize} {r.crc} {r.version} {r.malformed} {decoder.accepted}")
    assert len(frames) > 200 and r.crc > 20 and r.oversize > 10 and r.version > 5 and r.malformed > 5 and r.short > 3
    assert out == expected


def test_the_c_crc_has_the_standard_check_value(tool: Path) -> None:
    """CRC-32's check value: crc('123456789') = 0xCBF43926; a frame built by Python with that payload passes the C receiver."""
    import zlib

    assert zlib.crc32(b"123456789") == 0xCBF43926
    out = subprocess.run([str(tool)], input=encode_frame(1, 2, 3, b"123456789"), capture_output=True, check=True).stdout.decode()
    assert out.splitlines()[0] == f"F 1 2 3 0 {b'123456789'.hex()}"
