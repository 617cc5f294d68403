"""The ROS 2 shell without ROS: QoS, parameters, time, stepping, executables' arguments, launch processes, adapter wiring."""

from __future__ import annotations

import array
import ast
import importlib
import py_compile
import random
import subprocess
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pytest
from pydantic import BaseModel, Field

from aegis.config import load_config
from aegis.launch_plan import LaunchPlan, make_plan
from aegis.msgs import AccelCommand, RobotState, rosbags_types
from aegis.node import EndRun, Node, NodeParams, Port, Received
from aegis.registry import NODE_TYPES, node_class
from aegis.ros_shell import (
    COMPOSED_EXECUTABLE,
    InputLatch,
    NodeRunner,
    ParameterError,
    ParamType,
    SelectionError,
    apply_parameter_values,
    ns_to_seconds,
    parameter_descriptors,
    parse_executable_args,
    process_descriptions,
    publisher_qos,
    rclpy_missing_message,
    received,
    relative_topic,
    resolved_topic,
    ros_time_to_seconds,
    seconds_to_ros_time,
    select_node,
    select_process,
    split_ros_args,
    subscription_qos,
    timer_period_s,
)

REPO = Path(__file__).resolve().parent.parent
ROS_CONFIG = REPO / "hw_configs" / "point_mass_ros.yaml"
SIM_CONFIG = REPO / "hw_configs" / "point_mass_sim.yaml"
COMPOSE_CONTROL = "nodes.plant.process=control"
TYPES = rosbags_types("jazzy")


def plan_of(path: Path, *overrides: str) -> LaunchPlan:
    return make_plan(load_config(path, list(overrides)))


# --- wiring: QoS and topic names ------------------------------------------------------------


def test_qos_keeps_the_port_depth_publishers_reliable_subscriptions_best_effort() -> None:
    port = Port("scan", RobotState, "/scan", depth=5)
    assert publisher_qos(port).depth == 5 and subscription_qos(port).depth == 5
    assert publisher_qos(port).reliability == "reliable"
    assert subscription_qos(port).reliability == "best_effort"
    assert publisher_qos(port).history == "keep_last" and publisher_qos(port).durability == "volatile"


def test_qos_of_the_shipped_nodes_is_depth_one() -> None:
    for node in plan_of(ROS_CONFIG).instantiate():
        for port in (*node.inputs, *node.outputs):
            assert publisher_qos(port).depth == port.depth == 1


def test_topics_become_relative_so_the_namespace_applies() -> None:
    assert relative_topic("/odom") == "odom"
    assert relative_topic("/a/b") == "a/b"
    assert resolved_topic("/point_mass", "/odom") == "/point_mass/odom"
    assert resolved_topic("", "/odom") == "/odom"
    for bad in ("odom", "/"):
        with pytest.raises(ValueError, match="absolute"):
            relative_topic(bad)
    with pytest.raises(ValueError, match="namespace"):
        resolved_topic("point_mass", "/odom")


# --- parameters -----------------------------------------------------------------------------


def test_pid_params_become_read_only_ros_parameters_with_descriptions() -> None:
    controller = next(n for n in plan_of(ROS_CONFIG).nodes if n.name == "controller")
    params = {d.name: d for d in parameter_descriptors(node_class("pid").Params, controller.params)}
    assert list(params) == list(node_class("pid").Params.model_fields)
    setpoint = params["setpoint_m"]
    assert setpoint.type == ParamType.DOUBLE_ARRAY and setpoint.value == (1.0, 0.5, 0.0)
    assert all(isinstance(v, float) for v in setpoint.value)
    assert params["kp"].type == ParamType.DOUBLE
    assert params["kp"].constraints == ">= 0"
    assert params["accel_limit_mps2"].constraints == "> 0"
    assert all(d.description and d.read_only for d in params.values())
    assert "proportional gain" in params["kp"].description


def test_param_type_values_are_the_rcl_interfaces_constants() -> None:
    assert [t.value for t in ParamType] == list(range(10))
    assert ParamType.DOUBLE_ARRAY == 8 and ParamType.STRING_ARRAY == 9


class _Limits(BaseModel):
    max_speed: float = Field(2.0, description="speed bound (m/s)")
    axes: tuple[int, ...] = (0, 1)


class _Everything(NodeParams):
    enabled: bool = Field(True, description="on/off")
    count: int = Field(3, description="how many")
    name: str = Field("x", description="a name")
    mode: Literal["fast", "safe"] = Field("safe", description="mode")
    model: Path | None = Field(None, description="optional file")
    gains: list[float] = Field(default_factory=list, description="empty list of floats")
    mixed: tuple[float, float] = Field((1, 2), description="ints validated as floats")
    labels: list[str] = Field(["a", "b"], description="names")
    limits: _Limits = Field(default_factory=_Limits, description="nested group")
    per_joint: dict[str, float] = Field({"hip": 1.0}, description="per joint")
    ratio: Annotated[float, Field(gt=0, le=1)] = Field(0.5, description="a fraction")


