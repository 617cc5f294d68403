"""Ports fed by a LIST of topics (``many=True``): the contract, lockstep delivery, config errors, plan wiring, bags, ROS wiring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from aegis.runs.bag import BagRecorder, read_bag
from aegis.config import load_config
from aegis.config_files import ConfigError
from aegis.executors.lockstep import LockstepExecutor
from aegis.launch_plan import bypass_overrides, make_plan
from aegis.msgs import AccelCommand, RobotState, rosbags_types
from aegis.node import Node, Port, Received, resolve_topics

REPO = Path(__file__).resolve().parent.parent
SWARM = REPO / "hw_configs" / "quadrotor_swarm_sim.yaml"
ROBOTS = ("cf1", "cf2", "cf3", "cf4")


class Fanout(Node):
    """Test node: publishes one message per topic of its many output, its own index in x; leaves out those in ``quiet``."""

    type_name = "fanout"
    outputs = (Port("out", RobotState, ("/a", "/b", "/c"), many=True),)

    quiet: tuple[int, ...] = ()

    def step(self, now, inputs):
        return {"out": tuple(None if i in self.quiet else _state(now, float(i)) for i in range(len(self.topics["out"])))}


class Gather(Node):
    """Test node: records what its many input delivers."""

    type_name = "gather"
    inputs = (Port("many", RobotState, (), max_age_s=0.015, many=True),)

    def reset(self, seed=None):
        self.seen: list[tuple[float, tuple[Received | None, ...]]] = []

    def step(self, now, inputs):
        self.seen.append((now, inputs["many"]))
        return {}


class GatherOnAny(Gather):
    """Test node: steps on every message on any of its many input's topics."""

    type_name = "gather_on_any"
    trigger = "many"


def _state(now: float, x: float) -> RobotState:
    return RobotState(stamp=now, position=np.array([x, 0.0, 0.0]))


# --- the contract ------------------------------------------------------------------------------


def test_a_many_port_takes_a_tuple_of_absolute_topics_and_a_single_port_one_topic() -> None:
    assert Port("n", RobotState, ["/x", "/y"], many=True).topic == ("/x", "/y")
    assert Port("n", RobotState, (), many=True).topic == ()
    with pytest.raises(ValueError, match="a many port's topic is a tuple"):
        Port("n", RobotState, "/x", many=True)
    with pytest.raises(ValueError, match="'y' must be absolute"):
        Port("n", RobotState, ("/x", "y"), many=True)
    with pytest.raises(ValueError, match="must be absolute"):
        Port("n", RobotState, ("/x",))
    with pytest.raises(ValueError, match="one_per is for many ports"):
        Port("n", RobotState, "/x", one_per="robots")


def test_resolve_topics_takes_lists_for_many_ports_and_names_the_port_when_wrong() -> None:
    topics = resolve_topics(Gather, {"many": ["/p", "/q"]})
    assert topics == {"many": ("/p", "/q")}
    assert resolve_topics(Gather, {}) == {"many": ()}
    with pytest.raises(ValueError, match=r"gather\.many: takes a list of topics"):
        resolve_topics(Gather, {"many": "/p"})
    with pytest.raises(ValueError, match=r"gather\.many: entry 1: topic /p is listed twice"):
        resolve_topics(Gather, {"many": ["/p", "/p"]})
    with pytest.raises(ValueError, match=r"fanout\.out: entry 0: topic 'p' must be absolute"):
        resolve_topics(Fanout, {"out": ["p"]})


# --- lockstep ------------------------------------------------------------------------------------


def test_lockstep_delivers_a_tuple_in_list_order_with_none_for_never_received() -> None:
    fanout = Fanout("fanout", rate_hz=100.0)
    fanout.quiet = (1,)  # nothing is ever published on /b
    gather = Gather("gather", rate_hz=100.0, topics={"many": ["/c", "/b", "/a", "/nobody"]})
    executor = LockstepExecutor([fanout, gather])
    executor.reset()
    executor.run(0.05)
    now, received = gather.seen[-1]
    c, b, a, nobody = received
    assert b is None and nobody is None
    assert (c.msg.position[0], a.msg.position[0]) == (2.0, 0.0)  # the list's order, not the publisher's
    assert c.age_s == 0.0 and not c.stale and c.msg.stamp == now


