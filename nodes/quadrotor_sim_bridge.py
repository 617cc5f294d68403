"""The quadrotor's sim_bridge node: a Crazyflie-like quadrotor in PyBullet, commanded by rotor speeds (aegis.nodes.sim_bridge says what every bridge does)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from aegis.config import RobotConfig
from aegis.controllers.quadrotor_model import QuadrotorModel
from aegis.msgs import ImuSample, MotorSpeeds, RobotState
from aegis.node import Port, Received
from aegis.sim.link_loss import LinkLossFailsafe, LinkLossParams

from aegis.sim.dynamics import DynamicsDraw
from aegis.nodes.sim_bridge import COMMAND_TIMEOUT_S, OBSTACLES_PORT, SENSOR_PORTS, TRUTH_PORT, SimBridgeBase, SimBridgeParams


_NO_Q = np.array([0.0, 0.0, 0.0, 1.0])
_NO_V = np.zeros(3)


class QuadrotorSimBridgeParams(SimBridgeParams):
    initial_motors: Literal["stopped", "hover", "auto"] = Field(
        "auto", description="rotor speeds at reset; auto: hover when starting in the air, stopped on the ground"
    )
    imu: bool = Field(True, description="publish an IMU sample (ideal, at the centre of mass) with the odometry")
    failsafe: LinkLossParams = Field(
        LinkLossParams(),
        description="the flight controller's firmware failsafe when rotor commands stop: level on the last thrust, motors off "
        "after shutdown_after_s (a Crazyflie's commander watchdog; aegis.sim.link_loss)",
    )

    @field_validator("robot")
    @classmethod
    def _quadrotor_only(cls, robot: RobotConfig) -> RobotConfig:
        if robot.kind != "quadrotor":
            raise ValueError(f"sim_bridge simulates kind quadrotor, not {robot.kind!r}")
        return robot


class SimBridge(SimBridgeBase):
    """A quadrotor in PyBullet, commanded by rotor speeds: holds fresh commands; on a lost link, its firmware's failsafe.

    The last command is held while it is fresh, i.e. up to the input port's staleness bound
    (``COMMAND_TIMEOUT_S`` = 0.1 s, about five 48 Hz control periods; the initial rotor speeds
    count as a command at t = 0). Once it is older, the simulated flight controller's failsafe
    (``failsafe``, aegis.sim.link_loss) levels the body on the last command's thrust, as a
    Crazyflie's commander watchdog does, and stops the motors ``failsafe.shutdown_after_s`` (2 s)
    after the last command; ``failsafe.mode: cut`` stops them at once instead. Holding stale rotor
    speeds would fly on blindly with whatever torque they carried. Each stop is counted in
    ``command_timeouts``, each levelling in ``failsafe_takeovers``; a fresh command takes over at
    once. Non-finite rotor speeds count as zero, and speeds are clipped to [0,
    max_motor_speed_radps]. A command for another number of rotors is a wiring error and raises.
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        p = self.params
        model = QuadrotorModel.from_robot(p.robot, p.gravity_mps2)  # the firmware's own (nominal) numbers
        self._failsafe = LinkLossFailsafe(p.failsafe, model, 1.0 / self.rate_hz, self.max_ages["command"] or COMMAND_TIMEOUT_S, self.name)

    @property
    def command_timeouts(self) -> int:
        """How many times the motors stopped for want of a fresh command since reset."""
        return self._failsafe.timeouts

    @property
    def failsafe_phase(self) -> str:
        """``command`` (a fresh or held command flies), ``level`` (the firmware failsafe flies) or ``off`` (motors stopped)."""
        return self._failsafe.phase

    def metrics(self) -> dict[str, Any]:
        """The bridge's numbers, and when its firmware failsafe took over (levelled) and stopped the motors (s)."""
        failsafe = self._failsafe
        return {
            **super().metrics(),
            "failsafe_takeovers": failsafe.takeovers,
            "failsafe_takeover_s": [round(t, 4) for t in failsafe.takeover_times_s],
            "failsafe_shutdown_s": [round(t, 4) for t in failsafe.shutdown_times_s],
        }

    def _start_command(self, speeds: float) -> None:
        super()._start_command(speeds)
        self._failsafe.start(speeds)

    def _command_for(self, now: float, inputs: Mapping[str, Received | None]) -> np.ndarray:
        """The fresh command, held up to its bound; then the firmware failsafe's speeds (aegis.sim.link_loss)."""
        received = inputs.get("command")
        failsafe = self._failsafe
        if failsafe.phase == "command" and (received is not None and not received.stale) or failsafe.params.mode == "cut":
            return failsafe.update(now, received, _NO_Q, _NO_V, _NO_V, False)
        state = self.world.state()
        return failsafe.update(now, received, state.orientation, state.body_rates, state.velocity_world, self._touching_ground())

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
        # the world's fresh float64 arrays: the unchecked constructors (every physics step)
        outputs: dict[str, Any] = {
            "state": RobotState.of_typed(now, "odom", "base_link", state.position, state.orientation, state.velocity_body, state.body_rates)
        }
        if self.params.imu:
            outputs["imu"] = ImuSample.of_typed(now, "base_link", state.orientation, state.body_rates, state.specific_force_body)
        return outputs
