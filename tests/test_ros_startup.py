"""A node executable that ROS 2 refuses to start ends in one line, exit code 2, never a traceback.

rclpy cannot be installed here, so the failures are raised from the fake rclpy in tests/fakes (the
thinnest seam: only the calls the adapter makes) the way rclpy raises them: its argument parser
refusing ``--ros-args``, a message package that is not installed, a parameter override of the
wrong type. Everything from the executable's main down to the adapter is the real code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROS_CONFIG = REPO / "hw_configs" / "point_mass_ros.yaml"


class RCLInvalidROSArgsError(RuntimeError):
    """What rclpy's pybind11 layer raises for a malformed remap or parameter rule (rclpy._rclpy_pybind11)."""


class InvalidParameterTypeException(Exception):
    """rclpy.exceptions.InvalidParameterTypeException, as rclpy words it (the adapter names the parameter)."""


def _run_pid(capsys: pytest.CaptureFixture[str], *ros_args: str) -> tuple[int, str]:
    from aegis.nodes.executables import run_node_type

    code = run_node_type("pid", ["--hw-config", str(ROS_CONFIG), "--node", "controller", "--ros-args", *ros_args])
    return code, capsys.readouterr().err


def test_malformed_ros_args_are_one_line(fake_rclpy: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import rclpy

    def refuse(args: list[str] | None = None) -> None:
        raise RCLInvalidROSArgsError("Failed to parse ROS arguments:\n  Couldn't parse remap rule: '-r bad'.\n at ./src/rcl/arguments.c:340")

    monkeypatch.setattr(rclpy, "init", refuse)
    code, err = _run_pid(capsys, "-r", "bad")
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("pid: error: --ros-args -r bad: RCLInvalidROSArgsError: Failed to parse ROS arguments: Couldn't parse remap rule")


def test_a_missing_message_package_is_named(fake_rclpy: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import aegis.nodes.ros_adapter as adapter

    def lookup(name: str) -> type:
        raise ModuleNotFoundError(f"No module named '{name.split('/')[0]}'", name=name.split("/")[0])

    monkeypatch.setattr(adapter, "rclpy_types", lambda: lookup)
    code, err = _run_pid(capsys)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("pid: error: node controller: ROS 2 package 'geometry_msgs' not found: install it (e.g. ros-<distro>-geometry-msgs)")


def test_a_parameter_type_rclpy_refuses_is_one_line_and_rclpy_shut_down(
    fake_rclpy: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import rclpy
    from rclpy.node import Node

    def declare(self, name, value, descriptor):
        raise InvalidParameterTypeException(f"Trying to set parameter '{name}' to '2' of type 'INTEGER', expecting type 'DOUBLE'")

    monkeypatch.setattr(Node, "declare_parameter", declare)
    code, err = _run_pid(capsys, "-p", "kp:=2")
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("pid: error: node 'controller': parameter setpoint_m: Trying to set parameter 'setpoint_m' to '2'")
    assert rclpy.STATE["shutdown"]  # rclpy shut down again after the refused start


def test_the_message_of_a_long_error_is_cut_to_one_bounded_line() -> None:
    from aegis.ros_shell import startup_error

    error = startup_error("node x", RuntimeError("line one\n" + "y" * 1000))
    assert "\n" not in str(error) and len(str(error)) < 340 and str(error).endswith("...")
