"""The quadrotor_scenario_mpc node: hypotheses built from an /obstacles message, no plan on stale obstacles, registered with typed params."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from aegis.config import load_config
from aegis.launch_plan import make_plan
from aegis.msgs import Obstacle, Obstacles, RobotState
from aegis.node import Received
from aegis.nodes.scenario_mpc import OUT_OF_REACH_M, QuadrotorScenarioMpcParams, obstacle_hypotheses
from aegis.registry import node_class

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "hw_configs" / "quadrotor_scenario_sim.yaml"


def cylinder(id_: int, x: float, y: float, diameter: float, sigma: float) -> Obstacle:
    return Obstacle(id=id_, shape="cylinder", position=np.array([x, y, 2.0]), size=np.array([diameter, diameter, 4.0]), uncertainty_m=sigma)


def test_hypothesis_zero_is_the_estimate_and_the_others_move_by_k_sigma_first_toward_the_robot() -> None:
    message = Obstacles(obstacles=[cylinder(0, 2.0, 0.0, 0.4, 0.1)])
    centres, radii = obstacle_hypotheses(message, np.zeros(2), hypotheses=3, slots=1, sigmas=2.0, inflation_m=0.17)
    np.testing.assert_allclose(centres[:, 0], [[2.0, 0.0], [1.8, 0.0], [2.2, 0.0]], atol=1e-12)  # estimate, toward, away
    np.testing.assert_allclose(radii[:, 0], 0.2 + 0.17)
    five, _ = obstacle_hypotheses(message, np.zeros(2), hypotheses=5, slots=1, sigmas=1.0, inflation_m=0.0)
    np.testing.assert_allclose(five[1:, 0], [[1.9, 0.0], [2.0, -0.1], [2.1, 0.0], [2.0, 0.1]], atol=1e-12)  # around the spread


def test_the_nearest_obstacles_fill_the_slots_and_empty_slots_are_out_of_reach() -> None:
    message = Obstacles(obstacles=[cylinder(0, 5.0, 0.0, 0.2, 0.0), cylinder(1, 0.0, 1.0, 0.2, 0.05)])
    centres, radii = obstacle_hypotheses(message, np.zeros(2), hypotheses=2, slots=1, sigmas=2.0, inflation_m=0.0)
    np.testing.assert_allclose(centres[:, 0], [[0.0, 1.0], [0.0, 0.9]], atol=1e-12)  # only the nearer one
    empty, empty_radii = obstacle_hypotheses(Obstacles(), np.array([1.0, 1.0]), hypotheses=2, slots=2, sigmas=2.0, inflation_m=0.3)
    assert np.all(np.linalg.norm(empty - [1.0, 1.0], axis=-1) >= OUT_OF_REACH_M) and np.all(empty_radii == 0.0)


def test_a_wall_is_its_footprint_point_nearest_the_robot() -> None:
    yaw = math.pi / 2  # a 2 m wall along y, 0.1 m thick, centred at (1, 0)
    wall = Obstacle(id=0, shape="box", position=np.array([1.0, 0.0, 2.0]), size=np.array([2.0, 0.1, 4.0]),
                    orientation=np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]), uncertainty_m=0.02)
    centres, radii = obstacle_hypotheses(Obstacles(obstacles=[wall]), np.array([0.0, 0.5]), 2, 1, 1.0, 0.1)
    np.testing.assert_allclose(centres[:, 0], [[0.95, 0.5], [0.93, 0.5]], atol=1e-9)
    np.testing.assert_allclose(radii, 0.1)


def controller():
    nodes = make_plan(load_config(CONFIG)).instantiate()
    node = next(n for n in nodes if n.type_name == "quadrotor_scenario_mpc")
    node.reset(0)
    return node


def test_stale_missing_or_unusable_obstacles_publish_no_nominal_and_fresh_ones_do() -> None:
    node = controller()
    state = Received(RobotState(stamp=0.0, position=np.array([0.0, 0.0, 1.0])), 0.0, False)
    obstacles = Obstacles(obstacles=[cylinder(0, 1.0, 0.0, 0.2, 0.05)])
    bad = Obstacles(obstacles=[cylinder(0, 1.0, 0.0, 0.2, float("nan"))])
    for seen in (None, Received(obstacles, 0.3, True), Received(bad, 0.0, False)):
        out = node.step(0.0, {"state": state, "obstacles": seen})
        assert "nominal" not in out and "reference" in out
    assert node.stale_obstacle_ticks == 3 and node.metrics()["stale_obstacle_ticks"] == 3
    assert node.max_ages["obstacles"] == 0.25  # safety.stale_input_timeout_s, as the filter's
    out = node.step(0.0, {"state": state, "obstacles": Received(obstacles, 0.0, False)})
    assert np.all(np.isfinite(out["nominal"].linear)) and node.answers["backup"] == 0
    node.step(0.0, {"state": None, "obstacles": Received(obstacles, 0.0, False)})
    assert node.lost_state_ticks == 1


def test_registered_with_typed_params_that_refuse_unknown_keys() -> None:
    assert node_class("quadrotor_scenario_mpc").Params is QuadrotorScenarioMpcParams
    with pytest.raises(ValidationError, match="hypotheses_count"):
        QuadrotorScenarioMpcParams(hypotheses_count=3)
    with pytest.raises(ValidationError, match="shared_steps"):
        QuadrotorScenarioMpcParams(horizon=4, shared_steps=5)


def test_check_passes_and_lists_the_scenario_mpc() -> None:
    env = {**os.environ, "COLUMNS": "200"}  # rich's table at full width: type names not cut
    result = subprocess.run([sys.executable, "-m", "aegis.cli", "check", str(CONFIG)], capture_output=True, text=True, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr
    assert "quadrotor_scenario_mpc" in result.stdout
