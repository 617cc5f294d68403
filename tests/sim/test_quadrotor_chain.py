"""The quadrotor chain split at the acceleration (and thrust + rates) command, and the LQR law, in closed loop."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from aegis.config import load_config
from aegis.executors.lockstep import LockstepExecutor
from aegis.launch_plan import make_plan
from aegis.msgs import ThrustRatesCommand
from aegis.node import Node, Port
from aegis.nodes.quadrotor_chain import (
    AttitudeControllerParams,
    InnerLoopParams,
    QuadrotorAttitudeController,
    QuadrotorPositionController,
    QuadrotorRateController,
)
from aegis.nodes.quadrotor_controller import QuadrotorControllerParams

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "hw_configs" / "quadrotor_cascade_sim.yaml"
SCENARIO = str(REPO / "scenarios" / "quadrotor_figure8.yaml")


def odometry(nodes: list[Node], duration_s: float) -> np.ndarray:
    positions: list[np.ndarray] = []
    executor = LockstepExecutor(nodes, listeners=[lambda topic, msg, t: topic == "/odom" and positions.append(msg.position)])
    executor.reset(0)
    executor.run(duration_s)
    nodes[0].close()
    return np.array(positions)


def test_split_chain_flies_exactly_like_the_single_controller() -> None:
    whole = make_plan(load_config(CONFIG)).instantiate()
    sim = make_plan(load_config(CONFIG)).instantiate()[0]
    params = QuadrotorControllerParams(reference="scenario", scenario=SCENARIO)
    split = [
        sim,
        QuadrotorPositionController("position", params, rate_hz=48),
        QuadrotorAttitudeController("attitude", AttitudeControllerParams(), rate_hz=48, topics={"acceleration": "/cmd_accel_nominal"}),
    ]
    assert odometry(whole, 4.0).tobytes() == odometry(split, 4.0).tobytes()


def test_attitude_controller_brakes_to_a_hover_without_acceleration_commands() -> None:
    sim = make_plan(load_config(CONFIG, ["scenario=quadrotor_hover"])).instantiate()[0]
    attitude = QuadrotorAttitudeController("attitude", AttitudeControllerParams(), rate_hz=48)
    positions = odometry([sim, attitude], 3.0)
    assert attitude.braking_ticks == 3 * 48
    assert np.linalg.norm(positions[-1] - positions[0]) < 0.05


class HoverThrust(Node):
    """Publishes the hover thrust with zero body rates: what a commander would send to hold level."""

    type_name = "hover_thrust"
    outputs = (Port("command", ThrustRatesCommand, "/cmd_thrust_rates"),)
    default_rate_hz = 100.0

    def step(self, now: float, inputs: Mapping) -> Mapping:
        return {"command": ThrustRatesCommand(stamp=now, collective_thrust=0.027 * 9.81, body_rates=np.zeros(3))}


@pytest.mark.parametrize("with_commander", [True, False], ids=["commanded", "command missing: brakes"])
def test_rate_controller_holds_level_flight(with_commander: bool) -> None:
    sim = make_plan(load_config(CONFIG, ["scenario=quadrotor_hover"])).instantiate()[0]
    rates = QuadrotorRateController("rates", InnerLoopParams(), rate_hz=240)
    nodes = [sim, *([HoverThrust("commander")] if with_commander else []), rates]
    positions = odometry(nodes, 2.0)
    assert abs(positions[-1][2] - positions[0][2]) < 0.05
    assert (rates.braking_ticks == 0) == with_commander


def test_lqr_law_brings_the_drone_to_its_hover_point() -> None:
    overrides = [
        "scenario=null",
        "nodes.controller.params.law=lqr",
        "nodes.controller.params.reference=hover",
        "nodes.sim.params.initial_position_m=[0.3, -0.2, 0.8]",
        "nodes.sim.params.initial_motors=hover",
    ]
    positions = odometry(make_plan(load_config(CONFIG, overrides)).instantiate(), 4.0)
    settled = positions[240 * 2 :]  # after 2 s
    assert np.max(np.linalg.norm(settled - [0.0, 0.0, 1.0], axis=1)) < 0.02