def test_every_kind_of_field_flattens_to_a_ros_legal_parameter() -> None:
    params = {d.name: d for d in parameter_descriptors(_Everything)}
    kinds = {name: d.type for name, d in params.items()}
    assert kinds == {
        "enabled": ParamType.BOOL,
        "count": ParamType.INTEGER,
        "name": ParamType.STRING,
        "mode": ParamType.STRING,
        "model": ParamType.NOT_SET,
        "gains": ParamType.DOUBLE_ARRAY,
        "mixed": ParamType.DOUBLE_ARRAY,
        "labels": ParamType.STRING_ARRAY,
        "limits.max_speed": ParamType.DOUBLE,
        "limits.axes": ParamType.INTEGER_ARRAY,
        "per_joint.hip": ParamType.DOUBLE,
        "ratio": ParamType.DOUBLE,
    }
    assert params["mixed"].value == (1.0, 2.0)
    assert params["gains"].value == ()
    assert params["limits.max_speed"].description == "speed bound (m/s)"
    assert params["mode"].constraints == "one of: fast, safe"
    assert params["ratio"].constraints == "> 0, <= 1"


def test_a_field_with_no_ros_form_is_refused_naming_it() -> None:
    class Matrix(NodeParams):
        k: list[list[float]] = [[1.0, 0.0], [0.0, 1.0]]

    with pytest.raises(ParameterError, match="parameter k: nested sequences"):
        parameter_descriptors(Matrix)


def test_start_up_parameter_values_come_back_validated() -> None:
    controller = next(n for n in plan_of(ROS_CONFIG).nodes if n.name == "controller")
    pid_params = node_class("pid").Params
    ros_values = {"kp": 2.0, "setpoint_m": array.array("d", [0.0, 0.0, 1.0]), "ki": None}
    params = apply_parameter_values(pid_params, controller.params, ros_values, node_name="controller")
    assert params["kp"] == 2.0 and params["setpoint_m"] == [0.0, 0.0, 1.0]
    assert params["ki"] == controller.params["ki"]  # None: unset, the plan value stays
    with pytest.raises(ParameterError, match=r"node 'controller': parameters: kp: .*greater than or equal to 0 \(got -1.0\)"):
        apply_parameter_values(pid_params, controller.params, {"kp": -1.0}, node_name="controller")
    nested = apply_parameter_values(_Everything, {}, {"limits.max_speed": 3.0, "per_joint.knee": 2.0})
    assert nested["limits"]["max_speed"] == 3.0 and nested["per_joint"] == {"hip": 1.0, "knee": 2.0}


def test_declared_values_round_trip_to_the_same_params() -> None:
    for launch in plan_of(SIM_CONFIG).nodes:
        params_cls = node_class(launch.type_name).Params
        declared = {d.name: d.value for d in parameter_descriptors(params_cls, launch.params)}
        assert apply_parameter_values(params_cls, launch.params, declared) == launch.params


# --- time -----------------------------------------------------------------------------------


def test_timer_period_from_rate() -> None:
    assert timer_period_s(50.0) == 0.02
    assert timer_period_s(200) == 0.005
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="rate"):
            timer_period_s(bad)


def test_ros_time_conversions_are_exact_for_nanosecond_values() -> None:
    rng = random.Random(7)
    samples = [0, 1, 999_999_999, 1_000_000_000, 1_700_000_000_123_456_789 % 2**51, 2**51 - 1]
    samples += [rng.randrange(0, 2**51) for _ in range(2000)]
    for ns in samples:
        seconds = ns_to_seconds(ns)
        sec, nanosec = seconds_to_ros_time(seconds)
        assert sec * 1_000_000_000 + nanosec == ns
        assert ros_time_to_seconds(sec, nanosec) == seconds
    assert seconds_to_ros_time(-0.25) == (-1, 750_000_000)
    assert ros_time_to_seconds(-1, 750_000_000) == -0.25
    with pytest.raises(ValueError, match="nanosec"):
        ros_time_to_seconds(0, 1_000_000_000)


def test_received_age_and_staleness_from_the_clock() -> None:
    fresh = received("m", received_ns=1_000_000, now_ns=10_000_000, max_age_s=0.05)
    assert fresh == Received("m", 0.009, False)
    assert received("m", 0, 50_000_000, 0.05).stale is False  # exactly at the bound is fresh
    assert received("m", 0, 50_000_001, 0.05).stale is True
    assert received("m", 0, 10**12, None).stale is False  # no bound: never stale
    backwards = received("m", 5_000_000_000, 1_000_000_000, None)
    assert backwards.age_s == -4.0 and backwards.stale  # /clock jumped back: not trusted


