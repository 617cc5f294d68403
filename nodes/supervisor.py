"""The supervisor nodes: the one gate between the safety filter and the actuators, with a stated state machine.

``supervisor`` (quadrotor: world-frame acceleration, /cmd_accel_filtered -> /cmd_accel) and
``diff_drive_supervisor`` (twist, /cmd_vel_filtered -> /cmd_vel) sit after the safety filter in
every shipped chain and run at its rate, after it in plan order, so a healthy command passes the
same instant it is made (no added latency). They watch what the actuators' safety rests on:

- odometry (``state``): fresh (its port's bound, at most ``safety.stale_input_timeout_s``) and
  usable (finite, unit quaternion: RobotState.unusable_reason);
- the filtered command (``filtered``): fresh (the filter's heartbeat: it publishes every tick it
  can), finite and within the limits (``safety.max_accel_mps2`` per axis; ``safety.max_speed_mps``
  and ``max_turn_rate_radps`` for a twist);
- an e-stop (``estop``, std_msgs/Bool on /estop): a person, a remote or a watchdog engages it;
- every node's loop (``diagnostics``: the LoopDiagnostics the realtime executor publishes on
  /diagnostics for each node about once a second, all of them: a queued port). A node whose report
  is ERROR (more deadline misses in its window than ``realtime.deadline_miss_limit``) is a fault
  until a later report of it is within the limit; a node that has reported and then falls silent
  for ``heartbeat_timeout_s`` (its heartbeat stopped: hung, crashed, starved) is a fault until it
  reports again. A node that never reported is not watched (under lockstep nothing reports, and
  the odometry and the filter's command carry their own heartbeat: their staleness).

States and rules (one place; every tick publishes a SupervisorStatus on /supervisor/status):

``init``
    after reset: the safe command (below) until odometry is usable, then ``armed``.
``armed``
    odometry usable; the first fresh, valid command makes it ``running`` (the same tick).
``running``
    the command passes unchanged. Any watched input failing makes it ``degraded`` at once.
``degraded``
    the safe command instead of the filter's: the backup (a quadrotor brakes, ``a = -brake_gain v``
    within the acceleration limit, from the last usable odometry; a ground robot stops). Back to
    ``running`` once every input has been healthy for ``recovery_s`` without a break.
``estop``
    the e-stop engaged, or odometry not finite (nothing to brake from): the e-stop command (zero
    acceleration: the attitude loop holds the quadrotor level at hover thrust, the motor cut being
    the flight controller's own e-stop; zero twist for a ground robot). Latched while the cause
    lasts; when the e-stop is released (and odometry usable again), back to ``init``. With
    ``estop_required`` an e-stop never heard of counts as engaged (a deployment whose remote must
    be alive); by default it counts as released.

A fault is acted on at the first tick that can see it: the command published that tick is the
safe one, within one control period of the fault becoming detectable (tests/test_supervisor.py and
tests/test_supervisor_faults.py measure it for stale odometry, a non-finite command, missed
deadlines, a silent node and the e-stop). The command it publishes is checked last (finite, within
the limits) whatever its state: a safe command failing that becomes the e-stop command.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field

from aegis.config import SafetyConfig
from aegis.msgs import AccelCommand, EStop, LoopDiagnostics, RobotState, SupervisorStatus, TwistCommand
from aegis.msgs.diagnostics import ERROR
from aegis.node import Node, NodeParams, Port, Received
from aegis.rotations import quaternion_to_matrix

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
LIMIT_TOLERANCE = 1e-6
"""Relative slack on the command limits (the filter's own answer may sit on a bound up to rounding)."""


class SupervisorParams(NodeParams):
    safety: SafetyConfig = Field(SafetyConfig(), description="limits and staleness bound (filled from the hw_config's safety section)")
    recovery_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        0.5, description="how long every watched input must be healthy, without a break, before degraded returns to running (s)"
    )
    estop_required: bool = Field(
        False, description="an e-stop never heard of counts as engaged (true: a remote that must be alive); false: as released"
    )
    heartbeat_timeout_s: Positive = Field(
        2.5, description="a node whose LoopDiagnostics stop for longer than this is a fault (the realtime executor sends each about once a second) (s)"
    )


