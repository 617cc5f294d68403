"""The sim_bridge node: owns a PyBullet world, applies motor-speed commands, publishes odometry and IMU.

It is the plant and the clock of a lockstep run: list it first in a hw_config, at the physics
rate (its ``rate_hz``, 240 Hz by default); every tick is exactly one physics step. At tick time
``now`` it first publishes the state AT ``now`` (odometry on /odom, and an IMU sample on /imu,
every ``sensor_decimation``-th step), then applies the command it holds and advances the world to
``now + dt``. A controller running at the same instant therefore reads the state of that instant,
and its command acts from the next physics step on (one physics step of actuation latency).

Command safety (quadrotor): the last command is held while it is fresh, i.e. up to the input
port's staleness bound (``COMMAND_TIMEOUT_S`` = 0.1 s, about five 48 Hz control periods); once it
is older, or if none came within that time of reset (the initial rotor speeds count as a command
at t = 0), the motors are cut to zero. A Crazyflie's commander watchdog also ends at zero thrust
when setpoints stop (after levelling first, with its onboard attitude loop; rotor speeds leave
nothing to level with): holding stale rotor speeds would fly on blindly with whatever torque they
carried, whereas a cut drone falls, which a test or an evaluation then sees. Each cut is counted in
``command_timeouts``. Non-finite rotor speeds count as zero, and speeds are clipped to
[0, max_motor_speed_radps]. A command for another number of rotors is a wiring error and raises.

PyBullet is imported when the world is built (at reset), so `aegis check` stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, field_validator

from aegis.config import CRAZYFLIE_2X, RobotConfig
from aegis.msgs import ImuSample, MotorSpeeds, RobotState
from aegis.node import Node, NodeParams, Port, Received

Vector3 = tuple[float, float, float]
COMMAND_TIMEOUT_S = 0.1


class SimBridgeParams(NodeParams):
    robot: RobotConfig = Field(CRAZYFLIE_2X, description="the simulated robot (filled from the hw_config's robot section)")
    gravity_mps2: Annotated[float, Field(gt=0)] = Field(9.81, description="gravity (m/s^2), along world -z")
    initial_position_m: Vector3 = Field(
        (0.0, 0.0, 0.01), description="centre of mass at reset, world frame (m); z 0.01 rests on the ground"
    )
    initial_yaw_rad: float = Field(0.0, description="heading at reset (rad, about world z)")
    initial_motors: Literal["stopped", "hover"] = Field(
        "stopped", description="rotor speeds at reset (hover: for runs that start in the air)"
    )
    sensor_decimation: Annotated[int, Field(ge=1)] = Field(
        1, description="publish odometry and IMU every Nth physics step (sensor rate = rate_hz / N)"
    )
    imu: bool = Field(True, description="publish an IMU sample (ideal, at the centre of mass) with the odometry")
    ground_plane: bool = Field(True, description="a ground plane at z = 0")
    gui: bool = Field(False, description="open the PyBullet GUI instead of DIRECT (one per process)")

    @field_validator("robot")
    @classmethod
    def _quadrotor_only(cls, robot: RobotConfig) -> RobotConfig:
        if robot.kind != "quadrotor":
            raise ValueError(f"sim_bridge simulates kind quadrotor, not {robot.kind!r}")
        return robot


class SimBridge(Node):
    """A quadrotor in PyBullet, commanded by rotor speeds: publishes what it senses, holds fresh commands, cuts stale ones."""

    type_name = "sim_bridge"
    inputs = (
        Port("command", MotorSpeeds, "/cmd_motors", max_age_s=COMMAND_TIMEOUT_S, description="rotor speed command (rad/s)"),
    )
    outputs = (
        Port("state", RobotState, "/odom", description="ground-truth odometry (twist in the body frame)"),
        Port("imu", ImuSample, "/imu", description="ideal IMU at the centre of mass, body frame"),
    )
    Params = SimBridgeParams
    default_rate_hz = 240.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.world = None  # built at the first reset
        self._command = np.zeros(4)
        self._command_time = 0.0
        self._cut = False
        self._tick = 0
        self.command_timeouts = 0

    def reset(self, seed: int | None = None) -> None:
        """Put the robot back at its initial pose (the world is built on the first call; it has no randomness yet)."""
        p = self.params
        if self.world is None:
            from aegis.sim.pybullet_world import QuadrotorWorld

            self.world = QuadrotorWorld(
                p.robot, physics_rate_hz=self.rate_hz, gravity_mps2=p.gravity_mps2, ground_plane=p.ground_plane, gui=p.gui
            )
        speed = self.world.model.hover_motor_speed if p.initial_motors == "hover" else 0.0
        self.world.reset(p.initial_position_m, p.initial_yaw_rad, speed)
        self._command[:] = speed  # the initial rotor speeds count as a command given at t = 0
        self._command_time = 0.0
        self._cut = False
        self.command_timeouts = 0
        self._tick = 0

    def close(self) -> None:
        """Release the PyBullet client."""
        if self.world is not None:
            self.world.close()
            self.world = None

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        if self.world is None:
            self.reset()
        outputs: dict[str, Any] = {}
        if self._tick % self.params.sensor_decimation == 0:
            outputs = self._sense(now)
        self._take_command(now, inputs.get("command"))
        self.world.step(self._command)
        self._tick += 1
        return outputs

    def _take_command(self, now: float, received: Received | None) -> None:
        if received is not None and not received.stale:
            velocities = received.msg.velocities
            if velocities.shape != (4,):
                raise ValueError(
                    f"{self.name}: MotorSpeeds for {velocities.size} rotors {received.msg.names}, the quadrotor has 4"
                )
            self._command[:] = np.where(np.isfinite(velocities), velocities, 0.0)
            self._command_time = now - received.age_s
            self._cut = False
        elif now - self._command_time > COMMAND_TIMEOUT_S and not self._cut:
            self._command[:] = 0.0
            self._cut = True
            self.command_timeouts += 1

    def _sense(self, now: float) -> dict[str, Any]:
        state = self.world.state()
        outputs: dict[str, Any] = {
            "state": RobotState(
                stamp=now,
                frame_id="odom",
                child_frame_id="base_link",
                position=state.position,
                orientation=state.orientation,
                linear_velocity=state.velocity_body,
                angular_velocity=state.body_rates,
            )
        }
        if self.params.imu:
            outputs["imu"] = ImuSample(
                stamp=now,
                frame_id="base_link",
                orientation=state.orientation,
                angular_velocity=state.body_rates,
                linear_acceleration=state.specific_force_body,
            )
        return outputs
