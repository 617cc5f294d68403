"""What the ROS 2 executables accept and refuse: ROS-argument stripping, their options, node and process selection.

``ros2 run aegis pid --hw-config FILE [--node NAME] [--set KEY=VALUE ...] [--ros-args ...]`` runs
one node of a hw_config; ``ros2 run aegis aegis_process --hw-config FILE --process NAME`` runs a
process group of its launch plan (several nodes composed in one process). Everything after
``--ros-args`` up to a lone ``--`` belongs to ROS (remaps, ``-p`` parameters, log levels) and is
handed to ``rclpy.init``; the rest is parsed here.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aegis.launch_plan import LaunchPlan, NodeLaunch

ROS_ARGS_START = "--ros-args"
ROS_ARGS_END = "--"


class SelectionError(ValueError):
    """An executable was asked for a node or process its hw_config does not have; lists the valid ones."""


class RosUnavailable(RuntimeError):
    """rclpy cannot be imported: the ROS 2 environment is not sourced."""


class RosStartupError(RuntimeError):
    """ROS 2 refused to start a node: malformed --ros-args, a message package not installed, a parameter rclpy rejects."""


def startup_error(stage: str, error: BaseException) -> RosStartupError:
    """The one-line error for ``error`` raised while ``stage`` was starting (a missing module named as such)."""
    if isinstance(error, ModuleNotFoundError) and error.name:
        package = error.name.split(".")[0]
        return RosStartupError(
            f"{stage}: ROS 2 package {package!r} not found: install it (e.g. ros-<distro>-{package.replace('_', '-')}) "
            "or source the workspace that has it"
        )
    text = " ".join(str(error).split()) or "(no message)"
    if len(text) > 300:
        text = text[:297] + "..."
    return RosStartupError(f"{stage}: {type(error).__name__}: {text}")


def rclpy_missing_message(distro: str, error: ImportError | None = None) -> str:
    """The one-paragraph error an executable prints when rclpy cannot be imported."""
    hint = (
        f"source your ROS 2 installation (e.g. /opt/ros/{distro}/setup.bash) and the workspace aegis is "
        "installed in (install/setup.bash), then run it again from that shell; "
        "`aegis sim` runs the same nodes without ROS"
    )
    if error is None or error.name in (None, "rclpy"):
        return f"rclpy not found: {hint}"
    return f"rclpy found but failed to import ({error}): {hint}"


def split_ros_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(own arguments, ROS arguments) of a command line, as rclpy.utilities.remove_ros_args splits it.

    Each ``--ros-args`` opens a ROS section that runs to the next lone ``--`` or to the end;
    there may be several. The ROS arguments keep their ``--ros-args`` flags (rclpy.init needs
    them) and drop the closing ``--``. A ``--`` outside a ROS section is an own argument.
    """
    own: list[str] = []
    ros: list[str] = []
    in_ros = False
    for arg in argv:
        if arg == ROS_ARGS_START:
            in_ros = True
            ros.append(arg)
        elif in_ros and arg == ROS_ARGS_END:
            in_ros = False
        elif in_ros:
            ros.append(arg)
        else:
            own.append(arg)
    return own, ros


@dataclass(frozen=True)
class ExecutableArgs:
    """The parsed options of an aegis ROS 2 executable (ROS arguments already split off)."""

    hw_config: str
    node: str | None
    process: str | None
    overrides: tuple[str, ...]
    ros_args: tuple[str, ...]


def build_parser(prog: str, composed: bool) -> argparse.ArgumentParser:
    """The option parser of a node executable (``composed=False``) or of the process-group one."""
    if composed:
        description = "Run one process group of a hw_config's launch plan: its nodes composed in one ROS 2 process."
    else:
        description = f"Run one {prog} node of a hw_config as a ROS 2 node."
    parser = argparse.ArgumentParser(
        prog=prog, description=description, epilog="ROS arguments go after --ros-args (e.g. --ros-args --log-level debug)."
    )
    parser.add_argument(
        "--hw-config", required=True, metavar="FILE", help="hw_config YAML file, or the name of a shipped one"
    )
    if composed:
        parser.add_argument("--process", required=True, metavar="NAME", help="process group of the launch plan")
    else:
        parser.add_argument(
            "--node", metavar="NAME", help=f"node of the hw_config (default: its only {prog} node)"
        )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a config value (YAML value), e.g. --set nodes.controller.params.kp=2.0; repeatable",
    )
    return parser


def parse_executable_args(argv: Sequence[str], prog: str, composed: bool = False) -> ExecutableArgs:
    """Split off the ROS arguments and parse the rest; bad usage exits with code 2 (argparse)."""
    own, ros = split_ros_args(argv)
    args = build_parser(prog, composed).parse_args(own)
    return ExecutableArgs(
        hw_config=args.hw_config,
        node=None if composed else args.node,
        process=args.process if composed else None,
        overrides=tuple(args.overrides),
        ros_args=tuple(ros),
    )


def select_node(plan: LaunchPlan, type_name: str, node_name: str | None, source: Path | str) -> NodeLaunch:
    """The node an executable for ``type_name`` runs: ``node_name``, or the plan's only node of that type."""
    by_name = {node.name: node for node in plan.nodes}
    listing = ", ".join(f"{n.name} ({n.type_name})" for n in plan.nodes) or "none"
    if node_name is None:
        candidates = [node for node in plan.nodes if node.type_name == type_name]
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise SelectionError(f"{source}: has no {type_name} node (nodes: {listing})")
        names = ", ".join(n.name for n in candidates)
        raise SelectionError(f"{source}: has several {type_name} nodes: choose one with --node ({names})")
    node = by_name.get(node_name)
    if node is None:
        raise SelectionError(f"{source}: has no node {node_name!r} (nodes: {listing})")
    if node.type_name != type_name:
        raise SelectionError(
            f"{source}: node {node_name!r} is a {node.type_name}, not a {type_name}: "
            f"run it with `ros2 run aegis {node.executable}`"
        )
    return node


def select_process(plan: LaunchPlan, process: str, source: Path | str) -> tuple[NodeLaunch, ...]:
    """The nodes of process group ``process`` of the plan, in plan order."""
    groups = plan.processes
    if process not in groups:
        listing = "; ".join(f"{name} ({', '.join(n.name for n in nodes)})" for name, nodes in groups.items())
        raise SelectionError(f"{source}: has no process {process!r} (processes: {listing})")
    return groups[process]
