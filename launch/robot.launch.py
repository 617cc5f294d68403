"""`ros2 launch aegis robot.launch.py hw_config:=FILE`: starts every process of a hw_config's launch plan.

The config is loaded and planned exactly as `aegis check` and `aegis run` do; each process group
of the plan becomes one launch_ros Node action (its node's own executable, or `aegis_process` for
several nodes composed in one process). ``hw_config`` defaults to the shipped point_mass_ros.yaml
(found through the ament index); a shipped config may also be named without its folder.
"""

from __future__ import annotations

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from aegis.cli_options import resolve_config_path
from aegis.config import load_config
from aegis.launch_plan import make_plan
from aegis.paths import shipped_config
from aegis.ros_shell import process_descriptions

DEFAULT_HW_CONFIG = "point_mass_ros.yaml"
OVERRIDES: tuple[str, ...] = ()


def _plan_actions(context, *args, **kwargs):
    path = resolve_config_path(LaunchConfiguration("hw_config").perform(context)).resolve()
    plan = make_plan(load_config(path, OVERRIDES))
    actions = [LogInfo(msg=f"aegis: {path}: warning: {warning}") for warning in plan.warnings]
    actions += [Node(**process.launch_kwargs()) for process in process_descriptions(plan, path, OVERRIDES)]
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "hw_config",
                default_value=str(shipped_config(DEFAULT_HW_CONFIG)),
                description="hw_config YAML file (or the name of a shipped one) describing the deployment",
            ),
            OpaqueFunction(function=_plan_actions),
        ]
    )
