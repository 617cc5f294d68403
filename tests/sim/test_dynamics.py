"""Dynamics perturbations: the shipped sets, the file's checks, seeded draws, and that each knob really changes the plant."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from aegis.cli import main
from aegis.config import load_config
from aegis.config_files import ConfigError
from aegis.launch_plan import make_plan
from aegis.msgs import MotorSpeeds, WheelSpeeds
from aegis.node import Received
from aegis.sim.dynamics import NOMINAL, PARAMETERS, load_dynamics, resolve_dynamics, shipped_dynamics_names

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ["combined", "heavy", "latency_10ms", "light", "noisy", "nominal", "random", "slow_motors"]
DT = 1.0 / 240.0


def test_every_shipped_set_loads_and_says_what_it_is() -> None:
    assert shipped_dynamics_names() == SHIPPED
    for name in SHIPPED:
        dynamics = load_dynamics(resolve_dynamics(name))
        assert dynamics.description
    assert load_dynamics(resolve_dynamics("nominal")).draw(0) == NOMINAL
    combined = load_dynamics(resolve_dynamics("combined")).draw(0)
    assert combined.mass_scale == 1.3 and combined.motor_time_constant_scale == 2.0
    assert combined.sensing_latency_s == combined.actuation_latency_s == 0.01 and combined.sensor_noise_scale == 2.0


def test_same_seed_same_draw_and_ranges_are_respected() -> None:
    random = load_dynamics(resolve_dynamics("random"))
    assert random.draw(7) == random.draw(7)
    assert random.draw(7) != random.draw(8)
    draws = [random.draw(seed) for seed in range(50)]
    masses = [d.mass_scale for d in draws]
    assert 0.7 <= min(masses) < 0.8 and 1.2 < max(masses) <= 1.3
    assert all(0.0 <= d.actuation_latency_s <= 0.01 and d.thrust_coeff_scale == 1.0 for d in draws)
    assert list(draws[0].as_dict()) == list(PARAMETERS)


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("mass_scal: 1.2\n", "mass_scal", "unknown key"),
        ("mass_scale: {low: 1.3, high: 0.7}\n", "mass_scale", "above high"),
        ("mass_scale: 0\n", "mass_scale", "greater than 0"),  # a plain number: its problem once, at its key
        ("mass_scale: {low: 0, high: 1}\n", "mass_scale.low", "greater than 0"),
        ("actuation_latency_s: -0.01\n", "actuation_latency_s", "greater than or equal to 0"),
        ("actuation_latency_s: 5\n", "actuation_latency_s", "less than or equal to 1"),
        ("sensor_noise_scale: {low: 1.0, hihg: 2.0}\n", "sensor_noise_scale.hihg", "unknown key"),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_and_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"{path}: {key}: .*{problem}"):
        load_dynamics(path)


def test_cli_refuses_a_bad_set_or_file_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "quadrotor_oracle_sim", "--dynamics", "heavvy", "--out", str(tmp_path / "a")]) == 2
    error = capsys.readouterr().err
    assert "heavvy: no such dynamics file, nor a shipped set" in error and "did you mean heavy?" in error
    bad = tmp_path / "bad.yaml"
    bad.write_text("mass_scale: 1.2\nlatency_s: 0.01\n")
    assert main(["eval", "husky_oracle_sim", "--dynamics", str(bad), "--episodes", "1"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{bad}: latency_s: unknown key" in error
    model = REPO / "models" / "quadrotor_tracking.onnx"
    assert main(["model", "judge", str(model), str(model), "--dynamics", "slow_motor", "--episodes", "1"]) == 2
    assert "did you mean slow_motors?" in capsys.readouterr().err
    assert main(["train", str(REPO / "hw_configs" / "quadrotor_mpc_sim.yaml"), "--out", str(tmp_path / "p.onnx"), "--dynamics", str(bad)]) == 2
    assert f"{bad}: latency_s: unknown key" in capsys.readouterr().err
    assert main(["sim", "point_mass_sim", "--dynamics", "heavy", "--out", str(tmp_path / "b")]) == 2
    assert "the plant 'plant' (double_integrator) takes no dynamics perturbations" in capsys.readouterr().err


def test_a_ground_robot_refuses_what_it_has_no_meaning_for(tmp_path: Path) -> None:
    thrust = tmp_path / "thrust.yaml"
    thrust.write_text("thrust_coeff_scale: 1.1\n")
    with pytest.raises(ConfigError, match="thrust_coeff_scale: a ground robot has no thrust_coeff"):
        load_config(REPO / "hw_configs" / "husky_oracle_sim.yaml", [f"nodes.sim.params.dynamics={thrust}"])


def bridge(config: str, *overrides: str, seed: int = 0):
    node = make_plan(load_config(REPO / "hw_configs" / config, list(overrides))).instantiate()[0]
    node.reset(seed)
    return node


def hold(bridge_node, command, steps: int) -> list[np.ndarray]:
    """Step the bridge with a fresh ``command`` each tick; the motor speeds after each step."""
    speeds = []
    for k in range(steps):
        bridge_node.step(k * DT, {"command": Received(command, 0.0, False)})
        speeds.append(bridge_node.world.motor_speeds.copy())
    return speeds


def dynamics_override(name: str) -> str:
    return f"nodes.sim.params.dynamics={resolve_dynamics(name)}"


def test_mass_changes_the_hover_sag() -> None:
    climbs = {}
    for name in ("light", "nominal", "heavy"):
        quad = bridge("quadrotor_oracle_sim.yaml", "scenario=quadrotor_hover", dynamics_override(name))
        try:
            hover = MotorSpeeds(stamp=0.0, frame_id="", velocities=np.full(4, quad.world.model.hover_motor_speed))
            start = quad.world.position[2]
            hold(quad, hover, 48)  # 0.2 s at the nominal model's hover speed
            climbs[name] = quad.world.position[2] - start
        finally:
            quad.close()
    # thrust = nominal weight: a(mass x s) = g (1/s - 1); z = a t^2 / 2 = 9.81 (1/s - 1) 0.02
    assert climbs["nominal"] == pytest.approx(0.0, abs=1e-4)
    assert climbs["light"] == pytest.approx(9.81 * (1 / 0.7 - 1) * 0.02, rel=0.1)
    assert climbs["heavy"] == pytest.approx(9.81 * (1 / 1.3 - 1) * 0.02, rel=0.1)


def test_rotor_constants_drag_and_the_wheel_torque_reach_the_worlds(tmp_path: Path) -> None:
    """thrust_coeff_scale, torque_coeff_scale and drag_scale each scale their own constant of the quadrotor's world;
    torque_coeff_scale and motor_time_constant_scale reach the ground robot's (its torque limit and its wheel lag)."""
    rotors = tmp_path / "rotors.yaml"
    rotors.write_text("thrust_coeff_scale: 1.1\ntorque_coeff_scale: 0.8\ndrag_scale: 1.5\n")
    quad = bridge("quadrotor_oracle_sim.yaml", "scenario=quadrotor_hover", f"nodes.sim.params.dynamics={rotors}")
    nominal = bridge("quadrotor_oracle_sim.yaml", "scenario=quadrotor_hover")
    try:
        np.testing.assert_allclose(quad.world._mix[:3], 1.1 * nominal.world._mix[:3])
        np.testing.assert_allclose(quad.world._mix[3], 0.8 * nominal.world._mix[3])
        np.testing.assert_allclose(quad.world._drag, 1.5 * np.asarray(nominal.world._drag))
    finally:
        quad.close()
        nominal.close()
    wheels = tmp_path / "wheels.yaml"
    wheels.write_text("torque_coeff_scale: 0.5\nmotor_time_constant_scale: 2.0\n")
    husky = bridge("husky_oracle_sim.yaml", f"nodes.sim.params.dynamics={wheels}")
    plain = bridge("husky_oracle_sim.yaml")
    try:
        np.testing.assert_allclose(husky.world._forces, 0.5 * np.asarray(plain.world._forces))
        assert husky.world._lag != plain.world._lag
    finally:
        husky.close()
        plain.close()


