"""The twist_to_wheels node: a differential-drive robot's twist interface, geometry_msgs/Twist (/cmd_vel) to wheel speeds.

Each tick it turns the latest fresh twist (forward speed ``linear.x``, turn rate ``angular.z``, body
frame; other components cannot be followed by a differential drive and are ignored) into (left,
right) wheel speeds with the robot's kinematics (aegis.controllers.diff_drive: its effective,
skid-steer track), within the speed and turn-rate limits and the wheel speed limit, and publishes
them on /cmd_wheels. It is what teleop (teleop_twist_keyboard, a joystick) or a planner that speaks
Twist drives the robot through, in place of the diff_drive_controller.

A twist older than the port's bound (0.25 s, Clearpath's cmd_vel_timeout for the Husky), none at
all, or one with a non-finite number: zero wheel speeds (the robot brakes), counted in
``stale_ticks``. It never raises in step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from pydantic import Field, field_validator

from aegis.config import HUSKY, RobotConfig
from aegis.controllers.diff_drive import DiffDriveKinematics
from aegis.msgs import TwistCommand, WheelSpeeds
from aegis.node import Node, NodeParams, Port, Received

Positive = Annotated[float, Field(gt=0)]
TWIST_TIMEOUT_S = 0.25


class TwistToWheelsParams(NodeParams):
    robot: RobotConfig = Field(HUSKY, description="the driven robot (filled from the hw_config's robot section)")
    max_speed_mps: Positive = Field(1.0, description="forward/backward speed limit (m/s)")
    max_turn_rate_radps: Positive = Field(2.0, description="turn rate limit (rad/s)")

    @field_validator("robot")
    @classmethod
    def _diff_drive_only(cls, robot: RobotConfig) -> RobotConfig:
        if robot.kind != "diff_drive":
            raise ValueError(f"twist_to_wheels needs kind diff_drive, not {robot.kind!r}")
        return robot


class TwistToWheels(Node):
    """Twist in, wheel speeds out, through the robot's kinematics; zero wheel speeds without a fresh twist."""

    type_name = "twist_to_wheels"
    inputs = (
        Port("twist", TwistCommand, "/cmd_vel", max_age_s=TWIST_TIMEOUT_S, description="body-frame twist (linear.x, angular.z)"),
    )
    outputs = (Port("command", WheelSpeeds, "/cmd_wheels", description="wheel speed command (left, right; rad/s)"),)
    Params = TwistToWheelsParams
    default_rate_hz = 50.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kinematics = DiffDriveKinematics.from_config(self.params.robot.diff_drive)
        self.stale_ticks = 0

    def reset(self, seed: int | None = None) -> None:
        self.stale_ticks = 0

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        p = self.params
        received = inputs.get("twist")
        twist = received.msg if received is not None and not received.stale else None
        v = float(twist.linear[0]) if twist is not None else math.nan
        omega = float(twist.angular[2]) if twist is not None else math.nan
        if math.isfinite(v) and math.isfinite(omega):
            v = min(max(v, -p.max_speed_mps), p.max_speed_mps)
            omega = min(max(omega, -p.max_turn_rate_radps), p.max_turn_rate_radps)
            speeds = self.kinematics.limited(self.kinematics.wheel_speeds(v, omega))
        else:
            speeds = np.zeros(2)
            self.stale_ticks += 1
        return {"command": WheelSpeeds(stamp=now, frame_id="base_link", velocities=speeds)}
