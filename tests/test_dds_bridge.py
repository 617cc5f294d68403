"""DdsBridge: which topics cross a process group's boundary, and a plan's two groups closing the loop from two processes over DDS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aegis.config import load_config
from aegis.launch_plan import make_plan
from aegis.msgs import AccelCommand, RobotState

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "hw_configs" / "point_mass_ros.yaml"
GROUP = Path(__file__).resolve().parent / "dds_group.py"
DOMAIN = 100 + (os.getpid() + 75) % 100


def test_each_group_publishes_what_the_other_reads_and_reads_what_the_other_publishes() -> None:
    from aegis.transport.bridge import BoundaryTopic, boundary_topics

    plan = make_plan(load_config(CONFIG))
    assert set(plan.processes) == {"plant", "control"}
    assert boundary_topics(plan, "plant") == (
        BoundaryTopic("/odom", "out", RobotState, 1, writer=("plant", "state")),
        BoundaryTopic("/cmd_accel", "in", AccelCommand, 1, readers=(("plant", "command", None),)),
    )
    assert boundary_topics(plan, "control") == (
        BoundaryTopic("/cmd_accel", "out", AccelCommand, 1, writer=("controller", "command")),
        BoundaryTopic("/odom", "in", RobotState, 1, readers=(("controller", "state", None),)),
    )
    with pytest.raises(KeyError, match="'sim' is not in the plan"):
        boundary_topics(plan, "sim")


def test_the_executors_diagnostics_cross_to_a_supervisor_in_another_group_and_never_echo_back() -> None:
    from aegis.msgs.diagnostics import LoopDiagnostics
    from aegis.transport.bridge import DIAGNOSTICS_TOPIC, boundary_topics, is_local_report

    plan = make_plan(load_config(REPO / "hw_configs" / "quadrotor_oracle_sim.yaml"))  # the supervisor in "stack", the simulator in "plant"
    plant = {(b.topic, b.direction): b for b in boundary_topics(plan, "plant")}
    stack = {(b.topic, b.direction): b for b in boundary_topics(plan, "stack")}
    assert plant[(DIAGNOSTICS_TOPIC, "out")].msg_type is LoopDiagnostics  # no node port publishes it: the plant's executor does
    assert stack[(DIAGNOSTICS_TOPIC, "in")].readers == (("supervisor", "diagnostics", None),)
    assert (DIAGNOSTICS_TOPIC, "out") not in stack  # nobody outside the stack reads reports
    plant_nodes = frozenset({"sim"})
    assert is_local_report(DIAGNOSTICS_TOPIC, LoopDiagnostics(name="sim"), plant_nodes) is True
    assert is_local_report(DIAGNOSTICS_TOPIC, LoopDiagnostics(name="filter"), plant_nodes) is False  # another's: not sent again
    assert is_local_report("/odom", RobotState(), plant_nodes) is None


def test_one_composed_group_has_no_boundary_unless_all_outputs_are_asked_for() -> None:
    from aegis.transport.bridge import boundary_topics

    composed = make_plan(load_config(CONFIG, ["nodes.plant.process=all", "nodes.controller.process=all"]))
    assert boundary_topics(composed, "all") == ()
    assert {(b.topic, b.direction) for b in boundary_topics(composed, "all", outputs="all")} == {("/odom", "out"), ("/cmd_accel", "out")}


def test_a_bridge_says_what_to_install_without_cyclonedds(monkeypatch: pytest.MonkeyPatch) -> None:
    from aegis.transport import DdsBridge, DdsUnavailable

    monkeypatch.setitem(sys.modules, "cyclonedds", None)
    for name in [m for m in sys.modules if m.startswith("cyclonedds.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(DdsUnavailable, match=r"pip install 'aegis\[dds\]'"):
        DdsBridge(make_plan(load_config(CONFIG)), "plant", domain_id=DOMAIN)


def test_two_processes_close_the_loop_over_dds() -> None:
    """The plant group and the controller group of one plan, each in its own process: the point mass reaches the setpoint."""
    pytest.importorskip("cyclonedds")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    groups = {
        name: subprocess.Popen(
            [sys.executable, str(GROUP), "--hw-config", str(CONFIG), "--process", name, "--domain-id", str(DOMAIN), "--duration", "3"],
            stdout=subprocess.PIPE, text=True, env=env,
        )
        for name in ("plant", "control")
    }
    reports = {}
    try:
        for name, process in groups.items():
            out, _ = process.communicate(timeout=60)
            assert process.returncode == 0, f"{name} failed"
            lines = out.strip().splitlines()
            assert lines[0] == "ready"
            reports[name] = json.loads(lines[-1])
    finally:
        for process in groups.values():
            if process.poll() is None:
                process.kill()
    plant, control = reports["plant"], reports["control"]
    assert plant["rejected"] == control["rejected"] == {}
    # each side got most of what the other sent: the plant publishes at 200 Hz, the controller at 50 Hz
    assert control["received"]["/odom"] > 0.5 * plant["published"]["/odom"] > 100
    assert plant["received"]["/cmd_accel"] > 0.5 * control["published"]["/cmd_accel"] > 25
    # what the controller last saw is what the plant last sent, and the mass went most of the way to (1.0, 0.5, 0.0)
    x, y, _ = plant["last"]["/odom"]["position"]
    assert x > 0.5 and y > 0.25, plant["last"]["/odom"]
