"""The realtime executor: runs a plan's nodes on the monotonic wall clock, each at its rate, with deadlines measured.

One OS thread runs one scheduler loop over the nodes' next due times (``time.perf_counter_ns``,
CLOCK_MONOTONIC on Linux). It sleeps until ``spin_s`` (200 µs) before the earliest one, spins the
rest, then runs every node due at that wake-up in (scheduled time, plan order), as lockstep runs an
instant, and a node triggered by an input right after the message that triggers it. Messages are
delivered in memory through :class:`aegis.executors.graph.NodeGraph`, exactly as under lockstep:
each input is the latest message on its topic with its age on the wall clock (now minus the
publisher's step start), stale past the port's bound. ``now`` is the wall time at the node's start,
in seconds since the run began; tick k of a node at rate r is due at round(k * 1e9 / r) ns.

Deadlines and overruns. A node's deadline is its period unless ``deadlines_s`` gives another; a
step whose outputs are out after its scheduled start + deadline is a deadline miss. Overrun policy:
skip, never catch up. At a wake-up a late node runs once, for the latest tick already due, and the
ticks before it that it never started are skipped, each counted as a deadline miss and a skipped
tick (as ROS 2 timers do); it is never run several times in a row to make up. Per node the executor
keeps histograms of the start jitter (actual start - scheduled start, which includes the nodes
before it at that instant) and of the step durations (:mod:`aegis.executors.loop_stats`), and
every ~1 s it publishes one :class:`~aegis.msgs.LoopDiagnostics` per node on ``/diagnostics`` in the
loop's slack: OK, WARN after a miss in that window, ERROR past ``realtime.deadline_miss_limit``
misses in the window, for whoever watches /diagnostics (the supervisor reads every report: an ERROR one, or a
node whose reports stop, degrades it; nodes/supervisor.py); the executor itself keeps running.

Real-time settings (``realtime.priority``, ``cpu_affinity``, ``lock_memory``) are applied to the
loop's thread for the run when the OS permits, and a refusal is a warning and a field of the stats
(:mod:`aegis.executors.os_settings`), never an error. Before the loop the garbage collector runs once
and freezes what exists (:func:`aegis.executors.heap.frozen_heap`), so the rare collections during the run scan only
what the run allocated (a full collection of a loaded process costs milliseconds); it is unfrozen after. A run ends after ``duration_s``, when a node
raises :class:`~aegis.node.EndRun` (as under lockstep), or when the caller's ``stop`` event is set (a
signal handler: :func:`stop_on_signals`); ``close()`` (or leaving a ``with`` block) closes the nodes.

Messages from other processes. ``run(inbox=...)`` takes an :class:`Inbox` (a
:class:`aegis.transport.DdsBridge`: one process group of a plan): the loop waits on it instead of
sleeping and, whenever it wakes (for a message or a due node), delivers what arrived as if
published at that instant (its age counts from its stamp, which the sender's clock made, where that is
older than its arrival: the wire's latency is in it; aegis.node.input_age_ns), then
steps the nodes it triggers. What the group's nodes publish leaves through a listener
(``bridge.publish``). ``run(start_ns=...)`` starts the run's clock at an agreed
``time.perf_counter_ns()`` reading (CLOCK_MONOTONIC, one clock for every process of a machine), so
several processes share one time line.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from aegis.config import RealtimeConfig
from aegis.executors.graph import NS_PER_S, Listener, NodeGraph
from aegis.executors.heap import frozen_heap
from aegis.executors.loop_stats import Histogram, NodeLoop, RealtimeStats
from aegis.executors.os_settings import apply_settings
from aegis.msgs.diagnostics import ERROR, OK, WARN, LoopDiagnostics
from aegis.node import Node

logger = logging.getLogger(__name__)

DIAGNOSTICS_TOPIC = "/diagnostics"
REPORT_PERIOD_NS = NS_PER_S
"""Each node's LoopDiagnostics comes about once a second; the deadline-miss limit counts per such window."""
REPORT_SLACK_NS = 300_000
"""A wake-up publishes further reports only while the next due time is at least this far off (one always goes)."""
SPIN_S = 200e-6
MAX_SLEEP_NS = 50_000_000
"""The longest single sleep: an idle loop looks at its stop event at least this often."""


class Inbox(Protocol):
    """Where messages from outside the process come in (a DdsBridge): ``take`` what arrived, ``wait`` for more."""

    def take(self) -> list[tuple[str, Any]]: ...

    def wait(self, timeout_s: float) -> bool: ...


