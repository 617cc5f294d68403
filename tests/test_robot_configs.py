"""The deployment configs for real robots (hw_configs/*_robot_*.yaml) and the driver adapters they need.

Each config is checked as a user would (`aegis check`), its plan is pinned (nodes, types, process
groups, the driver's topics, the warnings naming what the driver must publish), robot.launch.py
builds it (run with stand-ins for launch/launch_ros, which are not installable here), and the
ROS 2 adapter hosts its composed process on the driver's topics and types (the fake rclpy in
tests/fakes). The adapter nodes are tested alone with fixed inputs; crazyswarm2's FullState goes
through CDR with its definition registered in a rosbags typestore.
"""

from __future__ import annotations

import json
import re
import math
import runpy
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aegis.cli import main
from aegis.config import load_config
from aegis.launch_plan import make_plan
from aegis.msgs import AccelCommand, RobotState, RosbagsTypes, TwistCommand, UnstampedTwist
from aegis.msgs.drivers import FULL_STATE_TYPE, FullStateSetpoint, register_full_state
from aegis.node import Received
from aegis.nodes.driver_adapters import CrazyflieFullState, CrazyflieOdometry, TwistToUnstamped
from aegis.ros_shell import COMPOSED_EXECUTABLE, process_descriptions

REPO = Path(__file__).resolve().parent.parent
ROBOT_CONFIGS = sorted((REPO / "hw_configs").glob("*_robot_*.yaml"))
HUSKY = ("husky_robot_cpu.yaml", "husky_robot_jetson.yaml")
CRAZYFLIE = ("crazyflie_robot_cpu.yaml", "crazyflie_robot_jetson.yaml")
SIM_NODE_TYPES = {"sim_bridge", "swarm_sim_bridge", "diff_drive_sim_bridge", "double_integrator"}


def _types() -> RosbagsTypes:
    """A jazzy typestore of its own with crazyswarm2's FullState registered (the shared one is left alone)."""
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    register_full_state(store)
    return RosbagsTypes("jazzy", store)


def test_one_config_per_robot_and_target() -> None:
    assert [p.name for p in ROBOT_CONFIGS] == sorted(HUSKY + CRAZYFLIE)


