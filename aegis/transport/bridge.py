"""One process group of a launch plan on DDS: publish its outputs that other groups read, feed its inputs that come from outside.

A plan's nodes run in process groups (``process:`` in the hw_config; a node alone by default).
Within a group, an executor delivers messages in memory; between groups, and to and from a ROS 2
graph on the same domain, :class:`DdsBridge` carries them on ROS 2's wire. :func:`boundary_topics`
says which topics cross the group's boundary (a pure function of the plan):

- out: a topic a node of the group publishes and a node of another group reads
  (``outputs="all"``: every topic the group publishes, so ROS 2 tools see them all);
- in: a topic a node of the group reads that no node of the group publishes (another group's,
  or nobody's in the plan: a ROS 2 driver's).

The executor calls :meth:`DdsBridge.publish` for what its nodes publish (the bridge ignores topics
that do not cross) and :meth:`DdsBridge.take` for what arrived, with the readers of each topic
(node, port, index in a many port) in :attr:`BoundaryTopic.readers`. QoS are the ROS 2 adapter's
(reliable publishers, best-effort subscriptions), KEEP_LAST at the deepest port on the topic.

``/diagnostics`` is the one topic no node port publishes: every process's executor publishes each of
its nodes' LoopDiagnostics there (:mod:`aegis.executors.realtime`). :func:`boundary_topics` puts it
out of every group whose reports a node of another group reads (the supervisor watches every
node's heartbeat), and a bridge sends only its own nodes' reports and drops its own coming back
(:func:`is_local_report`), so reports never echo between processes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from aegis.launch_plan import LaunchPlan
from aegis.node import Port, port_topics
from aegis.registry import node_class
from aegis.ros_shell.wiring import publisher_qos, subscription_qos
from aegis.transport.dds import DdsPublisher, DdsSubscription, DdsTransport, wait_for_match

DIAGNOSTICS_TOPIC = "/diagnostics"
"""Where each executor publishes its nodes' LoopDiagnostics (aegis.executors.realtime.DIAGNOSTICS_TOPIC)."""


def diagnostics_type() -> type:
    from aegis.msgs.diagnostics import LoopDiagnostics

    return LoopDiagnostics


def is_local_report(topic: str, msg: Any, local_nodes: frozenset[str]) -> bool | None:
    """For a /diagnostics message: whether it reports a node of this process (None for any other topic)."""
    if topic != DIAGNOSTICS_TOPIC:
        return None
    return getattr(msg, "name", None) in local_nodes


@dataclass(frozen=True)
class BoundaryTopic:
    """A topic crossing a process group's boundary: its direction, message class, queue depth and the ports at this end."""

    topic: str
    direction: Literal["in", "out"]
    msg_type: type
    depth: int
    readers: tuple[tuple[str, str, int | None], ...] = ()
    """For "in": (node, input port, index in a many port or None) of every reader in the group."""
    writer: tuple[str, str] | None = None
    """For "out": (node, output port) of the group's publisher."""


def boundary_topics(plan: LaunchPlan, process: str, outputs: Literal["boundary", "all"] = "boundary") -> tuple[BoundaryTopic, ...]:
    """The topics ``process`` (a group of ``plan``) exchanges with the rest of the plan and the world, outputs first."""
    groups = plan.processes
    if process not in groups:
        raise KeyError(f"process group {process!r} is not in the plan (groups: {', '.join(groups)})")
    published_here: dict[str, tuple[str, str, Port]] = {}
    read_elsewhere: set[str] = set()
    readers_here: dict[str, list[tuple[str, str, int | None, Port]]] = {}
    for launch in plan.nodes:
        cls = node_class(launch.type_name)
        for port in cls.outputs:
            for topic in port_topics(launch.outputs[port.name]):
                if launch.process == process:
                    published_here[topic] = (launch.name, port.name, port)
        for port in cls.inputs:
            topics = port_topics(launch.inputs[port.name])
            for index, topic in enumerate(topics):
                if launch.process == process:
                    readers_here.setdefault(topic, []).append((launch.name, port.name, index if port.many else None, port))
                else:
                    read_elsewhere.add(topic)
    out = []
    for topic, (node, port_name, port) in published_here.items():
        if outputs == "all" or topic in read_elsewhere:
            out.append(BoundaryTopic(topic, "out", port.msg_type, port.depth, writer=(node, port_name)))
    for topic, readers in readers_here.items():
        if topic in published_here:
            continue
        kinds = {port.msg_type for *_, port in readers}
        if len(kinds) > 1:
            names = ", ".join(f"{node}.{name} ({port.msg_type.__name__})" for node, name, _, port in readers)
            raise ValueError(f"topic {topic}: the group {process!r} reads it as different message types: {names}")
        depth = max(port.depth for *_, port in readers)
        out.append(BoundaryTopic(topic, "in", readers[0][3].msg_type, depth, readers=tuple(r[:3] for r in readers)))
    if DIAGNOSTICS_TOPIC in read_elsewhere and DIAGNOSTICS_TOPIC not in published_here and any(n.process == process for n in plan.nodes):
        out.insert(0, BoundaryTopic(DIAGNOSTICS_TOPIC, "out", diagnostics_type(), 64, writer=("executor", "diagnostics")))
    return tuple(out)