def test_input_latch_keeps_the_latest_message() -> None:
    latch = InputLatch(Port("state", RobotState, "/odom", max_age_s=0.05))
    assert latch.get(0) is None
    latch.put("first", 0)
    latch.put("second", 10_000_000)
    assert latch.get(30_000_000) == Received("second", 0.02, False)
    assert latch.get(70_000_000).stale


# --- stepping -------------------------------------------------------------------------------


class _Echo(Node):
    """Test node: commands the received x position as acceleration; can be told to fail."""

    type_name = "echo"
    inputs = (Port("state", RobotState, "/odom", max_age_s=0.05),)
    outputs = (Port("command", AccelCommand, "/cmd_accel"),)
    default_rate_hz = 10.0

    def reset(self, seed: int | None = None) -> None:
        self.fail: Exception | None = None
        self.wrong_output: Mapping[str, Any] | None = None
        self.seen: list[Received | None] = []

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        self.seen.append(inputs["state"])
        if self.fail is not None:
            raise self.fail
        if self.wrong_output is not None:
            return self.wrong_output
        state = inputs["state"]
        x = 0.0 if state is None or state.stale else float(state.msg.position[0])
        return {"command": AccelCommand(stamp=now, linear=[x, 0.0, 0.0])}


def _runner() -> tuple[NodeRunner, _Echo, list[str]]:
    node = _Echo("echo")
    node.reset()
    log: list[str] = []
    return NodeRunner(node, TYPES, log.append), node, log


def test_runner_delivers_received_and_converts_outputs() -> None:
    runner, node, log = _runner()
    odom = RobotState(stamp=0.5, position=[2.0, 0.0, 0.0]).to_ros(TYPES)
    assert runner.receive("state", odom, received_ns=500_000_000)
    out = runner.tick(520_000_000)
    assert node.seen[-1].age_s == 0.02 and not node.seen[-1].stale
    assert np.array_equal(node.seen[-1].msg.position, [2.0, 0.0, 0.0])
    command = out["command"]
    assert command.__msgtype__ == "geometry_msgs/msg/AccelStamped" and command.accel.linear.x == 2.0
    assert (command.header.stamp.sec, command.header.stamp.nanosec) == (0, 520_000_000)
    raw = TYPES.typestore.serialize_cdr(command, "geometry_msgs/msg/AccelStamped")
    assert TYPES.typestore.deserialize_cdr(raw, "geometry_msgs/msg/AccelStamped").accel.linear.x == 2.0
    assert runner.steps == 1 and runner.step_errors == 0 and log == []


def test_runner_applies_the_instances_own_staleness_bound() -> None:
    class Tight(_Echo):
        def input_max_age(self, port: Port) -> float | None:
            return 0.01

    node = Tight("echo")
    node.reset()
    runner = NodeRunner(node, TYPES, [].append)
    runner.receive("state", RobotState(stamp=0.5).to_ros(TYPES), received_ns=500_000_000)
    runner.tick(520_000_000)  # 20 ms: within the port's 50 ms, past the instance's 10 ms
    assert node.seen[-1].stale


def test_a_failing_step_publishes_nothing_is_logged_with_the_node_name_and_counted() -> None:
    runner, node, log = _runner()
    node.fail = RuntimeError("solver diverged")
    assert runner.tick(1_000_000_000) is None
    assert runner.step_errors == 1 and runner.steps == 0
    assert log[0].startswith("echo (echo): step failed, published nothing at t=1.000000000 s: RuntimeError: solver diverged")
    assert "Traceback" in log[0]
    for k in range(2, 101):
        assert runner.tick(k * 1_000_000_000) is None
    assert runner.step_errors == 100
    assert len(log) == 2 and "100 times in a row" in log[1] and "Traceback" not in log[1]
    node.fail = None
    assert runner.tick(101_000_000_000) is not None  # the node keeps running


def test_a_node_ending_the_run_publishes_its_outputs_and_is_logged_once_not_as_a_failure() -> None:
    runner, node, log = _runner()
    node.fail = EndRun("crash: flipped", {"command": AccelCommand(stamp=1.0, linear=[0.0, 0.0, 0.0])})
    for k in range(1, 4):
        out = runner.tick(k * 1_000_000_000)
        assert out is not None and out["command"].__msgtype__ == "geometry_msgs/msg/AccelStamped"
    assert runner.ended == "crash: flipped" and runner.step_errors == 0 and runner.steps == 3
    assert log == ["echo (echo): ended the run at t=1.000000000 s: crash: flipped"]


