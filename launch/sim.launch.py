"""`ros2 launch aegis sim.launch.py [hw_config:=FILE]`: a hw_config's launch plan on simulated time (use_sim_time).

Like robot.launch.py, with point_mass_sim.yaml as the default and ``ros.use_sim_time=true``
applied as a config override, so the launch file and every process it starts (which re-load the
config with the same override) agree that time comes from /clock.
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

DEFAULT_HW_CONFIG = "point_mass_sim.yaml"
OVERRIDES: tuple[str, ...] = ("ros.use_sim_time=true",)


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
                description="hw_config YAML file (or the name of a shipped one); run on /clock time",
            ),
            OpaqueFunction(function=_plan_actions),
        ]
    )
