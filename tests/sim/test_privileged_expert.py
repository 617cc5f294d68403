"""The privileged expert (aegis train --privileged-expert): it is told the plant the simulator really draws, and uses it.

The quadrotor MPC's ``mass_ratio`` pre-scales its thrust vector so a loop built on the config's mass
realises its plan, and ``dead_time_s`` predicts the odometry over the latency; aegis.runs.privileged
reads both from the very draw the simulator makes at reset (same seed, same values).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aegis.config import load_config
from aegis.launch_plan import make_plan
from aegis.msgs import RobotState
from aegis.node import Received
from aegis.sim.dynamics import resolve_dynamics
from aegis.training.expert import expert_setup
from aegis.runs.privileged import privileged_values
from aegis.training.rollout import run_episode
from aegis.training.scenarios import Episode

REPO = Path(__file__).resolve().parents[2]
EXPERT = REPO / "hw_configs" / "quadrotor_mpc_sim.yaml"


def plant_overrides(dynamics: str, randomize: bool = True) -> list[str]:
    return [f"nodes.sim.params.dynamics={resolve_dynamics(dynamics).resolve()}", f"nodes.sim.params.randomize={str(randomize).lower()}"]


def test_the_plant_draw_is_what_reset_draws() -> None:
    sim = make_plan(load_config(EXPERT, plant_overrides("random"))).instantiate()[0]
    try:
        for seed in (3, 11):
            randomization, drawn = sim.plant_draw(seed)
            sim.reset(seed)
            assert sim.randomization == randomization and randomization["mass_scale"] != 1.0
            assert {k: v for k, v in sim.dynamics_drawn.items() if k != "set"} == drawn.as_dict()
    finally:
        sim.close()


def test_the_expert_is_told_the_mass_thrust_ratio_and_the_whole_latency() -> None:
    light = privileged_values(make_plan(load_config(EXPERT, plant_overrides("light", randomize=False))), seed=4)
    assert light == pytest.approx({"mass_ratio": 0.7, "dead_time_s": 0.0})
    plan = make_plan(load_config(EXPERT, plant_overrides("combined")))
    told = privileged_values(plan, seed=4)
    sim = plan.nodes[0].instantiate()
    from aegis.executors.graph import node_seeds

    r, d = sim.plant_draw(node_seeds(4, len(plan.nodes))[0])
    assert told["mass_ratio"] == pytest.approx(1.3 * r["mass_scale"] / r["motor_constant_scale"])
    # 10 ms of sensing on top of the scenario's draw; 10 ms of actuation in whole 240 Hz steps: 2 steps
    assert told["dead_time_s"] == pytest.approx(r["latency_s"] + 0.01 + 2 / 240)


def test_mass_ratio_scales_the_planned_thrust_vector_and_dead_time_plans_from_where_the_robot_will_be() -> None:
    def nominal(extra: list[str], state: RobotState) -> np.ndarray:
        node = make_plan(load_config(EXPERT, extra)).instantiate()[1]
        node.reset(0)
        return node.step(6.0, {"state": Received(state, 0.0, False)})["nominal"].linear

    state = RobotState(stamp=6.0, position=np.array([0.1, -0.2, 0.9]), linear_velocity=np.array([0.3, 0.1, -0.2]))
    plan = nominal([], state)
    g = np.array([0.0, 0.0, 9.81])
    np.testing.assert_allclose(nominal(["nodes.controller.params.mass_ratio=0.7"], state), 0.7 * (plan + g) - g, atol=1e-9)
    # a first tick has no plan before it: predicting over the dead time is moving on at the measured velocity
    ahead = RobotState(stamp=6.0, position=state.position + 0.02 * state.linear_velocity, linear_velocity=state.linear_velocity)
    np.testing.assert_allclose(nominal(["nodes.controller.params.dead_time_s=0.02"], state), nominal([], ahead), atol=1e-6)


@pytest.mark.slow
def test_a_told_expert_tracks_a_light_drone_as_well_as_a_nominal_one_where_the_untold_one_does_not() -> None:
    from aegis.training.pipeline import TrainSettings, plant_overrides_of

    def rmse(dynamics: str, privileged: bool) -> float:
        settings = TrainSettings(config=EXPERT, out=Path("unused.onnx"), dynamics=dynamics)
        setup = expert_setup(EXPERT, plant_overrides_of(settings), privileged=privileged)
        episodes = [run_episode(setup, Episode(setup.config.scenario, seed, 20.0, f"seed {seed}")) for seed in (0, 1)]
        assert all(e.collisions == 0 and e.crashes == 0 for e in episodes)
        return float(np.mean([e.tracking_rmse_m for e in episodes]))

    nominal = rmse("nominal", privileged=True)
    assert rmse("light", privileged=True) < 1.3 * nominal
    assert rmse("light", privileged=False) > 1.5 * nominal  # 30 % less mass: the untold expert climbs ~20 cm above its plan


def test_eval_flies_the_told_expert_and_refuses_a_config_without_one(capsys) -> None:
    from aegis.cli import main
    from aegis.runs.evaluation import Campaign, run_campaign

    light = tuple(plant_overrides("light")[:1])
    untold, told = (
        run_campaign(Campaign(EXPERT, light, episodes=1, seed=7, privileged_expert=p)) for p in (False, True)
    )
    assert told["privileged_expert"] is True and "privileged_expert" not in untold
    # 30 % lighter: the untold expert hovers ~20 cm above its reference, the told one on it
    assert told["aggregate"]["tracking_rmse_m"]["mean"] < 0.6 * untold["aggregate"]["tracking_rmse_m"]["mean"]
    assert main(["eval", "husky_mpc_sim", "--privileged-expert", "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert "husky_mpc_sim: --privileged-expert needs exactly one expert with parameters for the true plant" in err
    assert len(err.strip().splitlines()) == 1