@pytest.mark.parametrize("path", ROBOT_CONFIGS, ids=lambda p: p.name)
def test_aegis_check_validates_a_robot_config_with_no_simulator(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(path), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    types_ = {n["type_name"] for n in plan["nodes"]}
    assert not types_ & SIM_NODE_TYPES
    assert plan["target"] == path.stem.rsplit("_", 1)[1] and plan["executor"] == "ros2" and not plan["use_sim_time"]
    assert {"supervisor", "diff_drive_supervisor"} & types_


@pytest.mark.parametrize("name", HUSKY)
def test_husky_plan_drives_clearpaths_topics(name: str) -> None:
    config = load_config(REPO / "hw_configs" / name)
    plan = make_plan(config)
    assert plan.namespace == "/a200_0000"
    assert [(n.name, n.type_name, n.process) for n in plan.nodes] == [
        ("controller", "diff_drive_policy", "control"),
        ("filter", "diff_drive_safety_filter", "control"),
        ("supervisor", "diff_drive_supervisor", "control"),
        ("cmd_vel_out", "twist_to_unstamped", "control"),
    ]
    nodes = {n.name: n for n in plan.nodes}
    assert {nodes[n].inputs["state"] for n in ("controller", "filter", "supervisor")} == {"/platform/odom/filtered"}
    assert nodes["supervisor"].inputs["estop"] == "/platform/emergency_stop"
    assert nodes["supervisor"].params["estop_required"] is True
    assert nodes["cmd_vel_out"].inputs["twist"] == nodes["supervisor"].outputs["command"] == "/aegis/cmd_vel"
    assert nodes["cmd_vel_out"].outputs["command"] == "/cmd_vel"
    assert nodes["filter"].params["obstacle_source"] == "none"  # no perception on main: declared, not pretended
    # what Clearpath's driver must publish is declared, so nothing is left to a warning
    assert plan.external_topics == ("/platform/odom/filtered", "/platform/emergency_stop") and plan.warnings == ()
    providers = config.inference.providers
    assert providers[-1] == "CPUExecutionProvider" and (len(providers) > 1) == name.endswith("jetson.yaml")


@pytest.mark.parametrize("name", CRAZYFLIE)
def test_crazyflie_plan_drives_crazyswarm2s_topics(name: str) -> None:
    plan = make_plan(load_config(REPO / "hw_configs" / name))
    assert plan.namespace == ""
    assert [(n.name, n.type_name, n.process) for n in plan.nodes] == [
        ("odometry", "crazyflie_odometry", "control"),
        ("controller", "quadrotor_policy", "control"),
        ("filter", "safety_filter", "control"),
        ("supervisor", "supervisor", "control"),
        ("setpoint", "crazyflie_full_state", "control"),
    ]
    nodes = {n.name: n for n in plan.nodes}
    assert nodes["odometry"].inputs["odom"] == "/cf231/odom" and nodes["odometry"].outputs["state"] == "/odom"
    assert nodes["setpoint"].inputs["command"] == nodes["supervisor"].outputs["command"] == "/cmd_accel"
    assert nodes["setpoint"].outputs["setpoint"] == "/cf231/cmd_full_state"
    assert nodes["setpoint"].msg_types["setpoint"] == "FullStateSetpoint"
    assert nodes["filter"].params["obstacle_source"] == "none" and nodes["filter"].params["imu_source"] == "none"
    assert plan.external_topics == ("/cf231/odom",) and plan.warnings == ()


class _Stub:
    """A stand-in launch action: keeps its arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


@pytest.fixture
def fake_launch(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Stand-ins for launch and launch_ros (not installable here): LaunchConfiguration reads ``arguments``."""
    arguments: dict[str, str] = {}

    class LaunchConfiguration:
        def __init__(self, name: str) -> None:
            self.name = name

        def perform(self, context: Any) -> str:
            return arguments[self.name]

    modules = {
        "launch": types.SimpleNamespace(LaunchDescription=_Stub),
        "launch.actions": types.SimpleNamespace(DeclareLaunchArgument=_Stub, LogInfo=_Stub, OpaqueFunction=_Stub),
        "launch.substitutions": types.SimpleNamespace(LaunchConfiguration=LaunchConfiguration),
        "launch_ros": types.SimpleNamespace(),
        "launch_ros.actions": types.SimpleNamespace(Node=_Stub),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    yield arguments


@pytest.mark.parametrize("name", HUSKY + CRAZYFLIE)
def test_robot_launch_file_builds_the_plan_of_a_robot_config(name: str, fake_launch: dict[str, str]) -> None:
    launch_file = runpy.run_path(str(REPO / "launch" / "robot.launch.py"))
    fake_launch["hw_config"] = name  # `ros2 launch aegis robot.launch.py hw_config:=<name>`: a shipped config by name
    actions = launch_file["_plan_actions"](context=None)
    logged = [a.kwargs["msg"] for a in actions if "msg" in a.kwargs]
    started = [a.kwargs for a in actions if "executable" in a.kwargs]
    path = REPO / "hw_configs" / name
    plan = make_plan(load_config(path))
    assert len(logged) == len(plan.warnings) and all("warning" in line for line in logged)
    assert started == [p.launch_kwargs() for p in process_descriptions(plan, path)]
    (control,) = started  # the whole chain composed in one process: messages between its nodes stay in it
    assert control["executable"] == COMPOSED_EXECUTABLE and control["exec_name"] == "control"
    assert control["arguments"] == ["--hw-config", str(path.resolve()), "--process", "control"]
    assert control["parameters"] == [{"use_sim_time": False}]
    assert control.get("namespace") == ("/a200_0000" if name.startswith("husky") else None)


def _endpoints(name: str) -> tuple[dict[str, str], dict[str, str]]:
    """(subscribed topic -> ROS type, published topic -> ROS type) of a robot config's hosted nodes, as rclpy sees them."""
    from aegis.nodes.ros_adapter import RosNodeHost

    plan = make_plan(load_config(REPO / "hw_configs" / name))
    hosts = [RosNodeHost(launch, plan, _types()) for launch in plan.nodes]
    subscribed = {s.topic: s.msg_type.__msgtype__ for h in hosts for s in h.ros_node.subscriptions}
    published = {p.topic: p.msg_type.__msgtype__ for h in hosts for p in h.ros_node.publishers}
    return subscribed, published


def test_the_husky_process_speaks_clearpaths_types_in_its_namespace(fake_rclpy: None) -> None:
    subscribed, published = _endpoints("husky_robot_cpu.yaml")
    assert subscribed["platform/odom/filtered"] == "nav_msgs/msg/Odometry"  # under /a200_0000 by the node's namespace
    assert subscribed["platform/emergency_stop"] == "std_msgs/msg/Bool"
    assert published["cmd_vel"] == "geometry_msgs/msg/Twist"  # what twist_mux's "external" input takes
    assert published["aegis/cmd_vel"] == "geometry_msgs/msg/TwistStamped"


def test_the_crazyflie_process_speaks_crazyswarm2s_types(fake_rclpy: None) -> None:
    subscribed, published = _endpoints("crazyflie_robot_cpu.yaml")
    assert subscribed["cf231/odom"] == "nav_msgs/msg/Odometry"
    assert published["cf231/cmd_full_state"] == FULL_STATE_TYPE


# --- the adapter nodes alone ------------------------------------------------------------------


def test_twist_to_unstamped_passes_the_planar_twist() -> None:
    node = TwistToUnstamped("cmd_vel_out", TwistToUnstamped.Params())
    assert node.step(0.1, {"twist": None}) == {}
    twist = TwistCommand(stamp=0.1, linear=[0.5, 0.2, 0.1], angular=[0.3, 0.2, -0.8])
    out = node.step(0.1, {"twist": Received(twist, 0.0, False)})["command"]
    assert isinstance(out, UnstampedTwist)
    assert out.linear.tolist() == [0.5, 0.0, 0.0] and out.angular.tolist() == [0.0, 0.0, -0.8]
    full = TwistToUnstamped("x", TwistToUnstamped.Params(planar=False)).step(0.1, {"twist": Received(twist, 0.0, False)})["command"]
    assert full.linear.tolist() == [0.5, 0.2, 0.1] and full.angular.tolist() == [0.3, 0.2, -0.8]


def _yawed(yaw: float, velocity_world=(1.0, 0.0, 0.0), position=(0.5, -0.25, 1.0)) -> RobotState:
    return RobotState(
        position=np.array(position), orientation=np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]),
        linear_velocity=np.array(velocity_world),
    )


