"""The node contract: declared ports, a rate or trigger, typed parameters, reset(seed) and step(now, inputs).

A node is plain Python: it never sleeps, never reads the wall clock and never touches a
transport. Executors (lockstep, realtime, the ROS 2 adapter) deliver its inputs and carry its
outputs. Stale or missing inputs reach ``step`` explicitly, and what to do about them is the
node's own decision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

M = TypeVar("M")
NS_PER_S = 1_000_000_000


Topics = str | tuple[str, ...]
"""What a port is wired to: one topic, or for a ``many`` port a tuple of topics (possibly empty)."""


@dataclass(frozen=True)
class Port:
    """A named input or output of a node.

    ``topic`` is the default topic (a hw_config may remap it); ``depth`` is the queue depth the
    ROS 2 adapter gives the QoS profile; ``max_age_s`` is the staleness bound of an input (None:
    any age is acceptable).

    A ``many`` port is wired to a list of topics of one message type (its ``topic`` is the default
    tuple, usually empty: nothing wired unless a hw_config lists topics). An input reaches ``step``
    as a tuple with one ``Received`` (or None) per topic, in list order; an output is returned as a
    sequence with one message (or None: nothing published there this step) per topic. ``one_per``
    names a parameter (a sequence) that the topic list must match in length, one topic per entry
    (a simulator's robots). An ``external`` input is one a deployment feeds from outside its plan
    (a person's e-stop, a remote): the launch plan does not warn that no node publishes it.

    A ``queued`` input delivers every message since the node's last step instead of the latest
    one: a tuple of ``Received``, oldest first, at most ``depth`` of them (ROS's KEEP_LAST queue),
    empty when none came. It is for a topic several publishers share, one message each, such as
    /diagnostics (every node's LoopDiagnostics), where the latest message alone would hide the rest.
    """

    name: str
    msg_type: type
    topic: Topics
    depth: int = 1
    max_age_s: float | None = None
    description: str = ""
    many: bool = False
    one_per: str | None = None
    external: bool = False
    queued: bool = False

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"port name {self.name!r} must be a Python identifier")
        if self.many:
            if not isinstance(self.topic, (tuple, list)):
                raise ValueError(f"port {self.name!r}: a many port's topic is a tuple of topics, got {self.topic!r}")
            object.__setattr__(self, "topic", tuple(self.topic))
            for topic in self.topic:
                if not isinstance(topic, str) or not topic.startswith("/"):
                    raise ValueError(f"port {self.name!r}: topic {topic!r} must be absolute (start with '/')")
        else:
            if not isinstance(self.topic, str) or not self.topic.startswith("/"):
                raise ValueError(f"port {self.name!r}: topic {self.topic!r} must be absolute (start with '/')")
            if self.one_per is not None:
                raise ValueError(f"port {self.name!r}: one_per is for many ports")
        if self.queued and self.many:
            raise ValueError(f"port {self.name!r}: a queued port has one topic, not many")
        if self.depth < 1:
            raise ValueError(f"port {self.name!r}: depth must be >= 1, got {self.depth}")
        if self.max_age_s is not None and self.max_age_s <= 0:
            raise ValueError(f"port {self.name!r}: max_age_s must be > 0, got {self.max_age_s}")


def port_topics(topics: Topics) -> tuple[str, ...]:
    """The topics of one port as a tuple (one for a single port, the list of a many port)."""
    return (topics,) if isinstance(topics, str) else tuple(topics)


@dataclass(frozen=True, slots=True, init=False)
class Received(Generic[M]):
    """The latest message on an input port, with how old it is at ``now`` and whether that is too old.

    Slotted: the executors build several per tick (a third cheaper than with a ``__dict__``). Frozen, with its own
    ``__init__``: the one a frozen dataclass gets sets each field through ``object.__setattr__`` (about 1 µs a
    Received under load); this one writes the slots through their descriptors (about half that), same fields."""

    msg: M
    age_s: float
    stale: bool

    def __init__(self, msg: M, age_s: float, stale: bool) -> None:
        _SET_MSG(self, msg)
        _SET_AGE(self, age_s)
        _SET_STALE(self, stale)


_SET_MSG, _SET_AGE, _SET_STALE = Received.msg.__set__, Received.age_s.__set__, Received.stale.__set__  # type: ignore[attr-defined]
"""The slots' own setters (member descriptors), which a frozen class's __setattr__ does not intercept."""


def input_age_ns(msg: Any, arrived_ns: int, now_ns: int) -> int | None:
    """How old an input is at ``now_ns`` (ns): counted from the message's stamp where it has one, else from its arrival.

    Every executor delivers inputs through this one rule (aegis.executors.graph, aegis.ros_shell.timing).
    A message's age is the larger of ``now - arrival`` and ``now - stamp``: a message that spent
    100 ms on a link arrives 100 ms old, not fresh (a stamp is when the message was made, on the
    same clock: simulated time under lockstep and ROS 2's use_sim_time, the run's monotonic time
    under the realtime executor and ``aegis hil``, ROS time across a ROS 2 graph). Where stamp and
    arrival are the same instant (every in-process message under lockstep without sensing
    latency) the age is what it always was. A message without a ``stamp`` attribute, or with a
    stamp that is not a number, counts from its arrival.

    None: the stamp is bad input (not finite, or later than ``now``: a clock from the future or a
    forged stamp); the executor flags the input stale and counts it (``NodeGraph.bad_stamps``, the ROS 2
    shell's ``InputLatch.bad_stamps``).
    """
    age_ns = now_ns - arrived_ns
    stamp = getattr(msg, "stamp", None)
    if stamp.__class__ is not float and (stamp is None or stamp.__class__ is bool or not isinstance(stamp, (int, float))):
        return age_ns  # the float test first: every aegis message's stamp is one, and this runs per input per step
    if not math.isfinite(stamp):
        return None
    stamp_age_ns = now_ns - round(stamp * NS_PER_S)
    if stamp_age_ns < 0:
        return None
    return stamp_age_ns if stamp_age_ns > age_ns else age_ns


def received_at(msg: M, arrived_ns: int, now_ns: int, max_age_s: float | None) -> tuple[Received[M], bool]:
    """``msg`` (arrived at ``arrived_ns``) as a node sees it at ``now_ns``, and whether its stamp was bad (:func:`input_age_ns`).

    Stale past ``max_age_s``; a bad stamp makes it stale whatever the bound (its age is then the
    arrival's), so a node treats it as it treats any stale input.
    """
    age_ns = input_age_ns(msg, arrived_ns, now_ns)
    if age_ns is None:
        return Received(msg, (now_ns - arrived_ns) / NS_PER_S, True), True
    age_s = age_ns / NS_PER_S
    return Received(msg, age_s, max_age_s is not None and age_s > max_age_s), False


class EndRun(Exception):
    """Raised by a node's ``step`` to end the run there (a simulator whose robot crashed): the referee's whistle.

    ``outputs`` are the step's outputs, published before the run stops (the state the run ended
    in, for instance); ``reason`` says why, in words. An executor that runs nodes on a clock ends
    the run at that instant and reports who ended it and why (lockstep: ``RunStats.ended_by``,
    ``end_reason``); the node's counters say the rest.
    """

    def __init__(self, reason: str, outputs: Mapping[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.outputs: Mapping[str, Any] = outputs or {}


class NodeParams(BaseModel):
    """Base of every node's typed parameters: unknown keys are refused, values are validated, every number is finite.

    inf and NaN are refused in every float field, nested ones included (a gain, a limit, a vector's
    entry): a node's parameter that means "no limit" says so with None, never with inf.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


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
    gate: ClassVar[tuple[str, str] | None] = None
    """(input port, output port) of the node every command to the actuators must pass (the supervisor; never left out)."""
    referee_outputs: ClassVar[tuple[str, ...]] = ()
    """Output ports only evaluation may read (a simulator's ground truth): the launch plan refuses a node that reads one."""

    def __init__(
        self,
        name: str,
        params: NodeParams | None = None,
        rate_hz: float | None = None,
        topics: Mapping[str, Topics] | None = None,
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
        self.max_ages: dict[str, float | None] = {port.name: self.input_max_age(port) for port in self.inputs}
        """Input port name -> the staleness bound the executors apply to it for this instance (s; None: any age)."""
        for port in (*self.inputs, *self.outputs):
            problem = topic_count_problem(port, self.topics[port.name], params)
            if problem:
                raise ValueError(f"node {name!r} ({self.type_name}): port {port.name!r} {problem}")

    def input_max_age(self, port: Port) -> float | None:
        """The staleness bound of input ``port`` for this instance: the port's own unless the node's parameters tighten it.

        Called once, in ``__init__`` (``self.params`` is set); the result is ``self.max_ages``, which
        every executor reads. A safety filter bounds its inputs by the hw_config's
        ``safety.stale_input_timeout_s`` this way.
        """
        return port.max_age_s

    @classmethod
    def unread_inputs(cls, params: NodeParams) -> tuple[str, ...]:
        """Input ports that ``params`` declare absent (a safety filter with ``obstacle_source: none``): the node does not
        read them, so the launch plan refuses a node publishing their topics instead of letting it be ignored."""
        return ()

    def reset(self, seed: int | None = None) -> None:
        """Return to the initial state; ``seed`` seeds any randomness the node has."""

    def step(self, now: float, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        """Compute outputs at time ``now`` (seconds) from the latest inputs (None: never received).

        Each input is a ``Received`` or None; a ``many`` input is a tuple of them, one per topic; a
        ``queued`` input a tuple of the messages since the last step (possibly empty).
        Returns a mapping from output port name to message (for a ``many`` output, a sequence of
        messages or None, one per topic); a port left out publishes nothing this step. Raising
        :class:`EndRun` (with this step's outputs) ends the run at ``now``.
        """
        raise NotImplementedError

    @classmethod
    def input_port(cls, name: str) -> Port:
        return _port_named(cls.inputs, name, f"{cls.type_name} input")

    @classmethod
    def output_port(cls, name: str) -> Port:
        return _port_named(cls.outputs, name, f"{cls.type_name} output")


def resolve_topics(node_type: type[Node], remap: Mapping[str, Any]) -> dict[str, Topics]:
    """Map each port name of ``node_type`` to its topic (a tuple for a many port), applying ``remap`` (port name -> topic(s))."""
    ports = {p.name: p for p in (*node_type.inputs, *node_type.outputs)}
    resolved: dict[str, Topics] = {}
    for port_name, topic in remap.items():
        port = ports.get(port_name)
        if port is None:
            raise KeyError(
                f"{node_type.type_name} has no port {port_name!r} to remap (ports: {', '.join(sorted(ports))})"
            )
        problem = topic_problem(port, topic)
        if problem:
            raise ValueError(f"{node_type.type_name}.{port_name}: {problem}")
        resolved[port_name] = tuple(topic) if port.many else topic
    return {name: resolved.get(name, port.topic) for name, port in ports.items()}


def topic_problem(port: Port, topic: Any) -> str | None:
    """Why ``topic`` cannot be what ``port`` is wired to (None: it can): one absolute topic, or a list of distinct ones."""
    if not port.many:
        if isinstance(topic, (list, tuple)):
            return f"takes one topic, not a list ({port.name} is not a many port)"
        if not isinstance(topic, str) or not topic.startswith("/"):
            return f"topic {topic!r} must be absolute (start with '/')"
        return None
    if not isinstance(topic, (list, tuple)):
        return f"takes a list of topics (a many port), got {topic!r}"
    for index, item in enumerate(topic):
        if not isinstance(item, str) or not item.startswith("/"):
            return f"entry {index}: topic {item!r} must be absolute (start with '/')"
        if item in topic[:index]:
            return f"entry {index}: topic {item} is listed twice"
    return None


def topic_count_problem(port: Port, topics: Topics, params: Any) -> str | None:
    """Why a ``one_per`` port's topic list does not match its parameter's length (None: it does, or no such rule)."""
    if port.one_per is None:
        return None
    entries = getattr(params, port.one_per, None)
    if entries is None:
        return f"takes one topic per entry of {port.one_per}, but the parameters have no {port.one_per}"
    if len(topics) != len(entries):
        listed = ", ".join(map(str, entries))
        return f"needs {len(entries)} topics, one per entry of {port.one_per} ({listed}), got {len(topics)}"
    return None


def _port_named(ports: tuple[Port, ...], name: str, what: str) -> Port:
    for port in ports:
        if port.name == name:
            return port
    raise KeyError(f"{what} {name!r} does not exist (have: {', '.join(p.name for p in ports) or 'none'})")
