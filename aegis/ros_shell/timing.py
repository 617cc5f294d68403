"""Time in the ROS 2 shell: timer periods, ROS time (sec, nanosec) <-> seconds, and input ages -> Received.

The adapter reads the node's ROS clock (wall time, or /clock when use_sim_time is set) as integer
nanoseconds; everything here works on those integers, so seconds handed to nodes are one
correctly rounded division, exactly as the lockstep executor computes them.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any

from aegis.msgs.stamp import NS_PER_S, stamp_to_ns
from aegis.node import Port, Received, input_age_ns

if TYPE_CHECKING:
    from aegis.launch_plan import LaunchPlan, NodeLaunch


def timer_period_s(rate_hz: float) -> float:
    """Period of a timer running at ``rate_hz``; ValueError unless the rate is finite and > 0."""
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"rate must be a finite number > 0 Hz, got {rate_hz!r}")
    return 1.0 / rate_hz


def ns_to_seconds(ns: int) -> float:
    """Seconds of an integer nanosecond time, correctly rounded."""
    return ns / NS_PER_S


def seconds_to_ros_time(seconds: float) -> tuple[int, int]:
    """(sec, nanosec) of a time in seconds, rounded to the nanosecond, with 0 <= nanosec < 1e9."""
    sec, nanosec = divmod(stamp_to_ns(seconds), NS_PER_S)
    return sec, nanosec


def ros_time_to_seconds(sec: int, nanosec: int) -> float:
    """Seconds of a ROS time (sec, nanosec); ValueError if nanosec is outside [0, 1e9)."""
    if not 0 <= nanosec < NS_PER_S:
        raise ValueError(f"nanosec must be in [0, {NS_PER_S}), got {nanosec}")
    return ns_to_seconds(sec * NS_PER_S + nanosec)


def received(msg: Any, received_ns: int, now_ns: int, max_age_s: float | None) -> Received[Any]:
    """A message received at ``received_ns`` as a node sees it at ``now_ns``.

    Its age counts from its stamp where that is older than its arrival, as under every executor
    (aegis.node.input_age_ns: ROS 2 stamps and the node's clock are both ROS time). Stale when
    older than ``max_age_s``, when its stamp is not finite or later than ``now_ns``, and also when
    it was received *after* ``now_ns``: the clock went backwards (a simulation or bag replay
    restarted /clock), so the message's age cannot be trusted.
    """
    age_ns = input_age_ns(msg, received_ns, now_ns) if received_ns <= now_ns else None
    if age_ns is None:
        return Received(msg, ns_to_seconds(now_ns - received_ns), True)
    age_s = ns_to_seconds(age_ns)
    return Received(msg, age_s, max_age_s is not None and age_s > max_age_s)


def _bad_stamp(msg: Any, received_ns: int, now_ns: int) -> bool:
    """Whether ``msg``'s stamp is not finite or later than ``now_ns`` (a clock gone backwards is not the stamp's fault)."""
    return received_ns <= now_ns and input_age_ns(msg, received_ns, now_ns) is None


class InputLatch:
    """The latest message of one input port and when it arrived; what a node's step receives for it.

    ``max_age_s`` is the staleness bound applied (default: the port's own; a node's instance may
    tighten it, see aegis.node.Node.max_ages).
    """

    _DEFAULT: Any = object()

    def __init__(self, port: Port, max_age_s: float | None = _DEFAULT) -> None:
        self.port = port
        self.max_age_s = port.max_age_s if max_age_s is InputLatch._DEFAULT else max_age_s
        self._msg: Any = None
        self._received_ns: int | None = None
        self.bad_stamps = 0
        """How many times ``get`` handed over the message stale for a non-finite or future stamp (aegis.node.input_age_ns)."""

    def put(self, msg: Any, received_ns: int) -> None:
        """Latch ``msg`` (an aegis message), received at ``received_ns`` on the node's clock."""
        self._msg = msg
        self._received_ns = received_ns

    def get(self, now_ns: int) -> Received[Any] | None:
        """The latched message with its age at ``now_ns``, or None if nothing arrived yet."""
        if self._received_ns is None:
            return None
        out = received(self._msg, self._received_ns, now_ns, self.max_age_s)
        if out.stale and _bad_stamp(self._msg, self._received_ns, now_ns):
            self.bad_stamps += 1
        return out


class QueueLatch:
    """Every message of a ``queued`` input port since the node's last step (at most the port's depth), as its step receives them.

    ``get`` returns them as a tuple of Received, oldest first (empty when none came), and empties
    the queue, as the in-process executors deliver a queued port (aegis.executors.graph).
    """

    def __init__(self, port: Port, max_age_s: float | None = InputLatch._DEFAULT) -> None:
        self.port = port
        self.max_age_s = port.max_age_s if max_age_s is InputLatch._DEFAULT else max_age_s
        self._queue: deque[tuple[Any, int]] = deque(maxlen=port.depth)
        self.bad_stamps = 0
        """How many messages ``get`` handed over stale for a non-finite or future stamp (aegis.node.input_age_ns)."""

    def put(self, msg: Any, received_ns: int) -> None:
        """Queue ``msg`` (an aegis message), received at ``received_ns`` on the node's clock."""
        self._queue.append((msg, received_ns))

    def get(self, now_ns: int) -> tuple[Received[Any], ...]:
        """The queued messages with their ages at ``now_ns``, oldest first; the queue is emptied."""
        out = tuple(received(msg, received_ns, now_ns, self.max_age_s) for msg, received_ns in self._queue)
        self.bad_stamps += sum(r.stale and _bad_stamp(r.msg, t, now_ns) for r, (_, t) in zip(out, self._queue))
        self._queue.clear()
        return out


def is_clock_source(plan: LaunchPlan, launch: NodeLaunch) -> bool:
    """Whether ``launch`` drives simulated time under ROS 2: the plant (first node) of a sim plan on use_sim_time.

    Under ROS 2 nothing else publishes /clock for aegis's simulator: that node steps on the wall
    clock (one tick per period, so simulated time runs at real time), keeps its own simulated
    clock, and publishes /clock after each step; every other node follows /clock (use_sim_time).
    """
    return plan.use_sim_time and plan.target == "sim" and launch.name == plan.nodes[0].name and launch.rate_hz is not None


class SimClock:
    """Simulated time of a clock-source node: tick k is at round(k * 1e9 / rate_hz) ns, as in the lockstep executor."""

    def __init__(self, rate_hz: float) -> None:
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        self.rate_hz = float(rate_hz)
        self.ticks = 0
        self.now_ns = 0

    def advance(self) -> int:
        """The time (ns) of the next tick, which becomes ``now_ns``."""
        self.now_ns = round(self.ticks * NS_PER_S / self.rate_hz)
        self.ticks += 1
        return self.now_ns
