"""The message plumbing every in-process executor shares: inputs as Received with age and staleness, outputs to topics, triggers.

A :class:`NodeGraph` holds a run's nodes in plan order and the latest message on every topic with
the time it was published, in integer nanoseconds on the executor's clock (simulated time under
lockstep, the monotonic clock since the run started under realtime). :meth:`NodeGraph.step` builds
one node's inputs at ``now_ns`` (each the latest message on its topic with its age, counted from its
stamp where that is older than its publication (aegis.node.input_age_ns), flagged stale past the
port's bound, and stale and counted in ``bad_stamps`` when its stamp is not finite or in the future; a ``many`` input as a tuple of those, one per topic; a ``queued`` input as
a tuple of every message published on its topic since the node's last step, at most the port's
depth, oldest first), steps the node, and
publishes what it returns (a ``many`` output one message per topic), queueing the nodes that those
topics trigger; :meth:`NodeGraph.triggered` yields them, breadth first, for the executor to step at
the same instant. A node raising :class:`~aegis.node.EndRun` has its outputs published and ends the
run: ``ended`` keeps the first such (node, reason, time) for the executor to stop on.

The executors own time (when each node runs) and timing (what each step cost); this module owns
what a step sees and what it leaves, so the two executors deliver messages identically.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from aegis.node import EndRun, Node, Received, input_age_ns, port_topics, received_at

NS_PER_S = 1_000_000_000

Listener = Callable[[str, Any, int], None]
"""Called with (topic, message, time in ns) for every message published during a run."""


def node_seeds(seed: int | None, count: int) -> list[int | None]:
    """The seed each of ``count`` nodes is reset with for a run's ``seed`` (its own stream per node; None: unseeded)."""
    if seed is None:
        return [None] * count
    return [int(child.generate_state(1)[0]) for child in np.random.SeedSequence(seed).spawn(count)]


