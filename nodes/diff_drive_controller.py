"""The diff_drive_controller node: drives a differential-drive robot along the scenario's reference, or to its goal.

Each tick it reads odometry (/odom; position in the world frame, twist in the body frame as
nav_msgs/Odometry has it), evaluates the reference at ``now``, runs
aegis.controllers.diff_drive (Kanayama tracking while the reference moves; go-to-point and brake
when it is at rest) and publishes wheel speeds on /cmd_wheels, and the reference it tracks on
/reference (a RobotState: position, heading, and the reference's forward speed and turn rate in its
own frame).

``reference``: ``scenario`` follows the scenario's reference trajectory (aegis.scenario.reference_at)
and, once it ends, stops at its last point; ``goal`` drives straight for the scenario's goal (no
obstacle avoidance). Either way the robot stops within ``arrival_radius_m`` of the final point,
by default half the scenario goal's tolerance (so it stops inside it), or 0.1 m without a goal.

Missing, stale (older than the port's bound) or non-finite odometry: the node commands zero wheel
speeds (the wheels' speed controllers brake), counts the tick in ``lost_state_ticks`` and never raises.

``diff_drive_twist_controller`` tracks the same way but proposes a body twist on /cmd_vel_nominal,
for a safety filter that corrects it and twist_to_wheels that turns it into wheel speeds. While
blind it proposes nothing (as every node that proposes a command from odometry: the quadrotor
position controller, the MPCs, the policies): there is no honest twist to propose, and the filter,
reading the same odometry, publishes no command either, so twist_to_wheels' staleness fallback stops
the wheels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from aegis.config import HUSKY, RobotConfig
from aegis.controllers.diff_drive import DiffDriveKinematics, DiffDriveTracker, TrackingCommand, TrackingGains, yaw_of
from aegis.msgs import RobotState, TwistCommand, WheelSpeeds
from aegis.node import Node, NodeParams, Port, Received

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
_DEFAULT = TrackingGains()
DEFAULT_ARRIVAL_RADIUS_M = 0.1


class DiffDriveGains(NodeParams):
    """Gains of the tracking law (Kanayama et al. 1990) and of the go-to-point law (aegis.controllers.diff_drive)."""

    k_x: NonNegative = Field(_DEFAULT.k_x, description="along-track gain (1/s)")
    k_y: NonNegative = Field(_DEFAULT.k_y, description="cross-track gain (rad/m^2)")
    k_theta: NonNegative = Field(_DEFAULT.k_theta, description="heading gain (rad/m); 2 sqrt(k_y) is critically damped")
    k_rho: NonNegative = Field(_DEFAULT.k_rho, description="go-to-point distance gain (1/s)")
    k_alpha: NonNegative = Field(_DEFAULT.k_alpha, description="go-to-point bearing gain (1/s)")


class DiffDriveLimits(NodeParams):
    """Command limits; wheel speeds are also held to the robot's max_wheel_speed_radps (scaled together)."""

    max_speed_mps: Positive = Field(_DEFAULT.max_speed_mps, description="forward/backward speed limit (m/s)")
    max_turn_rate_radps: Positive = Field(_DEFAULT.max_turn_rate_radps, description="turn rate limit (rad/s)")


class DiffDriveControllerParams(NodeParams):
    robot: RobotConfig = Field(HUSKY, description="the controlled robot (filled from the hw_config's robot section)")
    scenario: Path | None = Field(None, description="scenario file (filled from the hw_config's scenario)")
    reference: Literal["scenario", "goal"] = Field(
        "scenario", description="follow the scenario's reference trajectory, or drive straight for its goal"
    )
    arrival_radius_m: Positive | None = Field(
        None, description="stop within this distance of the final point; default half the scenario goal's tolerance"
    )
    gains: DiffDriveGains = Field(DiffDriveGains(), description="tracking and go-to-point gains")
    limits: DiffDriveLimits = Field(DiffDriveLimits(), description="speed and turn rate limits")

    @field_validator("robot")
    @classmethod
    def _diff_drive_only(cls, robot: RobotConfig) -> RobotConfig:
        if robot.kind != "diff_drive":
            raise ValueError(f"diff_drive_controller needs kind diff_drive, not {robot.kind!r}")
        return robot

    @model_validator(mode="after")
    def _scenario_has_what_is_used(self) -> DiffDriveControllerParams:
        if self.scenario is None:
            raise ValueError(f"reference {self.reference!r} needs a scenario (the hw_config's scenario key)")
        if self.reference == "goal":
            from aegis.scenario import load_scenario

            if load_scenario(self.scenario).goal is None:
                raise ValueError(f"reference 'goal' needs a scenario with a goal: {self.scenario} has none")
        return self


