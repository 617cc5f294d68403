"""A queued input port: every message since the node's last step, oldest first, at most the port's depth, in every executor.

The supervisor reads /diagnostics this way (each node's LoopDiagnostics, one after another on one
topic): under lockstep and the realtime executor through aegis.executors.graph, under ROS 2
through the adapter's QueueLatch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from aegis.executors.lockstep import LockstepExecutor
from aegis.msgs import LoopDiagnostics
from aegis.node import Node, Port, Received
from aegis.ros_shell import QueueLatch


class Collector(Node):
    """Records what its queued input delivers each tick."""

    type_name = "collector"
    inputs = (Port("reports", LoopDiagnostics, "/diagnostics", depth=3, queued=True),)
    default_rate_hz = 10.0

    def reset(self, seed: int | None = None) -> None:
        self.seen: list[tuple[float, tuple[tuple[str, float], ...]]] = []

    def step(self, now: float, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        self.seen.append((now, tuple((r.msg.name, round(r.age_s, 9)) for r in inputs["reports"])))
        return {}


def report(name: str, t_ns: int = 0) -> LoopDiagnostics:
    """A report stamped when it is published (an input's age counts from its stamp: aegis.node.input_age_ns)."""
    return LoopDiagnostics(name=name, stamp=t_ns / 1e9)


def test_lockstep_delivers_every_message_since_the_last_step_up_to_the_depth() -> None:
    node = Collector("collector")
    events = [(t, "/diagnostics", report(name, t)) for t, name in ((10_000_000, "a"), (20_000_000, "b"), (150_000_000, "c"))]
    events += [(160_000_000 + i, "/diagnostics", report(f"x{i}", 160_000_000 + i)) for i in range(5)]  # 5 in one period: the depth (3) keeps the newest
    executor = LockstepExecutor([node], sources=[events])
    executor.reset(0)
    executor.run(0.35)
    assert node.seen == [
        (0.0, ()),
        (0.1, (("a", 0.09), ("b", 0.08))),
        (0.2, (("x2", 0.039999998), ("x3", 0.039999997), ("x4", 0.039999996))),
        (0.3, ()),
    ]


def test_the_ros_adapters_queue_latch_does_the_same() -> None:
    latch = QueueLatch(Collector.inputs[0])
    assert latch.get(0) == ()
    for i, name in enumerate("abcd"):
        latch.put(report(name, 1_000_000 * i), 1_000_000 * i)
    got = latch.get(5_000_000)
    assert [(r.msg.name, r.age_s) for r in got] == [("b", 0.004), ("c", 0.003), ("d", 0.002)] and latch.get(6_000_000) == ()


def test_a_queued_port_has_one_topic() -> None:
    with pytest.raises(ValueError, match="a queued port has one topic"):
        Port("reports", LoopDiagnostics, (), many=True, queued=True)


def test_received_is_what_a_queued_port_holds() -> None:
    latch = QueueLatch(Port("r", LoopDiagnostics, "/diagnostics", max_age_s=0.5))
    latch.put(report("a"), 0)
    (only,) = latch.get(1_000_000_000)
    assert isinstance(only, Received) and only.stale
