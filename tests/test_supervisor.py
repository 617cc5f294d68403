"""The supervisor: its state machine on fixed inputs, and from an injected fault to the safe command within one control period.

Closed loop: the shipped quadrotor and Husky chains in PyBullet (DIRECT, seed 0), a fault injected
by a small node between the chain and the supervisor (its odometry stops, its command turns NaN,
an e-stop is engaged). A fault is detectable at the first instant the supervisor could see it (a
NaN command: when it arrives; silent odometry: when its age passes the port's bound; an e-stop:
when it arrives); the supervisor's command at its first tick from then on must be the safe one,
so the time from detectable to safe is at most one control period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aegis.config import SafetyConfig, load_config
from aegis.launch_plan import make_plan
from aegis.msgs import AccelCommand, EStop, LoopDiagnostics, RobotState, SupervisorStatus, TwistCommand
from aegis.msgs.diagnostics import ERROR, OK, WARN
from aegis.node import Node, Port, Received
from aegis.nodes.supervisor import DiffDriveSupervisor, DiffDriveSupervisorParams, QuadrotorSupervisorParams, Supervisor
from aegis.registry import node_class

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted((REPO / "hw_configs").glob("*.yaml"))
SAFETY = SafetyConfig(max_speed_mps=2.0, max_accel_mps2=8.0)


def fresh(msg: Any, age: float = 0.0) -> Received:
    return Received(msg, age, False)


def stale(msg: Any, age: float = 1.0) -> Received:
    return Received(msg, age, True)


def odometry(velocity=(1.0, 0.0, 0.0), orientation=(0.0, 0.0, 0.0, 1.0)) -> RobotState:
    return RobotState(position=np.array([0.0, 0.0, 1.0]), orientation=np.array(orientation), linear_velocity=np.array(velocity))


def quadrotor(**params: Any) -> Supervisor:
    node = Supervisor("supervisor", QuadrotorSupervisorParams(safety=SAFETY, **params), rate_hz=48)
    node.reset(0)
    return node


COMMAND = AccelCommand(linear=np.array([1.0, -2.0, 0.5]))


def test_a_healthy_start_passes_the_first_command_the_same_tick() -> None:
    node = quadrotor()
    out = node.step(0.0, {"state": fresh(odometry()), "filtered": fresh(COMMAND)})
    assert out["command"] is COMMAND and out["status"].state == "running" and out["status"].passed
    assert out["status"].transitions == 2  # init -> armed -> running


def test_without_odometry_it_stays_in_init_and_holds_zero() -> None:
    out = quadrotor().step(0.0, {"filtered": fresh(COMMAND)})
    assert out["status"].state == "init" and not out["status"].passed
    assert out["command"].linear.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        ({"state": stale(odometry(), 0.06), "filtered": fresh(COMMAND)}, "odometry stale (0.060 s)"),
        ({"state": fresh(odometry(orientation=(0, 0, 0, 0.5))), "filtered": fresh(COMMAND)}, "odometry unusable: orientation"),
        ({"state": fresh(odometry()), "filtered": stale(COMMAND, 0.07)}, "command stale (0.070 s)"),
        ({"state": fresh(odometry())}, "no command from the filter"),
        ({"state": fresh(odometry()), "filtered": fresh(AccelCommand(linear=np.array([np.nan, 0.0, 0.0])))}, "command not finite"),
        ({"state": fresh(odometry()), "filtered": fresh(AccelCommand(linear=np.array([0.0, 9.0, 0.0])))}, "beyond the acceleration limit"),
    ],
    ids=["odometry-stale", "odometry-unusable", "command-stale", "no-command", "command-nan", "command-beyond-limit"],
)
def test_a_failing_input_degrades_at_once_and_the_quadrotor_brakes(inputs: dict, reason: str) -> None:
    node = quadrotor()
    node.step(0.0, {"state": fresh(odometry()), "filtered": fresh(COMMAND)})
    out = node.step(1 / 48, inputs)
    assert out["status"].state == "degraded" and reason in out["status"].reason and not out["status"].passed
    assert out["command"].linear.tolist() == [-2.0, 0.0, 0.0]  # -brake_gain v from the last usable odometry (1 m/s along x)


def test_degraded_returns_to_running_after_recovery_s_healthy_without_a_break() -> None:
    node = quadrotor(recovery_s=0.1)
    healthy = {"state": fresh(odometry()), "filtered": fresh(COMMAND)}
    node.step(0.0, healthy)
    node.step(0.02, {"state": fresh(odometry())})  # no command: degraded
    states = [node.step(t, healthy)["status"].state for t in (0.04, 0.08, 0.10)]
    assert states == ["degraded", "degraded", "degraded"]  # healthy since 0.04: 0.06 s so far
    node.step(0.12, {"state": fresh(odometry())})  # a break: the count starts again
    assert [node.step(t, healthy)["status"].state for t in (0.14, 0.20, 0.24, 0.26)] == ["degraded", "degraded", "running", "running"]


def loop_report(name: str, misses: int = 0, level: int = OK, stamp: float = 0.0) -> LoopDiagnostics:
    return LoopDiagnostics(stamp=stamp, name=name, period_s=1 / 48, deadline_misses=misses, ticks=48, level=level)


def test_a_node_over_its_deadline_miss_limit_degrades_until_it_reports_within_it_again() -> None:
    node = quadrotor(recovery_s=0.1)
    healthy = {"state": fresh(odometry()), "filtered": fresh(COMMAND)}
    out = node.step(0.0, {**healthy, "diagnostics": (fresh(loop_report("controller", 2, WARN)), fresh(loop_report("filter")))})
    assert out["status"].state == "running"  # a miss under the limit (WARN) is reported, not acted on
    # several nodes' reports in one tick (a queued port): the filter's OK one does not hide the policy's ERROR
    out = node.step(1.0, {**healthy, "diagnostics": (fresh(loop_report("controller", 9, ERROR)), fresh(loop_report("filter")))})
    assert out["status"].state == "degraded" and not out["status"].passed
    assert out["status"].reason == "node controller missed 7 deadlines in its last window (over realtime.deadline_miss_limit)"
    assert node.step(1.5, {**healthy, "diagnostics": ()})["status"].state == "degraded"  # until it reports within the limit
    node.step(2.0, {**healthy, "diagnostics": (fresh(loop_report("controller", 9)),)})
    assert [node.step(t, healthy)["status"].state for t in (2.05, 2.1)] == ["degraded", "running"]  # then recovery_s healthy
    assert node.metrics()["supervisor_loop_faults"] == 1


def test_a_node_whose_reports_stop_degrades_after_the_heartbeat_timeout_and_recovers_when_they_come_back() -> None:
    node = quadrotor(recovery_s=0.0, heartbeat_timeout_s=1.5)
    healthy = {"state": fresh(odometry()), "filtered": fresh(COMMAND)}
    node.step(0.0, {**healthy, "diagnostics": (fresh(loop_report("controller")),)})
    node.step(1.0, {**healthy, "diagnostics": (Received(loop_report("filter"), 0.25, False),)})  # arrived at 0.75
    assert node.step(1.5, healthy)["status"].state == "running"  # 1.5 s since the controller's: not past the timeout
    out = node.step(1.52, healthy)
    assert out["status"].state == "degraded" and out["status"].reason == "node controller: no LoopDiagnostics for 1.52 s (heartbeat timeout 1.5 s)"
    assert node.step(2.3, healthy)["status"].reason.startswith("node controller")  # the filter (0.75 + 1.5) is silent too by now
    out = node.step(2.4, {**healthy, "diagnostics": (fresh(loop_report("controller")), fresh(loop_report("filter")))})
    assert out["status"].state == "running" and out["status"].passed


def test_a_node_that_never_reported_is_not_watched() -> None:
    node = quadrotor(heartbeat_timeout_s=0.5)
    healthy = {"state": fresh(odometry()), "filtered": fresh(COMMAND)}
    assert all(node.step(t, healthy)["status"].state == "running" for t in (0.0, 1.0, 10.0))  # under lockstep nothing reports


def test_the_published_command_is_checked_last_whatever_the_state() -> None:
    node = quadrotor()
    node.step(0.0, {"state": fresh(odometry()), "filtered": fresh(COMMAND)})
    node._safe_command = lambda now: AccelCommand(stamp=now, linear=np.array([np.nan, 0.0, 0.0]))  # a broken backup
    out = node.step(1 / 48, {"state": fresh(odometry())})
    assert out["status"].state == "degraded" and out["command"].linear.tolist() == [0.0, 0.0, 0.0]  # the e-stop command instead


def test_an_engaged_estop_stops_until_released_then_the_supervisor_starts_again() -> None:
    node = quadrotor()
    healthy = {"state": fresh(odometry()), "filtered": fresh(COMMAND)}
    node.step(0.0, healthy)
    out = node.step(0.02, {**healthy, "estop": fresh(EStop(engaged=True))})
    assert out["status"].state == "estop" and out["status"].level == 2 and out["command"].linear.tolist() == [0.0, 0.0, 0.0]
    assert node.step(5.0, {**healthy, "estop": fresh(EStop(engaged=True), 4.98)})["status"].state == "estop"  # a level: no staleness
    out = node.step(5.02, {**healthy, "estop": fresh(EStop(engaged=False))})
    assert out["status"].state == "running" and out["command"] is COMMAND  # released: init -> armed -> running


def test_odometry_that_is_not_finite_is_an_estop_latched_until_usable_again() -> None:
    node = quadrotor()
    node.step(0.0, {"state": fresh(odometry()), "filtered": fresh(COMMAND)})
    nan = odometry(velocity=(np.nan, 0.0, 0.0))
    assert node.step(0.02, {"state": fresh(nan), "filtered": fresh(COMMAND)})["status"].state == "estop"
    out = node.step(0.04, {"state": stale(odometry(), 0.06), "filtered": fresh(COMMAND)})
    assert out["status"].state == "estop" and "not finite" in out["status"].reason
    assert node.step(0.06, {"state": fresh(odometry()), "filtered": fresh(COMMAND)})["status"].state == "running"


def test_estop_required_treats_a_silent_estop_as_engaged() -> None:
    node = quadrotor(estop_required=True)
    out = node.step(0.0, {"state": fresh(odometry()), "filtered": fresh(COMMAND)})
    assert out["status"].state == "estop" and "never heard" in out["status"].reason
    assert node.step(0.02, {"state": fresh(odometry()), "filtered": fresh(COMMAND), "estop": fresh(EStop())})["status"].passed


def test_the_diff_drive_supervisor_stops_and_checks_speed_and_turn_rate() -> None:
    node = DiffDriveSupervisor("supervisor", DiffDriveSupervisorParams(safety=SAFETY, max_turn_rate_radps=1.5), rate_hz=50)
    node.reset(0)
    twist = TwistCommand(linear=np.array([1.0, 0.0, 0.0]), angular=np.array([0.0, 0.0, 1.0]))
    assert node.step(0.0, {"state": fresh(odometry()), "filtered": fresh(twist)})["command"] is twist
    spin = TwistCommand(linear=np.array([1.0, 0.0, 0.0]), angular=np.array([0.0, 0.0, 1.6]))
    out = node.step(0.02, {"state": fresh(odometry()), "filtered": fresh(spin)})
    assert out["status"].state == "degraded" and "turn-rate limit" in out["status"].reason
    assert out["command"].linear.tolist() == [0.0, 0.0, 0.0] and out["command"].angular.tolist() == [0.0, 0.0, 0.0]


def test_the_status_level_follows_the_state_and_refuses_an_unknown_one() -> None:
    assert [SupervisorStatus(state=s).level for s in ("init", "armed", "running", "degraded", "estop")] == [1, 1, 0, 1, 2]
    with pytest.raises(ValueError, match="SupervisorStatus.state"):
        SupervisorStatus(state="flying")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_chain_with_a_filter_is_gated_by_a_supervisor(path: Path) -> None:
    plan = make_plan(load_config(path))
    filters = [n for n in plan.nodes if node_class(n.type_name).bypass]
    supervisors = [n for n in plan.nodes if node_class(n.type_name).gate]
    assert len(supervisors) == len(filters)
    order = [n.name for n in plan.nodes]
    for flt in filters:  # each filter's output is read by a supervisor listed after it (same instant, no added latency)
        reader = next(s for s in supervisors if s.inputs["filtered"] == flt.outputs["command"])
        assert order.index(reader.name) > order.index(flt.name) and reader.rate_hz == flt.rate_hz


# --- closed loop: from an injected fault to the safe command ----------------------------------------

pybullet = pytest.importorskip("pybullet")
FAULT_S = 1.0


HEARTBEAT_S = 0.75
"""The supervisor's heartbeat_timeout_s in the closed-loop faults: the silent node's last report is at FAULT_S - HEARTBEAT_S."""


class Fault(Node):
    """Forwards the supervisor's inputs, spoiling one of them from FAULT_S on: ``kind`` silent odometry, a NaN command, an e-stop,
    a node's missed deadlines (its LoopDiagnostics over the limit) or a silent node (its LoopDiagnostics stop).

    The LoopDiagnostics stand for the realtime executor's (it publishes them on /diagnostics; lockstep publishes none): the
    controller reports healthy every 0.25 s, then (missed-deadlines) an ERROR report at FAULT_S, or (silent-node) nothing
    after FAULT_S - HEARTBEAT_S."""

    type_name = "fault"
    inputs = (Port("state", RobotState, "/odom"), Port("command", AccelCommand, "/cmd_accel_filtered"))
    outputs = (
        Port("state_out", RobotState, "/odom_supervisor"),
        Port("command_out", AccelCommand, "/cmd_accel_checked"),
        Port("estop", EStop, "/estop"),
        Port("diagnostics", LoopDiagnostics, "/diagnostics"),
    )
    default_rate_hz = 240.0
    kind = "silent-odometry"

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        out: dict[str, Any] = {}
        faulty = now >= FAULT_S - 1e-9
        state, command = inputs.get("state"), inputs.get("command")
        if state is not None and not (faulty and self.kind == "silent-odometry"):
            out["state_out"] = state.msg
        if command is not None and command.age_s == 0.0:  # forward each command once, the instant it is made
            nan = faulty and self.kind == "nan-command"
            out["command_out"] = replace(command.msg, linear=np.full(3, np.nan)) if nan else command.msg
        if faulty and self.kind == "estop":
            out["estop"] = EStop(stamp=now, engaged=True)
        tick = round(now * 240)
        if self.kind == "missed-deadlines" and (tick % 60 == 0 or tick == round(FAULT_S * 240)):
            over = tick == round(FAULT_S * 240)
            out["diagnostics"] = LoopDiagnostics(
                stamp=now, name="controller", period_s=1 / 48, deadline_misses=12 if over else 0, ticks=tick // 5, level=ERROR if over else OK
            )
        if self.kind == "silent-node" and tick % 60 == 0 and now <= FAULT_S - HEARTBEAT_S + 1e-9:
            out["diagnostics"] = LoopDiagnostics(stamp=now, name="controller", period_s=1 / 48, ticks=tick // 5)
        return out


@pytest.mark.parametrize(
    ("kind", "detectable_after_s", "reason"),
    [
        ("silent-odometry", 0.05 - 1 / 240, "odometry stale"),  # the last odometry is forwarded at FAULT_S - 1/240
        ("nan-command", 0.0, "command not finite"),
        ("estop", 0.0, "e-stop engaged"),
        ("missed-deadlines", 0.0, "node controller missed 12 deadlines in its last window"),
        ("silent-node", 0.0, "node controller: no LoopDiagnostics for"),
    ],
)
def test_from_an_injected_fault_to_the_safe_command_within_one_control_period(kind: str, detectable_after_s: float, reason: str) -> None:
    """Detectable: the fault happens (NaN, e-stop, an ERROR report) or its bound passes (odometry 0.05 s, the heartbeat); the
    first command after it that is not the filter's is the safe one, at most one control period (1/48 s) later."""
    from aegis.executors.lockstep import LockstepExecutor

    plan = make_plan(load_config(REPO / "hw_configs" / "quadrotor_oracle_sim.yaml"))
    # the supervisor reads the fault node's outputs (a plan the launch check would refuse: the fault sits in the gate)
    rewired = {"state": "/odom_supervisor", "filtered": "/cmd_accel_checked"}
    nodes = [
        replace(launch, inputs={**launch.inputs, **rewired}, params={**launch.params, "heartbeat_timeout_s": HEARTBEAT_S}).instantiate()
        if launch.name == "supervisor" else launch.instantiate()
        for launch in plan.nodes
    ]
    fault = Fault("fault", rate_hz=240.0)
    fault.kind = kind
    nodes.insert([n.name for n in nodes].index("supervisor"), fault)  # after the filter, before the supervisor
    seen: list[tuple[float, Any, Any]] = []
    statuses: dict[float, SupervisorStatus] = {}

    def listen(topic: str, msg: Any, t_ns: int) -> None:
        if topic == "/supervisor/status":
            statuses[round(t_ns / 1e9, 9)] = msg
        elif topic == "/cmd_accel":
            seen.append((round(t_ns / 1e9, 9), msg, statuses.get(round(t_ns / 1e9, 9))))

    executor = LockstepExecutor(nodes, listeners=[listen])
    executor.reset(0)
    try:
        executor.run(FAULT_S + 0.5)
    finally:
        nodes[0].close()
    before = [status for t, status in statuses.items() if t < FAULT_S]
    assert before and all(s.state == "running" for s in before[1:])
    detectable = FAULT_S + detectable_after_s
    first_safe = min(t for t, status in statuses.items() if t >= FAULT_S and not status.passed)
    assert detectable - 1e-9 <= first_safe <= detectable + 1 / 48 + 1e-9
    expected = "estop" if kind == "estop" else "degraded"
    after = [(t, statuses[t]) for t in sorted(statuses) if t >= first_safe]
    assert all(status.state == expected and not status.passed for _, status in after)
    assert reason in statuses[first_safe].reason
    print(f"{kind}: detectable at {detectable:.6f} s, safe command at {first_safe:.6f} s: {(first_safe - detectable) * 1e3:.3f} ms")
    commands = [msg for t, msg, _ in seen if t >= first_safe]
    assert commands and all(np.all(np.isfinite(c.linear)) and np.all(np.abs(c.linear) <= 8.0) for c in commands)
