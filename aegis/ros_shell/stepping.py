"""Runs one node for a transport: converts and latches its inputs, steps it, converts its outputs, contains its failures.

A failing step (an exception in ``step``, an undeclared output, a message of the wrong type, a
conversion error) publishes nothing that tick: every output is converted before any is handed
back. It is logged with the node's name, counted, and the node keeps running, so its consumers
see its outputs go stale and fall back as they are designed to. A message that cannot be
converted on arrival is dropped (the previous one stays latched and ages) and counted too.

A node that ends the run (:class:`~aegis.node.EndRun`: a simulator whose robot crashed) is not a
failure: the outputs it carries are published, the end is logged once with its reason and kept in
``ended``, and the node keeps being stepped (under ROS there is no run to stop: a crashed simulated
robot stays crashed, and whoever watches the graph decides).

A ``many`` port has one latch per topic (``receive`` takes the topic's index in the list) and
reaches ``step`` as a tuple; a ``queued`` port keeps every message since the last step (QueueLatch); a ``many`` output comes back as a tuple with one ROS message (or None:
publish nothing there) per topic.

TODO(diagnostics): publish ``steps``, ``step_errors`` and ``receive_errors`` of every runner on
/diagnostics (diagnostic_msgs/DiagnosticArray, aegis.msgs.LoopDiagnostics) once the supervisor
defines the report; today they are counters read by the adapter and the tests.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from aegis.msgs.ros_types import TypeLookup
from aegis.node import EndRun, Node, Port
from aegis.ros_shell.timing import InputLatch, QueueLatch, ns_to_seconds

LOG_EVERY = 100
"""A failure repeating the previous one is logged once every this many occurrences."""


class NodeRunner:
    """Holds one node's latched inputs and steps it; ``log_error`` receives one text per reported failure."""

    def __init__(self, node: Node, types: TypeLookup, log_error: Callable[[str], None]) -> None:
        self.node = node
        self._types = types
        self._log_error = log_error
        self._latches: dict[str, InputLatch | QueueLatch | tuple[InputLatch, ...]] = {
            port.name: tuple(InputLatch(port, max_age) for _ in node.topics[port.name]) if port.many
            else QueueLatch(port, max_age) if port.queued
            else InputLatch(port, max_age)
            for port in node.inputs
            for max_age in (node.max_ages[port.name],)
        }
        self._outputs = {port.name: port for port in node.outputs}
        self.steps = 0
        self.step_errors = 0
        self.receive_errors = 0
        self.ended: str | None = None
        """Why the node ended the run (the reason of its first EndRun), None while it has not."""
        self._last_failure: str | None = None
        self._repeats = 0

    def receive(self, port_name: str, ros_msg: Any, received_ns: int, index: int | None = None) -> bool:
        """Convert and latch a ROS message arriving on an input port (topic ``index`` of a many port); False if dropped."""
        latches = self._latches[port_name]
        latch = latches if index is None else latches[index]
        try:
            msg = latch.port.msg_type.from_ros(ros_msg)
        except Exception as exc:  # noqa: BLE001 - a bad message must not kill the node
            self.receive_errors += 1
            topic = self.node.topics[port_name] if index is None else self.node.topics[port_name][index]
            self._report(f"input {port_name!r} ({topic}): dropped a message", exc, received_ns)
            return False
        latch.put(msg, received_ns)
        return True

    def tick(self, now_ns: int) -> dict[str, Any] | None:
        """Step the node at ``now_ns``; its outputs as ROS messages by port name, or None if the step failed."""
        inputs = {
            name: tuple(one.get(now_ns) for one in latch) if isinstance(latch, tuple) else latch.get(now_ns)
            for name, latch in self._latches.items()
        }
        try:
            try:
                outputs = self.node.step(ns_to_seconds(now_ns), inputs)
            except EndRun as end:
                outputs = end.outputs
                if self.ended is None:
                    self.ended = end.reason
                    self._log_error(f"{self.node.name} ({self.node.type_name}): ended the run at t={ns_to_seconds(now_ns):.9f} s: {end.reason}")
            ros_outputs = {name: self._to_ros(name, msg) for name, msg in outputs.items()}
        except Exception as exc:  # noqa: BLE001 - a failing step publishes nothing, the node keeps running
            self.step_errors += 1
            self._report("step failed, published nothing", exc, now_ns)
            return None
        self.steps += 1
        return ros_outputs

    def _to_ros(self, port_name: str, msg: Any) -> Any:
        port = self._outputs.get(port_name)
        if port is None:
            declared = ", ".join(self._outputs) or "none"
            raise KeyError(f"returned output {port_name!r}, which it does not declare (outputs: {declared})")
        if not port.many:
            return self._one_to_ros(port, msg)
        topics = self.node.topics[port_name]
        if isinstance(msg, (str, bytes)) or not hasattr(msg, "__len__") or len(msg) != len(topics):
            raise ValueError(f"output {port_name!r} must be a sequence of {len(topics)} messages (or None), one per topic")
        return tuple(None if one is None else self._one_to_ros(port, one) for one in msg)

    def _one_to_ros(self, port: Port, msg: Any) -> Any:
        if not isinstance(msg, port.msg_type):
            raise TypeError(f"output {port.name!r} must be a {port.msg_type.__name__}, got {type(msg).__name__}")
        return msg.to_ros(self._types)

    def _report(self, what: str, exc: Exception, t_ns: int) -> None:
        failure = f"{type(exc).__name__}: {exc}"
        self._repeats = self._repeats + 1 if failure == self._last_failure else 1
        first = failure != self._last_failure
        self._last_failure = failure
        if not first and self._repeats % LOG_EVERY != 0:
            return
        count = self.step_errors + self.receive_errors
        text = (
            f"{self.node.name} ({self.node.type_name}): {what} at t={ns_to_seconds(t_ns):.9f} s: {failure}"
            f" [{count} failure(s) so far{'' if first else f', this one {self._repeats} times in a row'}]"
        )
        if first:
            text += "\n" + "".join(traceback.format_exception(exc)).rstrip()
        self._log_error(text)
