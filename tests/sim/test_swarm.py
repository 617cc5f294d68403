"""Four quadrotors in one PyBullet world: the swarm bridge, and decentralized filtering proven in closed loop.

The shipped swarm (hw_configs/quadrotor_swarm_sim.yaml, scenario quadrotor_swarm_cross) sends four
Crazyflies through the centre of a square at once. With each robot's safety filter reading the
other three robots' odometry, no two bounding spheres ever overlap and every barrier stays >= 0;
the SAME episode without the filters collides: the filters are what keep them apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aegis.cli import main
from aegis.config import load_config
from aegis.executors.lockstep import LockstepExecutor
from aegis.launch_plan import bypass_overrides, make_plan
from aegis.msgs import MotorSpeeds
from aegis.node import EndRun, Received
from aegis.nodes.swarm_sim_bridge import SwarmSimBridge, SwarmSimBridgeParams
from aegis.scenario import load_scenario

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "hw_configs" / "quadrotor_swarm_sim.yaml"
SCENARIO = REPO / "scenarios" / "quadrotor_swarm_cross.yaml"
ROBOTS = ("cf1", "cf2", "cf3", "cf4")
SEED = 3


def run_swarm(overrides: list[str], duration_s: float | None = None) -> dict[str, Any]:
    """One lockstep episode of the swarm config: the plant's metrics, each filter's, and each robot's final odometry."""
    nodes = make_plan(load_config(CONFIG, overrides)).instantiate()
    executor = LockstepExecutor(nodes)
    try:
        executor.reset(SEED)
        executor.run(duration_s or load_scenario(SCENARIO).duration_s)
        return {
            "plant": nodes[0].metrics(),
            "filters": {n.name: n.metrics() for n in nodes if n.type_name == "safety_filter"},
            "final": {name: executor.latest(f"/{name}/odom")[0] for name in ROBOTS},
        }
    finally:
        nodes[0].close()


def test_the_filters_keep_every_pair_apart_and_without_them_the_same_episode_collides() -> None:
    filtered = run_swarm([])
    plant = filtered["plant"]
    contact = 2.0 * plant["body_radius_m"]
    assert plant["inter_robot_collisions"] == 0 and plant["collisions"] == 0
    assert plant["min_inter_robot_distance_m"] >= contact
    assert all(plant["robots"][name]["min_inter_robot_distance_m"] >= contact for name in ROBOTS)
    assert len(filtered["filters"]) == 4
    for name, metrics in filtered["filters"].items():
        assert metrics["min_barrier"] >= -1e-3, name
        assert metrics["fallbacks"] == 0 and metrics["filter_interventions"] > 0, name  # every command from the QP
        assert metrics["stale_neighbour_ticks"] == 0 and metrics["unknown_neighbour_ticks"] == 0, name
        assert metrics["unusable_obstacles_ticks"] == 0 and metrics["geofence_only_ticks"] == 0, name  # "none" is published too
    scenario = load_scenario(SCENARIO)
    for name in ROBOTS:  # and they still get where they were going
        goal = scenario.task(name).goal
        assert np.linalg.norm(filtered["final"][name].position - goal.position) <= goal.tolerance_m, name

    unfiltered = run_swarm(bypass_overrides(load_config(CONFIG)))
    assert unfiltered["filters"] == {}
    assert unfiltered["plant"]["inter_robot_collisions"] > 0
    assert unfiltered["plant"]["min_inter_robot_distance_m"] < contact


def make_bridge(robots: tuple[str, ...] = ROBOTS) -> SwarmSimBridge:
    topics = {"command": [f"/{r}/cmd_motors" for r in robots], "state": [f"/{r}/odom" for r in robots]}
    params = SwarmSimBridgeParams(scenario=SCENARIO, robots=robots)
    return SwarmSimBridge("sim", params, rate_hz=240.0, topics=topics)


def test_the_bridge_starts_each_robot_at_its_own_start_and_publishes_one_odometry_per_robot() -> None:
    bridge = make_bridge(("cf3", "cf1"))  # any subset, in any order: the topics follow the list
    bridge.reset(0)
    try:
        outputs = bridge.step(0.0, {"command": (None, None)})
        cf3, cf1 = outputs["state"]
        scenario = load_scenario(SCENARIO)
        np.testing.assert_allclose(cf3.position, scenario.task("cf3").start.position, atol=1e-9)
        np.testing.assert_allclose(cf1.position, scenario.task("cf1").start.position, atol=1e-9)
        assert (cf3.child_frame_id, cf1.child_frame_id) == ("cf3/base_link", "cf1/base_link")
        assert bridge.metrics()["min_inter_robot_distance_m"] == pytest.approx(np.linalg.norm(cf3.position - cf1.position))
    finally:
        bridge.close()


