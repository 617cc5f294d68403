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
    nodes = make_plan(load_config(REPO / "hw_configs" / "quadrotor_sim.yaml", [*ADVERSARIAL, *overrides])).instantiate()
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
    nodes = make_plan(load_config(REPO / "hw_configs" / "quadrotor_sim.yaml", [*ADVERSARIAL])).instantiate()
    published: list[tuple[int, Obstacles]] = []
    executor = LockstepExecutor(nodes, listeners=[lambda topic, msg, t: topic == "/obstacles" and published.append((t, msg))])
    executor.reset(3)
    executor.run(1.0)
    nodes[0].close()
    assert [t for t, _ in published] == [round(k * 0.1 * 1e9) for k in range(10)]  # 10 Hz by default
    sent = [tuple(o.position) for o in published[-1][1].obstacles]
    assert sent == [tuple(o.position) for o in nodes[0].obstacles]
