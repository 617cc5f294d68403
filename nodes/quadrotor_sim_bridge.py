"""The quadrotor's sim_bridge node: a Crazyflie-like quadrotor in PyBullet, commanded by rotor speeds (aegis.nodes.sim_bridge says what every bridge does)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from aegis.config import RobotConfig
from aegis.msgs import ImuSample, MotorSpeeds, RobotState
from aegis.node import Port

from aegis.sim.dynamics import DynamicsDraw
from aegis.nodes.sim_bridge import COMMAND_TIMEOUT_S, OBSTACLES_PORT, SENSOR_PORTS, TRUTH_PORT, SimBridgeBase, SimBridgeParams


class QuadrotorSimBridgeParams(SimBridgeParams):
    initial_motors: Literal["stopped", "hover", "auto"] = Field(
        "auto", description="rotor speeds at reset; auto: hover when starting in the air, stopped on the ground"
    )
    imu: bool = Field(True, description="publish an IMU sample (ideal, at the centre of mass) with the odometry")

    @field_validator("robot")
    @classmethod
    def _quadrotor_only(cls, robot: RobotConfig) -> RobotConfig:
        if robot.kind != "quadrotor":
            raise ValueError(f"sim_bridge simulates kind quadrotor, not {robot.kind!r}")
        return robot


class SimBridge(SimBridgeBase):
    """A quadrotor in PyBullet, commanded by rotor speeds: holds fresh commands, cuts stale ones.

    The last command is held while it is fresh, i.e. up to the input port's staleness bound
    (``COMMAND_TIMEOUT_S`` = 0.1 s, about five 48 Hz control periods); once it is older, or if none
    came within that time of reset (the initial rotor speeds count as a command at t = 0), the
    motors are cut to zero. A Crazyflie's commander watchdog also ends at zero thrust when
    setpoints stop: holding stale rotor speeds would fly on blindly with whatever torque they
    carried, whereas a cut drone falls, which a test or an evaluation then sees. Each cut is
    counted in ``command_timeouts``. Non-finite rotor speeds count as zero, and speeds are clipped
    to [0, max_motor_speed_radps]. A command for another number of rotors is a wiring error and raises.
    """

    type_name = "sim_bridge"
    inputs = (
        Port("command", MotorSpeeds, "/cmd_motors", max_age_s=COMMAND_TIMEOUT_S, description="rotor speed command (rad/s)"),
    )
    outputs = (
        Port("state", RobotState, "/odom", description="odometry (twist in the body frame), with the configured noise and latency"),
        Port("imu", ImuSample, "/imu", description="IMU at the centre of mass, body frame"),
        TRUTH_PORT,
        OBSTACLES_PORT,
        *SENSOR_PORTS,
    )
    Params = QuadrotorSimBridgeParams
    default_rate_hz = 240.0

    command_size = 4

    def _robot_scales(self, d: DynamicsDraw) -> dict[str, float]:
        """The rotors' constants and drag too: kf, km and the drag coefficients each scale on their own."""
        return {**super()._robot_scales(d), "thrust": d.thrust_coeff_scale, "drag": d.drag_scale}

    def _build_world(self) -> Any:
        from aegis.sim.pybullet_world import QuadrotorWorld

        p = self.params
        return QuadrotorWorld(p.robot, physics_rate_hz=self.rate_hz, gravity_mps2=p.gravity_mps2, ground_plane=p.ground_plane, gui=p.gui)

    def _place(self, position: np.ndarray, yaw: float) -> None:
        from aegis.sim.pybullet_world import COLLISION_HALF_HEIGHT_M

        mode = self.params.initial_motors
        airborne = position[2] > COLLISION_HALF_HEIGHT_M + 1e-6
        hover = mode == "hover" or (mode == "auto" and airborne)
        speed = self.world.model.hover_motor_speed if hover else 0.0
        self.world.reset(position, yaw, speed)
        self._start_command(speed)

    def _touching_ground(self) -> bool:
        """Whether the airframe touches the ground plane (checked only when it is low enough to)."""
        world = self.world
        if world.plane_id is None or world.position[2] > world.body_radius_m + 0.05:
            return False
        import pybullet

        return bool(pybullet.getContactPoints(bodyA=world.body_id, bodyB=world.plane_id, physicsClientId=world.client))

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
