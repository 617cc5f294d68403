"""The link fault injector: a seeded proxy between the plant's end and the stack's end of a link, scripted by a YAML timeline.

A hardware-in-the-loop run puts :class:`FaultProxy` in the middle of the link: the plant talks
to one :class:`~aegis.transport.links.Link` the proxy holds, the stack to the other, and the proxy
forwards whole wire frames (split at the zero delimiter, never decoded: a wire does not check
CRCs) from one to the other, applying the faults of the timeline that are active at that moment,
per direction. Each fault has a window (``at_s`` after :meth:`FaultProxy.start`, for
``duration_s``, or to the end) and a ``direction`` (``both``, ``plant_to_stack``,
``stack_to_plant``). Per frame, in this order:

``partition``   every frame dropped (a cut cable, a switch down)
``burst_loss``  Gilbert-Elliott: a good and a bad state, entered with ``p_enter`` and left with
                ``p_exit`` per frame; every frame in the bad state dropped (mean burst 1/p_exit)
``loss``        each frame dropped with ``probability``
``corrupt``     with ``probability``, ``bits`` random bits of the frame's wire bytes flipped (the
                delimiter kept): the receiver's CRC (or COBS) check must reject it
``duplicate``   with ``probability``, ``copies`` extra copies sent right after it
``delay``       every frame held ``delay_ms``
``jitter``      every frame held a further uniform random 0..``jitter_ms``
``reorder``     with ``probability``, a frame held ``hold_ms`` more, so later frames overtake it

``kill`` (a process stopped at ``at_s`` and restarted ``restart_after_s`` later, or never) is in the
timeline for the run that owns the processes (aegis hil): the proxy ignores it.

Seeded: each direction draws from its own generator (``seed``, direction), so a direction's faults
are the same on every run that sends it the same frames. The clock is injectable: tests step the
proxy on a manual clock over real ptys and sockets; a run calls :meth:`FaultProxy.run` in a thread,
which waits on both links and wakes for the next held frame.
"""

from __future__ import annotations

import heapq
import itertools
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aegis.config_files import ConfigError, format_errors, pydantic_errors, read_yaml_mapping
from aegis.transport.framing import DELIMITER, split_frames
from aegis.transport.links import Link

Direction = Literal["plant_to_stack", "stack_to_plant"]
DIRECTIONS: tuple[Direction, ...] = ("plant_to_stack", "stack_to_plant")
Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Milliseconds = Annotated[float, Field(ge=0.0, le=60_000.0, allow_inf_nan=False)]


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at_s: float = Field(0.0, ge=0.0, allow_inf_nan=False, description="when the fault starts, s after the run starts")
    duration_s: float | None = Field(None, gt=0.0, allow_inf_nan=False, description="how long it lasts (s); none: to the end")
    direction: Literal["both", "plant_to_stack", "stack_to_plant"] = "both"

    def active(self, t: float, direction: Direction) -> bool:
        if self.direction != "both" and self.direction != direction:
            return False
        return self.at_s <= t and (self.duration_s is None or t < self.at_s + self.duration_s)


class Partition(_Fault):
    kind: Literal["partition"]


class BurstLoss(_Fault):
    kind: Literal["burst_loss"]
    p_enter: Probability = Field(description="per frame, chance the link goes bad while good")
    p_exit: Probability = Field(gt=0.0, description="per frame, chance it recovers while bad (mean burst 1/p_exit frames)")


class Loss(_Fault):
    kind: Literal["loss"]
    probability: Probability


class Corrupt(_Fault):
    kind: Literal["corrupt"]
    probability: Probability
    bits: int = Field(1, ge=1, le=64, description="bits flipped in a corrupted frame")


class Duplicate(_Fault):
    kind: Literal["duplicate"]
    probability: Probability
    copies: int = Field(1, ge=1, le=10)


class Delay(_Fault):
    kind: Literal["delay"]
    delay_ms: Milliseconds


class Jitter(_Fault):
    kind: Literal["jitter"]
    jitter_ms: Milliseconds


