"""The lockstep executor: runs a graph of nodes deterministically in simulated time, each at its own rate.

Time is integer nanoseconds; tick k of a node at rate r happens at round(k * 1e9 / r), so rates
like 240 Hz never drift. At each instant, replayed messages are delivered first, then the nodes
due run in plan order (the plant, listed first, publishes before the controllers read), and a
node triggered by an input runs right after the message that triggers it. Each input reaches
``step`` as the latest message on its topic with its age, flagged stale past the port's bound
(a ``many`` input as a tuple of those, one per topic; a ``many`` output publishes each of its
messages on its own topic).
The wall-clock duration of every step is measured, never used: outputs depend only on inputs.
A node ends the run early by raising :class:`~aegis.node.EndRun` from ``step`` (a simulator whose
robot crashed): its outputs are published, the nodes already triggered at that instant still run,
and the run stops there; ``RunStats`` says who ended it, why, and the simulated time it lasted.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aegis.node import EndRun, Node, Received, port_topics

NS_PER_S = 1_000_000_000

Listener = Callable[[str, Any, int], None]
"""Called with (topic, message, time in ns) for every message published during a run."""

ReplayEvent = tuple[int, str, Any]
"""(time in ns, topic, message), as a bag replayer yields them in time order."""


@dataclass
class NodeTiming:
    """Wall-clock durations of one node's steps in a run (nanoseconds)."""

    name: str
    durations_ns: list[int] = field(default_factory=list)

    def percentile_us(self, q: float) -> float:
        if not self.durations_ns:
            return float("nan")
        return float(np.percentile(np.asarray(self.durations_ns), q)) / 1e3


@dataclass
class RunStats:
    sim_time_s: float
    wall_time_s: float
    steps: dict[str, int]
    timings: dict[str, NodeTiming]
    messages: int
    ended_by: str | None = None
    """The node that ended the run early (raised EndRun), None when it ran its full duration."""
    end_reason: str | None = None

    @property
    def real_time_factor(self) -> float:
        return self.sim_time_s / self.wall_time_s if self.wall_time_s > 0 else float("inf")


