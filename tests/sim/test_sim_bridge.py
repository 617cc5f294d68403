"""The shared sim bridge: obstacles published as perceived, jittered per episode seed, where PyBullet has them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pybullet

from aegis.config import load_config
from aegis.executors.lockstep import LockstepExecutor
from aegis.launch_plan import make_plan
from aegis.msgs import Obstacles

REPO = Path(__file__).resolve().parents[2]
ADVERSARIAL = ["scenario=quadrotor_adversarial", "nodes.sim.params.randomize=true"]


def bridge_after_reset(seed: int, *overrides: str):
    nodes = make_plan(load_config(REPO / "hw_configs" / "quadrotor_oracle_sim.yaml", [*ADVERSARIAL, *overrides])).instantiate()
    nodes[0].reset(seed)
    return nodes[0]


def test_obstacles_are_jittered_per_seed_within_the_range_and_moved_in_pybullet() -> None:
    first, again, other = bridge_after_reset(1), bridge_after_reset(1), bridge_after_reset(2)
    try:
        nominal = np.array([o.position for o in first.scenario.obstacles])
        jittered = np.array([o.position for o in first.obstacles])
        shift = jittered - nominal
        assert np.all(np.abs(shift[:, :2]) <= 0.15) and np.all(shift[:, 2] == 0.0) and np.any(shift != 0.0)
        assert jittered.tolist() == [list(o.position) for o in again.obstacles]
        assert jittered.tolist() != [list(o.position) for o in other.obstacles]
        for body_id, obstacle in zip(first._obstacles.body_ids, first.obstacles):
            position, _ = pybullet.getBasePositionAndOrientation(body_id, physicsClientId=first.world.client)
            np.testing.assert_allclose(position, obstacle.position, atol=1e-12)
    finally:
        for bridge in (first, again, other):
            bridge.close()


def test_obstacles_topic_carries_the_obstacles_at_its_rate() -> None:
    nodes = make_plan(load_config(REPO / "hw_configs" / "quadrotor_oracle_sim.yaml", [*ADVERSARIAL])).instantiate()
    published: list[tuple[int, Obstacles]] = []
    executor = LockstepExecutor(nodes, listeners=[lambda topic, msg, t: topic == "/obstacles" and published.append((t, msg))])
    executor.reset(3)
    executor.run(1.0)
    nodes[0].close()
    assert [t for t, _ in published] == [round(k * 0.1 * 1e9) for k in range(10)]  # 10 Hz by default
    sent = [tuple(o.position) for o in published[-1][1].obstacles]
    assert sent == [tuple(o.position) for o in nodes[0].obstacles]


def run_recording(config: str, duration_s: float, seed: int, *overrides: str) -> tuple[list, dict[str, list]]:
    nodes = make_plan(load_config(REPO / "hw_configs" / config, list(overrides))).instantiate()
    seen: dict[str, list] = {}
    executor = LockstepExecutor(nodes, listeners=[lambda topic, msg, t: seen.setdefault(topic, []).append((t, msg))])
    executor.reset(seed)
    executor.run(duration_s)
    nodes[0].close()
    return nodes, seen


def test_lidar_on_the_husky_sees_the_pillar_at_its_distance() -> None:
    _, seen = run_recording(
        "husky_oracle_sim.yaml", 0.5, 0, "nodes.sim.params.lidar={num_beams: 180, rate_hz: 10, range_max_m: 8.0}"
    )
    scans = seen["/scan"]
    assert [t for t, _ in scans] == [0, 100_000_000, 200_000_000, 300_000_000, 400_000_000]  # 10 Hz
    scan = scans[0][1]
    assert scan.ranges.shape == (180,) and scan.ranges.dtype == np.float32
    finite = np.isfinite(scan.ranges)
    assert finite.any() and np.all(scan.ranges[finite] <= 8.0)
    # the nearest return is no closer than the nearest obstacle surface from the robot's centre, minus the mount offset
    odom = seen["/odom"][0][1]
    from aegis.scenario import clearance, load_scenario

    nearest = clearance(load_scenario(REPO / "scenarios" / "husky_goal.yaml").obstacles, odom.position + [0, 0, 0.3])
    assert scan.ranges[finite].min() >= nearest - 0.5


def test_latency_delays_odometry_and_keeps_measurement_stamps() -> None:
    _, seen = run_recording("quadrotor_oracle_sim.yaml", 0.2, 0, "nodes.sim.params.latency_s=0.025")
    odom = seen["/odom"]
    assert odom[0][0] == 25_000_000  # the first, measured at t = 0, arrives 25 ms (six 240 Hz steps) late
    for t_ns, msg in odom:
        assert abs(t_ns / 1e9 - msg.stamp - 0.025) < 1e-6  # stamped when measured, published later


def test_noise_is_seeded_and_scaled() -> None:
    noisy = "nodes.sim.params.noise={position_std_m: 0.01}"
    _, first = run_recording("quadrotor_oracle_sim.yaml", 0.1, 4, noisy)
    _, again = run_recording("quadrotor_oracle_sim.yaml", 0.1, 4, noisy)
    _, exact = run_recording("quadrotor_oracle_sim.yaml", 0.1, 4, "nodes.sim.params.noise={}")  # the shipped config's is nominal
    a = np.array([m.position for _, m in first["/odom"]])
    b = np.array([m.position for _, m in again["/odom"]])
    c = np.array([m.position for _, m in exact["/odom"]])
    assert a.tobytes() == b.tobytes()
    assert 0.003 < np.std(a - c) < 0.03  # noise of about 1 cm on top of the same flight's first 0.1 s
