"""A position PID node: drives odometry toward a fixed setpoint with an acceleration command."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import numpy as np
from pydantic import Field

from aegis.controllers.pid import Pid
from aegis.msgs import AccelCommand, RobotState
from aegis.node import Node, NodeParams, Port, Received

Vector3 = tuple[float, float, float]
NonNegative = Annotated[float, Field(ge=0)]


class PidParams(NodeParams):
    setpoint_m: Vector3 = Field((1.0, 0.0, 0.0), description="position to hold, odom frame (m)")
    kp: NonNegative = Field(4.0, description="proportional gain (1/s^2)")
    ki: NonNegative = Field(0.0, description="integral gain (1/s^3)")
    kd: NonNegative = Field(4.0, description="derivative gain on measured velocity (1/s)")
    accel_limit_mps2: Annotated[float, Field(gt=0)] = Field(5.0, description="output saturation per axis (m/s^2)")
    integral_limit: NonNegative = Field(2.0, description="integrator clamp per axis (m s)")


class PidPositionController(Node):
    """Missing, stale or unusable odometry (RobotState.is_usable) gives a zero command and holds the integrator: never a guess."""

    type_name = "pid"
    inputs = (Port("state", RobotState, "/odom", max_age_s=0.05, description="odometry to control"),)
    outputs = (Port("command", AccelCommand, "/cmd_accel", description="acceleration command"),)
    Params = PidParams
    default_rate_hz = 50.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        p = self.params
        self._pid = Pid(p.kp, p.ki, p.kd, p.accel_limit_mps2, p.integral_limit, dim=3)
        self._setpoint = np.array(p.setpoint_m, dtype=float)
        self._period_s = 1.0 / self.rate_hz

    def reset(self, seed: int | None = None) -> None:
        self._pid.reset()

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, AccelCommand]:
        state = inputs.get("state")
        if state is None or state.stale or not state.msg.is_usable():
            accel = np.zeros(3)
        else:
            error = self._setpoint - state.msg.position
            accel = self._pid.compute(error, -state.msg.linear_velocity, self._period_s)
        return {"command": AccelCommand(stamp=now, frame_id="odom", linear=accel)}
