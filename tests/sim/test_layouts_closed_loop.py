"""Procedural layouts in the loop: drawn by the sim bridge at reset(seed), spawned in PyBullet, published, and run into."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pybullet
import pytest

from aegis.config import load_config
from aegis.runs.evaluation import Campaign, run_campaign
from aegis.executors.lockstep import LockstepExecutor
from aegis.launch_plan import bypass_overrides, make_plan
from aegis.scenario.layouts import draw_layout

REPO = Path(__file__).resolve().parents[2]
QUADROTOR = REPO / "hw_configs" / "quadrotor_oracle_sim.yaml"


def bodies(bridge) -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
    """(position, collision-shape dimensions) of every obstacle body the bridge has in PyBullet."""
    client = bridge.world.client
    out = []
    for body_id in bridge._obstacles.body_ids:
        position, _ = pybullet.getBasePositionAndOrientation(body_id, physicsClientId=client)
        dimensions = pybullet.getCollisionShapeData(body_id, -1, physicsClientId=client)[0][3]
        out.append((tuple(np.round(position, 9)), tuple(np.round(dimensions, 9))))
    return out


def plant_seed(seed: int, nodes: int) -> int:
    """The seed the lockstep executor's reset(seed) hands its first node (the plant)."""
    return int(np.random.SeedSequence(seed).spawn(nodes)[0].generate_state(1)[0])


@pytest.mark.parametrize("scenario", ["quadrotor_wall", "quadrotor_clutter"])
def test_every_reset_draws_the_seeds_layout_into_pybullet_and_onto_obstacles(scenario: str) -> None:
    nodes = make_plan(load_config(QUADROTOR, [f"scenario={scenario}"])).instantiate()
    bridge = nodes[0]
    published = []
    executor = LockstepExecutor(nodes, listeners=[lambda topic, msg, t: topic == "/obstacles" and published.append(msg)])
    try:
        executor.reset(3)
        first = bodies(bridge)
        assert bridge.obstacles == draw_layout(bridge.scenario, plant_seed(3, len(nodes)))
        assert [p for p, _ in first] == [tuple(np.round(o.position, 9)) for o in bridge.obstacles]
        executor.run(0.2)
        assert [tuple(o.position) for o in published[-1].obstacles] == [tuple(o.position) for o in bridge.obstacles]
        executor.reset(4)  # another episode: another layout, the old bodies gone
        assert bridge.obstacles == draw_layout(bridge.scenario, plant_seed(4, len(nodes))) and bodies(bridge) != first
        assert pybullet.getNumBodies(physicsClientId=bridge.world.client) == 1 + len(bridge.obstacles) + 1  # ground, robot
        executor.reset(3)
        assert bodies(bridge) == first
    finally:
        for node in nodes:
            if hasattr(node, "close"):
                node.close()


def test_a_reset_without_a_seed_draws_the_scenarios_own() -> None:
    bridge = make_plan(load_config(REPO / "hw_configs" / "husky_oracle_sim.yaml", ["scenario=husky_wall"])).instantiate()[0]
    try:
        bridge.reset()
        assert bridge.obstacles == draw_layout(bridge.scenario, bridge.scenario.seed)
    finally:
        bridge.close()


@pytest.mark.parametrize(
    ("config", "scenario", "episodes"), [("quadrotor_oracle_sim.yaml", "quadrotor_clutter", 3), ("husky_oracle_sim.yaml", "husky_gaps", 2)]
)
def test_without_the_filter_the_robot_hits_the_layout_and_with_it_gets_through(config: str, scenario: str, episodes: int) -> None:
    path = REPO / "hw_configs" / config
    overrides = (f"scenario={scenario}",)
    filtered = run_campaign(Campaign(path, overrides, episodes, seed=900), workers=1)
    unfiltered_overrides = (*overrides, *bypass_overrides(load_config(path, overrides)))
    unfiltered = run_campaign(Campaign(path, unfiltered_overrides, episodes, seed=900), workers=1)
    assert all(row["collisions"] > 0 for row in unfiltered["episodes"])
    agg = filtered["aggregate"]
    assert agg["collisions"] == 0 and agg["min_barrier"] >= -1e-3
    assert agg["success_rate"] == 1.0  # the same layouts (same seeds), passed


FAMILIES = ("clutter", "gaps", "wall", "pocket")
SLICES = [*(("quadrotor_oracle_sim.yaml", family) for family in FAMILIES), *(("husky_oracle_sim.yaml", family) for family in FAMILIES)]


@pytest.mark.slow
@pytest.mark.parametrize(("config", "family"), SLICES)
def test_a_campaign_slice_per_family_is_safe_and_the_unfiltered_arm_collides(config: str, family: str) -> None:
    """10 episodes per family on seeds the campaign in docs/campaigns.md (0..) does not use: the filter never lets the robot
    touch, h >= -1e-3, and gets it through in at least 9 of 10 (the issue's 90 %); without it most of the first 5 collide
    (5, not 10: the unfiltered arm only shows that the layouts are a threat, and CI's 30 minutes are short).
    (Seed 1002 of the quadrotor's clutter reached h -0.0055 before the filter modelled the plant's lag and bias.)"""
    path = REPO / "hw_configs" / config
    kind = load_config(path).robot.kind
    from aegis.scenario import resolve_scenario_for

    overrides = (f"scenario={resolve_scenario_for(family, kind)}",)
    filtered = run_campaign(Campaign(path, overrides, 10, seed=1000), workers=1)
    unfiltered_overrides = (*overrides, *bypass_overrides(load_config(path, overrides)))
    unfiltered = run_campaign(Campaign(path, unfiltered_overrides, 5, seed=1000), workers=1)
    agg = filtered["aggregate"]
    assert agg["collisions"] == 0 and agg["min_barrier"] >= -1e-3 and agg["fallbacks"] == 0
    assert unfiltered["aggregate"]["episodes_with_collision"] >= 3
    assert agg["success_rate"] >= 0.9


def test_a_drone_held_in_front_of_a_window_post_escapes_around_it_and_without_the_escape_it_stays():
    """quadrotor_gaps seed 2 (20-episode campaign, seeds 0..19): the line runs past a window post's edge and the
    filter alone holds the drone there for good; the deadlock escape takes it round into the opening. The attitude
    loop's hover-thrust estimator stays off here, as when the case was found: with it on, the drone's path past the
    post differs and seeds 0..19 all succeed without the escape."""
    def episode(overrides: list[str]) -> dict:
        estimator_off = "nodes.attitude.params.hover_thrust.enabled=false"
        campaign = Campaign(QUADROTOR, ("scenario=quadrotor_gaps", estimator_off, *overrides), episodes=1, seed=2)
        return run_campaign(campaign)["episodes"][0]

    stuck = episode(["nodes.filter.params.deadlock_escape=null"])
    assert stuck["outcome"] == "deadlock" and stuck["collisions"] == 0
    freed = episode([])
    assert freed["outcome"] == "success" and freed["collisions"] == 0 and freed["deadlock_escapes"] >= 1
    assert freed["min_barrier"] > 0.0