class QuadrotorSupervisorParams(SupervisorParams):
    brake_gain: Positive = Field(2.0, description="degraded: the braking command a = -brake_gain v, per axis, within the limit (1/s)")


class DiffDriveSupervisorParams(SupervisorParams):
    max_turn_rate_radps: Positive = Field(1.5, description="turn-rate limit a passed twist must keep (rad/s)")


DIAGNOSTICS_PORT = Port(
    "diagnostics", LoopDiagnostics, "/diagnostics", depth=64, queued=True, external=True,
    description="every node's LoopDiagnostics (the realtime executor publishes them): heartbeats and deadline misses",
)
"""Fed by the executor, not by a node (external); queued, so no node's report hides another's."""


class SupervisorNode(Node):
    """Shared state machine (module doc); a subclass gives the command type, its limits and its safe commands."""

    Params: ClassVar[type[SupervisorParams]] = SupervisorParams
    gate = ("filtered", "command")  # aegis check: nothing may read the filtered command around the supervisor
    default_rate_hz = 48.0
    command_type: ClassVar[type]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reset()

    def input_max_age(self, port: Port) -> float | None:
        """Every input is safety-relevant: ``safety.stale_input_timeout_s`` bounds it unless its port's bound is tighter."""
        if port.name == "estop":
            return None  # an e-stop is a latched level, not a stream: its last value holds
        if port.name == "diagnostics":
            return None  # each node's reports are timed against heartbeat_timeout_s
        bound = self.params.safety.stale_input_timeout_s
        return bound if port.max_age_s is None else min(port.max_age_s, bound)

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.state = "init"
        self.reason = "starting"
        self._healthy_since: float | None = None
        self._last_usable: RobotState | None = None
        self.ticks = self.gated_ticks = self.transitions = 0
        self.state_ticks = dict.fromkeys(("init", "armed", "running", "degraded", "estop"), 0)
        self._loops: dict[str, tuple[float, int]] = {}  # node -> (when its last report arrived, its deadline misses so far)
        self._over_limit: dict[str, str] = {}  # node -> why its last report is a fault
        self._heartbeat_due = math.inf  # the earliest time a watched node's silence becomes a fault
        self.loop_faults = 0

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> dict[str, Any]:
        state, command, estop = inputs.get("state"), inputs.get("filtered"), inputs.get("estop")
        reports = inputs.get("diagnostics")
        if reports:
            self._read_reports(now, reports)
        odometry_problem = self._odometry_problem(state)
        if odometry_problem is None:
            self._last_usable = state.msg
        estop_reason = self._estop_reason(estop, state, odometry_problem)
        fault = odometry_problem or self._command_problem(command)
        if fault is None and (self._over_limit or now > self._heartbeat_due):
            fault = self._loop_problem(now)
        if estop_reason is not None:
            self._enter("estop", estop_reason)
        elif self.state == "estop":
            self._enter("init", "e-stop released")
        if self.state == "init" and odometry_problem is None:
            self._enter("armed", "odometry usable")
        if self.state == "armed" and fault is None:
            self._enter("running", "command valid")
        elif self.state == "running" and fault is not None:
            self._enter("degraded", fault)
        elif self.state == "degraded":
            self._recover(now, fault)
        passed = self.state == "running"
        if passed:
            out = command.msg
        elif self.state == "estop":
            out = self._estop_command(now)
        else:
            out = self._safe_command(now)
        if not passed and self._limit_problem(out) is not None:  # the passed command was checked above
            out = self._estop_command(now)
        self.ticks += 1
        self.gated_ticks += not passed
        self.state_ticks[self.state] += 1
        status = SupervisorStatus.of_typed(  # every field typed here: the unchecked constructor, every tick
            now, self.name, self.state, self.reason, passed, self.ticks, self.gated_ticks, self.transitions
        )
        return {"command": out, "status": status}

    @property
    def watched_nodes(self) -> tuple[str, ...]:
        """The nodes whose LoopDiagnostics have reached the supervisor (their heartbeats and deadline misses are watched)."""
        return tuple(sorted(self._loops))

    def metrics(self) -> dict[str, Any]:
        """Ticks per state, gated ticks, transitions and how many nodes' loops it watched (in the sim summary)."""
        return {
            "supervisor_gated_ticks": self.gated_ticks,
            "supervisor_transitions": self.transitions,
            "supervisor_loop_faults": self.loop_faults,
            "supervisor_watched_nodes": len(self._loops),
            **{f"supervisor_{state}_ticks": count for state, count in self.state_ticks.items()},
        }

    def _read_reports(self, now: float, reports: tuple[Received, ...]) -> None:
        """Note each LoopDiagnostics: when it came (the node's heartbeat) and whether it is over the deadline-miss limit."""
        for received in reports:
            report = received.msg
            if not isinstance(report, LoopDiagnostics):
                continue
            name = report.name
            previous = self._loops.get(name)
            self._loops[name] = (now - received.age_s, report.deadline_misses)
            if report.level >= ERROR:
                window = report.deadline_misses - (previous[1] if previous else 0)
                if name not in self._over_limit:
                    self.loop_faults += 1
                self._over_limit[name] = (
                    f"node {name} missed {window} deadlines in its last window (over realtime.deadline_miss_limit)"
                )
            else:
                self._over_limit.pop(name, None)
        self._heartbeat_due = min(seen for seen, _ in self._loops.values()) + self.params.heartbeat_timeout_s

    def _loop_problem(self, now: float) -> str | None:
        """A watched node over its deadline-miss limit, or silent past the heartbeat timeout (the first, by name)."""
        if self._over_limit:
            return self._over_limit[min(self._over_limit)]
        timeout = self.params.heartbeat_timeout_s
        silent = sorted(name for name, (seen, _) in self._loops.items() if now - seen > timeout)
        if not silent:
            return None
        seen = self._loops[silent[0]][0]
        return f"node {silent[0]}: no LoopDiagnostics for {now - seen:.2f} s (heartbeat timeout {timeout:g} s)"

    def _enter(self, state: str, reason: str) -> None:
        if state != self.state:
            self.transitions += 1
            self._healthy_since = None
        self.state, self.reason = state, reason

    def _recover(self, now: float, fault: str | None) -> None:
        """Degraded: stay with the latest fault; with none, count healthy time and run again after ``recovery_s``."""
        if fault is not None:
            self._healthy_since = None
            self.reason = fault
            return
        if self._healthy_since is None:
            self._healthy_since = now
        if now - self._healthy_since >= self.params.recovery_s - 1e-9:
            self._enter("running", f"healthy for {self.params.recovery_s:g} s")
        else:
            self.reason = f"recovering ({now - self._healthy_since:.2f} of {self.params.recovery_s:g} s healthy)"

    def _estop_reason(self, estop: Received | None, state: Received | None, odometry_problem: str | None) -> str | None:
        if estop is None:
            if self.params.estop_required:
                return "e-stop never heard from (estop_required)"
        elif estop.msg.engaged:
            return "e-stop engaged"
        if odometry_problem is not None and state is not None and not _finite_state(state.msg):  # usable odometry is finite
            return "odometry not finite: nothing to brake from"
        if self.state == "estop" and odometry_problem is not None and self.reason.startswith("odometry"):
            return self.reason  # latched until odometry is usable again
        return None

    def _odometry_problem(self, state: Received | None) -> str | None:
        if state is None:
            return "no odometry"
        if state.stale:
            return f"odometry stale ({state.age_s:.3f} s)"
        if state.msg.is_usable():  # the plain-float check; the reason only when there is one
            return None
        return f"odometry unusable: {state.msg.unusable_reason()}"

    def _command_problem(self, command: Received | None) -> str | None:
        if command is None:
            return "no command from the filter"
        if command.stale:
            return f"command stale ({command.age_s:.3f} s)"
        if not isinstance(command.msg, self.command_type):
            return f"command is a {type(command.msg).__name__}, not a {self.command_type.__name__}"
        return self._limit_problem(command.msg)

    def _limit_problem(self, command: Any) -> str | None:
        raise NotImplementedError

    def _safe_command(self, now: float) -> Any:
        raise NotImplementedError

    def _estop_command(self, now: float) -> Any:
        raise NotImplementedError