class RealtimeExecutor:
    """Runs ``nodes`` (in plan order) on the wall clock; see the module doc. ``settings``: the hw_config's ``realtime`` section."""

    def __init__(
        self,
        nodes: Sequence[Node],
        listeners: Iterable[Listener] = (),
        settings: RealtimeConfig | None = None,
        deadlines_s: Mapping[str, float] | None = None,
        spin_s: float = SPIN_S,
    ) -> None:
        self._graph = NodeGraph(nodes, listeners)
        self.nodes = self._graph.nodes
        if not any(node.trigger is None for node in self.nodes):
            raise ValueError("the realtime executor needs at least one node that runs at a rate (every node here is triggered)")
        self.settings = settings if settings is not None else RealtimeConfig()
        self._deadlines_ns = self._resolve_deadlines(dict(deadlines_s or {}))
        if not (spin_s >= 0 and math.isfinite(spin_s)):
            raise ValueError(f"spin_s must be >= 0, got {spin_s}")
        self._spin_ns = round(spin_s * NS_PER_S)
        self._loops = self._fresh_loops()
        self._batches = Histogram()
        self._batches_cpu = Histogram()
        self._closed = False
        self._inbox: Inbox | None = None
        self._t0: int | None = None

    def _resolve_deadlines(self, deadlines_s: dict[str, float]) -> list[int | None]:
        by_name = {node.name: node for node in self.nodes}
        for name, deadline in deadlines_s.items():
            if name not in by_name:
                raise ValueError(f"deadline for {name!r}: no such node (nodes: {', '.join(by_name)})")
            if by_name[name].trigger is not None:
                raise ValueError(f"deadline for {name!r}: it runs on a trigger, with no period to keep")
            if not (deadline > 0 and math.isfinite(deadline)):
                raise ValueError(f"deadline for {name!r} must be > 0 s, got {deadline}")
        return [
            None if node.trigger is not None else round(deadlines_s.get(node.name, 1.0 / node.rate_hz) * NS_PER_S)
            for node in self.nodes
        ]

    def _fresh_loops(self) -> list[NodeLoop]:
        return [
            NodeLoop(node.name, None if node.trigger is not None else round(NS_PER_S / node.rate_hz), deadline)
            for node, deadline in zip(self.nodes, self._deadlines_ns)
        ]

    def reset(self, seed: int | None = None) -> None:
        """Reset every node (each with its own seed drawn from ``seed``) and the measurements."""
        self._graph.reset(seed)
        self._loops = self._fresh_loops()
        self._batches = Histogram()
        self._batches_cpu = Histogram()

    def peek_inputs(self, node: Any) -> dict[str, Any]:
        """What ``node`` would be handed if it stepped now, touching nothing (aegis.executors.graph.NodeGraph.peek_inputs)."""
        return self._graph.peek_inputs(node)

    def latest(self, topic: str) -> tuple[Any, int] | None:
        """The last message on ``topic`` and its publication time (ns since the run started), or None."""
        return self._graph.latest.get(topic)

    def close(self) -> None:
        """Close every node that has a ``close()`` (a simulator's world); once."""
        if self._closed:
            return
        self._closed = True
        for node in self.nodes:
            if hasattr(node, "close"):
                node.close()

    def __enter__(self) -> RealtimeExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        duration_s: float | None = None,
        stop: threading.Event | None = None,
        inbox: Inbox | None = None,
        start_ns: int | None = None,
        resume: bool = False,
    ) -> RealtimeStats:
        """Run for ``duration_s`` wall seconds (None: until EndRun or ``stop``) from now, or from ``start_ns`` (a
        ``time.perf_counter_ns()`` reading, waited for); ``inbox`` brings other processes' messages. Call reset() first.

        ``resume``: ``start_ns`` may lie in the past (a process restarted into a running run): each node starts at its
        first tick due from now on the run's time line, the ticks before it neither run nor counted as missed."""
        if duration_s is not None and not (duration_s > 0 and math.isfinite(duration_s)):
            raise ValueError(f"duration_s must be > 0, got {duration_s}")
        if self._closed:
            raise RuntimeError("the executor is closed")
        s = self.settings
        applied = apply_settings(s.priority, s.cpu_affinity, s.lock_memory)
        try:
            self._inbox = inbox
            with frozen_heap(collect_first=True):  # what exists now is never scanned during the run: collections see only what it allocates
                if start_ns is not None and self._wait_until(start_ns, stop):
                    stopped = True
                else:
                    stopped = self._loop(None if duration_s is None else round(duration_s * NS_PER_S), stop, start_ns, resume)
            wall = (time.perf_counter_ns() - self._t0) / NS_PER_S if self._t0 is not None else 0.0
        finally:
            applied.restore()
            self._inbox, self._t0 = None, None
        ended = self._graph.ended
        return RealtimeStats(
            wall_time_s=wall,
            loops={loop.name: loop for loop in self._loops},
            batches=self._batches,
            batches_cpu=self._batches_cpu,
            messages=self._graph.messages,
            settings=applied.outcomes,
            ended_by=ended[0] if ended else None,
            end_reason=ended[1] if ended else None,
            stopped=stopped,
            bad_stamps=dict(self._graph.bad_stamps),
        )

    def _loop(self, end_ns: int | None, stop: threading.Event | None, start_ns: int | None = None, resume: bool = False) -> bool:
        """The scheduler loop; True when ``stop`` ended it."""
        graph, loops, deadlines = self._graph, self._loops, self._deadlines_ns
        clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
        periodic = [index for index, node in enumerate(self.nodes) if node.trigger is None]
        rates = [node.rate_hz for node in self.nodes]
        next_tick = [0] * len(self.nodes)
        due_ns = [0] * len(self.nodes)  # scheduled time of each periodic node's next tick, ns since t0
        reports: list[int] = []
        t0 = clock() if start_ns is None else start_ns
        self._t0 = t0
        next_round_ns = REPORT_PERIOD_NS
        if resume and clock() > t0:  # joining a run under way: from the next tick of each node, the past neither run nor missed
            joined = clock() - t0
            for i in periodic:
                next_tick[i] = _latest_due_tick(0, joined, rates[i]) + 1
                due_ns[i] = _tick_ns(next_tick[i], rates[i])
            while next_round_ns <= joined:
                next_round_ns += REPORT_PERIOD_NS
        while True:
            if stop is not None and stop.is_set():
                return True
            earliest = min(due_ns[i] for i in periodic)
            if end_ns is not None and earliest >= end_ns:
                return False
            if self._wait_until(t0 + earliest, stop):
                return True
            woke, woke_cpu = clock(), cpu_clock()
            now = woke - t0 if end_ns is None else min(woke - t0, end_ns - 1)
            if self._inbox is not None:
                self._deliver(now)
            batch = []
            for i in periodic:
                if due_ns[i] <= now:
                    tick, following = next_tick[i], _tick_ns(next_tick[i] + 1, rates[i])
                    if following <= now:  # late past the next tick too: run the latest one due, skip the rest
                        tick = _latest_due_tick(tick, now, rates[i])
                        following = _tick_ns(tick + 1, rates[i])
                    batch.append((_tick_ns(tick, rates[i]) if tick != next_tick[i] else due_ns[i], i, tick, following))
            if len(batch) > 1:
                batch.sort()
            for scheduled, i, tick, following in batch:
                loop = loops[i]
                skipped = tick - next_tick[i]
                if skipped:
                    loop.skipped_ticks += skipped
                    loop.deadline_misses += skipped
                    loop.window_misses += skipped
                next_tick[i] = tick + 1
                due_ns[i] = following
                start = clock() - t0
                duration = graph.step(i, start)
                finished = clock() - t0
                _record(loop, duration)
                loop.jitter.add(start - scheduled)
                if finished > scheduled + deadlines[i]:
                    loop.deadline_misses += 1
                    loop.window_misses += 1
                if graph.pending:
                    self._run_triggered(t0)
                if graph.ended is not None:
                    break
            done_cpu = cpu_clock()
            done = clock()
            self._batches.add(done - woke)
            self._batches_cpu.add(done_cpu - woke_cpu)
            if graph.ended is not None:
                return False
            if done - t0 >= next_round_ns:
                if reports:  # the last round is not out yet (a slow loop): send it now
                    while reports:
                        self._report(reports.pop(0), t0, clock())
                reports = list(range(len(self.nodes)))
                while next_round_ns <= done - t0:
                    next_round_ns += REPORT_PERIOD_NS
            if reports:
                self._report(reports.pop(0), t0, done)
                earliest = t0 + min(due_ns[i] for i in periodic)
                while reports and earliest - clock() > REPORT_SLACK_NS:
                    self._report(reports.pop(0), t0, clock())

    def _run_triggered(self, t0: int) -> None:
        graph, clock = self._graph, time.perf_counter_ns
        for index in graph.triggered():
            _record(self._loops[index], graph.step(index, clock() - t0))

    def _deliver(self, now_ns: int) -> None:
        """Publish what the inbox took in at ``now_ns`` and step the nodes it triggers."""
        arrived = self._inbox.take()  # type: ignore[union-attr]
        if not arrived:
            return
        for topic, msg in arrived:
            self._graph.publish_output(now_ns, topic, msg)
        if self._graph.pending:
            self._run_triggered(self._t0)

    def _wait_until(self, target_ns: int, stop: threading.Event | None) -> bool:
        """Sleep (on the inbox, delivering what comes), then spin, until the clock reads ``target_ns``; True if ``stop`` was set meanwhile."""
        clock, spin, inbox = time.perf_counter_ns, self._spin_ns, self._inbox
        while True:
            remaining = target_ns - clock()
            if remaining <= 0:
                return False
            if stop is not None and stop.is_set():
                return True
            if remaining > spin:
                if inbox is None or self._t0 is None:  # no inbox, or the run has not started: nothing to deliver yet
                    time.sleep(min(remaining - spin, MAX_SLEEP_NS) / NS_PER_S)
                elif inbox.wait(min(remaining - spin, MAX_SLEEP_NS) / NS_PER_S):
                    self._deliver(clock() - self._t0)
            else:
                while clock() < target_ns:
                    pass
                return False

    def _report(self, index: int, t0: int, at: int) -> None:
        """Publish node ``index``'s LoopDiagnostics for the window since its last one, then start a new window."""
        loop, node = self._loops[index], self.nodes[index]
        window = sorted(loop.window) or [loop.last_duration_ns]
        limit = self.settings.deadline_miss_limit
        level = OK
        if loop.window_misses:
            level = WARN
            if limit is not None and loop.window_misses > limit:
                level = ERROR
                loop.windows_over_limit += 1
                if loop.windows_over_limit == 1:
                    logger.warning(
                        "node %s missed %d deadlines in one diagnostics window (realtime.deadline_miss_limit %d): reported as ERROR",
                        node.name, loop.window_misses, limit,
                    )  # fmt: skip
        report = LoopDiagnostics(
            stamp=(at - t0) / NS_PER_S,
            name=node.name,
            period_s=(loop.period_ns or 0) / NS_PER_S,
            last_duration_s=loop.last_duration_ns / NS_PER_S,
            p50_duration_s=_nearest_rank(window, 50) / NS_PER_S,
            p99_duration_s=_nearest_rank(window, 99) / NS_PER_S,
            deadline_misses=loop.deadline_misses,
            ticks=loop.ticks,
            level=level,
        )
        loop.window.clear()
        loop.window_misses = 0
        self._graph.publish_output(at - t0, DIAGNOSTICS_TOPIC, report)
        self._run_triggered(t0)


