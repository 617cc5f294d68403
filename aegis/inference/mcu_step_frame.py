"""The processor-in-the-loop's one frame per tick: the observation and the filter's rows out (id 7), the action and the filtered command back (id 8).

The layouts (docs/wire-format.md, "One frame per tick"), all little-endian, inside a version-1 wire frame:

- request, id 7 (STEP): uint8 layout version (1), uint8 observation size n, uint8 candidate rows N, uint8 inputs m,
  then float32 observation[n], float32 a[N][m] (row by row), float32 b[N];
- answer, id 8 (STEP_ANSWER): uint8 layout version (1), uint8 action size p, uint8 inputs m, uint8 solved (0/1),
  then float32 action[p], float32 u[m], float32 slack, uint32 active-set steps, uint32 kept rows (bit i: candidate
  i is one of the QP's rows), uint32 ticks to the action, uint32 ticks to the filtered command (SysTick counts from
  the request's last byte; 40 instructions a tick under ``-icount shift=0``).

The MCU runs the policy on the observation and then the filter's QP with that action as its nominal (p == m): the
rows do not depend on the nominal, only the QP's objective does, and which K of N > K candidates the QP keeps (the
nearest to violation for the nominal, aegis.controllers.cbf.rows.QpRows.load), so the MCU picks them for the action
(N == K: all of them; at most :data:`STEP_MAX_ROWS`). :func:`step_payload` packs a request's payload;
:func:`parse_step_answer` and :func:`parse_step_request` check a payload (or a whole frame off the wire, whose
protocol version, CRC and header :func:`aegis.transport.framing.check_frame` checks first) and refuse a malformed
one with :class:`StepFrameError`, one line naming what is wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from aegis.transport.framing import Frame, check_frame

STEP_ID = 7
STEP_ANSWER_ID = 8
STEP_LAYOUT_VERSION = 1
"""The payload's own layout version (its first byte): a receiver refuses any other, as a frame's version byte."""
_HEAD = struct.Struct("<4B")
_TAIL = struct.Struct("<fIIII")
STEP_MAX_ROWS = 32
"""The most candidate rows a request carries (the firmware's buffer; the kept-row mask is 32 bits)."""


class StepFrameError(ValueError):
    """A combined-step frame or payload that does not fit its layout (one line: what is wrong)."""


@dataclass(frozen=True)
class StepRequest:
    """A decoded id-7 payload: the observation and the candidate rows a u >= b."""

    observation: np.ndarray
    a: np.ndarray
    b: np.ndarray


@dataclass(frozen=True)
class StepAnswer:
    """A decoded id-8 payload: the policy's action, the QP's answer for it, and the SysTick counts."""

    action: np.ndarray
    u: np.ndarray
    slack: float
    solved: bool
    steps: int
    kept: int
    """Bit i set: candidate row i is one of the QP's rows."""
    policy_ticks: int
    ticks: int


def step_payload(observation: np.ndarray, a: np.ndarray, b: np.ndarray) -> bytes:
    """The id-7 payload for one tick: ``a`` is (N, m), ``b`` (N,); the values go as float32."""
    x = np.ravel(observation)
    a2 = np.atleast_2d(np.asarray(a, dtype=float))
    b1 = np.ravel(b)
    rows, inputs = a2.shape
    if b1.size != rows:
        raise StepFrameError(f"step request: {rows} rows in a but {b1.size} in b")
    if not (0 < x.size <= 255 and 0 < rows <= STEP_MAX_ROWS and 0 < inputs <= 255):
        raise StepFrameError(f"step request: sizes out of range (observation {x.size} of 1..255, rows {rows} of 1..{STEP_MAX_ROWS}, inputs {inputs} of 1..255)")
    values = np.concatenate([x, a2.ravel(), b1]).astype("<f4")
    return _HEAD.pack(STEP_LAYOUT_VERSION, x.size, rows, inputs) + values.tobytes()


def step_answer_payload(action: np.ndarray, u: np.ndarray, slack: float, solved: bool, steps: int, kept: int, policy_ticks: int, ticks: int) -> bytes:
    """The id-8 payload (what the firmware sends; here for tests and for a host-side stand-in)."""
    action, u = np.ravel(action), np.ravel(u)
    head = _HEAD.pack(STEP_LAYOUT_VERSION, action.size, u.size, int(bool(solved)))
    return head + np.concatenate([action, u]).astype("<f4").tobytes() + _TAIL.pack(slack, steps, kept, policy_ticks, ticks)


def _payload(data: bytes | Frame, expected_id: int, what: str) -> bytes:
    if isinstance(data, Frame):
        if data.msg_id != expected_id:
            raise StepFrameError(f"{what}: message id {data.msg_id}, expected {expected_id}")
        return data.payload
    return bytes(data)


def parse_step_request(data: bytes | Frame, observation_size: int, inputs: int) -> StepRequest:
    """The request in an id-7 payload (or Frame) for these sizes; StepFrameError when it does not fit."""
    payload = _payload(data, STEP_ID, "step request")
    rows = payload[2] if len(payload) >= _HEAD.size else 0
    _check_head(payload, "step request", (observation_size, rows, inputs), ("observation size", "rows", "inputs"))
    if not 0 < rows <= STEP_MAX_ROWS:
        raise StepFrameError(f"step request: {rows} rows, expected 1..{STEP_MAX_ROWS}")
    count = observation_size + rows * inputs + rows
    _check_length(payload, _HEAD.size + 4 * count, "step request")
    values = np.frombuffer(payload, dtype="<f4", offset=_HEAD.size).astype(np.float64)
    x, rest = values[:observation_size], values[observation_size:]
    return StepRequest(x, rest[: rows * inputs].reshape(rows, inputs), rest[rows * inputs :])


def parse_step_answer(data: bytes | Frame, action_size: int, inputs: int) -> StepAnswer:
    """The answer in an id-8 payload (or Frame) for these sizes; StepFrameError when it does not fit."""
    payload = _payload(data, STEP_ANSWER_ID, "step answer")
    _check_head(payload, "step answer", (action_size, inputs), ("action size", "inputs"))
    solved = payload[3]
    if solved > 1:
        raise StepFrameError(f"step answer: solved byte {solved}, expected 0 or 1")
    floats = action_size + inputs
    _check_length(payload, _HEAD.size + 4 * floats + _TAIL.size, "step answer")
    values = np.frombuffer(payload, dtype="<f4", offset=_HEAD.size, count=floats).astype(np.float64)
    slack, steps, kept, policy_ticks, ticks = _TAIL.unpack_from(payload, _HEAD.size + 4 * floats)
    return StepAnswer(values[:action_size].copy(), values[action_size:].copy(), float(slack), bool(solved), steps, kept, policy_ticks, ticks)


def decode_step_wire(raw: bytes, action_size: int, inputs: int) -> StepAnswer:
    """An id-8 answer from its wire bytes (COBS, without the delimiter): the frame's checks (CRC, protocol version, header) first."""
    frame = check_frame(raw)
    if isinstance(frame, str):
        raise StepFrameError(f"step answer: frame rejected ({frame})")
    return parse_step_answer(frame, action_size, inputs)


def _check_head(payload: bytes, what: str, sizes: tuple[int, ...], names: tuple[str, ...]) -> None:
    if len(payload) < _HEAD.size:
        raise StepFrameError(f"{what}: {len(payload)} bytes, shorter than its 4-byte head")
    version, *got = _HEAD.unpack_from(payload)
    if version != STEP_LAYOUT_VERSION:
        raise StepFrameError(f"{what}: layout version {version}, this end reads {STEP_LAYOUT_VERSION}")
    for name, want, have in zip(names, sizes, got):
        if want != have:
            raise StepFrameError(f"{what}: {name} {have}, expected {want}")


def _check_length(payload: bytes, length: int, what: str) -> None:
    if len(payload) != length:
        raise StepFrameError(f"{what}: {len(payload)} bytes, expected {length}")
