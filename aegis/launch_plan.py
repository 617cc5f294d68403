"""The launch plan: a pure function from a hw_config to the node instances, topics and processes to start.

`ros2 launch aegis robot.launch.py`, `aegis run` and `aegis sim` all execute this plan, so what
the tests check is what the robot runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aegis.config import HwConfig, validated_node_params

from aegis.config_files import ConfigError
from aegis.node import Node, Topics, port_topics, resolve_topics
from aegis.registry import node_class


@dataclass(frozen=True)
class NodeLaunch:
    """One node instance: its type, executable, rate or trigger, parameters and resolved topics (a tuple for a many port)."""

    name: str
    type_name: str
    executable: str
    rate_hz: float | None
    trigger: str | None
    params: dict[str, Any]
    inputs: dict[str, Topics]
    outputs: dict[str, Topics]
    msg_types: dict[str, str]
    process: str

    def instantiate(self) -> Node:
        cls = node_class(self.type_name)
        return cls(self.name, cls.Params.model_validate(self.params), rate_hz=self.rate_hz, topics={**self.inputs, **self.outputs})


@dataclass(frozen=True)
class LaunchPlan:
    robot: str
    target: str
    executor: str
    ros_distro: str
    namespace: str
    use_sim_time: bool
    nodes: tuple[NodeLaunch, ...]
    warnings: tuple[str, ...]
    scenario: Path | None = None
    external_topics: tuple[str, ...] = ()
    """Topics published outside the plan (a robot's driver: the hw_config's ``ros.external_topics``)."""

    @property
    def processes(self) -> dict[str, tuple[NodeLaunch, ...]]:
        """Process group name -> its nodes, in plan order."""
        groups: dict[str, list[NodeLaunch]] = {}
        for node in self.nodes:
            groups.setdefault(node.process, []).append(node)
        return {name: tuple(nodes) for name, nodes in groups.items()}

    def instantiate(self) -> list[Node]:
        """Build fresh node objects in plan order (the order in which lockstep runs them each instant)."""
        return [node.instantiate() for node in self.nodes]


def make_plan(config: HwConfig) -> LaunchPlan:
    """Resolve every node of a validated config; refuses topic wiring that cannot work."""
    launches = []
    unread: dict[str, tuple[str, ...]] = {}  # node name -> input ports its parameters declare absent
    for name, entry in config.nodes.items():
        if not entry.enabled:
            continue
        cls = node_class(entry.type)
        params = validated_node_params(entry)
        topics = resolve_topics(cls, entry.topics)
        unread[name] = cls.unread_inputs(params)
        launches.append(
            NodeLaunch(
                name=name,
                type_name=entry.type,
                executable=entry.type,
                rate_hz=None if cls.trigger else (entry.rate_hz or cls.default_rate_hz),
                trigger=cls.trigger,
                params=params.model_dump(mode="json"),
                inputs={p.name: topics[p.name] for p in cls.inputs},
                outputs={p.name: topics[p.name] for p in cls.outputs},
                msg_types={p.name: p.msg_type.__name__ for p in (*cls.inputs, *cls.outputs)},
                process=entry.process or name,
            )
        )
    warnings = _check_wiring(launches, config, unread)
    return LaunchPlan(
        robot=config.robot.name,
        target=config.target,
        executor=config.realtime.executor,
        ros_distro=config.ros.distro,
        namespace=config.ros.namespace,
        use_sim_time=config.ros.use_sim_time,
        nodes=tuple(launches),
        warnings=tuple(warnings),
        scenario=config.scenario,
        external_topics=tuple(config.ros.external_topics),
    )


def _check_wiring(launches: list[NodeLaunch], config: HwConfig, unread: dict[str, tuple[str, ...]]) -> list[str]:
    """One publisher per topic, one message type per topic, no node on a referee's topic, the filters in the command path;
    an input nobody publishes is a warning, unless the hw_config lists its topic in ``ros.external_topics`` (a robot's
    driver publishes it), which no node may then publish and some node must read.

    A many port counts as one port per topic of its list. An input a node's parameters declare
    absent (``unread``, aegis.node.Node.unread_inputs) must have no publisher: the node would
    ignore it. Safety filters: see :func:`_gate_wiring_errors`.
    """
    publishers: dict[str, tuple[str, str]] = {}
    errors = []
    for node in launches:
        for port, topics in node.outputs.items():
            for topic in port_topics(topics):
                if topic in publishers:
                    errors.append(f"topic {topic}: published by both {publishers[topic][0]} and {node.name}.{port}")
                publishers[topic] = (f"{node.name}.{port}", node.msg_types[port])
    external_topics = set(config.ros.external_topics)
    for topic in sorted(external_topics & publishers.keys()):
        errors.append(f"topic {topic}: listed in ros.external_topics (published outside the plan), but {publishers[topic][0]} publishes it")
    read = {topic for node in launches for topics in node.inputs.values() for topic in port_topics(topics)}
    for topic in sorted(external_topics - read):
        errors.append(f"topic {topic}: listed in ros.external_topics, but no node reads it")
    warnings = []
    for node in launches:
        external = {p.name for p in node_class(node.type_name).inputs if p.external}
        for port, topic in ((port, topic) for port, topics in node.inputs.items() for topic in port_topics(topics)):
            if port in unread.get(node.name, ()):
                if topic in publishers:
                    errors.append(
                        f"{node.name}.{port}: its parameters declare it absent, but {publishers[topic][0]} publishes {topic}, "
                        f"which it would ignore: change the parameters or the wiring"
                    )
            elif topic not in publishers:
                if port not in external and topic not in external_topics:
                    warnings.append(f"{node.name}.{port} subscribes to {topic}, which no node in this config publishes")
            elif publishers[topic][1] != node.msg_types[port]:
                who, msg_type = publishers[topic]
                errors.append(f"topic {topic}: {who} publishes {msg_type} but {node.name}.{port} expects {node.msg_types[port]}")
    referee = {
        topic: f"{node.name}.{port}"
        for node in launches
        for port in node_class(node.type_name).referee_outputs
        for topic in port_topics(node.outputs.get(port, ()))
    }
    for node in launches:
        for port, topic in ((port, topic) for port, topics in node.inputs.items() for topic in port_topics(topics)):
            if topic in referee:
                errors.append(
                    f"{node.name}.{port} reads {topic}, {referee[topic]}'s ground truth: that is the referee's (evaluation "
                    "measures from it), no node acts on it; read the sensors' topics"
                )
    errors += _gate_wiring_errors(launches)
    if errors:
        source = config.source or "<config>"
        raise ConfigError("\n".join(f"{source}: nodes: {e}" for e in errors))
    return warnings


def _gate_wiring_errors(launches: list[NodeLaunch]) -> list[str]:
    """Why the plan goes around a safety filter or the supervisor (empty: it does not).

    A safety filter declares ``bypass = (input, output)`` (nominal in, filtered command out; ``aegis
    sim|eval --no-filter`` leaves it out); the supervisor declares ``gate = (input, output)`` (the
    filtered command in, the actuators' command out; never left out). For each, three ways the
    command path can miss it:

    - it reads its own output (an input wired to the output's topic);
    - another node reads its input's topic with the output's message type: an actuator-side node fed
      the command around it;
    - nothing reads its output: whatever the actuator side reads, it is not what this node passed.

    One line per node, the first that applies. (Another publisher on the output's topic is the
    one-publisher-per-topic error.)
    """
    readers: dict[str, list[str]] = {}
    for node in launches:
        for port, topics in node.inputs.items():
            for topic in port_topics(topics):
                readers.setdefault(topic, []).append(f"{node.name}.{port}")
    errors = []
    for node in launches:
        cls = node_class(node.type_name)
        for ports, what, taken, hint in (
            (cls.bypass, "filter", "the unfiltered command {} filters", ", or run with --no-filter"),
            (cls.gate, "supervisor", "the command {} gates", ""),
        ):
            if ports is not None:
                errors += _around(node, launches, readers, ports, what, taken, hint)
    return errors


def _around(
    node: NodeLaunch, launches: list[NodeLaunch], readers: dict[str, list[str]], ports: tuple[str, str], what: str, taken: str, hint: str
) -> list[str]:
    """The first of the three ways (see :func:`_gate_wiring_errors`) the command path misses ``node``, as one line, or none."""
    input_port, output_port = ports
    nominal, command = node.inputs[input_port], node.outputs[output_port]
    passed = "the filtered command" if what == "filter" else "the gated command"
    around = [
        f"{other.name}.{port}"
        for other in launches
        if other is not node
        for port, topics in other.inputs.items()
        if nominal in port_topics(topics) and other.msg_types[port] == node.msg_types[output_port]
    ]
    own = [f"{node.name}.{port}" for port, topics in node.inputs.items() if command in port_topics(topics)]
    if own:
        return [f"{', '.join(own)} reads {command}, {passed} {node.name}.{output_port} publishes: the {what} reads its own output"]
    if around:
        unread = "" if readers.get(command) else f", and no node reads {command}"
        return [
            f"{', '.join(around)} reads {nominal}, {taken.format(f'{node.name}.{input_port}')}{unread}: the "
            f"command goes around the {what} (read {node.name}.{output_port}'s {command}{hint})"
        ]
    if not readers.get(command):
        return [
            f"{node.name}.{output_port} publishes {passed} on {command}, which no node reads: the actuators "
            f"do not get it (wire their command input to {command}{hint})"
        ]
    return []


def bypass_overrides(config: HwConfig) -> list[str]:
    """Overrides that leave out every bypassable node (the safety filters) and wire their input through.

    For a node whose class declares ``bypass = (input, output)``, every other node reading the
    output's topic is remapped to the input's topic (in a many port, that entry of its list), and
    the node is disabled: ``aegis sim --no-filter`` is the same graph with the nominal command going
    straight to the actuators. Remaps come first, in config order, then the disabled nodes.
    """
    through: dict[str, str] = {}  # a bypassed node's output topic -> its input topic
    disabled: list[str] = []
    for name, entry in config.nodes.items():
        cls = node_class(entry.type)
        if entry.enabled and cls.bypass is not None:
            input_port, output_port = cls.bypass
            topics = resolve_topics(cls, entry.topics)
            through[topics[output_port]] = topics[input_port]
            disabled.append(name)

    def wired_through(topic: str) -> str:
        seen = {topic}
        while topic in through and through[topic] not in seen:  # a filter feeding a filter: to the first one's input
            topic = through[topic]
            seen.add(topic)
        return topic

    overrides: list[str] = []
    for name, entry in config.nodes.items():
        if name in disabled or not entry.enabled:
            continue
        cls = node_class(entry.type)
        topics = resolve_topics(cls, entry.topics)
        for port in cls.inputs:
            topic = topics[port.name]
            if port.many:
                rewired = [wired_through(t) for t in topic]
                if rewired != list(topic):
                    overrides.append(f"nodes.{name}.topics.{port.name}={json.dumps(rewired)}")
            elif wired_through(topic) != topic:
                overrides.append(f"nodes.{name}.topics.{port.name}={wired_through(topic)}")
    return overrides + [f"nodes.{name}.enabled=false" for name in disabled]
