"""Swap a config's nominal command source for a policy node (or another expert): overrides, as bypass_overrides does for the filter.

The nominal command source is the node that publishes what the safety filter corrects: the
publisher of a bypassable node's input topic (a node class with ``bypass = (input, output)``).
Nothing here knows node names: whatever node feeds the filter is replaced, keeping its name, rate
and topic remaps, and those of its parameters the new type also has (``reference`` and the like;
``robot``, ``scenario``, ``safety`` and ``inference`` come from the config's sections anyway).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aegis.config import HwConfig

from aegis.config_files import ConfigError
from aegis.launch_plan import LaunchPlan
from aegis.node import resolve_topics
from aegis.registry import node_class

SHARED_PARAMS = ("robot", "scenario", "safety", "inference")
"""Parameters the config's sections fill (aegis.config._with_shared_params); never copied from the replaced node."""


def nominal_source(config: HwConfig) -> str:
    """The name of the node publishing the safety filter's nominal input; ConfigError when there is none."""
    source = config.source or "<hw_config>"
    filters = []
    for name, entry in config.nodes.items():
        cls = node_class(entry.type)
        if entry.enabled and cls.bypass is not None:
            filters.append((name, resolve_topics(cls, entry.topics)[cls.bypass[0]]))
    if not filters:
        raise ConfigError(f"{source}: nodes: no safety filter (a node that can be bypassed): a policy runs upstream of one")
    name, topic = filters[0]
    for other, entry in config.nodes.items():
        cls = node_class(entry.type)
        if not entry.enabled or other == name:
            continue
        topics = resolve_topics(cls, entry.topics)
        if any(topics[port.name] == topic for port in cls.outputs):
            return other
    raise ConfigError(f"{source}: nodes: no node publishes {topic}, the nominal input of the safety filter {name!r}")


def replace_node_overrides(config: HwConfig, name: str, node_type: str, params: dict[str, Any] | None = None) -> list[str]:
    """Overrides making node ``name`` a ``node_type``, keeping the parameters the new type has (shared ones excluded)."""
    fields = node_class(node_type).Params.model_fields
    entry = config.nodes[name]
    kept = {k: v for k, v in entry.params.items() if k in fields and k not in SHARED_PARAMS}
    return [f"nodes.{name}.type={node_type}", f"nodes.{name}.params={json.dumps({**kept, **(params or {})})}"]


def policy_node_type(config: HwConfig) -> str:
    """The policy node type for the config's robot kind."""
    from aegis.nodes.policy import POLICY_NODE_TYPES

    kind = config.robot.kind
    if kind not in POLICY_NODE_TYPES:
        known = ", ".join(sorted(POLICY_NODE_TYPES))
        raise ConfigError(f"{config.source or '<hw_config>'}: robot.kind: no policy node for kind {kind!r} (policies drive: {known})")
    return POLICY_NODE_TYPES[kind]


def policy_overrides(config: HwConfig, model: Path, mapping: Path | None = None) -> list[str]:
    """Overrides that run ``model`` (and its ``mapping``) in the place of the config's nominal command source."""
    # mapping always set: a mapping the replaced node had belongs to its own model, not to this one
    params: dict[str, Any] = {"model": str(Path(model).resolve()), "mapping": str(Path(mapping).resolve()) if mapping else None}
    return replace_node_overrides(config, nominal_source(config), policy_node_type(config), params)


def expert_overrides(config: HwConfig, expert_type: str) -> list[str]:
    """Overrides running ``expert_type`` as the nominal command source (none when the config already does)."""
    name = nominal_source(config)
    if config.nodes[name].type == expert_type:
        return []
    return replace_node_overrides(config, name, expert_type)


def expert_type(config: HwConfig, model: Path, mapping: Path | None = None, override: str | None = None) -> str:
    """The expert to compare a policy with: ``override``, else the contract's producer.expert, else the config's own nominal node."""
    if override:
        node_class(override)  # UnknownNodeType names the known ones
        return override
    from aegis.inference.contract import read_contract

    producer = read_contract(model, mapping).producer
    if producer is not None and producer.expert:
        return producer.expert
    return config.nodes[nominal_source(config)].type


def check_policy_nodes(plan: LaunchPlan) -> None:
    """Build the plan's policy nodes once, so a model that does not fit is refused (ConfigError) before anything runs."""
    from aegis.nodes.policy import POLICY_NODE_TYPES

    for launch in plan.nodes:
        if launch.type_name in POLICY_NODE_TYPES.values():
            launch.instantiate()