class LockstepExecutor:
    """Runs ``nodes`` (in plan order) with optional replay ``sources`` and publication ``listeners``."""

    def __init__(
        self,
        nodes: Sequence[Node],
        sources: Iterable[Iterable[ReplayEvent]] = (),
        listeners: Iterable[Listener] = (),
    ) -> None:
        names = [n.name for n in nodes]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"node names must be unique, repeated: {', '.join(sorted(duplicates))}")
        self.nodes = list(nodes)
        self._sources = list(sources)
        self.listeners = list(listeners)
        self._latest: dict[str, tuple[Any, int]] = {}
        self._triggered_by: dict[str, list[int]] = {}
        for index, node in enumerate(self.nodes):
            if node.trigger is not None:
                for topic in port_topics(node.topics[node.trigger]):
                    self._triggered_by.setdefault(topic, []).append(index)
        # per node, what each step needs, resolved once: (port name, topic or tuple of topics, staleness bound, many)
        self._input_wiring = [
            tuple((port.name, node.topics[port.name], node.max_ages[port.name], port.many) for port in node.inputs)
            for node in self.nodes
        ]
        self._steps = {n.name: 0 for n in self.nodes}
        self._timings = {n.name: NodeTiming(n.name) for n in self.nodes}
        self._messages = 0
        self._pending_triggers: list[int] = []
        self._ended: tuple[str, str, int] | None = None  # (node, reason, time in ns) of an EndRun

    def reset(self, seed: int | None = None) -> None:
        """Reset every node, each with its own seed drawn from ``seed`` (same seed, same run)."""
        child_seeds = np.random.SeedSequence(seed).spawn(len(self.nodes)) if seed is not None else None
        for index, node in enumerate(self.nodes):
            node.reset(int(child_seeds[index].generate_state(1)[0]) if child_seeds else None)
        self._latest.clear()
        self._steps = {n.name: 0 for n in self.nodes}
        self._timings = {n.name: NodeTiming(n.name) for n in self.nodes}
        self._messages = 0
        self._ended = None

    def latest(self, topic: str) -> tuple[Any, int] | None:
        """The last message on ``topic`` and its publication time (ns), or None."""
        return self._latest.get(topic)

    def run(self, duration_s: float, progress: Callable[[float], None] | None = None) -> RunStats:
        """Run from t=0 over [0, duration_s); call reset() first. ``progress`` gets sim seconds now and then."""
        end_ns = round(duration_s * NS_PER_S)
        timers = [(0, index, 0) for index, node in enumerate(self.nodes) if node.trigger is None]
        heapq.heapify(timers)
        replay = _merge_sources(self._sources)
        pending_replay = next(replay, None)
        report_every_ns = max(end_ns // 200, 1)
        next_report_ns = 0
        wall_start = time.perf_counter()
        while timers and timers[0][0] < end_ns:
            now_ns = timers[0][0]
            while pending_replay is not None and pending_replay[0] <= now_ns:
                self._publish(*pending_replay)
                pending_replay = next(replay, None)
            while timers and timers[0][0] == now_ns and self._ended is None:
                _, index, tick = heapq.heappop(timers)
                self._run_node(index, now_ns)
                rate = self.nodes[index].rate_hz
                heapq.heappush(timers, (round((tick + 1) * NS_PER_S / rate), index, tick + 1))
            if self._ended is not None:
                end_ns = now_ns  # the run lasted until this instant
                break
            if progress is not None and now_ns >= next_report_ns:
                progress(now_ns / NS_PER_S)
                next_report_ns = now_ns + report_every_ns
        while pending_replay is not None and pending_replay[0] < end_ns:
            self._publish(*pending_replay)
            pending_replay = next(replay, None)
        wall = time.perf_counter() - wall_start
        if progress is not None:
            progress(duration_s)
        ended_by, end_reason = (self._ended[0], self._ended[1]) if self._ended is not None else (None, None)
        return RunStats(
            sim_time_s=end_ns / NS_PER_S if ended_by is not None else duration_s,
            wall_time_s=wall,
            steps=dict(self._steps),
            timings=self._timings,
            messages=self._messages,
            ended_by=ended_by,
            end_reason=end_reason,
        )

    def _run_node(self, index: int, now_ns: int) -> None:
        self._step_node(index, now_ns)
        if self._pending_triggers:
            queue = deque(self._pending_triggers)
            self._pending_triggers.clear()
            while queue:
                self._step_node(queue.popleft(), now_ns)
                queue.extend(self._pending_triggers)
                self._pending_triggers.clear()

    def _step_node(self, index: int, now_ns: int) -> None:
        node = self.nodes[index]
        inputs = {
            name: tuple(self._received(t, max_age_s, now_ns) for t in topic) if many else self._received(topic, max_age_s, now_ns)
            for name, topic, max_age_s, many in self._input_wiring[index]
        }
        started = time.perf_counter_ns()
        try:
            outputs = node.step(now_ns / NS_PER_S, inputs)
        except EndRun as end:
            outputs = end.outputs
            if self._ended is None:  # the first one to end the run is the one reported
                self._ended = (node.name, end.reason, now_ns)
        self._timings[node.name].durations_ns.append(time.perf_counter_ns() - started)
        self._steps[node.name] += 1
        for port_name, msg in outputs.items():
            topic = node.topics.get(port_name)
            if topic is None:
                raise KeyError(f"node {node.name!r} returned output {port_name!r}, which it does not declare")
            if isinstance(topic, str):
                self._publish_output(now_ns, topic, msg)
                continue
            if len(msg) != len(topic):
                raise ValueError(f"node {node.name!r} returned {len(msg)} messages on {port_name!r}, which has {len(topic)} topics")
            for one_topic, one_msg in zip(topic, msg):
                if one_msg is not None:
                    self._publish_output(now_ns, one_topic, one_msg)

    def _publish_output(self, now_ns: int, topic: str, msg: Any) -> None:
        self._publish(now_ns, topic, msg)
        triggered = self._triggered_by.get(topic)
        if triggered:
            self._pending_triggers.extend(triggered)

    def _received(self, topic: str, max_age_s: float | None, now_ns: int) -> Received | None:
        entry = self._latest.get(topic)
        if entry is None:
            return None
        msg, published_ns = entry
        age_s = (now_ns - published_ns) / NS_PER_S
        return Received(msg, age_s, max_age_s is not None and age_s > max_age_s)

    def _publish(self, t_ns: int, topic: str, msg: Any) -> None:
        self._latest[topic] = (msg, t_ns)
        self._messages += 1
        for listener in self.listeners:
            listener(topic, msg, t_ns)


def _merge_sources(sources: list[Iterable[ReplayEvent]]) -> Iterator[ReplayEvent]:
    """Merge time-ordered replay streams into one, stable for equal times."""
    return heapq.merge(*sources, key=lambda event: event[0])
