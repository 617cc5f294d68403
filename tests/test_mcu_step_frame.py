"""The one-frame tick's payloads (aegis.inference.mcu_step_frame): both directions round-trip, and a malformed frame is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
from cobs import cobs

from aegis.inference.mcu_step_frame import (
    STEP_ANSWER_ID,
    STEP_ID,
    StepFrameError,
    decode_step_wire,
    parse_step_answer,
    parse_step_request,
    step_answer_payload,
    step_payload,
)
from aegis.transport.framing import FrameDecoder, crc32, encode_frame, pack_frame


def _request() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=12).astype(np.float32), rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=8).astype(np.float32)


def test_a_request_round_trips_through_a_wire_frame_in_float32() -> None:
    x, a, b = _request()
    payload = step_payload(x, a, b)
    assert len(payload) == 4 + 4 * (12 + 8 * 3 + 8) and payload[:4] == bytes([1, 12, 8, 3])
    frames = FrameDecoder().feed(encode_frame(STEP_ID, 3, 9, payload))
    request = parse_step_request(frames[0], 12, 3)
    np.testing.assert_array_equal(request.observation, x)
    np.testing.assert_array_equal(request.a, a)
    np.testing.assert_array_equal(request.b, b)


def test_an_answer_round_trips_with_its_counts() -> None:
    payload = step_answer_payload(np.array([1.0, -2.0, 0.5]), np.array([0.75, -2.0, 0.5]), 0.0, True, 2, 0xFF, 1012, 1150)
    assert len(payload) == 4 + 4 * 7 + 16
    answer = decode_step_wire(encode_frame(STEP_ANSWER_ID, 3, 9, payload)[:-1], 3, 3)
    np.testing.assert_array_equal(answer.action, [1.0, -2.0, 0.5])
    np.testing.assert_array_equal(answer.u, [0.75, -2.0, 0.5])
    assert (answer.slack, answer.solved, answer.steps, answer.kept, answer.policy_ticks, answer.ticks) == (0.0, True, 2, 0xFF, 1012, 1150)


def test_another_protocol_or_layout_version_is_refused() -> None:
    payload = step_answer_payload(np.zeros(3), np.zeros(3), 0.0, True, 0, 1, 1, 2)
    frame = bytearray(pack_frame(STEP_ANSWER_ID, 1, 1, payload))
    frame[0] = 3  # a frame protocol version this end does not speak
    frame[-4:] = crc32(bytes(frame[:-4])).to_bytes(4, "little")
    with pytest.raises(StepFrameError, match=r"^step answer: frame rejected \(version\)$"):
        decode_step_wire(cobs.encode(bytes(frame)), 3, 3)
    with pytest.raises(StepFrameError, match="^step answer: layout version 2, this end reads 1$"):
        parse_step_answer(bytes([2]) + payload[1:], 3, 3)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda p: p[:-1], "step request: 179 bytes, expected 180"),
        (lambda p: p[:2], "step request: 2 bytes, shorter than its 4-byte head"),
        (lambda p: p[:2] + bytes([9]) + p[3:], "step request: 180 bytes, expected 196"),
        (lambda p: p[:2] + bytes([40]) + p[3:], "step request: 40 rows, expected 1..32"),
        (lambda p: p[:3] + bytes([2]) + p[4:], "step request: inputs 2, expected 3"),
        (lambda p: p[:1] + bytes([11]) + p[2:], "step request: observation size 11, expected 12"),
    ],
)
def test_a_malformed_request_is_refused_in_one_line(mangle, message) -> None:
    payload = mangle(step_payload(*_request()))
    with pytest.raises(StepFrameError) as refused:
        parse_step_request(payload, 12, 3)
    assert str(refused.value) == message


def test_an_answer_of_another_id_or_a_bad_solved_byte_is_refused() -> None:
    payload = step_answer_payload(np.zeros(3), np.zeros(3), 0.0, True, 0, 1, 1, 2)
    frame = FrameDecoder().feed(encode_frame(STEP_ID, 1, 1, payload))[0]
    with pytest.raises(StepFrameError, match="^step answer: message id 7, expected 8$"):
        parse_step_answer(frame, 3, 3)
    with pytest.raises(StepFrameError, match="^step answer: solved byte 5, expected 0 or 1$"):
        parse_step_answer(payload[:3] + bytes([5]) + payload[4:], 3, 3)
    with pytest.raises(StepFrameError, match="^step request: 3 rows in a but 2 in b$"):
        step_payload(np.zeros(4), np.zeros((3, 3)), np.zeros(2))
