"""The wire bridge: the quadrotor plan cut between its plant and its stack, carried over a real pty pair and UDP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aegis.config import load_config
from aegis.launch_plan import make_plan
from aegis.msgs import ImuSample, MotorSpeeds, Obstacles, PointCloud, RobotState
from aegis.msgs.diagnostics import LoopDiagnostics
from aegis.transport.links import SerialLink, UdpLink, open_pty
from aegis.transport.wire_bridge import TableMismatch, WireBridge, wire_topics

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def plan():  # noqa: ANN201
    return make_plan(load_config(ROOT / "hw_configs" / "quadrotor_oracle_sim.yaml"))


PLANT = {"plant"}  # quadrotor_oracle_sim's process group of the simulator bridge


def _stack_groups(plan) -> set[str]:  # noqa: ANN001
    return set(plan.processes) - PLANT


def test_the_cut_carries_sensors_to_the_stack_and_commands_to_the_plant(plan) -> None:  # noqa: ANN001
    plant_side = wire_topics(plan, PLANT)
    stack_side = wire_topics(plan, _stack_groups(plan))
    assert [(t.topic, t.direction, t.msg_type) for t in plant_side] == [
        ("/cmd_motors", "in", MotorSpeeds), ("/diagnostics", "out", LoopDiagnostics), ("/imu", "out", ImuSample), ("/obstacles", "out", Obstacles), ("/odom", "out", RobotState)]
    assert [(t.topic, t.direction) for t in stack_side] == [("/cmd_motors", "out"), ("/diagnostics", "in"), ("/imu", "in"), ("/obstacles", "in"), ("/odom", "in")]
    # the plant's executor reports its node's loop on /diagnostics, and the stack's supervisor watches it: it crosses
    assert next(t for t in stack_side if t.topic == "/diagnostics").readers == (("supervisor", "diagnostics", None),)
    odom = next(t for t in stack_side if t.topic == "/odom")
    assert {reader[0] for reader in odom.readers} >= {"controller", "filter", "supervisor", "attitude"}
    with pytest.raises(KeyError, match="not in the plan"):
        wire_topics(plan, {"nope"})


@pytest.mark.parametrize("kind", ["serial", "udp"])
def test_both_ends_agree_and_messages_cross(plan, kind: str) -> None:  # noqa: ANN001
    if kind == "serial":
        fd, path = open_pty()
        plant_link, stack_link = SerialLink(fd=fd), SerialLink.open(path)
    else:
        plant_link = UdpLink()
        stack_link = UdpLink(remote=("127.0.0.1", plant_link.port))
    with WireBridge(plan, PLANT, plant_link) as plant, WireBridge(plan, _stack_groups(plan), stack_link) as stack:
        assert plant.digest == stack.digest
        stack.say_hello()  # over UDP the plant learns where the stack is from its first datagram
        assert plant.wait_for_peers(5.0) and stack.wait_for_peers(5.0)
        odom = RobotState(stamp=2.5, position=[0.5, -1.0, 1.2], linear_velocity=[0.3, 0.0, 0.0])
        assert plant.publish("/odom", odom)
        assert not plant.publish("/sim/ground_truth", odom)  # read by no node: stays home
        got = []
        for _ in range(50):
            got += stack.take(0.05)
            if got:
                break
        assert [topic for topic, _ in got] == ["/odom"]
        np.testing.assert_allclose(got[0][1].position, odom.position, rtol=1e-7)
        assert got[0][1].stamp == 2.5
        assert stack.publish("/cmd_motors", MotorSpeeds(stamp=2.5, velocities=[1.0, 2.0, 3.0, 4.0]))
        back = []
        for _ in range(50):
            back += plant.take(0.05)
            if back:
                break
        assert back[0][0] == "/cmd_motors" and back[0][1].velocities.tolist() == [1.0, 2.0, 3.0, 4.0]
        # the plant's executor reports its node on /diagnostics: it reaches the stack's supervisor; the stack's own never go back
        assert plant.publish("/diagnostics", LoopDiagnostics(stamp=1.0, name="sim", ticks=240))
        assert not plant.publish("/diagnostics", LoopDiagnostics(stamp=1.0, name="filter"))  # a stack node's report: not the plant's to send
        assert not stack.publish("/diagnostics", LoopDiagnostics(stamp=1.0, name="filter"))  # nobody at the plant reads reports
        reports = []
        for _ in range(50):
            reports += stack.take(0.05)
            if reports:
                break
        assert [(topic, msg.name, msg.ticks) for topic, msg in reports] == [("/diagnostics", "sim", 240)]
        assert stack.from_here("/diagnostics", LoopDiagnostics(name="filter")) and not stack.from_here("/diagnostics", reports[0][1])
        assert plant.rejected() == {} and stack.rejected() == {}


def test_ends_with_different_tables_refuse_each_other(plan) -> None:  # noqa: ANN001
    fd, path = open_pty()
    with WireBridge(plan, PLANT, SerialLink(fd=fd)) as plant, WireBridge(plan, _stack_groups(plan), SerialLink.open(path), cdr=["/odom"]) as stack:
        assert plant.digest != stack.digest
        stack.say_hello()
        with pytest.raises(TableMismatch, match="digest"):
            plant.wait_for_peers(5.0)


def test_waiting_on_a_pty_whose_other_end_is_gone_blocks_instead_of_spinning(plan) -> None:  # noqa: ANN001
    """A killed peer leaves a pty that selects readable at once: wait() must still take its timeout (bounded below, no upper bound asserted)."""
    import time

    fd, _path = open_pty()  # nobody opens the device: as after the peer process was killed
    with WireBridge(plan, PLANT, SerialLink(fd=fd)) as plant:
        started = time.monotonic()
        assert plant.wait(0.2) is False
        assert time.monotonic() - started >= 0.19
        assert plant.take() == []


def test_a_message_longer_than_the_wire_s_frames_is_not_sent_and_said_while_the_rest_cross() -> None:
    """quadrotor_sim's multi-plane cloud (5 planes x 360 beams, about 21.7 kB of CDR) does not fit a 4 kB frame: sent, the far
    decoder would drop it and on a serial line its bytes would hold up the odometry behind it. It stays home, counted, said in
    rejected(); the small messages after it cross (lidar_obstacles then fits the flattened /scan, counted there)."""
    plan = make_plan(load_config(ROOT / "hw_configs" / "quadrotor_sim.yaml"))
    fd, path = open_pty()
    with WireBridge(plan, PLANT, SerialLink(fd=fd)) as plant, WireBridge(plan, _stack_groups(plan), SerialLink.open(path)) as stack:
        stack.say_hello()
        assert plant.wait_for_peers(5.0) and stack.wait_for_peers(5.0)
        cloud = PointCloud(stamp=1.0, points=np.ones((5, 360, 3), dtype=np.float32))
        assert not plant.publish("/points", cloud) and not plant.publish("/points", cloud)
        assert plant.oversize == {"/points": 2}
        reason = plant.rejected()["/points"]
        assert "2 message(s)" in reason and "4,096" in reason
        assert plant.publish("/points", PointCloud(stamp=1.0, points=np.ones((1, 8, 3), dtype=np.float32)))  # a small cloud fits
        assert plant.publish("/mocap", RobotState(stamp=1.0, position=[0.5, -1.0, 1.2]))
        got: list = []
        for _ in range(50):
            got += stack.take(0.05)
            if len(got) >= 2:
                break
        assert [topic for topic, _ in got] == ["/points", "/mocap"] and got[0][1].points.shape == (1, 8, 3)
        assert stack.rejected() == {}