class Reorder(_Fault):
    kind: Literal["reorder"]
    probability: Probability
    hold_ms: Milliseconds = Field(description="how much longer a reordered frame is held than the frames after it")


class Kill(_Fault):
    """Stop a process at ``at_s``, restart it ``restart_after_s`` later (none: never): the run's job, not the proxy's."""

    kind: Literal["kill"]
    process: Literal["plant", "stack"]
    restart_after_s: float | None = Field(None, gt=0.0, allow_inf_nan=False)


Fault = Annotated[Union[Partition, BurstLoss, Loss, Corrupt, Duplicate, Delay, Jitter, Reorder, Kill], Field(discriminator="kind")]
FAULT_KINDS = ("partition", "burst_loss", "loss", "corrupt", "duplicate", "delay", "jitter", "reorder", "kill")


class FaultTimeline(BaseModel):
    """A run's faults (``--faults FILE``): a seed and a list of faults, each with its kind, window and direction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(0, ge=0, description="seeds every random choice of the faults")
    faults: tuple[Fault, ...] = ()

    def link_faults(self) -> tuple[_Fault, ...]:
        return tuple(f for f in self.faults if not isinstance(f, Kill))

    def kills(self) -> tuple[Kill, ...]:
        return tuple(f for f in self.faults if isinstance(f, Kill))


def load_timeline(path: str | Path) -> FaultTimeline:
    """Read and validate a fault timeline; ConfigError naming the file and each bad key (unknown keys refused)."""
    path = Path(path)
    raw = read_yaml_mapping(path)
    try:
        return FaultTimeline.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_errors(path, pydantic_errors(exc, FaultTimeline))) from None


@dataclass
class FaultCounts:
    """What the proxy did to one direction's frames."""

    frames_in: int = 0
    forwarded: int = 0
    partition: int = 0
    burst_loss: int = 0
    loss: int = 0
    corrupt: int = 0
    duplicate: int = 0
    delayed: int = 0
    reordered: int = 0

    @property
    def dropped(self) -> int:
        return self.partition + self.burst_loss + self.loss


@dataclass
class _DirectionState:
    rng: np.random.Generator
    counts: FaultCounts = field(default_factory=FaultCounts)
    tail: bytes = b""
    bad: bool = False  # Gilbert-Elliott state