def test_undeclared_or_mistyped_outputs_fail_the_whole_step() -> None:
    runner, node, log = _runner()
    node.wrong_output = {"command": AccelCommand(), "oops": AccelCommand()}
    assert runner.tick(0) is None
    assert "returned output 'oops', which it does not declare (outputs: command)" in log[-1]
    node.wrong_output = {"command": RobotState()}
    assert runner.tick(1) is None
    assert "output 'command' must be a AccelCommand, got RobotState" in log[-1]
    assert runner.step_errors == 2


def test_an_unconvertible_message_is_dropped_and_the_previous_one_ages() -> None:
    runner, node, log = _runner()
    runner.receive("state", RobotState(position=[1.0, 0.0, 0.0]).to_ros(TYPES), 0)
    assert not runner.receive("state", object(), 10_000_000)
    assert runner.receive_errors == 1 and "input 'state' (/odom): dropped a message" in log[-1]
    runner.tick(20_000_000)
    assert node.seen[-1].age_s == 0.02 and node.seen[-1].msg.position[0] == 1.0


# --- executables' command line --------------------------------------------------------------


def test_ros_args_are_stripped_in_every_section() -> None:
    argv = ["--hw-config", "f.yaml", "--ros-args", "-r", "odom:=/o", "-p", "kp:=2.0", "--", "--node", "c"]
    assert split_ros_args(argv) == (["--hw-config", "f.yaml", "--node", "c"], ["--ros-args", "-r", "odom:=/o", "-p", "kp:=2.0"])
    two = ["a", "--ros-args", "--log-level", "debug", "--", "b", "--ros-args", "-r", "__ns:=/x"]
    assert split_ros_args(two) == (["a", "b"], ["--ros-args", "--log-level", "debug", "--ros-args", "-r", "__ns:=/x"])
    assert split_ros_args(["x", "--", "y"]) == (["x", "--", "y"], [])
    assert split_ros_args([]) == ([], [])


def test_executable_arguments_are_parsed() -> None:
    args = parse_executable_args(
        ["--hw-config", "f.yaml", "--set", "a.b=1", "--ros-args", "-p", "kp:=2.0", "--", "--node", "c", "--set", "c=2"], "pid"
    )
    assert (args.hw_config, args.node, args.process) == ("f.yaml", "c", None)
    assert args.overrides == ("a.b=1", "c=2") and args.ros_args == ("--ros-args", "-p", "kp:=2.0")
    composed = parse_executable_args(["--hw-config", "f.yaml", "--process", "control"], COMPOSED_EXECUTABLE, composed=True)
    assert (composed.process, composed.node) == ("control", None)


