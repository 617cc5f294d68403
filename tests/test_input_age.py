"""An input's age counts from its message's stamp where it has one (aegis.node.input_age_ns), in every executor.

A message that arrives on time but was made long ago (a link that delays every frame by 100 ms)
is stale; one stamped in the future or with a non-finite stamp is bad input: stale and counted.
Real nodes (the supervisor) under the real NodeGraph that both in-process executors share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from aegis.executors.graph import NS_PER_S, NodeGraph
from aegis.msgs import AccelCommand, RobotState
from aegis.node import Node, NodeParams, Port, input_age_ns, received_at
from aegis.nodes.supervisor import Supervisor
from aegis.ros_shell.timing import InputLatch, QueueLatch, received

MS = 1_000_000


class Stamped(NodeParams):
    stamp_offset_s: float = 0.0
    """The published odometry's stamp is now + this (negative: made that long before it is published)."""
    nan_stamp: bool = False
    from_s: float = 0.0
    """The offset applies from this time on (before: stamped at publication)."""


class Odometry(Node):
    """Publishes a hovering robot's odometry every tick with a chosen stamp."""

    type_name = "test_odometry"
    outputs = (Port("state", RobotState, "/odom"),)
    Params = Stamped
    default_rate_hz = 240.0

    def step(self, now: float, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        offset = self.params.stamp_offset_s if now >= self.params.from_s else 0.0
        stamp = math.nan if self.params.nan_stamp else now + offset
        return {"state": RobotState(stamp=stamp, position=np.array([0.0, 0.0, 1.0]))}


class Nominal(Node):
    """The filter's output, fresh and stamped now: a zero acceleration."""

    type_name = "test_nominal"
    outputs = (Port("command", AccelCommand, "/cmd_accel_filtered"),)
    default_rate_hz = 48.0

    def step(self, now: float, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"command": AccelCommand(stamp=now, frame_id="odom", linear=np.zeros(3))}


class Reader(Node):
    """Keeps what it was handed on /odom (bound 50 ms)."""

    type_name = "test_reader"
    inputs = (Port("state", RobotState, "/odom", max_age_s=0.05),)
    default_rate_hz = 48.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[Any] = []

    def step(self, now: float, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        self.seen.append(inputs["state"])
        return {}


def test_the_age_is_the_stamps_where_it_is_older_than_the_arrival() -> None:
    arrived, now = 1_000 * MS, 1_010 * MS
    assert input_age_ns(RobotState(stamp=0.9), arrived, now) == 110 * MS  # made 100 ms before it arrived
    assert input_age_ns(RobotState(stamp=1.0), arrived, now) == 10 * MS  # stamp = arrival: the arrival's age, exactly
    assert input_age_ns(RobotState(stamp=1.005), arrived, now) == 10 * MS  # stamped after it arrived: never younger
    assert input_age_ns(object(), arrived, now) == 10 * MS  # no stamp: from its arrival
    assert input_age_ns(RobotState(stamp=1.02), arrived, now) is None  # from the future: bad
    assert input_age_ns(RobotState(stamp=math.inf), arrived, now) is None
    stale, bad = received_at(RobotState(stamp=0.9), arrived, now, 0.05)
    assert stale.stale and stale.age_s == pytest.approx(0.11) and not bad
    future, bad = received_at(RobotState(stamp=2.0), arrived, now, None)
    assert future.stale and bad and future.age_s == pytest.approx(0.01)  # stale even with no bound; aged from arrival


def run(graph: NodeGraph, seconds: float) -> None:
    """Step every node at its rate from t = 0, in plan order at each instant, as the lockstep executor does."""
    run_from(graph, 0.0, seconds)


def run_from(graph: NodeGraph, start_s: float, end_s: float) -> None:
    """Step every node due in [start_s, end_s) (a node's tick k is at k / rate), in plan order at each instant."""
    for tick in range(round(start_s * 240), round(end_s * 240)):
        now_ns = round(tick * NS_PER_S / 240)
        for node_index, node in enumerate(graph.nodes):
            every = round(240 / node.rate_hz)
            if tick % every == 0:
                graph.step(node_index, now_ns)


def test_a_message_published_on_time_but_stamped_long_ago_is_stale() -> None:
    reader = Reader("reader")
    graph = NodeGraph([Odometry("odom", Stamped(stamp_offset_s=-0.1)), reader])
    run(graph, 0.5)
    late = [r for r in reader.seen[2:] if r is not None]
    assert late and all(r.stale and r.age_s >= 0.1 for r in late)  # published the same instant, 100 ms old by its stamp
    assert graph.bad_stamps == {}


def test_a_message_stamped_at_publication_has_the_ages_it_always_had() -> None:
    reader = Reader("reader")
    graph = NodeGraph([Odometry("odom"), reader])
    run(graph, 0.5)
    assert all(r is not None and not r.stale and r.age_s == 0.0 for r in reader.seen)


@pytest.mark.parametrize("params", [Stamped(stamp_offset_s=0.5), Stamped(nan_stamp=True)], ids=["future", "nan"])
def test_a_stamp_from_the_future_or_not_finite_is_refused_and_counted(params: Stamped) -> None:
    reader = Reader("reader")
    graph = NodeGraph([Odometry("odom", params), reader])
    run(graph, 0.5)
    assert all(r.stale for r in reader.seen)
    assert graph.bad_stamps == {"/odom": len(reader.seen)}
    graph.reset(0)
    assert graph.bad_stamps == {}


def test_the_supervisor_degrades_on_odometry_that_a_link_delays_by_100_ms_and_stays_degraded() -> None:
    # what the campaign's delay fault does: from 0.5 s on every odometry message arrives on time, 100 ms after it was made
    supervisor = Supervisor("supervisor")
    graph = NodeGraph([Odometry("odom", Stamped(stamp_offset_s=-0.1, from_s=0.5)), Nominal("filter"), supervisor])
    run(graph, 0.49)
    assert supervisor.state == "running"
    run_from(graph, 0.49, 2.0)  # counted from arrival, each message was fresh and it ran again after recovery_s (0.5 s)
    assert supervisor.state == "degraded" and supervisor.reason.startswith("odometry stale (0.1")
    assert supervisor.transitions == 3  # init -> armed -> running -> degraded, and no way back while the delay lasts


def test_odometry_a_few_ms_late_by_its_stamp_is_within_the_bound() -> None:
    supervisor = Supervisor("supervisor")
    graph = NodeGraph([Odometry("odom", Stamped(stamp_offset_s=-0.01)), Nominal("filter"), supervisor])  # 10 ms of 50
    run(graph, 1.0)
    assert supervisor.state == "running" and supervisor.transitions == 2


def test_the_ros_shell_counts_age_from_the_stamp_too() -> None:
    now = 1_010 * MS
    assert received(RobotState(stamp=0.9), 1_000 * MS, now, 0.05).stale  # ROS time stamps, ROS time clock
    assert not received(RobotState(stamp=1.0), 1_000 * MS, now, 0.05).stale
    assert received(RobotState(stamp=1.5), 1_000 * MS, now, None).stale  # from the future
    assert received(RobotState(stamp=1.0), 1_020 * MS, now, None).stale  # arrived after now: the clock went back


def test_the_ros_shells_latches_count_bad_stamps() -> None:
    latch = InputLatch(Reader.inputs[0])
    latch.put(RobotState(stamp=2.0), 1_000 * MS)
    assert latch.get(1_010 * MS).stale and latch.bad_stamps == 1
    latch.put(RobotState(stamp=1.0), 1_000 * MS)
    assert not latch.get(1_010 * MS).stale and latch.bad_stamps == 1
    queue = QueueLatch(Port("reports", RobotState, "/odom", depth=3, queued=True))
    queue.put(RobotState(stamp=math.nan), 1_000 * MS)
    queue.put(RobotState(stamp=1.0), 1_000 * MS)
    assert [r.stale for r in queue.get(1_010 * MS)] == [True, False] and queue.bad_stamps == 1


def test_received_is_a_frozen_record_of_its_three_fields() -> None:
    """Its own __init__ (the slots' setters, for speed) keeps what the dataclass promised: frozen, equal and hashed by value, picklable."""
    import dataclasses
    import pickle

    from aegis.node import Received

    msg = object()
    received = Received(msg, 0.25, False)
    assert (received.msg, received.age_s, received.stale) == (msg, 0.25, False)
    assert received == Received(msg=msg, age_s=0.25, stale=False) and hash(received) == hash(Received(msg, 0.25, False))
    assert received != Received(msg, 0.25, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        received.stale = True  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(Received(1.5, 0.1, True))) == Received(1.5, 0.1, True)
    assert dataclasses.replace(received, stale=True) == Received(msg, 0.25, True)
    with pytest.raises(TypeError):
        Received(msg, 0.25)  # type: ignore[call-arg]