def test_crazyflie_odometry_rotates_the_world_twist_into_the_body_frame() -> None:
    node = CrazyflieOdometry("odometry", CrazyflieOdometry.Params())
    out = node.step(2.0, {"odom": Received(_yawed(math.pi / 2), 0.0, False)})["state"]
    assert np.allclose(out.linear_velocity, [0.0, -1.0, 0.0])  # heading +y, moving +x in the world: to its right
    assert (out.frame_id, out.child_frame_id, out.stamp) == ("world", "base_link", 2.0)
    assert out.position.tolist() == [0.5, -0.25, 1.0]
    broken = _yawed(0.0)
    broken.orientation = np.array([0.0, 0.0, 0.0, 0.5])  # not a rotation: passed unrotated, the supervisor refuses it
    passed = node.step(2.0, {"odom": Received(broken, 0.0, False)})["state"]
    assert not passed.is_usable() and passed.linear_velocity.tolist() == [1.0, 0.0, 0.0]


def test_crazyflie_full_state_carries_the_gated_acceleration_at_the_current_state() -> None:
    node = CrazyflieFullState("setpoint", CrazyflieFullState.Params())
    accel = Received(AccelCommand(linear=[1.0, -2.0, 0.5], frame_id="odom"), 0.0, False)
    assert node.step(0.0, {"command": accel, "state": None}) == {}  # nothing before usable odometry
    body = RobotState(
        position=np.array([0.2, 0.1, 1.0]), orientation=np.array([0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4)]),
        linear_velocity=np.array([0.0, -1.0, 0.0]),  # body frame: to the right of a robot heading +y
    )
    sp = node.step(0.02, {"command": accel, "state": Received(body, 0.01, False)})["setpoint"]
    assert isinstance(sp, FullStateSetpoint)
    assert sp.position.tolist() == [0.2, 0.1, 1.0] and np.allclose(sp.velocity, [1.0, 0.0, 0.0])
    assert sp.acceleration.tolist() == [1.0, -2.0, 0.5] and sp.body_rates.tolist() == [0.0, 0.0, 0.0]
    assert np.allclose(sp.orientation, body.orientation)  # the heading of the first usable odometry, held
    turned = RobotState(position=np.array([0.3, 0.1, 1.0]), linear_velocity=np.zeros(3))
    again = node.step(0.04, {"command": accel, "state": Received(turned, 0.01, False)})["setpoint"]
    assert np.allclose(again.orientation, body.orientation)
    held = node.step(0.5, {"command": accel, "state": Received(turned, 0.46, True)})["setpoint"]  # odometry stale: hold
    assert held.position.tolist() == [0.3, 0.1, 1.0] and held.velocity.tolist() == [0.0] * 3 and held.acceleration.tolist() == [0.0] * 3
    assert node.hold_ticks == 1