class Supervisor(SupervisorNode):
    """The quadrotor's gate on the world-frame acceleration command."""

    type_name = "supervisor"
    Params = QuadrotorSupervisorParams
    command_type = AccelCommand
    inputs = (
        Port("state", RobotState, "/odom", max_age_s=0.05, description="odometry (twist in the body frame)"),
        Port("filtered", AccelCommand, "/cmd_accel_filtered", max_age_s=0.05, description="the safety filter's command"),
        Port("estop", EStop, "/estop", description="e-stop: engaged stops the robot (latched level)", external=True),
        DIAGNOSTICS_PORT,
    )
    outputs = (
        Port("command", AccelCommand, "/cmd_accel", description="the command the actuators get"),
        Port("status", SupervisorStatus, "/supervisor/status", description="state, reason and counts, every tick"),
    )

    def _limit_problem(self, command: AccelCommand) -> str | None:
        values = command.linear.tolist()
        if not all(map(math.isfinite, values)):  # map, not a generator: this runs every tick
            return "command not finite"
        limit = self.params.safety.max_accel_mps2 * (1.0 + LIMIT_TOLERANCE)
        if max(map(abs, values)) > limit:
            return f"command beyond the acceleration limit ({max(map(abs, values)):.2f} > {self.params.safety.max_accel_mps2:g} m/s^2)"
        return None

    def _safe_command(self, now: float) -> AccelCommand:
        """Brake from the last usable odometry (zero when there has been none)."""
        limit = self.params.safety.max_accel_mps2
        if self._last_usable is None:
            return AccelCommand(stamp=now, frame_id="odom", linear=np.zeros(3))
        velocity = quaternion_to_matrix(self._last_usable.orientation) @ self._last_usable.linear_velocity
        return AccelCommand(stamp=now, frame_id="odom", linear=np.clip(-self.params.brake_gain * velocity, -limit, limit))

    def _estop_command(self, now: float) -> AccelCommand:
        return AccelCommand(stamp=now, frame_id="odom", linear=np.zeros(3))