def test_bad_usage_exits_2(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_executable_args(["--node", "c"], "pid")
    assert exit_info.value.code == 2 and "--hw-config" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_executable_args(["--hw-config", "f.yaml"], COMPOSED_EXECUTABLE, composed=True)


def test_node_selection_by_name_or_by_type() -> None:
    plan = plan_of(ROS_CONFIG)
    assert select_node(plan, "pid", "controller", ROS_CONFIG).name == "controller"
    assert select_node(plan, "pid", None, ROS_CONFIG).name == "controller"  # the only pid node
    with pytest.raises(SelectionError) as bad:
        select_node(plan, "pid", "ctrl", ROS_CONFIG)
    assert str(bad.value) == f"{ROS_CONFIG}: has no node 'ctrl' (nodes: plant (double_integrator), controller (pid))"
    with pytest.raises(SelectionError, match=r"node 'plant' is a double_integrator, not a pid: run it with `ros2 run aegis double_integrator`"):
        select_node(plan, "pid", "plant", ROS_CONFIG)
    two = plan_of(ROS_CONFIG, "nodes.second.type=pid", "nodes.second.topics.command=/cmd2")
    with pytest.raises(SelectionError, match=r"several pid nodes: choose one with --node \(controller, second\)"):
        select_node(two, "pid", None, ROS_CONFIG)


def test_process_selection_lists_the_valid_processes() -> None:
    plan = plan_of(ROS_CONFIG)
    assert [n.name for n in select_process(plan, "control", ROS_CONFIG)] == ["controller"]
    with pytest.raises(SelectionError) as bad:
        select_process(plan, "ctl", ROS_CONFIG)
    assert str(bad.value) == f"{ROS_CONFIG}: has no process 'ctl' (processes: plant (plant); control (controller))"


def test_rclpy_missing_message_names_the_setup_file() -> None:
    assert rclpy_missing_message("humble").startswith(
        "rclpy not found: source your ROS 2 installation (e.g. /opt/ros/humble/setup.bash)"
    )
    broken = ImportError("libfoo.so: cannot open", name="rclpy._rclpy_pybind11")
    assert rclpy_missing_message("jazzy", broken).startswith("rclpy found but failed to import (libfoo.so")


def test_every_node_type_has_an_executable_main() -> None:
    from aegis.nodes import executables

    for type_name in NODE_TYPES:
        assert callable(getattr(executables, type_name)), type_name
    assert callable(getattr(executables, COMPOSED_EXECUTABLE))


def _run_executable(main: str, *args: str) -> subprocess.CompletedProcess[str]:
    code = f"import sys; from aegis.nodes.executables import {main}; sys.argv = ['{main}', *sys.argv[1:]]; sys.exit({main}())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, timeout=60)


@pytest.mark.skipif(__import__("importlib").util.find_spec("rclpy") is not None, reason="rclpy is installed here")
def test_executables_without_rclpy_exit_2_with_the_sourcing_hint() -> None:
    for main, args in (
        ("pid", ("--hw-config", str(ROS_CONFIG), "--node", "controller", "--ros-args", "-p", "kp:=2.0")),
        ("double_integrator", ("--hw-config", "point_mass_ros")),
        (COMPOSED_EXECUTABLE, ("--hw-config", str(ROS_CONFIG), "--process", "control", "--set", COMPOSE_CONTROL)),
    ):
        result = _run_executable(main, *args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"{main}: error: rclpy not found: source your ROS 2 installation (e.g. /opt/ros/jazzy/setup.bash)")
        assert "Traceback" not in result.stderr


def test_executables_refuse_a_bad_node_or_config_before_needing_ros(tmp_path: Path) -> None:
    result = _run_executable("pid", "--hw-config", str(ROS_CONFIG), "--node", "ctrl")
    assert result.returncode == 2
    assert result.stderr.strip() == f"pid: error: {ROS_CONFIG}: has no node 'ctrl' (nodes: plant (double_integrator), controller (pid))"
    missing = _run_executable("pid", "--hw-config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "nope.yaml: no such hw_config file" in missing.stderr
    bad_override = _run_executable("pid", "--hw-config", str(ROS_CONFIG), "--set", "nodes.controller.params.kp=-1")
    assert bad_override.returncode == 2 and "nodes.controller.params.kp" in bad_override.stderr
    assert "Traceback" not in result.stderr + missing.stderr + bad_override.stderr


# --- launch: process descriptions and the launch files --------------------------------------


def test_separate_processes_use_each_nodes_own_executable() -> None:
    plan = plan_of(ROS_CONFIG)
    processes = process_descriptions(plan, ROS_CONFIG)
    assert [(p.process, p.nodes, p.executable, p.name) for p in processes] == [
        ("plant", ("plant",), "double_integrator", "plant"),
        ("control", ("controller",), "pid", "controller"),
    ]
    control = processes[1]
    assert control.arguments == ("--hw-config", str(ROS_CONFIG.resolve()), "--node", "controller")
    assert control.namespace == "/point_mass" and control.parameters == ({"use_sim_time": False},)
    assert control.launch_kwargs() == {
        "package": "aegis",
        "executable": "pid",
        "exec_name": "control",
        "name": "controller",
        "namespace": "/point_mass",
        "arguments": ["--hw-config", str(ROS_CONFIG.resolve()), "--node", "controller"],
        "parameters": [{"use_sim_time": False}],
        "output": "screen",
    }


def test_a_composed_process_runs_the_process_executable_with_the_same_overrides() -> None:
    plan = plan_of(ROS_CONFIG, COMPOSE_CONTROL)
    (control,) = process_descriptions(plan, ROS_CONFIG, [COMPOSE_CONTROL])
    assert control.process == "control" and control.nodes == ("plant", "controller")
    assert control.executable == COMPOSED_EXECUTABLE and control.name is None
    assert control.arguments == ("--hw-config", str(ROS_CONFIG.resolve()), "--process", "control", "--set", COMPOSE_CONTROL)
    assert "name" not in control.launch_kwargs()  # a __node remap would rename every node of the process
    args = parse_executable_args(list(control.arguments), COMPOSED_EXECUTABLE, composed=True)
    replanned = plan_of(Path(args.hw_config), *args.overrides)
    assert [n.name for n in select_process(replanned, args.process, args.hw_config)] == ["plant", "controller"]


def test_every_process_argument_list_selects_exactly_its_nodes() -> None:
    for path, overrides in ((ROS_CONFIG, ()), (ROS_CONFIG, (COMPOSE_CONTROL,)), (SIM_CONFIG, ("ros.use_sim_time=true",))):
        plan = plan_of(path, *overrides)
        for process in process_descriptions(plan, path, overrides):
            composed = process.executable == COMPOSED_EXECUTABLE
            args = parse_executable_args(list(process.arguments), process.executable, composed=composed)
            replanned = plan_of(Path(args.hw_config), *args.overrides)
            if composed:
                chosen = select_process(replanned, args.process, path)
            else:
                chosen = (select_node(replanned, process.executable, args.node, path),)
            assert tuple(n.name for n in chosen) == process.nodes
            assert replanned == plan


def test_sim_config_runs_on_sim_time_without_a_namespace() -> None:
    plan = plan_of(SIM_CONFIG)
    processes = process_descriptions(plan, SIM_CONFIG)
    assert [p.name for p in processes] == ["plant", "controller"]
    assert all(p.parameters == ({"use_sim_time": True},) and p.namespace is None for p in processes)
    assert all("namespace" not in p.launch_kwargs() for p in processes)


LAUNCH_FILES = {"robot.launch.py": "point_mass_ros.yaml", "sim.launch.py": "point_mass_sim.yaml"}


@pytest.mark.parametrize("file_name", sorted(LAUNCH_FILES))
def test_launch_files_compile_and_run_the_plan(file_name: str, tmp_path: Path) -> None:
    path = REPO / "launch" / file_name
    py_compile.compile(str(path), cfile=str(tmp_path / "out.pyc"), doraise=True)
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree)
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert {"load_config", "make_plan", "process_descriptions", "DeclareLaunchArgument", "OpaqueFunction", "Node"} <= called
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    constants = {
        target.id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.AnnAssign | ast.Assign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name) and target.id in ("DEFAULT_HW_CONFIG", "OVERRIDES")
    }
    assert constants["DEFAULT_HW_CONFIG"] == LAUNCH_FILES[file_name]
    assert (REPO / "hw_configs" / constants["DEFAULT_HW_CONFIG"]).is_file()
    plan = plan_of(REPO / "hw_configs" / constants["DEFAULT_HW_CONFIG"], *constants["OVERRIDES"])
    assert plan.use_sim_time is (file_name == "sim.launch.py")
    imported = {
        node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module
    }
    assert {"launch", "launch_ros.actions"} <= imported
    for node in tree.body:  # every aegis name the launch file imports exists (ros2 launch imports them for real)
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "aegis":
            module = importlib.import_module(node.module)
            missing = [alias.name for alias in node.names if not hasattr(module, alias.name)]
            assert not missing, f"{file_name}: from {node.module} import {', '.join(missing)}: no such name"


