"""The ground robot's diff_drive_sim_bridge node: a Husky-like diff-drive robot in PyBullet, commanded by wheel speeds (aegis.nodes.sim_bridge says what every bridge does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from aegis.config import HUSKY, RobotConfig
from aegis.msgs import ImuSample, RobotState, WheelSpeeds
from aegis.node import Port

from aegis.nodes.sim_bridge import COMMAND_TIMEOUT_S, OBSTACLES_PORT, SENSOR_PORTS, TRUTH_PORT, SimBridgeBase, SimBridgeParams, Vector3


class DiffDriveSimBridgeParams(SimBridgeParams):
    robot: RobotConfig = Field(HUSKY, description="the simulated robot (filled from the hw_config's robot section)")
    imu: bool = Field(
        False,
        description="publish a gyro-only IMU sample (body rates; orientation and acceleration marked not measured) with the odometry",
    )
    initial_position_m: Vector3 = Field(
        (0.0, 0.0, 0.0), description="start position of the base (on the ground: z = 0) when there is no scenario (m)"
    )

    @field_validator("robot")
    @classmethod
    def _diff_drive_only(cls, robot: RobotConfig) -> RobotConfig:
        if robot.kind != "diff_drive":
            raise ValueError(f"diff_drive_sim_bridge simulates kind diff_drive, not {robot.kind!r}")
        return robot

    @field_validator("dynamics")
    @classmethod
    def _ground_dynamics(cls, dynamics: Path | None) -> Path | None:
        if dynamics is not None:
            from aegis.sim.dynamics import load_dynamics

            loaded = load_dynamics(dynamics)
            for key, value in (("thrust_coeff_scale", loaded.thrust_coeff_scale), ("drag_scale", loaded.drag_scale)):
                if (value.low, value.high) != (1.0, 1.0):
                    raise ValueError(f"{dynamics}: {key}: a ground robot has no {key.removesuffix('_scale')} to scale (leave it out)")
        return dynamics


class DiffDriveSimBridge(SimBridgeBase):
    """A differential-drive ground robot (a Husky by default) in PyBullet, commanded by (left, right) wheel speeds.

    The last command is held while it is fresh, i.e. up to the input port's staleness bound
    (``COMMAND_TIMEOUT_S`` = 0.1 s, five 50 Hz control periods); once it is older, or if none came
    within that time of reset (the robot starts with its wheels commanded to zero, which counts as a
    command at t = 0), the wheels are commanded to zero: their speed controllers brake the robot to a
    stop within their torque limit, as diff_drive_controller's cmd_vel timeout does on a real Husky.
    Each such stop is counted in ``command_timeouts``. Non-finite speeds count as zero; speeds are
    clipped to +-max_wheel_speed_radps by the world. A command for other than two sides (left, right)
    is a wiring error and raises.

    Only wheel speeds come in: a twist (geometry_msgs/Twist on /cmd_vel, from teleop or a planner) is
    turned into wheel speeds by the twist_to_wheels node (aegis.nodes.twist_to_wheels), so there is one
    command path into the plant, the one the safety layers sit on.
    """

    type_name = "diff_drive_sim_bridge"
    inputs = (
        Port("command", WheelSpeeds, "/cmd_wheels", max_age_s=COMMAND_TIMEOUT_S, description="wheel speeds (left, right; rad/s)"),
    )
    outputs = (
        Port("state", RobotState, "/odom", description="odometry of the base (twist in the body frame)"),
        Port("imu", ImuSample, "/imu", description="gyro at the base, body frame (when imu is true)"),
        Port(
            "wheels", WheelSpeeds, "/joint_states",
            description="wheel encoders: each side's measured wheel speed (left, right; rad/s), exact, with the sensing latency",
        ),
        TRUTH_PORT,
        OBSTACLES_PORT,
        *SENSOR_PORTS,
    )
    Params = DiffDriveSimBridgeParams
    default_rate_hz = 240.0

    command_size = 2

    def _build_world(self) -> Any:
        from aegis.sim.diff_drive_world import DiffDriveWorld

        p = self.params
        return DiffDriveWorld(p.robot, physics_rate_hz=self.rate_hz, gravity_mps2=p.gravity_mps2, ground_plane=p.ground_plane, gui=p.gui)

    def _place(self, position: np.ndarray, yaw: float) -> None:
        self.world.reset(position, yaw)
        self._start_command(0.0)  # standing still counts as a command given at t = 0

    def _sense(self, now: float) -> dict[str, Any]:
        state = self.world.state()
        outputs: dict[str, Any] = {
            "state": RobotState(
                stamp=now,
                frame_id="odom",
                child_frame_id="base_footprint",
                position=state.position,
                orientation=state.orientation,
                linear_velocity=state.velocity_body,
                angular_velocity=state.body_rates,
            ),
            "wheels": WheelSpeeds(stamp=now, frame_id="base_link", velocities=state.wheel_speeds),
        }
        if self.params.imu:
            outputs["imu"] = ImuSample(
                stamp=now,
                frame_id="base_link",
                angular_velocity=state.body_rates,
                orientation_covariance=_NOT_MEASURED.copy(),
                linear_acceleration_covariance=_NOT_MEASURED.copy(),
            )
        return outputs


_NOT_MEASURED = np.diag([-1.0, 0.0, 0.0])
"""sensor_msgs/Imu's "not measured": a covariance whose [0, 0] is -1 (noise is then left off that field too)."""
