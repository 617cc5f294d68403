"""The launch plan keeps the safety filter and the supervisor in the command path: going around either is refused.

`aegis check`, `aegis sim` and `aegis eval` all build the plan, so all refuse such a config (exit 2,
one line per problem naming the nodes and topics); ``--no-filter`` leaves the filters out (the
supervisor stays) and is not refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aegis.cli import main
from aegis.config import load_config
from aegis.config_files import ConfigError
from aegis.launch_plan import bypass_overrides, make_plan
from aegis.registry import node_class

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted((REPO / "hw_configs").glob("*.yaml"))
QUADROTOR = REPO / "hw_configs" / "quadrotor_oracle_sim.yaml"
HUSKY = REPO / "hw_configs" / "husky_oracle_sim.yaml"
SWARM = REPO / "hw_configs" / "quadrotor_swarm_sim.yaml"


def refused(config: Path, *overrides: str) -> str:
    with pytest.raises(ConfigError) as info:
        make_plan(load_config(config, list(overrides)))
    return str(info.value)


@pytest.mark.parametrize(
    ("config", "override", "message"),
    [
        (QUADROTOR, "nodes.attitude.topics.acceleration=/cmd_accel_nominal",
         "attitude.acceleration reads /cmd_accel_nominal, the unfiltered command filter.nominal filters: the command goes around the filter"),
        (HUSKY, "nodes.wheels.topics.twist=/cmd_vel_nominal",
         "wheels.twist reads /cmd_vel_nominal, the unfiltered command filter.nominal filters: the command goes around the filter"),
        (QUADROTOR, "nodes.attitude.topics.acceleration=/cmd_accel_filtered",
         "attitude.acceleration reads /cmd_accel_filtered, the command supervisor.filtered gates, and no node reads /cmd_accel: the "
         "command goes around the supervisor"),
        (HUSKY, "nodes.wheels.topics.twist=/cmd_vel_filtered",
         "wheels.twist reads /cmd_vel_filtered, the command supervisor.filtered gates, and no node reads /cmd_vel"),
        (QUADROTOR, "nodes.supervisor.topics.filtered=/cmd_accel",
         "supervisor.filtered reads /cmd_accel, the gated command supervisor.command publishes: the supervisor reads its own output"),
        (SWARM, "nodes.cf3_attitude.topics.acceleration=/cf3/cmd_accel_filtered",
         "cf3_attitude.acceleration reads /cf3/cmd_accel_filtered, the command cf3_supervisor.filtered gates"),
        (QUADROTOR, "nodes.filter.topics.nominal=/cmd_accel_filtered",
         "filter.nominal reads /cmd_accel_filtered, the filtered command filter.command publishes: the filter reads its own output"),
        (HUSKY, "nodes.filter.topics.command=/cmd_vel_unused",
         "filter.command publishes the filtered command on /cmd_vel_unused, which no node reads"),
        (SWARM, "nodes.cf2_attitude.topics.acceleration=/cf1/cmd_accel_nominal",
         "cf2_attitude.acceleration reads /cf1/cmd_accel_nominal, the unfiltered command cf1_filter.nominal filters: "),
    ],
    ids=[
        "quadrotor-around", "husky-around", "quadrotor-around-supervisor", "husky-around-supervisor", "supervisor-reads-its-own-output",
        "swarm-one-robot-around-supervisor", "reads-its-own-output", "output-unread", "swarm-one-robot-around",
    ],
)
def test_a_plan_that_goes_around_the_filter_is_refused_naming_nodes_and_topics(config: Path, override: str, message: str) -> None:
    assert message in refused(config, override)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_keeps_its_filters_in_the_path_and_no_filter_still_plans(path: Path) -> None:
    config = load_config(path)
    make_plan(config)
    plan = make_plan(load_config(path, bypass_overrides(config)))
    assert not any(node_class(n.type_name).bypass for n in plan.nodes)


def test_check_and_sim_refuse_it_with_exit_2_and_one_line_per_problem(tmp_path: Path, capsys) -> None:
    override = "nodes.attitude.topics.acceleration=/cmd_accel_nominal"
    assert main(["check", str(QUADROTOR), "--set", override]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "goes around the filter" in lines[0] and "Traceback" not in lines
    assert "supervisor.command publishes the gated command on /cmd_accel, which no node reads" in lines[1]
    assert main(["sim", str(QUADROTOR), "--set", override, "--duration", "1", "--out", str(tmp_path / "run")]) == 2
    assert "goes around the filter" in capsys.readouterr().err and not (tmp_path / "run").exists()
    assert main(["eval", str(QUADROTOR), "--set", override, "--episodes", "1", "--workers", "1"]) == 2
    assert "goes around the filter" in capsys.readouterr().err
    assert main(["check", str(QUADROTOR), "--set", override, "--no-filter"]) == 2  # the nominal still goes around the supervisor
    assert "goes around the supervisor" in capsys.readouterr().err
    assert main(["check", str(QUADROTOR), "--no-filter", "--json"]) == 0
    assert "filter" not in [node["name"] for node in json.loads(capsys.readouterr().out)["nodes"]]


def test_a_filter_declared_without_obstacle_source_refuses_a_publisher_and_warns_of_none() -> None:
    message = refused(QUADROTOR, "nodes.filter.params.obstacle_source=none")
    assert "filter.obstacles: its parameters declare it absent, but sim.obstacles publishes /obstacles" in message
    plan = make_plan(load_config(QUADROTOR, ["nodes.filter.params.obstacle_source=none", "nodes.filter.topics.obstacles=/no_obstacles"]))
    assert plan.warnings == ()  # declared absent: no "nobody publishes" warning either
    assert make_plan(load_config(QUADROTOR, ["nodes.filter.topics.obstacles=/no_obstacles"])).warnings == (
        "filter.obstacles subscribes to /no_obstacles, which no node in this config publishes",
    )


@pytest.mark.parametrize(
    ("config", "override", "reader"),
    [
        (QUADROTOR, "nodes.controller.topics.state=/sim/ground_truth", "controller.state reads /sim/ground_truth, sim.truth's"),
        (HUSKY, "nodes.filter.topics.state=/sim/ground_truth", "filter.state reads /sim/ground_truth, sim.truth's"),
        (SWARM, "nodes.cf2_filter.topics.state=/cf2/ground_truth", "cf2_filter.state reads /cf2/ground_truth, sim.truth's"),
    ],
)
def test_a_node_reading_the_simulators_ground_truth_is_refused(config: Path, override: str, reader: str) -> None:
    """The ground truth is the referee's: a controller or filter acting on it would be judged on what it was given."""
    message = refused(config, override)
    assert reader in message and "referee" in message