def _record(loop: NodeLoop, duration_ns: int) -> None:
    loop.steps += 1
    loop.last_duration_ns = duration_ns
    loop.durations.add(duration_ns)
    loop.window.append(duration_ns)


def _tick_ns(tick: int, rate_hz: float) -> int:
    """When tick ``tick`` of a node at ``rate_hz`` is due, in ns since the start (the lockstep formula: no drift)."""
    return round(tick * NS_PER_S / rate_hz)


def _latest_due_tick(first: int, now_ns: int, rate_hz: float) -> int:
    """The latest tick >= ``first`` due by ``now_ns`` (tick ``first`` is due by then)."""
    tick = max(first, int(now_ns * rate_hz / NS_PER_S))
    while _tick_ns(tick + 1, rate_hz) <= now_ns:
        tick += 1
    while tick > first and _tick_ns(tick, rate_hz) > now_ns:
        tick -= 1
    return tick


def _nearest_rank(sorted_values: list[int], q: float) -> int:
    return sorted_values[max(0, math.ceil(q / 100.0 * len(sorted_values)) - 1)]


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[threading.Event]:
    """Within the block, SIGINT and SIGTERM set ``stop`` (a clean end of the run) instead of raising; the old handlers come back after.

    Signal handlers can only be installed from the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in signals}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
