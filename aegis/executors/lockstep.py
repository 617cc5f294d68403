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
What a step sees and what it leaves (inputs, publication, triggers) is :mod:`aegis.executors.graph`,
shared with the realtime executor; this module owns simulated time.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aegis.executors.graph import NS_PER_S, Listener, NodeGraph
from aegis.executors.heap import frozen_heap
from aegis.node import Node

__all__ = ["NS_PER_S", "Listener", "LockstepExecutor", "NodeTiming", "ReplayEvent", "RunStats"]

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
        self._graph = NodeGraph(nodes, listeners)
        self.nodes = self._graph.nodes
        self.listeners = self._graph.listeners
        self._sources = list(sources)
        self._steps = {n.name: 0 for n in self.nodes}
        self._timings = {n.name: NodeTiming(n.name) for n in self.nodes}

    def reset(self, seed: int | None = None) -> None:
        """Reset every node, each with its own seed drawn from ``seed`` (same seed, same run)."""
        self._graph.reset(seed)
        self._steps = {n.name: 0 for n in self.nodes}
        self._timings = {n.name: NodeTiming(n.name) for n in self.nodes}

    def peek_inputs(self, node: Any) -> dict[str, Any]:
        """What ``node`` would be handed if it stepped now, touching nothing (aegis.executors.graph.NodeGraph.peek_inputs)."""
        return self._graph.peek_inputs(node)

    def latest(self, topic: str) -> tuple[Any, int] | None:
        """The last message on ``topic`` and its publication time (ns), or None."""
        return self._graph.latest.get(topic)

    def run(self, duration_s: float, progress: Callable[[float], None] | None = None) -> RunStats:
        """Run from t=0 over [0, duration_s); call reset() first. ``progress`` gets sim seconds now and then."""
        graph = self._graph
        end_ns = round(duration_s * NS_PER_S)
        timers = [(0, index, 0) for index, node in enumerate(self.nodes) if node.trigger is None]
        heapq.heapify(timers)
        replay = _merge_sources(self._sources)
        pending_replay = next(replay, None)
        report_every_ns = max(end_ns // 200, 1)
        next_report_ns = 0
        wall_start = time.perf_counter()
        with frozen_heap():  # a collection during the run scans only what it allocates: no step pays for the process's whole heap
            while timers and timers[0][0] < end_ns:
                now_ns = timers[0][0]
                while pending_replay is not None and pending_replay[0] <= now_ns:
                    graph.publish(*pending_replay)
                    pending_replay = next(replay, None)
                while timers and timers[0][0] == now_ns and graph.ended is None:
                    _, index, tick = heapq.heappop(timers)
                    self._run_node(index, now_ns)
                    rate = self.nodes[index].rate_hz
                    heapq.heappush(timers, (round((tick + 1) * NS_PER_S / rate), index, tick + 1))
                if graph.ended is not None:
                    end_ns = now_ns  # the run lasted until this instant
                    break
                if progress is not None and now_ns >= next_report_ns:
                    progress(now_ns / NS_PER_S)
                    next_report_ns = now_ns + report_every_ns
            while pending_replay is not None and pending_replay[0] < end_ns:
                graph.publish(*pending_replay)
                pending_replay = next(replay, None)
        wall = time.perf_counter() - wall_start
        if progress is not None:
            progress(duration_s)
        ended_by, end_reason = (graph.ended[0], graph.ended[1]) if graph.ended is not None else (None, None)
        return RunStats(
            sim_time_s=end_ns / NS_PER_S if ended_by is not None else duration_s,
            wall_time_s=wall,
            steps=dict(self._steps),
            timings=self._timings,
            messages=graph.messages,
            ended_by=ended_by,
            end_reason=end_reason,
        )

    def _run_node(self, index: int, now_ns: int) -> None:
        """Step node ``index``, then the nodes its outputs trigger (and theirs), all at ``now_ns``."""
        self._record(index, self._graph.step(index, now_ns))
        for triggered in self._graph.triggered():
            self._record(triggered, self._graph.step(triggered, now_ns))

    def _record(self, index: int, duration_ns: int) -> None:
        name = self.nodes[index].name
        self._timings[name].durations_ns.append(duration_ns)
        self._steps[name] += 1


def _merge_sources(sources: list[Iterable[ReplayEvent]]) -> Iterator[ReplayEvent]:
    """Merge time-ordered replay streams into one, stable for equal times."""
    return heapq.merge(*sources, key=lambda event: event[0])
