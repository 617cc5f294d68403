"""Scenarios: what a simulated run happens in (start, goal, reference, obstacles, geofence, disturbances, randomisation).

One robot, or several in one scene (``robots``, each with its own start, reference and goal).

A scenario is a YAML file validated into a frozen Scenario (aegis.scenario.schema); everything
computed from one is a pure function: reference_at (reference.py), clearance and the geofence
walls (geometry.py), wind_at and impulse_force_at (disturbances.py), sample_randomization
(randomization.py). load_scenario refuses a bad file with the file and key named (loader.py).
"""

from aegis.scenario.disturbances import impulse_force_at, wind_at
from aegis.scenario.geometry import (
    HalfSpace,
    clearance,
    clearances,
    geofence_margin,
    geofence_walls,
    obstacles_msg,
    signed_distance,
    yaw_quaternion,
)
from aegis.scenario.loader import (
    check_robot_kind,
    load_scenario,
    resolve_scenario_for,
    resolve_scenario_path,
    scenario_errors,
    shipped_scenario,
    shipped_scenario_names,
    validate_scenario,
)
from aegis.scenario.randomization import sample_randomization
from aegis.scenario.reference import ReferenceState, reference_at, reference_extremes, reference_table
from aegis.scenario.schema import (
    Disturbances,
    Figure8,
    Geofence,
    Goal,
    Hover,
    Impulse,
    Line,
    ObstacleSpec,
    Randomization,
    Reference,
    RobotTask,
    Scenario,
    Start,
    Waypoints,
    Wind,
)

__all__ = [
    "Disturbances",
    "Figure8",
    "Geofence",
    "Goal",
    "HalfSpace",
    "Hover",
    "Impulse",
    "Line",
    "ObstacleSpec",
    "Randomization",
    "Reference",
    "ReferenceState",
    "RobotTask",
    "Scenario",
    "Start",
    "Waypoints",
    "Wind",
    "check_robot_kind",
    "clearance",
    "clearances",
    "geofence_margin",
    "geofence_walls",
    "impulse_force_at",
    "load_scenario",
    "obstacles_msg",
    "reference_at",
    "reference_table",
    "reference_extremes",
    "resolve_scenario_for",
    "resolve_scenario_path",
    "sample_randomization",
    "scenario_errors",
    "shipped_scenario",
    "shipped_scenario_names",
    "signed_distance",
    "validate_scenario",
    "wind_at",
    "yaw_quaternion",
]