class FaultProxy:
    """Forwards frames between ``plant`` and ``stack`` (links the proxy reads and writes raw) with the timeline's faults."""

    def __init__(self, plant: Link, stack: Link, timeline: FaultTimeline | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.plant, self.stack = plant, stack
        self.timeline = timeline or FaultTimeline()
        self.clock = clock
        self._faults = self.timeline.link_faults()
        self.state = {d: _DirectionState(np.random.default_rng([self.timeline.seed, i])) for i, d in enumerate(DIRECTIONS)}
        self._held: list[tuple[float, int, Direction, bytes]] = []
        self._order = itertools.count()
        self.t0: float | None = None
        self.last_read = 0
        """Bytes the last :meth:`step` read from both ends."""

    @property
    def counts(self) -> dict[Direction, FaultCounts]:
        return {d: s.counts for d, s in self.state.items()}

    def start(self, t0: float | None = None) -> None:
        """Time zero of the timeline (default: now)."""
        self.t0 = self.clock() if t0 is None else t0

    def step(self) -> float | None:
        """Read what both ends sent, apply the faults, write what is due; the clock time of the next held frame (None: none)."""
        if self.t0 is None:
            self.start()
        now = self.clock()
        self.last_read = 0
        for direction, source in (("plant_to_stack", self.plant), ("stack_to_plant", self.stack)):
            for chunk in source.read_raw():
                self.last_read += len(chunk)
                self._receive(direction, chunk, now, datagram=source.datagrams)
        return self._release(now)

    def _receive(self, direction: Direction, chunk: bytes, now: float, datagram: bool) -> None:
        state = self.state[direction]
        frames, tail = split_frames(state.tail + chunk)
        state.tail = b"" if datagram else tail  # a datagram's tail is a truncated frame: forward it as it came
        if datagram and tail:
            frames.append(tail)
        for frame in frames:
            self._apply(direction, frame, now)

    def _active(self, t: float, direction: Direction) -> list[_Fault]:
        return [f for f in self._faults if f.active(t, direction)]

    def _apply(self, direction: Direction, frame: bytes, now: float) -> None:
        state = self.state[direction]
        counts, rng = state.counts, state.rng
        counts.frames_in += 1
        assert self.t0 is not None
        active = self._active(now - self.t0, direction)
        kinds = {f.kind: f for f in active}  # one fault of a kind at a time (the latest listed wins)
        if "partition" in kinds:
            counts.partition += 1
            return
        burst = kinds.get("burst_loss")
        if isinstance(burst, BurstLoss):
            state.bad = (rng.random() >= burst.p_exit) if state.bad else (rng.random() < burst.p_enter)
            if state.bad:
                counts.burst_loss += 1
                return
        else:
            state.bad = False
        loss = kinds.get("loss")
        if isinstance(loss, Loss) and rng.random() < loss.probability:
            counts.loss += 1
            return
        corrupt = kinds.get("corrupt")
        if isinstance(corrupt, Corrupt) and rng.random() < corrupt.probability:
            frame = _flip_bits(frame, corrupt.bits, rng)
            counts.corrupt += 1
        copies = 1
        duplicate = kinds.get("duplicate")
        if isinstance(duplicate, Duplicate) and rng.random() < duplicate.probability:
            copies += duplicate.copies
            counts.duplicate += duplicate.copies
        hold = 0.0
        delay = kinds.get("delay")
        if isinstance(delay, Delay):
            hold += delay.delay_ms / 1e3
        jitter = kinds.get("jitter")
        if isinstance(jitter, Jitter):
            hold += rng.uniform(0.0, jitter.jitter_ms / 1e3)
        reorder = kinds.get("reorder")
        if isinstance(reorder, Reorder) and rng.random() < reorder.probability:
            hold += reorder.hold_ms / 1e3
            counts.reordered += 1
        if hold > 0:
            counts.delayed += 1
        for _ in range(copies):
            heapq.heappush(self._held, (now + hold, next(self._order), direction, frame))

    def _release(self, now: float) -> float | None:
        while self._held and self._held[0][0] <= now:
            _, _, direction, frame = heapq.heappop(self._held)
            target = self.stack if direction == "plant_to_stack" else self.plant
            if target.write_raw(frame):
                self.state[direction].counts.forwarded += 1
        return self._held[0][0] if self._held else None

    def run(self, stop: threading.Event, max_wait_s: float = 0.005) -> None:
        """Forward until ``stop`` is set: wait on both links' descriptors, or until the next held frame is due."""
        if self.t0 is None:
            self.start()
        fds = [self.plant.fileno(), self.stack.fileno()]
        readable = False
        while not stop.is_set():
            due = self.step()
            wait = max_wait_s if due is None else min(max_wait_s, max(0.0, due - self.clock()))
            if wait <= 0:
                continue
            if readable and not self.last_read:  # "readable" with nothing to read: a pty whose device nobody holds
                time.sleep(wait)
                readable = False
            else:
                readable = bool(select.select(fds, [], [], wait)[0])

    def serve(self) -> tuple[threading.Thread, threading.Event]:
        """:meth:`run` in a daemon thread; set the returned event to stop it."""
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop,), name="aegis-fault-proxy", daemon=True)
        self.start()
        thread.start()
        return thread, stop


def _flip_bits(frame: bytes, bits: int, rng: np.random.Generator) -> bytes:
    """``frame`` with ``bits`` distinct random bits flipped, its trailing delimiter untouched."""
    body = bytearray(frame[:-1] if frame.endswith(DELIMITER) else frame)
    if not body:
        return frame
    for bit in rng.choice(len(body) * 8, size=min(bits, len(body) * 8), replace=False):
        body[bit // 8] ^= 1 << (bit % 8)
    return bytes(body) + (DELIMITER if frame.endswith(DELIMITER) else b"")