def test_each_robot_holds_its_own_command_and_is_cut_alone_when_it_stops() -> None:
    bridge = make_bridge(("cf1", "cf2"))
    bridge.reset(0)
    try:
        hover = np.full(4, bridge.world.model.hover_motor_speed)
        with pytest.raises(EndRun, match="cf2 crashed: hit the ground"):  # it falls and hits the ground: the run ends
            for tick in range(240):  # 1 s: cf1 commanded to hover every tick, cf2 never commanded
                now = tick / 240.0
                command = Received(MotorSpeeds(stamp=now, velocities=hover), 0.0, False)
                outputs = bridge.step(now, {"command": (command, None)})
        cf1, cf2 = outputs["state"]
        metrics = bridge.metrics()["robots"]
        assert metrics["cf1"]["command_timeouts"] == 0 and metrics["cf2"]["command_timeouts"] == 1
        assert metrics["cf1"]["crashes"] == 0 and metrics["cf2"]["crashes"] == 1
        assert abs(cf1.position[2] - 1.0) < 0.01  # hovers where it started
        assert cf2.position[2] < 0.5  # motors cut after 0.1 s: it fell
        assert 0.45 < bridge.crash_time_s < 0.6  # 0.1 s + a 1 m fall
    finally:
        bridge.close()


def test_bridge_parameters_are_checked_against_the_scenario(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"robots \['cf9'\] are not in .*quadrotor_swarm_cross.yaml \(its robots: cf1, cf2, cf3, cf4\)"):
        SwarmSimBridgeParams(scenario=SCENARIO, robots=("cf1", "cf9"))
    with pytest.raises(ValueError, match=r"robots \['cf1'\] listed twice"):
        SwarmSimBridgeParams(scenario=SCENARIO, robots=("cf1", "cf1"))
    with pytest.raises(ValueError, match="port 'state' needs 2 topics, one per entry of robots"):
        SwarmSimBridge("sim", SwarmSimBridgeParams(scenario=SCENARIO, robots=("cf1", "cf2")), topics={
            "command": ["/cf1/cmd_motors", "/cf2/cmd_motors"], "state": ["/cf1/odom"]})
    with pytest.raises(Exception, match="has several robots .*swarm_sim_bridge simulates several"):
        load_config(REPO / "hw_configs" / "quadrotor_oracle_sim.yaml", [f"scenario={SCENARIO}"])
    with pytest.raises(Exception, match=r"nodes\.cf1_controller\.params.*has no robot 'cf7'"):
        load_config(CONFIG, ["nodes.cf1_controller.params.scenario_robot=cf7"])


def test_aegis_sim_reports_every_robot_and_the_swarm(tmp_path: Path, capsys) -> None:
    out = tmp_path / "swarm"
    assert main(["sim", str(CONFIG), "--duration", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "swarm: 4 robots" in printed and "per robot" in printed and "min distance between robots" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["robots"]) == set(ROBOTS)
    for row in summary["robots"].values():
        for key in ("collisions", "inter_robot_collisions", "min_inter_robot_distance_m", "filter_interventions", "min_barrier",
                    "tracking_rmse_m", "final_goal_distance_m"):
            assert key in row
    for key in ("collisions", "inter_robot_collisions", "min_inter_robot_distance_m", "filter_interventions", "min_barrier"):
        assert key in summary
    assert summary["filter_interventions"] == sum(row["filter_interventions"] for row in summary["robots"].values())
    assert summary["unusable_obstacles_ticks"] == sum(row["unusable_obstacles_ticks"] for row in summary["robots"].values()) == 0
    assert summary["min_inter_robot_distance_m"] == min(r["min_inter_robot_distance_m"] for r in summary["robots"].values())
    assert (out / "plot.png").stat().st_size > 10_000 and (out / "bag" / "metadata.yaml").is_file()

    assert main(["sim", str(CONFIG), "--no-filter", "--duration", "3", "--out", str(tmp_path / "bare")]) == 0
    bare = json.loads((tmp_path / "bare" / "summary.json").read_text())
    assert "filter_interventions" not in bare and "safety filter" in capsys.readouterr().out
    assert bare["inter_robot_collisions"] > 0 and bare["collisions"] == bare["inter_robot_collisions"]
