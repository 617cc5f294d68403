"""The real-robot configs' chains, closed loop in PyBullet with stand-ins for the drivers on exactly the drivers' topics and types.

A deployment config (hw_configs/*_robot_*.yaml) has no simulator; here the shipped simulator stands
in for the robot and a small stand-in node for its driver, speaking the driver's dialect on the
driver's topics: Clearpath's (odometry on /platform/odom/filtered, geometry_msgs/Twist on cmd_vel
turned into wheel speeds as its diff_drive_controller does, its e-stop state published released)
and crazyswarm2's (odometry on /cf231/odom with the world-frame twist and no angular velocity, as
its server fills it; the full-state setpoint's acceleration handed to the simulated attitude loop,
standing in for the firmware's controller with zero position and velocity error). The chain under
test is the config's own plan, unchanged: what these runs pass is what the configs would run. The
obstacles of the scenario are in the simulated world but not in the chains (``obstacle_source:
none``): the references keep their distance from them, and the runs count collisions. The jetson
variants (the same chains; their providers fall back to the CPU here) run under ``-m slow``.
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
from aegis.msgs import AccelCommand, EStop, RobotState, TwistCommand, UnstampedTwist, WheelSpeeds  # noqa: E402
from aegis.msgs.drivers import FullStateSetpoint  # noqa: E402
from aegis.node import Node, Port, Received  # noqa: E402
from aegis.nodes.twist_to_wheels import TwistToWheels  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


class ClearpathStandIn(Node):
    """Clearpath's platform: geometry_msgs/Twist on cmd_vel -> wheel speeds within its limits (0.5 s timeout), its e-stop state (released)."""

    type_name = "clearpath_stand_in"
    inputs = (Port("cmd_vel", UnstampedTwist, "/cmd_vel"),)
    outputs = (Port("wheels", WheelSpeeds, "/cmd_wheels"), Port("estop", EStop, "/platform/emergency_stop"))
    default_rate_hz = 50.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.drive = TwistToWheels("drive", TwistToWheels.Params(max_turn_rate_radps=1.0))  # its controller's limits: 1 m/s, 1 rad/s

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        twist = inputs.get("cmd_vel")
        stamped = None if twist is None else Received(TwistCommand(linear=twist.msg.linear, angular=twist.msg.angular), twist.age_s, twist.age_s > 0.5)
        return {"wheels": self.drive.step(now, {"twist": stamped})["command"], "estop": EStop(stamp=now, engaged=False)}


class CrazyswarmOdometry(Node):
    """crazyswarm2's <cf>/odom: the simulator's odometry with the twist in the world frame and no angular velocity."""

    type_name = "crazyswarm_odometry_stand_in"
    trigger = "state"
    inputs = (Port("state", RobotState, "/sim/odom"),)
    outputs = (Port("odom", RobotState, "/cf231/odom"),)

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        from aegis.controllers.quadrotor_model import quaternion_to_matrix

        msg = inputs["state"].msg
        world = quaternion_to_matrix(msg.orientation) @ msg.linear_velocity
        return {"odom": RobotState(stamp=now, frame_id="cf231", position=msg.position, orientation=msg.orientation, linear_velocity=world)}


class FirmwareStandIn(Node):
    """The firmware's controller, for this test: the full-state setpoint's acceleration (feed-forward) to the attitude loop."""

    type_name = "firmware_stand_in"
    trigger = "setpoint"
    inputs = (Port("setpoint", FullStateSetpoint, "/cf231/cmd_full_state"),)
    outputs = (Port("accel", AccelCommand, "/firmware/cmd_accel"),)

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        return {"accel": AccelCommand(stamp=now, frame_id="odom", linear=inputs["setpoint"].msg.acceleration)}


def run(nodes: list[Node], duration_s: float, *topics: str) -> tuple[dict[str, list[tuple[float, Any]]], dict]:
    seen: dict[str, list[tuple[float, Any]]] = {topic: [] for topic in topics}

    def listen(topic: str, msg: Any, t_ns: int) -> None:
        if topic in seen:
            seen[topic].append((t_ns / 1e9, msg))

    executor = LockstepExecutor(nodes, listeners=[listen])
    executor.reset(0)
    try:
        executor.run(duration_s)
        metrics = nodes[0].metrics()
    finally:
        nodes[0].close()
    return seen, metrics


@pytest.mark.parametrize("name", ["husky_robot_cpu.yaml", pytest.param("husky_robot_jetson.yaml", marks=pytest.mark.slow)])
def test_the_husky_robot_chain_drives_clearpaths_topics_to_the_goal(name: str) -> None:
    sim = make_plan(load_config(REPO / "hw_configs" / "husky_oracle_sim.yaml")).nodes[0]
    sim = replace(sim, outputs={**sim.outputs, "state": "/platform/odom/filtered"})  # Clearpath's EKF output, stood in by the simulator
    chain = make_plan(load_config(REPO / "hw_configs" / name)).instantiate()
    nodes = [sim.instantiate(), *chain, ClearpathStandIn("clearpath")]
    seen, metrics = run(nodes, 30.0, "/sim/ground_truth", "/supervisor/status")
    final = seen["/sim/ground_truth"][-1][1].position
    print(f"{name}: {np.linalg.norm(final[:2] - [6.5, 0.5]):.3f} m from the goal at 30 s")
    assert np.linalg.norm(final[:2] - [6.5, 0.5]) < 0.3  # husky_goal's goal and tolerance
    assert metrics["collisions"] == 0 and metrics["crashes"] == 0 and metrics["command_timeouts"] == 0
    statuses = [status for _, status in seen["/supervisor/status"]]
    # estop_required: until the platform's e-stop state is first heard (the stand-in publishes after the supervisor's first tick)
    assert statuses[0].state == "estop" and statuses[0].reason == "e-stop never heard from (estop_required)"
    assert all(status.state == "running" for status in statuses[1:])


@pytest.mark.parametrize("name", ["crazyflie_robot_cpu.yaml", pytest.param("crazyflie_robot_jetson.yaml", marks=pytest.mark.slow)])
def test_the_crazyflie_robot_chain_flies_the_figure8_through_crazyswarm2s_topics(name: str) -> None:
    sim_plan = make_plan(load_config(REPO / "hw_configs" / "quadrotor_oracle_sim.yaml"))
    launches = {n.name: n for n in sim_plan.nodes}
    sim = replace(launches["sim"], outputs={**launches["sim"].outputs, "state": "/sim/odom"})
    attitude = replace(launches["attitude"], inputs={**launches["attitude"].inputs, "state": "/sim/odom", "acceleration": "/firmware/cmd_accel"})
    chain = make_plan(load_config(REPO / "hw_configs" / name)).instantiate()
    nodes = [sim.instantiate(), CrazyswarmOdometry("crazyswarm"), *chain, FirmwareStandIn("firmware"), attitude.instantiate()]
    seen, metrics = run(nodes, 12.0, "/sim/ground_truth", "/reference", "/supervisor/status")
    truth = dict(seen["/sim/ground_truth"])
    errors = [np.linalg.norm(truth[t].position - ref.position) for t, ref in seen["/reference"] if t >= 2.0 and t in truth]
    print(f"{name}: tracking error from 2 s: RMS {np.sqrt(np.mean(np.square(errors))):.3f} m, max {max(errors):.3f} m")
    assert errors and max(errors) < 0.25 and float(np.sqrt(np.mean(np.square(errors)))) < 0.1
    assert metrics["collisions"] == 0 and metrics["crashes"] == 0
    states = [status.state for _, status in seen["/supervisor/status"]]
    assert states.count("running") >= len(states) - 1
