"""The MCU's one-frame tick split in two for the wall-clock loop: send tick k's request, take its answer at a later tick, never wait.

Under the realtime executor the stack's nodes share one thread, so a policy step that waited for the emulated MCU
(QEMU's UART hands each byte from thread to thread: 4 to 20 ms a round trip on a loaded machine) held the 240 Hz
attitude loop too. :class:`StepPipeline` keeps the MCU off that thread's path: :meth:`StepPipeline.send` writes a
request (a one-frame tick, id 7, or an observation alone, id 1) and returns at once, a receiver thread reads the
UART as the answer's bytes come (so the round trip is measured when its last byte arrives, not when a tick looks),
and :meth:`StepPipeline.take`, at the policy's next tick, hands over the answer if it is there. At most one request
is in flight: the firmware answers in order, so a second would only queue behind the first.

Latency: an answer is used at the first policy tick after it arrived, one period after its request when the MCU
answers within the period (the usual case; :attr:`StepPipeline.ages` counts the periods each answer waited). A
tick with no answer to take is the caller's explicit fallback (which the caller counts); a request
still unanswered ``timeout_s`` after it was sent is given up (:attr:`StepPipeline.unanswered`) and the next tick
sends a new one; its answer, if it ever comes, is dropped by its stamp. The lockstep path (`aegis bench pil`) does
not use this: there each answer is waited for, and the flight is Python's bit for bit.
"""

from __future__ import annotations

import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from aegis.inference.mcu_session import ACTION_ID, OBSERVATION_ID
from aegis.inference.mcu_step_frame import STEP_ANSWER_ID, STEP_ID, StepAnswer, parse_step_answer, step_payload

RECEIVE_POLL_S = 0.05
"""The receiver thread looks at its stop event at least this often."""
BYTE_BATCH_S = 0.0005
"""After bytes that end no frame the receiver sleeps this long before it reads on: QEMU's UART writes an answer to the pty
a byte at a time, and a thread woken for each byte would take the interpreter's lock from the loop some 50 times an
answer. The answers are taken at the next tick, so only the measured round trip can grow by this much."""


@dataclass(frozen=True)
class Taken:
    """An answer handed over by :meth:`StepPipeline.take`: the action, the QP's answer (None for an observation-only
    request) with the rows it was sent for (float32), how many policy ticks it waited, and its wall-clock round trip."""

    action: np.ndarray
    step: StepAnswer | None
    a: np.ndarray | None
    b: np.ndarray | None
    age_ticks: int
    round_trip_s: float
    policy_ticks: int
    """SysTick counts to the action (40 instructions each under ``-icount shift=0``)."""


@dataclass
class _InFlight:
    stamp: int
    sent_at: float
    tick: int
    answer_id: int
    a: np.ndarray | None
    b: np.ndarray | None


class StepPipeline:
    """Requests to a :class:`aegis.inference.mcu_session.PilSession` that never wait for their answers (module doc).

    Owns the session link's receiving side while it runs: nothing else may poll that link until :meth:`close`."""

    def __init__(self, session: Any, timeout_s: float) -> None:
        self.session, self.link = session, session.link
        self.timeout_s = float(timeout_s)
        self._answer = struct.Struct(f"<{session.output_size}fI")
        self._arrived: deque[tuple[float, Any]] = deque()
        self._stop = threading.Event()
        self._came = threading.Event()
        self._tick = 0
        self._in_flight: _InFlight | None = None
        self.sent = 0
        self.unanswered = 0
        """Requests given up after ``timeout_s`` without an answer."""
        self.busy = 0
        """Ticks that sent nothing because the request before was still in flight (counted by the caller, who skips its rows)."""
        self.ages: list[int] = []
        self.round_trips_s: list[float] = []
        self._thread = threading.Thread(target=self._receive, name="aegis-mcu-rx", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        """The receiver thread: every frame off the UART with the time it was complete."""
        stats = self.link.stats
        while not self._stop.is_set():
            before = stats.received_bytes
            try:
                frames = self.link.poll(RECEIVE_POLL_S)
            except (OSError, ValueError):  # the link was closed under us: the session is ending
                return
            if frames:
                now = time.perf_counter()
                self._arrived.extend((now, frame) for frame in frames)
                self._came.set()
            elif stats.received_bytes != before:  # part of a frame: let the rest come
                self._stop.wait(BYTE_BATCH_S)

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for a frame not yet taken (for tools and tests: the loop itself never waits); whether one came."""
        if self._arrived:
            return True
        self._came.clear()
        return bool(self._arrived) or self._came.wait(timeout_s)

    @property
    def in_flight(self) -> bool:
        return self._in_flight is not None

    def take(self) -> Taken | None:
        """At a policy tick (call once a tick, before :meth:`send`): the answer to the request in flight if it arrived, else
        None (the caller's fallback); a request older than ``timeout_s`` is given up here (counted ``unanswered``)."""
        self._tick += 1
        pending, taken = self._in_flight, None
        while self._arrived:
            arrived_at, frame = self._arrived.popleft()
            if pending is None or frame.stamp_ns != pending.stamp or frame.msg_id != pending.answer_id:
                continue  # a given-up request's late answer, or noise: dropped
            taken = self._decode(frame.payload, pending, arrived_at)
            self._in_flight = None
        if taken is None:
            if pending is not None and time.perf_counter() - pending.sent_at > self.timeout_s:
                self.unanswered += 1
                self._in_flight = None
        return taken

    def _decode(self, payload: bytes, pending: _InFlight, arrived_at: float) -> Taken | None:
        age, round_trip = self._tick - pending.tick, arrived_at - pending.sent_at
        try:
            if pending.answer_id == STEP_ANSWER_ID:
                assert pending.a is not None
                step = parse_step_answer(payload, self.session.output_size, pending.a.shape[1])
                action, policy_ticks = step.action, step.policy_ticks
            else:
                *values, policy_ticks = self._answer.unpack(payload)
                step, action = None, np.array(values, dtype=np.float64)
        except (ValueError, struct.error):  # a malformed answer is no answer (the frame's CRC passed: a firmware bug)
            return None
        self.ages.append(age)
        self.round_trips_s.append(round_trip)
        return Taken(action, step, pending.a, pending.b, age, round_trip, policy_ticks)

    def send(self, observation: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None) -> bool:
        """Send this tick's request, the one-frame tick when rows ``a`` (N, m), ``b`` (N,) are given (float32 as sent), else
        the observation alone; False (nothing sent) while the request before is still in flight (the caller counts ``busy``)."""
        if self._in_flight is not None:
            return False
        session = self.session
        session._seq_stamp += 1
        stamp, sent_at = session._seq_stamp, time.perf_counter()
        if a is None:
            x = np.ascontiguousarray(observation, dtype="<f4").reshape(session.input_size)
            self.link.send(OBSERVATION_ID, x.tobytes(), stamp_ns=stamp)
            answer_id = ACTION_ID
        else:
            self.link.send(STEP_ID, step_payload(observation, a, b), stamp_ns=stamp)
            answer_id = STEP_ANSWER_ID
        self._in_flight = _InFlight(stamp, sent_at, self._tick, answer_id, a, b)
        self.sent += 1
        return True

    def close(self) -> None:
        """Stop the receiver thread (the session's link is the session's to close)."""
        self._stop.set()
        self._thread.join(2 * RECEIVE_POLL_S + 1.0)