class NodeGraph:
    """``nodes`` in plan order, the latest message per topic, and the publication ``listeners``."""

    def __init__(self, nodes: Sequence[Node], listeners: Iterable[Listener] = ()) -> None:
        names = [n.name for n in nodes]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"node names must be unique, repeated: {', '.join(sorted(duplicates))}")
        self.nodes = list(nodes)
        self.listeners = list(listeners)
        self.latest: dict[str, tuple[Any, int]] = {}
        """Topic -> (the last message published on it, its publication time in ns)."""
        self._triggered_by: dict[str, list[int]] = {}
        for index, node in enumerate(self.nodes):
            if node.trigger is not None:
                for topic in port_topics(node.topics[node.trigger]):
                    self._triggered_by.setdefault(topic, []).append(index)
        # per node, what each step needs, resolved once: (port name, topic or tuple of topics, staleness bound, many, queue)
        self._queues: dict[str, list[deque[tuple[Any, int]]]] = {}
        """Topic -> the queues of the queued input ports reading it (messages since each reader's last step)."""
        self._input_wiring = [
            tuple((port.name, node.topics[port.name], node.max_ages[port.name], port.many, self._queue(port, node)) for port in node.inputs)
            for node in self.nodes
        ]
        self.messages = 0
        self.bad_stamps: dict[str, int] = {}
        """Topic -> how many times a node was handed a message from it whose stamp was not finite or in the future (stale)."""
        self.pending: list[int] = []
        """Indices of the nodes triggered by messages published since :meth:`triggered` last took them."""
        self.ended: tuple[str, str, int] | None = None
        """(node, reason, time in ns) of the first EndRun, None while the run goes on."""
        self.stepping_ns = 0
        """The time of the step in progress (or the last one): what :meth:`peek_inputs` reads the inputs at."""

    def _queue(self, port: Any, node: Node) -> deque[tuple[Any, int]] | None:
        if not port.queued:
            return None
        queue: deque[tuple[Any, int]] = deque(maxlen=port.depth)
        self._queues.setdefault(node.topics[port.name], []).append(queue)
        return queue

    def reset(self, seed: int | None = None) -> None:
        """Reset every node, each with its own seed drawn from ``seed`` (same seed, same run), and forget every message."""
        seeds = node_seeds(seed, len(self.nodes))
        for node, node_seed in zip(self.nodes, seeds):
            node.reset(node_seed)
        self.latest.clear()
        for queues in self._queues.values():
            for queue in queues:
                queue.clear()
        self.pending.clear()
        self.messages = 0
        self.bad_stamps.clear()
        self.ended = None

    def step(self, index: int, now_ns: int) -> int:
        """Step node ``index`` at ``now_ns`` and publish its outputs; returns the wall time of its ``step`` call (ns)."""
        node = self.nodes[index]
        latest = self.latest
        self.stepping_ns = now_ns
        inputs: dict[str, Any] = {}
        for name, topic, max_age_s, many, queue in self._input_wiring[index]:
            if many:
                inputs[name] = tuple(self._received(t, max_age_s, now_ns) for t in topic)
            elif queue is not None:
                inputs[name] = self._drain(topic, queue, max_age_s, now_ns)
            else:  # the common port, inline (what _received does): a method call per input costs as much as the work
                entry = latest.get(topic)
                if entry is None:
                    inputs[name] = None
                else:
                    age_ns = input_age_ns(entry[0], entry[1], now_ns)
                    if age_ns is None:
                        inputs[name] = self._bad_stamp(topic, entry[0], entry[1], now_ns)
                    else:
                        age_s = age_ns / NS_PER_S
                        inputs[name] = Received(entry[0], age_s, max_age_s is not None and age_s > max_age_s)
        started = time.perf_counter_ns()
        try:
            outputs = node.step(now_ns / NS_PER_S, inputs)
        except EndRun as end:
            outputs = end.outputs
            if self.ended is None:  # the first one to end the run is the one reported
                self.ended = (node.name, end.reason, now_ns)
        duration_ns = time.perf_counter_ns() - started
        for port_name, msg in outputs.items():
            topic = node.topics.get(port_name)
            if topic is None:
                raise KeyError(f"node {node.name!r} returned output {port_name!r}, which it does not declare")
            if isinstance(topic, str):
                self.publish_output(now_ns, topic, msg)
                continue
            if len(msg) != len(topic):
                raise ValueError(f"node {node.name!r} returned {len(msg)} messages on {port_name!r}, which has {len(topic)} topics")
            for one_topic, one_msg in zip(topic, msg):
                if one_msg is not None:
                    self.publish_output(now_ns, one_topic, one_msg)
        return duration_ns

    def triggered(self) -> Iterator[int]:
        """The nodes triggered since the last call, breadth first, then those that their own outputs trigger (step each as it comes)."""
        if not self.pending:
            return
        queue = deque(self.pending)
        self.pending.clear()
        while queue:
            yield queue.popleft()
            queue.extend(self.pending)
            self.pending.clear()

    def publish_output(self, now_ns: int, topic: str, msg: Any) -> None:
        """Publish ``msg`` on ``topic`` at ``now_ns`` and queue the nodes it triggers."""
        self.publish(now_ns, topic, msg)
        triggered = self._triggered_by.get(topic)
        if triggered:
            self.pending.extend(triggered)

    def publish(self, t_ns: int, topic: str, msg: Any) -> None:
        """Make ``msg`` the latest on ``topic`` and hand it to every listener (triggers nothing: a replayed message)."""
        self.latest[topic] = (msg, t_ns)
        queues = self._queues.get(topic)
        if queues is not None:
            for queue in queues:
                queue.append((msg, t_ns))
        self.messages += 1
        for listener in self.listeners:
            listener(topic, msg, t_ns)

    def peek_inputs(self, node: Node) -> dict[str, Any]:
        """The inputs ``node`` would be handed if it stepped now (at :attr:`stepping_ns`), touching nothing: queued
        ports are not drained (they are given their latest message), bad stamps are not counted. For a node that
        prepares a later node's work within a tick (aegis.inference.mcu_session: the one-frame MCU tick)."""
        now_ns = self.stepping_ns
        inputs: dict[str, Any] = {}
        for name, topic, max_age_s, many, queue in self._input_wiring[self.nodes.index(node)]:
            topics = topic if many else (topic,)
            found = []
            for one in topics:
                entry = self.latest.get(one)
                found.append(None if entry is None else received_at(entry[0], entry[1], now_ns, max_age_s)[0])
            if many:
                inputs[name] = tuple(found)
            elif queue is not None:
                inputs[name] = () if found[0] is None else (found[0],)
            else:
                inputs[name] = found[0]
        return inputs

    def _received(self, topic: str, max_age_s: float | None, now_ns: int) -> Received | None:
        entry = self.latest.get(topic)
        if entry is None:
            return None
        received, bad = received_at(entry[0], entry[1], now_ns, max_age_s)
        if bad:
            self.bad_stamps[topic] = self.bad_stamps.get(topic, 0) + 1
        return received

    def _bad_stamp(self, topic: str, msg: Any, published_ns: int, now_ns: int) -> Received:
        """A message whose stamp is not finite or later than ``now_ns``: stale, aged from its arrival, counted."""
        self.bad_stamps[topic] = self.bad_stamps.get(topic, 0) + 1
        return Received(msg, (now_ns - published_ns) / NS_PER_S, True)

    def _drain(self, topic: str, queue: deque[tuple[Any, int]], max_age_s: float | None, now_ns: int) -> tuple[Received, ...]:
        """The queued messages as Received (oldest first), emptying the queue."""
        if not queue:
            return ()
        out = []
        for msg, published_ns in queue:
            received, bad = received_at(msg, published_ns, now_ns, max_age_s)
            if bad:
                self.bad_stamps[topic] = self.bad_stamps.get(topic, 0) + 1
            out.append(received)
        queue.clear()
        return tuple(out)
