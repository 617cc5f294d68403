"""Loads a scenario YAML file: overrides, schema, then the geometric checks; every error names the file and the key.

The mechanism is hw_config's (aegis.config): duplicate keys refused, ``--set a.b.0.c=value``
overrides applied to the raw YAML before validation, all schema problems reported at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from aegis.config_files import (
    ConfigError,
    apply_override,
    did_you_mean,
    format_errors,
    pydantic_errors,
    read_yaml_mapping,
    safe_resolve,
)
from aegis.paths import share_dir
from aegis.scenario.geometry import clearances, geofence_margin
from aegis.scenario.reference import reference_extremes
from aegis.scenario.schema import LAYOUT_FAMILIES, REFERENCE_TYPES, Geofence, Scenario

MIN_START_SEPARATION_M = 0.2
"""Robots of one scenario must start at least this far apart (centre to centre)."""

SCENARIO_FOLDER = "scenarios"
"""share/aegis/<this> holds the shipped scenarios (the repository's scenarios/ folder)."""


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Load, override and validate a scenario file; raises ConfigError naming the file and each bad key."""
    path = Path(path)
    raw = read_yaml_mapping(path)
    for override in overrides:
        apply_override(raw, override, path, named={"robots": "robot"})
    return validate_scenario(raw, path)


def validate_scenario(raw: dict[str, Any], path: Path) -> Scenario:
    """Validate a raw mapping as a Scenario, then its geometry; raises ConfigError listing every problem."""
    try:
        scenario = Scenario.model_validate({**raw, "source": safe_resolve(path)})
    except ValidationError as exc:
        raise ConfigError(format_errors(path, _schema_errors(exc))) from None
    errors = scenario_errors(scenario)
    if errors:
        raise ConfigError(format_errors(path, errors))
    return scenario


def scenario_errors(scenario: Scenario) -> list[tuple[str, str]]:
    """(key, problem) for what the schema cannot see: ids, start and goal placement, reference and impulses in range."""
    errors: list[tuple[str, str]] = []
    first_with_id: dict[int, int] = {}
    for index, obstacle in enumerate(scenario.obstacles):
        obstacle_id = index if obstacle.id is None else obstacle.id
        if obstacle_id in first_with_id:
            errors.append((f"obstacles.{index}.id", f"duplicate id {obstacle_id} (also obstacles.{first_with_id[obstacle_id]})"))
        first_with_id.setdefault(obstacle_id, index)
    tasks = {f"robots.{name}.": task for name, task in scenario.robots.items()} or {"": scenario.task()}
    for prefix, task in tasks.items():
        places = [(f"{prefix}start.position", task.start.position)]
        if task.goal is not None:
            places.append((f"{prefix}goal.position", task.goal.position))
        for key, position in places:
            errors += [(key, problem) for problem in _placement_problems(scenario, np.array(position, dtype=float))]
        if scenario.geofence is not None:
            for key, point in reference_extremes(task.reference):
                problem = _outside(scenario.geofence, point)
                if problem:
                    errors.append((f"{prefix}{key}", f"the reference passes {point.tolist()}, {problem}"))
    starts = [(name, np.array(task.start.position, dtype=float)) for name, task in scenario.robots.items()]
    for index, (name, position) in enumerate(starts):
        for other, other_position in starts[:index]:
            if np.linalg.norm(position - other_position) < MIN_START_SEPARATION_M:
                errors.append((f"robots.{name}.start.position", f"within {MIN_START_SEPARATION_M} m of robots.{other}'s start"))
    errors += _layout_errors(scenario)
    for index, impulse in enumerate(scenario.disturbances.impulses):
        if impulse.time_s >= scenario.duration_s:
            errors.append((f"disturbances.impulses.{index}.time_s",
                           f"{impulse.time_s:g} s is not before duration_s {scenario.duration_s:g} s (it would never act)"))
    return errors


def _layout_errors(scenario: Scenario) -> list[tuple[str, str]]:
    """What a ``layout`` needs: one robot of a known kind with a goal and a geofence, no fixed or jittered obstacles,
    openings at least the passage wide with the path inside them."""
    layout = scenario.layout
    if layout is None:
        return []
    errors = []
    if scenario.robots:
        errors.append(("layout", "a layout is drawn around one robot's start-goal path: not with robots:"))
    elif scenario.goal is None:
        errors.append(("layout", "a layout is drawn around the start-goal path: the scenario needs a goal"))
    elif np.linalg.norm(np.subtract(scenario.goal.position, scenario.start.position)[:2]) < layout.passage_m:
        errors.append(("layout", "the goal is not a passage away from the start (sideways): no path to lay out"))
    if scenario.robot_kind not in ("quadrotor", "diff_drive"):
        errors.append(("layout", f"needs robot_kind quadrotor (3-D) or diff_drive (on the ground), not {scenario.robot_kind!r}"))
    if scenario.geofence is None:
        errors.append(("layout", "needs a geofence (the layout is drawn inside it)"))
    if scenario.obstacles:
        errors.append(("obstacles", "a scenario with a layout draws its obstacles: give no obstacles"))
    if scenario.randomization.obstacle_jitter_m.high > 0.0:
        errors.append(("randomization.obstacle_jitter_m", "a layout is drawn per seed already; jitter would break its passage"))
    width = getattr(layout, "width_m", None)
    if width is not None and width.low < layout.passage_m:
        errors.append(("layout.width_m", f"low {width.low:g} m is narrower than passage_m {layout.passage_m:g} m"))
    edge = getattr(layout, "edge_m", None)
    if width is not None and edge is not None and edge.high >= width.low / 2.0:
        errors.append(("layout.edge_m", f"high {edge.high:g} m would put the path outside (or at the centre of) a {width.low:g} m opening"))
    if layout.family == "pocket" and layout.clearance_m.low < layout.passage_m / 2.0:
        errors.append(("layout.clearance_m", f"low {layout.clearance_m.low:g} m is below half the passage ({layout.passage_m / 2.0:g} m)"))
    if layout.family == "clutter" and layout.blocking > layout.count:
        errors.append(("layout.blocking", f"{layout.blocking} is more than count {layout.count}"))
    return errors


def _placement_problems(scenario: Scenario, position: np.ndarray) -> list[str]:
    problems = []
    if scenario.geofence is not None:
        problem = _outside(scenario.geofence, position)
        if problem:
            problems.append(problem)
    for index, obstacle in enumerate(scenario.obstacles):
        distance = float(clearances([obstacle], position))
        if distance <= 0.0:
            problems.append(f"inside obstacles.{index} ({obstacle.shape}), {-distance:.3g} m deep")
    return problems


def _outside(geofence: Geofence, point: np.ndarray) -> str | None:
    """Why ``point`` is outside the geofence (its faces count as inside), or None."""
    if geofence_margin(geofence, point) >= 0.0:
        return None
    beyond = [f"{axis} {p:g} < geofence.min_m {lo:g}" for axis, p, lo in zip("xyz", point, geofence.min_m) if p < lo]
    beyond += [f"{axis} {p:g} > geofence.max_m {hi:g}" for axis, p, hi in zip("xyz", point, geofence.max_m) if p > hi]
    return "outside the geofence: " + ", ".join(beyond)


def _schema_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """pydantic's errors with the tagged unions' tags taken out of key paths (``reference.figure8.x`` -> ``reference.x``,
    ``layout.clutter.count`` -> ``layout.count``).

    The whole-scenario check of the task's keys (start, reference, robots) reports at the key it names.
    """
    out = []
    for error, (key, msg) in zip(exc.errors(), pydantic_errors(exc, Scenario)):
        if error["type"] == "scenario_task":
            key = error["ctx"]["key"]
        parts = key.split(".")
        at = 2 if parts[0] == "robots" else 0  # robots.NAME.reference.TAG...
        union = parts[at] if len(parts) > at else ""
        tag, tags = {"reference": ("type", REFERENCE_TYPES), "layout": ("family", LAYOUT_FAMILIES)}.get(union, ("", ()))
        if len(parts) > at + 1 and parts[at + 1] in tags:
            key = ".".join([*parts[: at + 1], *parts[at + 2 :]])
        if msg.startswith("Unable to extract tag") and tags:
            key, msg = f"{key}.{tag}", f"missing: one of {', '.join(tags)}"
        out.append((key, msg))
    return out


def shipped_scenario(name: str) -> Path:
    """A shipped scenario by file name (``quadrotor_hover.yaml``) or stem (``quadrotor_hover``)."""
    file_name = name if name.endswith(".yaml") else f"{name}.yaml"
    return share_dir() / SCENARIO_FOLDER / file_name


def shipped_scenario_names() -> list[str]:
    """The stems of the shipped scenarios, sorted."""
    return sorted(p.stem for p in (share_dir() / SCENARIO_FOLDER).glob("*.yaml"))


def resolve_scenario_path(name: str | Path) -> Path:
    """A scenario file as given if it exists, else a shipped scenario of that name; ConfigError listing them otherwise."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = shipped_scenario(str(name))
    if shipped.is_file():
        return shipped
    names = shipped_scenario_names()
    raise ConfigError(
        f"{name}: no such scenario file, nor a shipped one{did_you_mean(Path(name).stem, names)} (shipped: {', '.join(names)})"
    )


def resolve_scenario_for(name: str | Path, robot_kind: str) -> Path:
    """A scenario by path or shipped name, or a FAMILY name (``adversarial``): the one shipped ``*_adversarial``
    scenario written for ``robot_kind``. ConfigError listing the shipped scenarios when none (or several) fit."""
    path = Path(name)
    if path.is_file() or shipped_scenario(str(name)).is_file():
        return resolve_scenario_path(name)
    family = [
        shipped_scenario(stem)
        for stem in shipped_scenario_names()
        if stem.endswith(f"_{name}") and load_scenario(shipped_scenario(stem)).robot_kind in (robot_kind, "any")
    ]
    if len(family) == 1:
        return family[0]
    names = shipped_scenario_names()
    raise ConfigError(
        f"{name}: no such scenario file, nor a shipped scenario or family for a {robot_kind}"
        f"{did_you_mean(Path(name).stem, names)} (shipped: {', '.join(names)})"
    )


def check_robot_kind(scenario: Scenario, robot_kind: str) -> None:
    """Refuse running a scenario written for another kind of robot, naming both sides."""
    if scenario.robot_kind not in ("any", robot_kind):
        raise ConfigError(
            f"{scenario.source}: robot_kind: scenario {scenario.name!r} is for a {scenario.robot_kind} robot, "
            f"the hw_config's robot is a {robot_kind}"
        )
