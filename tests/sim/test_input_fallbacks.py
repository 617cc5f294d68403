"""Closed loop: a filter whose inputs become unusable publishes no command (odometry) or brakes (obstacles), and the robot stops.

The shipped quadrotor and Husky chains in PyBullet (DIRECT, seed 0), the filter's odometry passed
through a node that, from ``BREAK_S`` on, scales its quaternion to norm 0.5 (the velocity the filter
would see is then halved). The other nodes keep good odometry: the supervisor, seeing the filtered
command go stale, degrades and publishes its own braking command (stop, for the Husky), so the
quadrotor brakes to a hover and the Husky stops. Obstacles published
slower than their staleness bound put the filter in its backup layer for the rest of each period.
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


@pytest.mark.parametrize(("config", "command_topic"), [("quadrotor_oracle_sim", "/cmd_accel_filtered"), ("husky_oracle_sim", "/cmd_vel_filtered")])
def test_unusable_filter_odometry_stops_the_command_and_the_robot_brakes(config: str, command_topic: str) -> None:
    nodes = make_plan(load_config(REPO / "hw_configs" / f"{config}.yaml", ["nodes.filter.topics.state=/odom_filter"])).instantiate()
    nodes.insert(1, BreakQuaternion("break"))
    seen: dict[str, list[tuple[float, Any]]] = {"/odom": [], command_topic: [], "/safety_filter/report": [], "/supervisor/status": []}

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
    gated = [(t, status) for t, status in seen["/supervisor/status"] if t >= BREAK_S]
    first_degraded = next(t for t, status in gated if status.state == "degraded")
    period = 1.0 / (48.0 if config == "quadrotor_oracle_sim" else 50.0)
    stale_after = 0.05 if config == "quadrotor_oracle_sim" else 0.1  # the supervisor's bound on the filtered command
    assert first_degraded <= BREAK_S + stale_after + period + 1e-9  # within a period of the command going stale
    assert all(status.state == "degraded" and not status.passed and "command stale" in status.reason for t, status in gated if t >= first_degraded)
    speed_at_break = max(np.linalg.norm(m.linear_velocity) for t, m in seen["/odom"] if BREAK_S - 0.1 <= t < BREAK_S)
    final = seen["/odom"][-1][1]
    assert speed_at_break > 0.2 and np.linalg.norm(final.linear_velocity) < 0.05  # it was moving, now it has stopped
    if config == "quadrotor_oracle_sim":
        assert final.position[2] > 0.8 and metrics["command_timeouts"] == 0  # braked to a hover: the motors kept running


def test_obstacles_slower_than_their_bound_put_the_filter_in_its_backup_layer_between_messages() -> None:
    """Obstacles at 2 Hz against the default 0.25 s bound: the filter brakes for the second half of every period, and says so."""
    overrides = ["nodes.sim.params.obstacles_rate_hz=2"]
    nodes = make_plan(load_config(REPO / "hw_configs" / "quadrotor_oracle_sim.yaml", overrides)).instantiate()
    reports: list[tuple[float, Any]] = []

    def listen(topic: str, msg: Any, t_ns: int) -> None:
        if topic == "/safety_filter/report":
            reports.append((t_ns / 1e9, msg))

    executor = LockstepExecutor(nodes, listeners=[listen])
    executor.reset(0)
    try:
        executor.run(3.0)
        metrics = {k: v for node in nodes if hasattr(node, "metrics") for k, v in node.metrics().items()}
    finally:
        nodes[0].close()
    stale = [(t, r) for t, r in reports if r.layer == "backup"]
    assert all("obstacles" in r.solver_status and "s old (bound 0.25 s)" in r.solver_status for _, r in stale)
    assert {round(t % 0.5, 3) > 0.25 for t, _ in stale} == {True}  # only past the bound within each period
    assert len(stale) == metrics["unusable_obstacles_ticks"] > 0.4 * len(reports) and metrics["collisions"] == 0