def test_each_topic_of_a_many_input_ages_on_its_own() -> None:
    fanout = Fanout("fanout", rate_hz=50.0, topics={"out": ["/a", "/b"]})  # every 20 ms
    gather = Gather("gather", rate_hz=100.0, topics={"many": ["/a", "/b"]})  # every 10 ms, bound 15 ms
    executor = LockstepExecutor([fanout, gather])
    executor.reset()
    executor.run(0.02)
    (t0, first), (t1, second) = gather.seen
    assert [r.age_s for r in first] == [0.0, 0.0] and [r.age_s for r in second] == [0.01, 0.01]
    fanout.quiet = (1,)  # from now on only /a is published: /b ages past the bound
    executor.run(0.06)
    *_, (_, last) = gather.seen
    assert not last[0].stale and last[1].stale and last[1].age_s > 0.015


def test_a_many_output_publishes_each_message_on_its_own_topic_and_none_publishes_nothing() -> None:
    fanout = Fanout("fanout", rate_hz=10.0)
    fanout.quiet = (2,)
    published: list[tuple[str, float]] = []
    executor = LockstepExecutor([fanout], listeners=[lambda topic, msg, t: published.append((topic, float(msg.position[0])))])
    executor.reset()
    executor.run(0.1)
    assert published == [("/a", 0.0), ("/b", 1.0)]


def test_a_many_output_of_the_wrong_length_is_a_wiring_error() -> None:
    class Short(Fanout):
        def step(self, now, inputs):
            return {"out": (_state(now, 0.0),)}

    executor = LockstepExecutor([Short("short", rate_hz=10.0)])
    executor.reset()
    with pytest.raises(ValueError, match="returned 1 messages on 'out', which has 3 topics"):
        executor.run(0.1)


def test_a_trigger_on_a_many_input_steps_on_a_message_on_any_of_its_topics() -> None:
    fanout = Fanout("fanout", rate_hz=10.0)
    fanout.quiet = (0,)
    gather = GatherOnAny("gather", topics={"many": ["/a", "/b", "/c"]})
    executor = LockstepExecutor([fanout, gather])
    executor.reset()
    executor.run(0.1)
    assert len(gather.seen) == 2  # /b and /c, one step each
    _, received = gather.seen[-1]
    assert received[0] is None and received[2].msg.position[0] == 2.0


def test_a_bag_records_every_topic_of_a_many_output(tmp_path: Path) -> None:
    with BagRecorder(tmp_path / "bag") as recorder:
        executor = LockstepExecutor([Fanout("fanout", rate_hz=10.0)], listeners=[recorder.write])
        executor.reset()
        executor.run(0.2)
    events = list(read_bag(tmp_path / "bag"))
    assert sorted({topic for _, topic, _ in events}) == ["/a", "/b", "/c"]
    assert [float(m.position[0]) for _, topic, m in events if topic == "/c"] == [2.0, 2.0]


# --- hw_config and launch plan --------------------------------------------------------------------


def write_swarm(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load(SWARM.read_text())
    raw["scenario"] = str(REPO / "scenarios" / "quadrotor_swarm_cross.yaml")
    mutate(raw)
    path = tmp_path / "swarm.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("node", "port", "value", "problem"),
    [
        ("cf1_filter", "neighbours", "/cf2/odom", "takes a list of topics (a many port)"),
        ("cf1_filter", "neighbours", ["/cf2/odom", "cf3/odom"], "entry 1: topic 'cf3/odom' must be absolute"),
        ("cf1_filter", "neighbours", ["/cf2/odom", "/cf2/odom"], "entry 1: topic /cf2/odom is listed twice"),
        ("cf1_filter", "state", ["/cf1/odom"], "takes one topic, not a list (state is not a many port)"),
        ("sim", "state", ["/cf1/odom", "/cf2/odom", "/cf3/odom"], "needs 4 topics, one per entry of robots (cf1, cf2, cf3, cf4), got 3"),
    ],
)
def test_a_bad_topic_list_is_refused_naming_the_key(tmp_path: Path, node: str, port: str, value: Any, problem: str) -> None:
    path = write_swarm(tmp_path, lambda raw: raw["nodes"][node]["topics"].update({port: value}))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"nodes.{node}.topics.{port}: {problem}" in str(err.value)