class DiffDriveSupervisor(SupervisorNode):
    """The ground robot's gate on the twist command."""

    type_name = "diff_drive_supervisor"
    Params = DiffDriveSupervisorParams
    default_rate_hz = 50.0
    command_type = TwistCommand
    inputs = (
        Port("state", RobotState, "/odom", max_age_s=0.1, description="odometry (twist in the body frame)"),
        Port("filtered", TwistCommand, "/cmd_vel_filtered", max_age_s=0.1, description="the safety filter's twist"),
        Port("estop", EStop, "/estop", description="e-stop: engaged stops the robot (latched level)", external=True),
        DIAGNOSTICS_PORT,
    )
    outputs = (
        Port("command", TwistCommand, "/cmd_vel", description="the twist the drive gets"),
        Port("status", SupervisorStatus, "/supervisor/status", description="state, reason and counts, every tick"),
    )

    def _limit_problem(self, command: TwistCommand) -> str | None:
        values = [*command.linear.tolist(), *command.angular.tolist()]
        if not all(math.isfinite(v) for v in values):
            return "command not finite"
        speed, turn = abs(values[0]), abs(values[5])
        if speed > self.params.safety.max_speed_mps * (1.0 + LIMIT_TOLERANCE):
            return f"command beyond the speed limit ({speed:.2f} > {self.params.safety.max_speed_mps:g} m/s)"
        if turn > self.params.max_turn_rate_radps * (1.0 + LIMIT_TOLERANCE):
            return f"command beyond the turn-rate limit ({turn:.2f} > {self.params.max_turn_rate_radps:g} rad/s)"
        return None

    def _safe_command(self, now: float) -> TwistCommand:
        return TwistCommand(stamp=now, frame_id="base_link")

    def _estop_command(self, now: float) -> TwistCommand:
        return TwistCommand(stamp=now, frame_id="base_link")


def _finite_state(state: RobotState) -> bool:
    return bool(
        np.all(np.isfinite(state.position)) and np.all(np.isfinite(state.orientation)) and np.all(np.isfinite(state.linear_velocity))
    )
