"""The ROS 2 executables: one main per node type (`ros2 run aegis pid`) and `aegis_process` for a composed process group.

Each main loads the hw_config (with ``--set`` overrides), makes the launch plan, picks its node
or process group and hands it to the ROS 2 adapter. A bad config, a wrong node or process name,
an invalid start-up parameter, a missing ROS 2 environment, or ROS 2 refusing to start the node
(malformed ``--ros-args``, a message package not installed, a parameter type rclpy rejects) ends with exit code 2 and a one-line
error, no traceback. Console scripts call these with no arguments and exit with their result.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from aegis.cli_options import UsageError, resolve_config_path
from aegis.config import load_config
from aegis.config_files import ConfigError
from aegis.launch_plan import make_plan
from aegis.registry import NODE_TYPES
from aegis.ros_shell import (
    COMPOSED_EXECUTABLE,
    ParameterError,
    RosStartupError,
    RosUnavailable,
    SelectionError,
    parse_executable_args,
    select_node,
    select_process,
)


def __getattr__(name: str) -> Callable[[], int]:
    """`aegis.nodes.executables.<type>`: the main of a registered node type (the console scripts' targets).

    setup.py declares one console script per entry of aegis.registry.NODE_TYPES, each pointing at
    this module's attribute of that name; the mains are made here on demand (PEP 562), so a new
    node type needs its registry entry and nothing else.
    """
    if name in NODE_TYPES:

        def main() -> int:
            return run_node_type(name)

        main.__name__ = main.__qualname__ = name
        main.__doc__ = f"`ros2 run aegis {name} --hw-config FILE [--node NAME]`."
        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def aegis_process() -> int:
    """`ros2 run aegis aegis_process --hw-config FILE --process NAME`: a process group, nodes composed."""
    return run_process_group()


def run_node_type(type_name: str, argv: Sequence[str] | None = None) -> int:
    """Run one node of type ``type_name`` from a hw_config; the exit code."""
    return _run(type_name, sys.argv[1:] if argv is None else argv, composed=False)


def run_process_group(argv: Sequence[str] | None = None) -> int:
    """Run one process group of a hw_config's launch plan in this process; the exit code."""
    return _run(COMPOSED_EXECUTABLE, sys.argv[1:] if argv is None else argv, composed=True)


def _run(prog: str, argv: Sequence[str], composed: bool) -> int:
    args = parse_executable_args(argv, prog, composed=composed)
    try:
        path = resolve_config_path(args.hw_config)
        plan = make_plan(load_config(path, args.overrides))
        if composed:
            launches = select_process(plan, args.process or "", path)
        else:
            launches = (select_node(plan, prog, args.node, path),)
        from aegis.nodes import ros_adapter

        return ros_adapter.run(launches, plan, args.ros_args)
    except (UsageError, ConfigError, SelectionError, ParameterError, RosUnavailable, RosStartupError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
