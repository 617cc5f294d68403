"""Finds the safety filter a hw_config runs (the node, its filter, the geofence's walls): what the filter exports are built from."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def config_filter(config_path: Path, overrides: list[str], node: str | None = None) -> dict[str, Any]:
    """The safety filter a config runs: {node, filter (a CbfSafetyFilter built by the node), walls, region (geofence corners or None)}.

    ExportError when the config has no safety-filter node (or none called ``node``).
    """
    from aegis.config import load_config
    from aegis.export.errors import ExportError
    from aegis.launch_plan import make_plan
    from aegis.nodes.safety_filter import SafetyFilterParams
    from aegis.registry import node_class
    from aegis.scenario.geometry import geofence_walls

    launches = [launch for launch in make_plan(load_config(config_path, overrides)).nodes
                if issubclass(node_class(launch.type_name).Params, SafetyFilterParams)]
    chosen = [launch for launch in launches if node is None or launch.name == node]
    if not chosen:
        have = f"its safety-filter nodes: {', '.join(launch.name for launch in launches)}" if launches else "it has no safety-filter node"
        raise ExportError(f"{config_path}: no safety-filter node {node!r} ({have})" if node else f"{config_path}: {have}")
    instance = chosen[0].instantiate()
    geofence = instance.params.safety.geofence
    walls = geofence_walls(geofence) if geofence is not None else ()
    region = (tuple(geofence.min_m), tuple(geofence.max_m)) if geofence is not None else None
    return {"node": chosen[0].name, "filter": instance.filter, "walls": walls, "region": region}
