"""What `ros2 launch aegis robot.launch.py` starts: one process description per process group of a launch plan.

A group of one node runs that node's own executable (``ros2 run aegis pid ...``); a group of
several runs :data:`COMPOSED_EXECUTABLE`, which hosts them all in one process. Either way the
process re-loads the same hw_config with the same overrides and so builds the same plan; the
launch file only chooses which part of it each process runs. Names all come from the plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aegis.launch_plan import LaunchPlan

PACKAGE = "aegis"
COMPOSED_EXECUTABLE = "aegis_process"
"""Console script hosting a whole process group (setup.py entry point aegis.nodes.executables:aegis_process)."""


@dataclass(frozen=True)
class ProcessDescription:
    """One process to start: the keyword arguments of a launch_ros ``Node`` action, in plain values.

    ``name`` is the ROS node name of a single-node process. It is None for a composed process:
    launch_ros turns ``name`` into a ``__node`` remap, which would rename every node of the
    process to the same name; there each node takes its name from the plan.
    """

    process: str
    nodes: tuple[str, ...]
    executable: str
    name: str | None
    namespace: str | None
    arguments: tuple[str, ...]
    parameters: tuple[dict[str, Any], ...]
    output: str = "screen"
    package: str = PACKAGE

    def launch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``launch_ros.actions.Node``."""
        kwargs: dict[str, Any] = {
            "package": self.package,
            "executable": self.executable,
            "exec_name": self.process,
            "arguments": list(self.arguments),
            "parameters": [dict(p) for p in self.parameters],
            "output": self.output,
        }
        if self.name is not None:
            kwargs["name"] = self.name
        if self.namespace is not None:
            kwargs["namespace"] = self.namespace
        return kwargs


def process_descriptions(
    plan: LaunchPlan, hw_config: Path | str, overrides: Sequence[str] = ()
) -> tuple[ProcessDescription, ...]:
    """The processes that run ``plan``, loaded from ``hw_config`` with ``overrides``, in plan order."""
    config_arg = str(Path(hw_config).resolve())
    set_args = tuple(arg for override in overrides for arg in ("--set", override))
    parameters = ({"use_sim_time": plan.use_sim_time},)
    namespace = plan.namespace or None
    out = []
    for process, nodes in plan.processes.items():
        if len(nodes) == 1:
            (node,) = nodes
            executable, name, select = node.executable, node.name, ("--node", node.name)
        else:
            executable, name, select = COMPOSED_EXECUTABLE, None, ("--process", process)
        out.append(
            ProcessDescription(
                process=process,
                nodes=tuple(n.name for n in nodes),
                executable=executable,
                name=name,
                namespace=namespace,
                arguments=("--hw-config", config_arg, *select, *set_args),
                parameters=parameters,
            )
        )
    return tuple(out)
