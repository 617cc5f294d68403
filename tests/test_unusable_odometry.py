"""Every node that turns odometry into a command refuses odometry it cannot trust: not finite, or a quaternion off unit norm.

The nodes that propose or filter a command (controllers, MPCs, policies, the filters) publish none,
whatever the robot; the nodes at the actuators (the attitude and rate loops, the wheel-level tracker,
the point mass's PID) take their documented blind fallback instead of a command computed from it.
tests/sim/test_input_fallbacks.py checks in closed loop that the actuators' staleness fallback then
brakes.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from aegis.config import load_config
from aegis.launch_plan import make_plan
from aegis.msgs import AccelCommand, Obstacles, RobotState, TwistCommand
from aegis.node import Node, Received

REPO = Path(__file__).resolve().parent.parent

HALF_NORM = RobotState(position=np.array([0.0, 0.0, 1.0]), orientation=np.array([0.0, 0.0, 0.0, 0.5]), linear_velocity=np.array([0.5, 0, 0]))
SLIGHTLY_OFF = RobotState(position=np.array([0.0, 0.0, 1.0]), orientation=np.array([0.0, 0.0, 0.0012, 1.0011]))
NAN_VELOCITY = RobotState(position=np.array([0.0, 0.0, 1.0]), linear_velocity=np.array([0.0, np.nan, 0.0]))
GOOD = RobotState(position=np.array([0.0, 0.0, 1.0]), orientation=np.array([0.0, 0.0, 0.0009, 1.0]))
BAD = {"half-norm": HALF_NORM, "norm-off-by-1.1e-3": SLIGHTLY_OFF, "nan-velocity": NAN_VELOCITY}


@cache
def node(config: str, name: str) -> Node:
    launch = next(n for n in make_plan(load_config(REPO / "hw_configs" / f"{config}.yaml")).nodes if n.name == name)
    instance = launch.instantiate()
    instance.reset(0)
    return instance


def inputs(state: RobotState) -> dict[str, Received]:
    fresh = {"state": Received(state, 0.0, False), "obstacles": Received(Obstacles(), 0.0, False)}
    fresh["nominal"] = Received(AccelCommand(linear=np.array([0.5, 0.0, 0.0])), 0.0, False)
    fresh["twist_nominal"] = Received(TwistCommand(linear=np.array([0.5, 0.0, 0.0])), 0.0, False)
    return fresh


PROPOSERS = [
    ("quadrotor_classical_sim", "controller", "nominal"),  # quadrotor_position_controller
    ("quadrotor_oracle_sim", "controller", "nominal"),  # quadrotor_policy
    ("quadrotor_mpc_sim", "controller", "nominal"),  # quadrotor_mpc
    ("husky_oracle_sim", "controller", "nominal"),  # diff_drive_twist_controller
    ("husky_policy_sim", "controller", "nominal"),  # diff_drive_policy
    ("husky_mpc_sim", "controller", "nominal"),  # diff_drive_mpc
    ("quadrotor_oracle_sim", "filter", "command"),  # safety_filter
    ("husky_oracle_sim", "filter", "command"),  # diff_drive_safety_filter
]


@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
@pytest.mark.parametrize(("config", "name", "output"), PROPOSERS, ids=[f"{c}.{n}" for c, n, _ in PROPOSERS])
def test_a_node_proposing_or_filtering_a_command_publishes_none_from_unusable_odometry(config: str, name: str, output: str, bad) -> None:
    instance = node(config, name)
    given = inputs(bad)
    if instance.type_name == "diff_drive_safety_filter":
        given["nominal"] = given["twist_nominal"]
    assert output not in instance.step(1.0, given)
    given["state"] = Received(GOOD, 0.0, False)  # within 1e-3 of unit norm: used
    assert output in instance.step(1.0 + 1.0 / instance.rate_hz, given)


ACTUATOR_SIDE = [
    ("quadrotor_oracle_sim", "attitude", "command"),  # quadrotor_attitude_controller: equal rotor speeds below hover
    ("quadrotor_cascade_sim", "controller", "command"),  # quadrotor_controller: the same
    ("husky_tracking_sim", "controller", "command"),  # diff_drive_controller: zero wheel speeds
    ("point_mass_sim", "controller", "command"),  # pid: zero acceleration
]


@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
@pytest.mark.parametrize(("config", "name", "output"), ACTUATOR_SIDE, ids=[f"{c}.{n}" for c, n, _ in ACTUATOR_SIDE])
def test_a_node_at_the_actuators_takes_its_blind_fallback_on_unusable_odometry(config: str, name: str, output: str, bad) -> None:
    instance = node(config, name)
    given = {"state": Received(bad, 0.0, False), "acceleration": inputs(bad)["nominal"]}
    blind = instance.step(1.0, {"state": None, "acceleration": given["acceleration"]})[output]
    values = instance.step(1.0, given)[output]
    assert np.all(np.isfinite(_numbers(values)))
    np.testing.assert_array_equal(_numbers(values), _numbers(blind))


def _numbers(msg) -> np.ndarray:
    return np.asarray(msg.velocities if hasattr(msg, "velocities") else msg.linear, dtype=float)
