"""The launch plan: a pure function from a hw_config to the node instances, topics and processes to start.

`ros2 launch aegis robot.launch.py`, `aegis run` and `aegis sim` all execute this plan, so what
the tests check is what the robot runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aegis.config import ConfigError, HwConfig, validated_node_params
from aegis.node import Node, resolve_topics
from aegis.registry import node_class


@dataclass(frozen=True)
class NodeLaunch:
    """One node instance: its type, executable, rate or trigger, parameters and resolved topics."""

    name: str
    type_name: str
    executable: str
    rate_hz: float | None
    trigger: str | None
    params: dict[str, Any]
    inputs: dict[str, str]
    outputs: dict[str, str]
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
    for name, entry in config.nodes.items():
        if not entry.enabled:
            continue
        cls = node_class(entry.type)
        params = validated_node_params(entry)
        topics = resolve_topics(cls, entry.topics)
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
    warnings = _check_wiring(launches, config)
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
    )


def _check_wiring(launches: list[NodeLaunch], config: HwConfig) -> list[str]:
    """One publisher per topic, one message type per topic; an input nobody publishes is a warning."""
    publishers: dict[str, tuple[str, str]] = {}
    errors = []
    for node in launches:
        for port, topic in node.outputs.items():
            if topic in publishers:
                errors.append(f"topic {topic}: published by both {publishers[topic][0]} and {node.name}.{port}")
            publishers[topic] = (f"{node.name}.{port}", node.msg_types[port])
    warnings = []
    for node in launches:
        for port, topic in node.inputs.items():
            if topic not in publishers:
                warnings.append(f"{node.name}.{port} subscribes to {topic}, which no node in this config publishes")
            elif publishers[topic][1] != node.msg_types[port]:
                who, msg_type = publishers[topic]
                errors.append(f"topic {topic}: {who} publishes {msg_type} but {node.name}.{port} expects {node.msg_types[port]}")
    if errors:
        source = config.source or "<config>"
        raise ConfigError("\n".join(f"{source}: nodes: {e}" for e in errors))
    return warnings


def bypass_overrides(config: HwConfig) -> list[str]:
    """Overrides that leave out every bypassable node (the safety filters) and wire their input through.

    For a node whose class declares ``bypass = (input, output)``, every other node reading the
    output's topic is remapped to the input's topic, and the node is disabled: ``aegis sim
    --no-filter`` is the same graph with the nominal command going straight to the actuators.
    """
    overrides: list[str] = []
    for name, entry in config.nodes.items():
        cls = node_class(entry.type)
        if not entry.enabled or cls.bypass is None:
            continue
        input_port, output_port = cls.bypass
        topics = resolve_topics(cls, entry.topics)
        for other_name, other in config.nodes.items():
            if other_name == name or not other.enabled:
                continue
            other_cls = node_class(other.type)
            for port, topic in resolve_topics(other_cls, other.topics).items():
                if topic == topics[output_port] and port in {p.name for p in other_cls.inputs}:
                    overrides.append(f"nodes.{other_name}.topics.{port}={topics[input_port]}")
        overrides.append(f"nodes.{name}.enabled=false")
    return overrides