def test_actuation_latency_delays_the_first_motor_response_by_whole_physics_steps() -> None:
    responses = {}
    for latency in (0.0, 0.01, 0.02):
        quad = bridge(
            "quadrotor_oracle_sim.yaml", "scenario=quadrotor_hover", "nodes.sim.params.initial_motors=stopped",
            f"nodes.sim.params.actuation_latency_s={latency}", "nodes.sim.params.initial_position_m=[0, 0, 0.01]",
        )
        try:
            spin = MotorSpeeds(stamp=0.0, frame_id="", velocities=np.full(4, 1000.0))
            speeds = hold(quad, spin, 8)
            responses[latency] = next(k for k, s in enumerate(speeds) if s[0] > 0.0)
        finally:
            quad.close()
    assert responses == {0.0: 0, 0.01: 2, 0.02: 5}  # round(latency * 240 Hz) steps: 2.4 -> 2, 4.8 -> 5


def test_slow_motors_lag_by_the_scaled_time_constant() -> None:
    for name, scale in (("nominal", 1.0), ("slow_motors", 2.0)):
        quad = bridge("quadrotor_oracle_sim.yaml", "scenario=quadrotor_hover", "nodes.sim.params.initial_motors=stopped", dynamics_override(name))
        try:
            tau = quad.world.robot.quadrotor.motor_time_constant_s * scale
            speeds = hold(quad, MotorSpeeds(stamp=0.0, frame_id="", velocities=np.full(4, 1000.0)), 12)
            expected = 1000.0 * (1.0 - math.exp(-12 * DT / tau))
            assert speeds[-1][0] == pytest.approx(expected, rel=1e-9)
        finally:
            quad.close()
    for name, scale in (("nominal", 1.0), ("slow_motors", 2.0)):  # the Husky's wheel lag, nominal 50 ms
        husky = bridge("husky_oracle_sim.yaml", dynamics_override(name))
        try:
            tau = husky.world.robot.diff_drive.motor_time_constant_s * scale
            speeds = hold(husky, WheelSpeeds(stamp=0.0, frame_id="", velocities=np.array([5.0, 5.0])), 12)
            assert speeds[-1][0] == pytest.approx(5.0 * (1.0 - math.exp(-12 * DT / tau)), rel=1e-9)
        finally:
            husky.close()


def test_noise_and_sensing_latency_compose_with_the_bridge_and_the_draw_is_reported(tmp_path: Path) -> None:
    quad = bridge("quadrotor_oracle_sim.yaml", "scenario=quadrotor_hover", dynamics_override("combined"))
    try:
        assert quad._delay.latency_s == pytest.approx(0.01)
        assert quad._noise.position_std_m == pytest.approx(2 * 0.002)  # twice the nominal Crazyflie figure
        assert quad._actuation.steps == 2
        assert quad.dynamics_drawn["set"] == "combined" and quad.dynamics_drawn["mass_scale"] == 1.3
    finally:
        quad.close()
    assert main(["sim", "quadrotor_oracle_sim", "--scenario", "quadrotor_hover", "--duration", "0.5", "--dynamics", "random",
                 "--seed", "3", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["dynamics"]["set"] == "random" and 0.7 <= summary["dynamics"]["mass_scale"] <= 1.3
    assert summary["crashes"] == 0 and summary["outcome"] in ("success", "goal_missed")
