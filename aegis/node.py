"""The node contract: declared ports, a rate or trigger, typed parameters, reset(seed) and step(now, inputs).

A node is plain Python: it never sleeps, never reads the wall clock and never touches a
transport. Executors (lockstep, realtime, the ROS 2 adapter) deliver its inputs and carry its
outputs. Stale or missing inputs reach ``step`` explicitly, and what to do about them is the
node's own decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

M = TypeVar("M")


@dataclass(frozen=True)
class Port:
    """A named input or output of a node.

    ``topic`` is the default topic (a hw_config may remap it); ``depth`` is the queue depth the
    ROS 2 adapter gives the QoS profile; ``max_age_s`` is the staleness bound of an input (None:
    any age is acceptable).
    """

    name: str
    msg_type: type
    topic: str
    depth: int = 1
    max_age_s: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"port name {self.name!r} must be a Python identifier")
        if not self.topic.startswith("/"):
            raise ValueError(f"port {self.name!r}: topic {self.topic!r} must be absolute (start with '/')")
        if self.depth < 1:
            raise ValueError(f"port {self.name!r}: depth must be >= 1, got {self.depth}")
        if self.max_age_s is not None and self.max_age_s <= 0:
            raise ValueError(f"port {self.name!r}: max_age_s must be > 0, got {self.max_age_s}")


@dataclass(frozen=True)
class Received(Generic[M]):
    """The latest message on an input port, with how old it is at ``now`` and whether that is too old."""

    msg: M
    age_s: float
    stale: bool


class NodeParams(BaseModel):
    """Base of every node's typed parameters: unknown keys are refused, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class Node:
    """Base of every node: declare ports and parameters as class attributes, implement reset and step.

    Subclasses set ``type_name`` (the registry key and executable name), ``inputs``, ``outputs``,
    ``Params`` (a NodeParams subclass) and ``default_rate_hz``; or set ``trigger`` to an input
    port name to run whenever that input receives a message instead of on a timer.
    """

    type_name: ClassVar[str]
    inputs: ClassVar[tuple[Port, ...]] = ()
    outputs: ClassVar[tuple[Port, ...]] = ()
    Params: ClassVar[type[NodeParams]] = NodeParams
    default_rate_hz: ClassVar[float | None] = None
    trigger: ClassVar[str | None] = None
    bypass: ClassVar[tuple[str, str] | None] = None
    """(input port, output port) of a node that can be left out with its input wired through (a safety filter)."""

    def __init__(
        self,
        name: str,
        params: NodeParams | None = None,
        rate_hz: float | None = None,
        topics: Mapping[str, str] | None = None,
    ) -> None:
        if params is None:
            params = self.Params()
        if not isinstance(params, self.Params):
            raise TypeError(f"node {name!r}: params must be {self.Params.__name__}, got {type(params).__name__}")
        self.name = name
        self.params = params
        self.rate_hz = rate_hz if rate_hz is not None else self.default_rate_hz
        if self.trigger is None and (self.rate_hz is None or self.rate_hz <= 0):
            raise ValueError(f"node {name!r} ({self.type_name}): needs a rate_hz > 0 or a trigger")
        if self.trigger is not None and self.trigger not in {p.name for p in self.inputs}:
            raise ValueError(f"node {name!r}: trigger {self.trigger!r} is not one of its inputs")
        self.topics = resolve_topics(type(self), topics or {})

    def reset(self, seed: int | None = None) -> None:
        """Return to the initial state; ``seed`` seeds any randomness the node has."""

    def step(self, now: float, inputs: Mapping[str, Received[Any] | None]) -> Mapping[str, Any]:
        """Compute outputs at time ``now`` (seconds) from the latest inputs (None: never received).

        Returns a mapping from output port name to message; a port left out publishes nothing
        this step.
        """
        raise NotImplementedError

    @classmethod
    def input_port(cls, name: str) -> Port:
        return _port_named(cls.inputs, name, f"{cls.type_name} input")

    @classmethod
    def output_port(cls, name: str) -> Port:
        return _port_named(cls.outputs, name, f"{cls.type_name} output")


def resolve_topics(node_type: type[Node], remap: Mapping[str, str]) -> dict[str, str]:
    """Map each port name of ``node_type`` to its topic, applying ``remap`` (port name -> topic)."""
    ports = (*node_type.inputs, *node_type.outputs)
    names = {p.name for p in ports}
    for port_name, topic in remap.items():
        if port_name not in names:
            raise KeyError(
                f"{node_type.type_name} has no port {port_name!r} to remap (ports: {', '.join(sorted(names))})"
            )
        if not topic.startswith("/"):
            raise ValueError(f"{node_type.type_name}.{port_name}: topic {topic!r} must be absolute (start with '/')")
    return {p.name: remap.get(p.name, p.topic) for p in ports}


def _port_named(ports: tuple[Port, ...], name: str, what: str) -> Port:
    for port in ports:
        if port.name == name:
            return port
    raise KeyError(f"{what} {name!r} does not exist (have: {', '.join(p.name for p in ports) or 'none'})")
