"""A recorded plant: a flight's plant messages kept from a lockstep run, replayed by a node at their recorded times.

:func:`record_plant` flies a launch plan in lockstep and keeps every message its plant (the node
listed first) publishes on a topic the other nodes read; :func:`recorded_plant` builds a
:class:`RecordedPlant` that stands in for that plant: same name, same topics, publishing each
recorded message once at its recorded time (modulo the recording's length), whatever rate it steps
at. The loop benchmark feeds the control chain with it, so the chain sees a real flight while no
simulator shares its thread.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from aegis.executors.lockstep import NS_PER_S, LockstepExecutor
from aegis.launch_plan import LaunchPlan
from aegis.node import Node, Port, port_topics
from aegis.registry import node_class

Recording = dict[str, tuple[list[int], list[Any]]]
"""Topic -> (publication times in ns, messages), in time order."""


def plant_topics(plan: LaunchPlan) -> list[str]:
    """The topics of the plant's (the first node's) outputs that the other nodes read; ValueError when there are none."""
    plant, chain = plan.nodes[0], plan.nodes[1:]
    read = {topic for node in chain for topics in node.inputs.values() for topic in port_topics(topics)}
    topics = [t for topics in plant.outputs.values() for t in port_topics(topics) if t in read]
    if not chain or not topics:
        raise ValueError(f"the loop benchmark needs a plant listed first whose outputs the other nodes read; {plant.name} is not one")
    return topics


def record_plant(plan: LaunchPlan, duration_s: float, seed: int = 0) -> Recording:
    """Fly ``plan`` in lockstep for ``duration_s`` and keep what its plant publishes that the chain reads."""
    recording: Recording = {topic: ([], []) for topic in plant_topics(plan)}

    def keep(topic: str, msg: Any, t_ns: int) -> None:
        entry = recording.get(topic)
        if entry is not None:
            entry[0].append(t_ns)
            entry[1].append(msg)

    nodes = plan.instantiate()
    try:
        executor = LockstepExecutor(nodes, listeners=[keep])
        executor.reset(seed)
        executor.run(duration_s)
    finally:
        close_nodes(nodes)
    return recording


class RecordedPlant(Node):
    """Publishes a recording's messages at their recorded times, modulo ``length_ns`` (a stand-in for the plant).

    Each recorded message goes out once per lap, at the first step at or after its time in the lap;
    from the second lap on, a copy stamped ``lap * length`` later.

    Build one with :func:`recorded_plant_type`, which declares its output ports.
    """

    type_name = "recorded_plant"

    def __init__(self, name: str, recording: Recording, length_ns: int, rate_hz: float) -> None:
        super().__init__(name, rate_hz=rate_hz)
        self._streams = [(port.name, *recording[port.topic]) for port in self.outputs]
        self._length_ns = length_ns
        self._sent = [-1] * len(self._streams)

    def reset(self, seed: int | None = None) -> None:
        self._sent = [-1] * len(self._streams)

    def step(self, now: float, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        lap, at = divmod(round(now * NS_PER_S), self._length_ns)
        outputs = {}
        for k, (port, times, messages) in enumerate(self._streams):
            index = bisect.bisect_right(times, at) - 1
            sent = lap * len(times) + index  # each recorded message once per lap
            if index >= 0 and sent != self._sent[k]:
                self._sent[k] = sent
                msg = messages[index]
                # a later lap re-stamps: consumers read latency from stamps (the filter predicts over the odometry's age)
                outputs[port] = dataclasses.replace(msg, stamp=msg.stamp + lap * self._length_ns / NS_PER_S) if lap else msg
        return outputs


def recorded_plant_type(ports: Sequence[Port]) -> type[RecordedPlant]:
    """A RecordedPlant class publishing on ``ports``."""
    return type("RecordedPlant", (RecordedPlant,), {"outputs": tuple(ports)})


def recorded_plant(plan: LaunchPlan, recording: Recording, rate_hz: float) -> RecordedPlant:
    """A RecordedPlant standing in for ``plan``'s plant (its name and the ports of its recorded topics), stepping at ``rate_hz``."""
    plant = plan.nodes[0]
    ports = [
        Port(p.name, p.msg_type, plant.outputs[p.name])
        for p in node_class(plant.type_name).outputs
        if not p.many and plant.outputs[p.name] in recording
    ]
    length_ns = max(times[-1] for times, _ in recording.values()) + 1
    return recorded_plant_type(ports)(plant.name, recording, length_ns, rate_hz)


def close_nodes(nodes: Sequence[Node]) -> None:
    """Close every node that has a ``close()`` (a simulator's world)."""
    for node in nodes:
        if hasattr(node, "close"):
            node.close()