class DiffDriveController(Node):
    """Wheel speeds that track the scenario's reference (or reach its goal); zero wheel speeds while blind."""

    type_name = "diff_drive_controller"
    inputs = (Port("state", RobotState, "/odom", max_age_s=0.1, description="odometry (twist in the body frame)"),)
    outputs = (
        Port("command", WheelSpeeds, "/cmd_wheels", description="wheel speed command (left, right; rad/s)"),
        Port("reference", RobotState, "/reference", description="the reference being tracked"),
    )
    Params = DiffDriveControllerParams
    default_rate_hz = 50.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        p = self.params
        from aegis.scenario import load_scenario

        scenario = load_scenario(p.scenario)
        arrival = p.arrival_radius_m
        if arrival is None:
            arrival = 0.5 * scenario.goal.tolerance_m if scenario.goal is not None else DEFAULT_ARRIVAL_RADIUS_M
        gains = TrackingGains(**p.gains.model_dump(), **p.limits.model_dump(), arrival_radius_m=arrival)
        self.tracker = DiffDriveTracker(DiffDriveKinematics.from_config(p.robot.diff_drive), gains)
        self.reference = scenario_reference(scenario, p.reference)
        self._start_heading = scenario.start.yaw_rad
        self._zero = np.zeros(2)
        self.lost_state_ticks = 0

    def reset(self, seed: int | None = None) -> None:
        self.tracker.reset(self._start_heading)
        self.lost_state_ticks = 0

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        command, reference = self._track(now, inputs)
        speeds = command.wheel_speeds if command is not None else self._zero
        return {"command": WheelSpeeds(stamp=now, frame_id="base_link", velocities=speeds), "reference": reference}

    def _track(self, now: float, inputs: Mapping[str, Received | None]) -> tuple[TrackingCommand | None, RobotState]:
        """The tracker's command (None while blind) and the reference message, at ``now``."""
        position, velocity, acceleration = self.reference(now)
        received = inputs.get("state")
        state = received.msg if received is not None and not received.stale else None
        command = None
        if state is not None and state.is_usable():
            command = self.tracker.compute(state.position, yaw_of(state.orientation), position, velocity, acceleration)
            forward, turn = command.reference_speed, command.reference_turn_rate
        else:
            forward, turn = float(np.hypot(velocity[0], velocity[1])), 0.0
            self.lost_state_ticks += 1
        heading = self.tracker.reference_heading
        reference = RobotState(
            stamp=now,
            frame_id="odom",
            child_frame_id="reference",
            position=position,
            orientation=np.array([0.0, 0.0, math.sin(0.5 * heading), math.cos(0.5 * heading)]),
            linear_velocity=np.array([forward, 0.0, 0.0]),
            angular_velocity=np.array([0.0, 0.0, turn]),
        )
        return command, reference


class DiffDriveTwistController(DiffDriveController):
    """The same tracking, proposing a body twist (v, omega) on /cmd_vel_nominal for a safety filter to correct."""

    type_name = "diff_drive_twist_controller"
    outputs = (
        Port("nominal", TwistCommand, "/cmd_vel_nominal", description="proposed body twist (linear.x m/s, angular.z rad/s)"),
        Port("reference", RobotState, "/reference", description="the reference being tracked"),
    )

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        command, reference = self._track(now, inputs)
        if command is None:  # blind: no nominal (module doc)
            return {"reference": reference}
        linear, angular = np.array([command.v, 0.0, 0.0]), np.array([0.0, 0.0, command.omega])
        return {"nominal": TwistCommand(stamp=now, frame_id="base_link", linear=linear, angular=angular), "reference": reference}


def scenario_reference(scenario: Any, mode: str) -> Callable[[float], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The reference as a function of time: the scenario's trajectory, or its goal (at rest)."""
    if mode == "goal":
        goal = np.array(scenario.goal.position, dtype=float)
        return lambda t: (goal.copy(), np.zeros(3), np.zeros(3))
    from aegis.scenario import reference_at

    return lambda t: reference_at(scenario.reference, t)
