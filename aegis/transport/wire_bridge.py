"""One end of a plan split over a serial line or UDP: the wire-frame counterpart of :class:`~aegis.transport.bridge.DdsBridge`.

A hardware-in-the-loop run cuts the plan in two: the plant's process groups on one end of a link,
the stack's on the other. :func:`wire_topics` says which topics cross the cut (a pure function of
the plan and the groups at this end, so both ends compute the same set), and :class:`WireBridge`
carries them over a :class:`~aegis.transport.links.Link` with the message table both ends derive
from that set (ids in sorted topic order, :class:`~aegis.transport.wire_messages.MessageTable`).

It has DdsBridge's interface (the realtime executor's ``Inbox``: ``take()``, ``wait(timeout_s)``), so
an executor that runs a process group with a DdsBridge runs it with a WireBridge unchanged: :meth:`WireBridge.publish` for what the group's nodes publish (topics
that do not cross are ignored), :meth:`WireBridge.take` for what arrived with the readers of each
topic in :attr:`BoundaryTopic.readers`, :meth:`WireBridge.wait`, :meth:`WireBridge.wait_for_peers`
(a hello exchange that also checks both ends hold the same table), :meth:`WireBridge.rejected`.

Link-control frames (reserved ids): ``HELLO_ID`` carries the sender's table digest (uint32, little-endian).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Collection
from typing import Any

from aegis.launch_plan import LaunchPlan
from aegis.node import port_topics
from aegis.registry import node_class
from aegis.transport.bridge import DIAGNOSTICS_TOPIC, BoundaryTopic, diagnostics_type, is_local_report
from aegis.transport.links import Link
from aegis.transport.wire_messages import MessageTable, PayloadError

HELLO_ID = 0xFF00
"""A link-control frame: 'I am up, and this is my message table's digest' (payload: uint32 LE)."""
_DIGEST = struct.Struct("<I")
HELLO_PERIOD_S = 0.05


class TableMismatch(RuntimeError):
    """The two ends of a link hold different message tables (different plans, or different cuts of one)."""


def wire_topics(plan: LaunchPlan, here: Collection[str]) -> tuple[BoundaryTopic, ...]:
    """The topics crossing between the process groups ``here`` and the rest of ``plan``: "out" published here and read
    there, "in" published there and read here (with the readers here); topics nobody in the plan publishes stay off the link."""
    here = set(here)
    unknown = here - set(plan.processes)
    if unknown:
        raise KeyError(f"process groups {sorted(unknown)} are not in the plan (groups: {', '.join(plan.processes)})")
    publisher: dict[str, tuple[str, str, Any, bool]] = {}
    readers: dict[str, list[tuple[str, str, int | None, Any, bool]]] = {}
    for launch in plan.nodes:
        cls = node_class(launch.type_name)
        for port in cls.outputs:
            for topic in port_topics(launch.outputs[port.name]):
                publisher[topic] = (launch.name, port.name, port, launch.process in here)
        for port in cls.inputs:
            for index, topic in enumerate(port_topics(launch.inputs[port.name])):
                readers.setdefault(topic, []).append((launch.name, port.name, index if port.many else None, port, launch.process in here))
    crossing = []
    for topic in sorted(set(publisher) & set(readers)):
        node, port_name, port, published_here = publisher[topic]
        far = [r for r in readers[topic] if r[4] != published_here]
        if not far:
            continue
        if published_here:
            crossing.append(BoundaryTopic(topic, "out", port.msg_type, port.depth, writer=(node, port_name)))
        else:
            depth = max(r[3].depth for r in far)
            crossing.append(BoundaryTopic(topic, "in", port.msg_type, depth, readers=tuple(r[:3] for r in far)))
    if DIAGNOSTICS_TOPIC not in publisher:  # the executors' reports: each end sends its own nodes' to readers at the other
        ends = {launch.process in here for launch in plan.nodes}
        watchers = readers.get(DIAGNOSTICS_TOPIC, [])
        if any(not r[4] for r in watchers) and True in ends:
            crossing.append(BoundaryTopic(DIAGNOSTICS_TOPIC, "out", diagnostics_type(), 64, writer=("executor", "diagnostics")))
        if any(r[4] for r in watchers) and False in ends:
            mine = tuple(r[:3] for r in watchers if r[4])
            crossing.append(BoundaryTopic(DIAGNOSTICS_TOPIC, "in", diagnostics_type(), max(r[3].depth for r in watchers), readers=mine))
    return tuple(sorted(crossing, key=lambda t: (t.topic, t.direction)))


