"""Overlays: an identification's hw_config fragment (the config's own keys), written, read and turned into overrides.

An overlay is a hw_config fragment (``robot.mass_kg``, ``robot.quadrotor.motor_time_constant_s``,
``nodes.<plant>.params.latency_s``, ...) holding the values a bag identified; `aegis sim|eval
--overlay FILE` lays it over a config exactly as ``--set`` would, key by key, and validates the
result like the file. Only what the bag identified goes in: the rest keeps the config's values.

The hw_config is the one source of truth for the robot's values; a dynamics set (``--dynamics``)
scales whatever the config (with its overlay) says. So an overlay on a sim config makes the
simulated robot the identified one, and every controller reading ``robot`` is built on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aegis.config_files import ConfigError, read_yaml_mapping


def flatten(fragment: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """A nested mapping as (dotted key path, value) pairs; lists and scalars are values."""
    pairs: list[tuple[str, Any]] = []
    for key, value in fragment.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            pairs += flatten(value, f"{path}.")
        else:
            pairs.append((path, value))
    return pairs


def overlay_overrides(path: str | Path) -> list[str]:
    """The ``KEY.PATH=VALUE`` overrides of an overlay file; ConfigError naming the file for one that is not a mapping."""
    raw = read_yaml_mapping(Path(path))
    return [f"{key}={json.dumps(value)}" for key, value in flatten(raw)]


def controllers_only_overrides(config: Any, overlay: str | Path) -> list[str]:
    """An overlay's robot values for the controllers while the plant (the first node) keeps the config's own robot.

    For a sim-to-sim check: the plant stays the perturbed one a dynamics set makes of the config's
    nominal robot, and only the controllers learn what the bag identified. The overlay's plant
    entries (its latencies: they describe the plant) are left out.
    """
    raw = read_yaml_mapping(Path(overlay))
    robot = raw.get("robot")
    if not isinstance(robot, dict):
        raise ConfigError(f"{overlay}: no robot section: nothing for the controllers")
    plant = next(iter(config.nodes))
    nominal = config.robot.model_dump(mode="json", exclude_none=True)
    return [f"robot.{key}={json.dumps(value)}" for key, value in flatten(robot)] + [
        f"nodes.{plant}.params.robot={json.dumps(nominal)}"
    ]