def test_launch_and_ros_imports_stay_in_the_launch_files_and_the_adapter() -> None:
    for folder in ("aegis", "nodes"):
        for source in (REPO / folder).rglob("*.py"):
            tree = ast.parse(source.read_text())
            for node in ast.walk(tree):
                names = (
                    [alias.name for alias in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                )
                for name in names:
                    root = name.split(".")[0]
                    if root in ("rclpy", "rcl_interfaces"):
                        assert source.name == "ros_adapter.py", f"{source} imports {name}"
                        assert node.col_offset > 0, f"{source}: import {name} must be lazy (inside a function)"
                    assert root not in ("launch", "launch_ros"), f"{source} imports {name}"


# --- the adapter's wiring, through the fake rclpy in tests/fakes -----------------------------


def _hosts(plan: LaunchPlan) -> dict[str, Any]:
    from aegis.nodes.ros_adapter import RosNodeHost

    return {launch.name: RosNodeHost(launch, plan, TYPES) for launch in plan.nodes}


def test_adapter_wires_ports_parameters_and_timers(fake_rclpy: None) -> None:
    from rclpy.qos import ReliabilityPolicy

    hosts = _hosts(plan_of(ROS_CONFIG))
    plant, controller = hosts["plant"].ros_node, hosts["controller"].ros_node
    assert (controller.name, controller.namespace) == ("controller", "/point_mass")
    assert controller.parameter_overrides == {"use_sim_time": False}
    pub, diagnostics = controller.publishers
    assert (diagnostics.topic, diagnostics.msg_type.__msgtype__) == ("diagnostics", "diagnostic_msgs/msg/DiagnosticArray")
    (sub,) = controller.subscriptions
    assert (pub.topic, pub.msg_type.__msgtype__, pub.qos.depth, pub.qos.reliability) == (
        "cmd_accel", "geometry_msgs/msg/AccelStamped", 1, ReliabilityPolicy.RELIABLE
    )
    assert (sub.topic, sub.msg_type.__msgtype__, sub.qos.depth, sub.qos.reliability) == (
        "odom", "nav_msgs/msg/Odometry", 1, ReliabilityPolicy.BEST_EFFORT
    )
    assert [t.period_s for t in controller.timers] == [0.02] and [t.period_s for t in plant.timers] == [0.005]
    kp = controller.descriptors["kp"]
    assert kp.read_only and kp.type == ParamType.DOUBLE and kp.description == "proportional gain (1/s^2)"
    assert controller.declared["setpoint_m"] == [1.0, 0.5, 0.0]
    assert controller.descriptors["setpoint_m"].type == ParamType.DOUBLE_ARRAY
    assert any("controller (pid) runs 50 Hz" in text for _, text in controller.logger.records)


def test_adapter_closes_the_loop_with_received_inputs_and_converted_outputs(fake_rclpy: None) -> None:
    hosts = _hosts(plan_of(ROS_CONFIG))
    plant, controller = hosts["plant"].ros_node, hosts["controller"].ros_node
    pid = hosts["controller"].runner.node
    seen: list[Received | None] = []
    original_step = pid.step
    pid.step = lambda now, inputs: (seen.append(inputs["state"]), original_step(now, inputs))[1]

    plant.clock.ns = 0
    plant.timers[0].callback()
    (odom,) = plant.publishers[0].published
    assert odom.__msgtype__ == "nav_msgs/msg/Odometry" and odom.child_frame_id == "base_link"

    controller.clock.ns = 1_000_000
    controller.subscriptions[0].callback(odom)
    controller.clock.ns = 20_000_000
    controller.timers[0].callback()
    assert seen[-1].age_s == 0.02 and not seen[-1].stale  # from its stamp (made at 0, received 1 ms later): aegis.node.input_age_ns
    assert np.array_equal(seen[-1].msg.position, np.zeros(3))
    (command,) = controller.publishers[0].published
    assert command.__msgtype__ == "geometry_msgs/msg/AccelStamped"
    assert command.accel.linear.x > 0 and command.accel.linear.y > 0  # toward the setpoint (1.0, 0.5, 0)
    assert (command.header.stamp.sec, command.header.stamp.nanosec) == (0, 20_000_000)

    controller.clock.ns = 200_000_000  # the odometry is now 0.199 s old, past the 0.05 s bound
    controller.timers[0].callback()
    assert seen[-1].stale
    stale_command = controller.publishers[0].published[-1]
    assert (stale_command.accel.linear.x, stale_command.accel.linear.y) == (0.0, 0.0)

    pid.step = lambda now, inputs: 1 / 0
    controller.timers[0].callback()
    assert len(controller.publishers[0].published) == 2  # nothing published for the failed step
    assert hosts["controller"].runner.step_errors == 1
    level, text = controller.logger.records[-1]
    assert level == "error" and text.startswith("controller (pid): step failed") and "ZeroDivisionError" in text


def test_adapter_applies_start_up_parameters_validated(fake_rclpy: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import rclpy.node

    monkeypatch.setitem(rclpy.node.OVERRIDES, "kp", 2.5)
    hosts = _hosts(plan_of(ROS_CONFIG))
    assert hosts["controller"].runner.node.params.kp == 2.5
    monkeypatch.setitem(rclpy.node.OVERRIDES, "kp", -1.0)
    with pytest.raises(ParameterError, match=r"node 'controller': parameters: kp: .*greater than or equal to 0"):
        _hosts(plan_of(ROS_CONFIG))


class _Triggered(Node):
    """Test node: steps whenever odometry arrives and records when."""

    type_name = "triggered"
    inputs = (Port("state", RobotState, "/odom"),)
    outputs = (Port("command", AccelCommand, "/cmd_triggered"),)
    trigger = "state"
    steps: list[float] = []

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        self.steps.append(now)
        return {"command": AccelCommand(stamp=now)}


def test_a_triggered_node_steps_on_its_input_and_has_no_timer(fake_rclpy: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from aegis.nodes.ros_adapter import RosNodeHost

    module = types.ModuleType("aegis_test_nodes")
    module.Triggered = _Triggered
    monkeypatch.setitem(sys.modules, "aegis_test_nodes", module)
    monkeypatch.setitem(NODE_TYPES, "triggered", "aegis_test_nodes:Triggered")
    monkeypatch.setattr(_Triggered, "steps", [])
    plan = plan_of(ROS_CONFIG, "nodes.echo.type=triggered")
    launch = next(n for n in plan.nodes if n.name == "echo")
    assert (launch.rate_hz, launch.trigger) == (None, "state")
    host = RosNodeHost(launch, plan, TYPES)
    assert host.ros_node.timers == []
    host.ros_node.clock.ns = 3_000_000_000
    host.ros_node.subscriptions[0].callback(RobotState().to_ros(TYPES))
    assert _Triggered.steps == [3.0]
    assert host.ros_node.publishers[0].topic == "cmd_triggered" and len(host.ros_node.publishers[0].published) == 1


@pytest.mark.parametrize("stop", ["ctrl-c", "external"])
def test_run_spins_and_shuts_down_cleanly(fake_rclpy: None, monkeypatch: pytest.MonkeyPatch, stop: str) -> None:
    import rclpy
    import rclpy.executors
    import rclpy.node

    from aegis.nodes import ros_adapter

    def spin(executor: Any) -> None:
        raise KeyboardInterrupt if stop == "ctrl-c" else rclpy.executors.ExternalShutdownException()

    monkeypatch.setitem(rclpy.executors.SPIN, "spin", spin)
    plan = plan_of(ROS_CONFIG, COMPOSE_CONTROL)
    group = select_process(plan, "control", ROS_CONFIG)
    assert ros_adapter.run(group, plan, ["--ros-args", "-p", "kp:=2.0"], types=TYPES) == 0
    executors = rclpy.executors.CREATED[-2:]  # one single-threaded executor per node (rclpy#1223: not a shared multi-threaded one)
    assert all(type(e).__name__ == "SingleThreadedExecutor" and e.shut_down for e in executors)
    assert [[n.name for n in e.nodes] for e in executors] == [["plant"], ["controller"]]
    assert all(n.destroyed for n in rclpy.node.CREATED)
    assert rclpy.STATE["init_args"][1:] == ["--ros-args", "-p", "kp:=2.0"] and rclpy.STATE["shutdown"]

    separate = plan_of(ROS_CONFIG)
    assert ros_adapter.run(select_process(separate, "control", ROS_CONFIG), separate, [], types=TYPES) == 0
    assert type(rclpy.executors.CREATED[-1]).__name__ == "SingleThreadedExecutor"


def test_run_destroys_the_nodes_it_built_when_a_later_one_fails(fake_rclpy: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import rclpy
    import rclpy.node

    from aegis.nodes import ros_adapter

    monkeypatch.setitem(rclpy.node.OVERRIDES, "kp", -1.0)  # the controller, built second, is refused
    plan = plan_of(ROS_CONFIG, COMPOSE_CONTROL)
    with pytest.raises(ParameterError):
        ros_adapter.run(select_process(plan, "control", ROS_CONFIG), plan, [], types=TYPES)
    assert [(n.name, n.destroyed) for n in rclpy.node.CREATED] == [("plant", True), ("controller", True)]
    assert rclpy.STATE["shutdown"]


def test_setup_py_installs_the_process_group_executable() -> None:
    entry = f'"{COMPOSED_EXECUTABLE} = aegis.nodes.executables:{COMPOSED_EXECUTABLE}"'
    assert entry in (REPO / "setup.py").read_text()


@pytest.mark.parametrize("config", sorted((REPO / "hw_configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_node_of_every_shipped_config_declares_ros_parameters(config: Path) -> None:
    plan = make_plan(load_config(config))
    for launch in plan.nodes:
        descriptors = parameter_descriptors(node_class(launch.type_name).Params, launch.params)
        assert descriptors, f"{config.name}: {launch.name} declares no parameter"
        assert len({d.name for d in descriptors}) == len(descriptors)


def test_sim_clock_ticks_like_the_lockstep_executor() -> None:
    from aegis.ros_shell import SimClock

    clock = SimClock(240.0)
    assert [clock.advance() for _ in range(4)] == [0, 4_166_667, 8_333_333, 12_500_000]
    assert clock.now_ns == 12_500_000
    with pytest.raises(ValueError, match="rate_hz must be > 0"):
        SimClock(0.0)


def test_only_the_simulator_of_a_sim_time_plan_is_the_clock_source() -> None:
    from aegis.ros_shell import is_clock_source

    sim_plan = plan_of(REPO / "hw_configs" / "point_mass_sim.yaml")
    assert [is_clock_source(sim_plan, n) for n in sim_plan.nodes] == [True, False]
    robot_plan = plan_of(ROS_CONFIG)  # target cpu, wall clock
    assert not any(is_clock_source(robot_plan, n) for n in robot_plan.nodes)


def test_the_simulator_publishes_clock_and_steps_in_simulated_time(fake_rclpy: None) -> None:
    hosts = _hosts(plan_of(REPO / "hw_configs" / "point_mass_sim.yaml"))
    plant, controller = hosts["plant"].ros_node, hosts["controller"].ros_node
    assert plant.parameter_overrides == {"use_sim_time": False}  # it runs on the wall clock and makes sim time
    assert controller.parameter_overrides == {"use_sim_time": True}  # it follows /clock
    clock_publisher = next(p for p in plant.publishers if p.topic == "/clock")
    assert clock_publisher.msg_type.__msgtype__ == "rosgraph_msgs/msg/Clock"
    plant.clock.ns = 123_456_789_000  # the wall clock is ignored for stamps
    for _ in range(3):
        plant.timers[0].callback()
    stamps = [(c.clock.sec, c.clock.nanosec) for c in clock_publisher.published]
    assert stamps == [(0, 0), (0, 5_000_000), (0, 10_000_000)]  # 200 Hz steps
    odometry = [p for p in plant.publishers if p.topic == "odom"][0].published
    assert [(o.header.stamp.sec, o.header.stamp.nanosec) for o in odometry] == stamps
