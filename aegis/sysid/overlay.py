"""Overlays for a sim-to-sim check: an identified overlay's robot values for the controllers only, the plant kept as it was.

An overlay is a hw_config fragment (``robot.mass_kg``, ``robot.quadrotor.motor_time_constant_s``,
``nodes.<plant>.params.latency_s``, ...) holding the values a bag identified; `aegis sim|eval
--overlay FILE` lays it over a config exactly as ``--set`` would, key by key, and validates the
result like the file (aegis.cli_options.overlay_overrides). Only what the bag identified goes in:
the rest keeps the config's values.

The hw_config is the one source of truth for the robot's values; a dynamics set (``--dynamics``)
scales whatever the config (with its overlay) says. So an overlay on a sim config makes the
simulated robot the identified one, and every controller reading ``robot`` is built on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aegis.cli_options import flatten_mapping
from aegis.config_files import ConfigError, read_yaml_mapping


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
    return [f"robot.{key}={json.dumps(value)}" for key, value in flatten_mapping(robot)] + [
        f"nodes.{plant}.params.robot={json.dumps(nominal)}"
    ]