def test_a_one_per_port_left_at_its_default_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = write_swarm(tmp_path, lambda raw: raw["nodes"]["sim"]["topics"].pop("command"))
    with pytest.raises(ConfigError, match=r"nodes\.sim\.topics\.command: needs 4 topics.*got 0"):
        load_config(path)


def test_every_topic_of_a_many_port_counts_in_the_plan_wiring(tmp_path: Path) -> None:
    plan = make_plan(load_config(SWARM))
    assert plan.warnings == ()
    sim, cf1_filter = plan.nodes[0], next(n for n in plan.nodes if n.name == "cf1_filter")
    assert sim.outputs["state"] == tuple(f"/{r}/odom" for r in ROBOTS)
    assert cf1_filter.inputs["neighbours"] == ("/cf2/odom", "/cf3/odom", "/cf4/odom")

    unheard = make_plan(load_config(SWARM, ['nodes.cf1_filter.topics.neighbours=["/cf2/odom", "/cf9/odom"]']))
    assert unheard.warnings == ("cf1_filter.neighbours subscribes to /cf9/odom, which no node in this config publishes",)

    twice = write_swarm(tmp_path, lambda raw: raw["nodes"]["cf1_controller"]["topics"].update(reference="/cf2/odom"))
    with pytest.raises(ConfigError, match=r"topic /cf2/odom: published by both sim\.state and cf1_controller\.reference"):
        make_plan(load_config(twice))


class CommandWatch(Node):
    """Test node: reads several robots' acceleration commands in one many port."""

    type_name = "command_watch"
    inputs = (Port("commands", AccelCommand, (), many=True),)
    default_rate_hz = 10.0

    def step(self, now, inputs):
        return {}


def test_bypassing_the_filters_rewires_each_entry_of_a_many_input_that_read_a_safe_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from aegis import registry

    monkeypatch.setitem(registry.NODE_TYPES, "command_watch", f"{__name__}:CommandWatch")
    # a swarm chain without supervisors, each attitude loop reading its filter, and a watch reading two filtered commands
    unsupervised = [f"nodes.{r}_supervisor.enabled=false" for r in ROBOTS] + [
        f"nodes.{r}_attitude.topics.acceleration=/{r}/cmd_accel_filtered" for r in ROBOTS
    ]
    watch = [
        *unsupervised,
        'nodes.watch={type: command_watch, topics: {commands: ["/cf1/cmd_accel_filtered", "/cf2/cmd_accel_nominal", "/cf3/cmd_accel_filtered"]}}',
    ]
    config = load_config(SWARM, watch)
    overrides = bypass_overrides(config)
    assert 'nodes.watch.topics.commands=["/cf1/cmd_accel_nominal", "/cf2/cmd_accel_nominal", "/cf3/cmd_accel_nominal"]' in overrides
    assert "nodes.cf3_attitude.topics.acceleration=/cf3/cmd_accel_nominal" in overrides
    assert overrides[-4:] == [f"nodes.{r}_filter.enabled=false" for r in ROBOTS]  # remaps first, then the disabled filters
    plan = make_plan(load_config(SWARM, [*watch, *overrides]))
    assert not [n for n in plan.nodes if n.type_name == "safety_filter"] and plan.warnings == ()
    assert next(n for n in plan.nodes if n.name == "watch").inputs["commands"] == (
        "/cf1/cmd_accel_nominal", "/cf2/cmd_accel_nominal", "/cf3/cmd_accel_nominal"
    )


# --- the ROS 2 adapter, through the fake rclpy in tests/fakes -------------------------------------