class DdsBridge:
    """Carries one process group's boundary topics over DDS (ROS 2's wire) under the plan's namespace and distro.

    ``transport`` None makes one on ``domain_id`` (None: ``ROS_DOMAIN_ID``, else 0) and closes it
    with the bridge.
    """

    def __init__(
        self,
        plan: LaunchPlan,
        process: str,
        transport: DdsTransport | None = None,
        domain_id: int | None = None,
        outputs: Literal["boundary", "all"] = "boundary",
    ) -> None:
        self.process = process
        self.topics = boundary_topics(plan, process, outputs)
        self.local_nodes = frozenset(n.name for n in plan.nodes if n.process == process)
        self._owns_transport = transport is None
        self.transport = transport or DdsTransport(domain_id=domain_id, namespace=plan.namespace, distro=plan.ros_distro)
        try:
            self.publishers: dict[str, DdsPublisher] = {}
            self.subscriptions: dict[str, DdsSubscription] = {}
            for boundary in self.topics:
                port = Port("bridge", boundary.msg_type, boundary.topic, depth=boundary.depth)
                if boundary.direction == "out":
                    self.publishers[boundary.topic] = self.transport.publisher(boundary.topic, boundary.msg_type, publisher_qos(port))
                else:
                    self.subscriptions[boundary.topic] = self.transport.subscription(boundary.topic, boundary.msg_type, subscription_qos(port))
            self._waitset = self._make_waitset()
        except BaseException:
            self.close()
            raise

    def _make_waitset(self) -> Any:
        from cyclonedds.core import WaitSet

        waitset = WaitSet(self.transport.participant)
        for sub in self.subscriptions.values():
            waitset.attach(sub._condition)
        return waitset

    def publish(self, topic: str, msg: Any) -> bool:
        """Publish ``msg`` if ``topic`` leaves the group (True); False for a topic that stays inside."""
        pub = self.publishers.get(topic)
        if pub is None or is_local_report(topic, msg, self.local_nodes) is False:
            return False
        pub.publish(msg)
        return True

    def take(self) -> list[tuple[str, Any]]:
        """(topic, message) of everything that arrived since the last take, oldest first per topic (not this group's own reports)."""
        return [
            (topic, msg) for topic, sub in self.subscriptions.items() for msg in sub.take() if not is_local_report(topic, msg, self.local_nodes)
        ]

    def from_here(self, topic: str, msg: Any) -> bool:
        """Whether ``msg`` on ``topic`` was published in this group (what the group records), not brought in by the bridge."""
        local = is_local_report(topic, msg, self.local_nodes)
        return local if local is not None else topic not in self.subscriptions

    def wait(self, timeout_s: float) -> bool:
        """Block until a message is waiting on any input topic or ``timeout_s`` passes; True if one is (no inputs: sleeps)."""
        if not self.subscriptions:
            time.sleep(max(0.0, timeout_s))
            return False
        return bool(self._waitset.wait(max(0, int(timeout_s * 1e9))))

    def wait_for_peers(self, timeout_s: float = 5.0) -> bool:
        """Whether every boundary topic has a peer (a reader for each output, a writer for each input) within ``timeout_s``."""
        return wait_for_match([*self.publishers.values(), *self.subscriptions.values()], timeout_s=timeout_s)

    def rejected(self) -> dict[str, str]:
        """Input topic -> the last reason a received payload could not be decoded (only topics that had one)."""
        return {topic: sub.last_rejection for topic, sub in self.subscriptions.items() if sub.rejected}

    def close(self) -> None:
        """Delete the bridge's endpoints (and its transport, if it made it)."""
        for endpoint in [*getattr(self, "publishers", {}).values(), *getattr(self, "subscriptions", {}).values()]:
            endpoint.close()
        if self._owns_transport and getattr(self, "transport", None) is not None:
            self.transport.close()

    def __enter__(self) -> DdsBridge:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
