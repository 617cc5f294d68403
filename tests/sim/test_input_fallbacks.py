"""Closed loop: when the filter's odometry becomes unusable it publishes no command, and the actuator side's staleness fallback brakes.

The shipped quadrotor and Husky chains in PyBullet (DIRECT, seed 0), the filter's odometry passed
through a node that, from ``BREAK_S`` on, scales its quaternion to norm 0.5 (the velocity the filter
would see is then halved). The other nodes keep good odometry, so the attitude loop brakes to a
hover and twist_to_wheels stops the wheels once the safe command goes stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pybullet")

from aegis.config import load_config  # noqa: E402
from aegis.executors.lockstep import LockstepExecutor  # noqa: E402
from aegis.launch_plan import make_plan  # noqa: E402
from aegis.msgs import RobotState  # noqa: E402
from aegis.node import Node, Port, Received  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BREAK_S = 1.5


class BreakQuaternion(Node):
    """Republishes /odom on /odom_filter, its quaternion halved from ``BREAK_S`` on; runs on every odometry message."""

    type_name = "break_quaternion"
    inputs = (Port("state", RobotState, "/odom"),)
    outputs = (Port("state_out", RobotState, "/odom_filter"),)
    trigger = "state"

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        state = inputs["state"].msg
        return {"state_out": replace(state, orientation=0.5 * state.orientation) if now >= BREAK_S else state}


@pytest.mark.parametrize(("config", "command_topic"), [("quadrotor_sim", "/cmd_accel"), ("husky_sim", "/cmd_vel")])
def test_unusable_filter_odometry_stops_the_command_and_the_robot_brakes(config: str, command_topic: str) -> None:
    nodes = make_plan(load_config(REPO / "hw_configs" / f"{config}.yaml", ["nodes.filter.topics.state=/odom_filter"])).instantiate()
    nodes.insert(1, BreakQuaternion("break"))
    seen: dict[str, list[tuple[float, Any]]] = {"/odom": [], command_topic: [], "/safety_filter/report": []}

    def listen(topic: str, msg: Any, t_ns: int) -> None:
        if topic in seen:
            seen[topic].append((t_ns / 1e9, msg))

    executor = LockstepExecutor(nodes, listeners=[listen])
    executor.reset(0)
    try:
        executor.run(BREAK_S + 2.5)
        metrics = {k: v for node in nodes if hasattr(node, "metrics") for k, v in node.metrics().items()}
    finally:
        nodes[0].close()
    commands = [t for t, _ in seen[command_topic]]
    assert commands and max(commands) < BREAK_S  # not one safe command from the broken odometry
    late = [report for t, report in seen["/safety_filter/report"] if t >= BREAK_S]
    assert late and all(r.layer == "estop" and "quaternion norm 0.5" in r.solver_status for r in late)
    assert metrics["unusable_odometry_ticks"] == len(late) and metrics["collisions"] == 0
    speed_at_break = max(np.linalg.norm(m.linear_velocity) for t, m in seen["/odom"] if BREAK_S - 0.1 <= t < BREAK_S)
    final = seen["/odom"][-1][1]
    assert speed_at_break > 0.2 and np.linalg.norm(final.linear_velocity) < 0.05  # it was moving, now it has stopped
    if config == "quadrotor_sim":
        assert final.position[2] > 0.8 and metrics["command_timeouts"] == 0  # braked to a hover: the motors kept running