def test_full_state_setpoint_round_trips_through_cdr_with_crazyswarm2s_definition() -> None:
    types_ = _types()
    msg = FullStateSetpoint(
        stamp=51.4375, frame_id="world", position=[1.0, 2.0, 3.0], orientation=[0.0, 0.0, 0.6, 0.8],
        velocity=[0.1, -0.2, 0.3], body_rates=[0.0, 0.0, 0.5], acceleration=[-1.0, 0.5, 9.0],
    )
    raw = types_.typestore.serialize_cdr(msg.to_ros(types_), FULL_STATE_TYPE)
    back = FullStateSetpoint.from_ros(types_.typestore.deserialize_cdr(raw, FULL_STATE_TYPE))
    for field in ("stamp", "frame_id", "position", "orientation", "velocity", "body_rates", "acceleration"):
        assert np.array_equal(getattr(back, field), getattr(msg, field)), field


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("ros.external_topics=[/platform/odom/filtered, /cmd_vel_filtered]",
         "topic /cmd_vel_filtered: listed in ros.external_topics (published outside the plan), but filter.command publishes it"),
        ("ros.external_topics=[/platform/odom/filtered, /platform/battery]",
         "topic /platform/battery: listed in ros.external_topics, but no node reads it"),
        ("ros.external_topics=[/platform/odom/filtered, /platform/odom/filtered]", "listed more than once: /platform/odom/filtered"),
    ],
)
def test_external_topics_are_refused_when_published_unread_or_repeated(override: str, message: str) -> None:
    from aegis.config_files import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        make_plan(load_config(REPO / "hw_configs" / "husky_robot_cpu.yaml", [override]))


@pytest.mark.parametrize("command", ["sim", "eval"])
def test_sim_and_eval_refuse_a_deployment_config_in_one_line(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "husky_robot_cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "a deployment config for a real robot" in err
    assert "hw_config:=husky_robot_cpu.yaml" in err and "/platform/odom/filtered" in err