class WireBridge:
    """Carries the topics crossing between ``here`` (process groups) and the rest of the plan over ``link`` as wire frames.

    ``cdr`` names topics to send as CDR even where their type has a fixed layout (both ends must
    agree: it is part of the table's digest). The bridge closes ``link`` with itself.
    """

    def __init__(self, plan: LaunchPlan, here: Collection[str], link: Link, cdr: Collection[str] = ()) -> None:
        self.here = tuple(sorted(here))
        self.topics = wire_topics(plan, here)
        self.link = link
        self.table = MessageTable.for_topics(((t.topic, t.msg_type) for t in self.topics), cdr=cdr, distro=plan.ros_distro)
        self.digest = self.table.digest()
        self._out = {t.topic for t in self.topics if t.direction == "out"}
        self._in = {t.topic for t in self.topics if t.direction == "in"}
        self.local_nodes = frozenset(n.name for n in plan.nodes if n.process in self.here)
        self._rejections: dict[str, str] = {}
        self.oversize: dict[str, int] = {}
        """Messages per topic too long for one of the link's frames: not sent, and said in :meth:`rejected`."""
        self.peer_seen = False
        self._last_hello = 0.0
        self._waiting: list[Any] = []

    def publish(self, topic: str, msg: Any) -> bool:
        """Send ``msg`` if ``topic`` crosses to the other end (True); False for a topic that stays here, or a message longer
        than the link's frames carry (counted in :attr:`oversize`: a multi-plane lidar's cloud, 20 kB, against 4 kB frames)."""
        if topic not in self._out or is_local_report(topic, msg, self.local_nodes) is False:
            return False
        msg_id, stamp_ns, payload, flags = self.table.encode(topic, msg)
        if len(payload) > self.link.max_payload:  # the far end's decoder would drop it, and on a serial line its bytes
            count = self.oversize[topic] = self.oversize.get(topic, 0) + 1  # would hold up every frame behind it
            self._rejections[topic] = (
                f"{topic}: {count} message(s) of {len(payload):,} bytes not sent: the wire's frames carry at most {self.link.max_payload:,}"
            )
            return False
        self.link.send(msg_id, payload, stamp_ns, flags)
        return True

    def take(self, timeout_s: float = 0.0) -> list[tuple[str, Any]]:
        """(topic, message) of every checked frame that arrived, in arrival order; bad payloads are counted in :meth:`rejected`."""
        out = []
        frames, self._waiting = self._waiting + self.link.poll(timeout_s), []
        for frame in frames:
            if frame.msg_id == HELLO_ID:
                self._hello(frame.payload)
                continue
            try:
                topic, msg = self.table.decode(frame)
            except PayloadError as exc:
                self._rejections[self.table.by_id[frame.msg_id].topic if frame.msg_id in self.table.by_id else f"msg_id {frame.msg_id}"] = str(exc)
                continue
            if topic in self._in and not is_local_report(topic, msg, self.local_nodes):
                out.append((topic, msg))
            else:
                self._rejections[topic] = f"{topic} arrived from the other end, but this end publishes it"
        return out

    def from_here(self, topic: str, msg: Any) -> bool:
        """Whether ``msg`` on ``topic`` was published at this end (what it records), not brought in over the link."""
        local = is_local_report(topic, msg, self.local_nodes)
        return local if local is not None else topic not in self._in

    def wait(self, timeout_s: float) -> bool:
        """Block until a frame arrives or ``timeout_s`` passes; True if one did (kept for :meth:`take`).

        Through the link's poll rather than a bare select: a pty whose other end is gone (its process
        killed) selects as readable at once, and the link waits that out instead of spinning the caller.
        """
        self._waiting += self.link.poll(max(0.0, timeout_s))
        return bool(self._waiting)

    def _hello(self, payload: bytes) -> None:
        if len(payload) != _DIGEST.size:
            self._rejections["hello"] = f"a hello of {len(payload)} bytes (4 expected)"
            return
        (digest,) = _DIGEST.unpack(payload)
        if digest != self.digest:
            raise TableMismatch(
                f"the other end's message table has digest 0x{digest:08x}, this end's 0x{self.digest:08x}: "
                f"both must run the same plan, cut at the same groups (here: {', '.join(self.here)})"
            )
        if not self.peer_seen:
            self.peer_seen = True
            self.say_hello()  # the peer may have started after our last hello

    def say_hello(self) -> None:
        self._last_hello = time.monotonic()
        self.link.send(HELLO_ID, _DIGEST.pack(self.digest), 0)

    def wait_for_peers(self, timeout_s: float = 5.0) -> bool:
        """Exchange hellos until the other end answered with the same table (True) or ``timeout_s`` passed (False).

        Messages that arrive meanwhile are dropped (the run has not started). TableMismatch if the tables differ.
        """
        deadline = time.monotonic() + timeout_s
        self.say_hello()
        while not self.peer_seen and time.monotonic() < deadline:
            self.take(min(HELLO_PERIOD_S, max(0.0, deadline - time.monotonic())))
            if time.monotonic() - self._last_hello >= HELLO_PERIOD_S:
                self.say_hello()
        return self.peer_seen

    def rejected(self) -> dict[str, str]:
        """Topic (or msg id) -> the last reason a checked frame's payload could not be used."""
        return dict(self._rejections)

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> WireBridge:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
