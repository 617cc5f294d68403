"""A point-mass (double-integrator) plant node: integrates commanded acceleration into odometry.

The smallest honest closed loop before PyBullet: it stands in for a robot in lockstep runs and
tests of the executor, the recorder and the replayer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import numpy as np
from pydantic import Field

from aegis.msgs import AccelCommand, RobotState
from aegis.node import Node, NodeParams, Port, Received

Vector3 = tuple[float, float, float]


class DoubleIntegratorParams(NodeParams):
    initial_position_m: Vector3 = Field((0.0, 0.0, 0.0), description="position at reset, world frame (m)")
    initial_velocity_mps: Vector3 = Field((0.0, 0.0, 0.0), description="velocity at reset, world frame (m/s)")
    max_accel_mps2: Annotated[float, Field(gt=0)] = Field(20.0, description="actuator limit per axis (m/s^2)")


class DoubleIntegratorPlant(Node):
    """Zero-order hold of the last fresh acceleration command; a stale or missing command is zero."""

    type_name = "double_integrator"
    inputs = (Port("command", AccelCommand, "/cmd_accel", max_age_s=0.1, description="acceleration command"),)
    outputs = (Port("state", RobotState, "/odom", description="position and velocity of the point mass"),)
    Params = DoubleIntegratorParams
    default_rate_hz = 200.0

    def reset(self, seed: int | None = None) -> None:
        self._position = np.array(self.params.initial_position_m, dtype=float)
        self._velocity = np.array(self.params.initial_velocity_mps, dtype=float)
        self._accel = np.zeros(3)
        self._last_now: float | None = None

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, RobotState]:
        if self._last_now is not None:
            dt = now - self._last_now
            self._position += self._velocity * dt + 0.5 * self._accel * dt * dt
            self._velocity += self._accel * dt
        self._last_now = now
        command = inputs.get("command")
        if command is None or command.stale:
            self._accel[:] = 0.0
        else:
            np.clip(command.msg.linear, -self.params.max_accel_mps2, self.params.max_accel_mps2, out=self._accel)
        state = RobotState(
            stamp=now,
            frame_id="odom",
            child_frame_id="base_link",
            position=self._position.copy(),
            linear_velocity=self._velocity.copy(),
        )
        return {"state": state}