def test_ros_wiring_has_one_subscription_and_one_publisher_per_topic_of_a_many_port(fake_rclpy: None) -> None:
    from aegis.nodes.ros_adapter import RosNodeHost

    types = rosbags_types("jazzy")
    plan = make_plan(load_config(SWARM))
    launches = {launch.name: launch for launch in plan.nodes}
    sim = RosNodeHost(launches["sim"], plan, types)
    flt = RosNodeHost(launches["cf1_filter"], plan, types)
    try:
        sim_node, filter_node = sim.ros_node, flt.ros_node
        assert [s.topic for s in sim_node.subscriptions] == [f"{r}/cmd_motors" for r in ROBOTS]
        odometry = [p for p in sim_node.publishers if p.topic.endswith("/odom")]
        assert [p.topic for p in odometry] == [f"{r}/odom" for r in ROBOTS]
        assert [s.topic for s in filter_node.subscriptions if s.topic.endswith("/odom") and s.topic != "cf1/odom"][-3:] == [
            "cf2/odom", "cf3/odom", "cf4/odom"
        ]

        sim_node.timers[0].callback()  # one physics tick: every robot's odometry, each on its own topic
        assert [len(p.published) for p in odometry] == [1, 1, 1, 1]
        assert [p.published[0].child_frame_id for p in odometry] == [f"{r}/base_link" for r in ROBOTS]

        by_topic = {s.topic: s for s in filter_node.subscriptions}
        by_topic["cf1/odom"].callback(odometry[0].published[0])
        by_topic["cf3/odom"].callback(odometry[2].published[0])  # cf3 heard, cf2 and cf4 not yet
        filter_node.timers[0].callback()
        report = next(p for p in filter_node.publishers if p.topic == "cf1/safety_filter/report").published[-1]
        assert "neighbours: 2 unknown" in report.status[0].message  # cf3's odometry reached cf3's slot only
        assert flt.runner.node.metrics()["unknown_neighbour_ticks"] == 2
    finally:
        sim.runner.node.close()
        sim.destroy()
        flt.destroy()


def test_the_runner_converts_a_many_output_and_refuses_a_wrong_count(fake_rclpy: None) -> None:
    from aegis.ros_shell import NodeRunner

    errors: list[str] = []
    fanout = Fanout("fanout", rate_hz=10.0)
    fanout.quiet = (1,)
    runner = NodeRunner(fanout, rosbags_types("jazzy"), errors.append)
    outputs = runner.tick(0)
    a, b, c = outputs["out"]
    assert b is None and a.__msgtype__ == c.__msgtype__ == "nav_msgs/msg/Odometry"

    fanout.step = lambda now, inputs: {"out": (_state(now, 0.0),)}
    assert runner.tick(1) is None and runner.step_errors == 1
    assert "must be a sequence of 3 messages" in errors[-1]


def test_the_runner_latches_each_topic_of_a_many_input_apart(fake_rclpy: None) -> None:
    from aegis.ros_shell import NodeRunner

    types = rosbags_types("jazzy")
    gather = Gather("gather", rate_hz=10.0, topics={"many": ["/p", "/q"]})
    gather.reset()
    runner = NodeRunner(gather, types, lambda text: None)
    runner.receive("many", _state(0.0, 7.0).to_ros(types), 1_000_000, index=1)
    runner.tick(2_000_000)
    _, (p, q) = gather.seen[-1]
    assert p is None and q.msg.position[0] == 7.0 and q.age_s == 0.002  # from its stamp (0), not its arrival (1 ms)


def test_aegis_check_json_lists_the_topics_of_a_many_port(capsys) -> None:
    from aegis.cli import main

    assert main(["check", str(SWARM), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    sim, cf1_filter = plan["nodes"][0], plan["nodes"][2]
    assert sim["outputs"]["state"] == [f"/{r}/odom" for r in ROBOTS]
    assert cf1_filter["inputs"]["neighbours"] == ["/cf2/odom", "/cf3/odom", "/cf4/odom"]
    assert plan["scenario"].endswith("quadrotor_swarm_cross.yaml")
