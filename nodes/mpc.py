"""The MPC nodes: quadrotor_mpc (translational double integrator -> nominal acceleration) and diff_drive_mpc (-> twist).

It takes the place of quadrotor_position_controller in the filtered chain (same ports: /odom in,
/cmd_accel_nominal and /reference out), so the safety filter still corrects whatever it proposes.
Each tick it samples the reference over the horizon (aegis.controllers.mpc.translational_mpc,
OSQP with a shifted warm start, built once) and publishes the first acceleration of the plan.
Acceleration and speed limits come from the hw_config's ``safety`` section. ``mass_ratio`` and
``dead_time_s`` tell it a plant other than the config's (training's privileged expert,
aegis.runs.privileged): it scales its planned thrust vector, and plans from the odometry predicted
over the latency.

An MPC that fails (solver status not solved, even after relaxing its state limits) publishes no
nominal this tick and counts it in ``mpc_failures``: the filter then filters zero (hover), and the
attitude loop brakes if that goes stale too. Missing, stale or non-finite odometry: nothing is
published either, counted in ``lost_state_ticks``. The node never raises in step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field, model_validator

from aegis.config import HUSKY, RobotConfig, SafetyConfig
from aegis.controllers.quadrotor_model import quaternion_to_matrix, yaw_quaternion
from aegis.msgs import AccelCommand, RobotState, TwistCommand
from aegis.node import Node, NodeParams, Port, Received
from aegis.nodes.quadrotor_controller import (
    QuadrotorControllerParams,
    reference_function,
    reference_message,
    usable_state,
)

Positive = Annotated[float, Field(gt=0)]


class QuadrotorMpcParams(QuadrotorControllerParams):
    safety: SafetyConfig = Field(SafetyConfig(), description="acceleration and speed limits (filled from the hw_config)")
    horizon: Annotated[int, Field(ge=2, le=200)] = Field(20, description="prediction steps, one per control period")
    position_weight: Positive = Field(100.0, description="state weight on position error")
    velocity_weight: Positive = Field(4.0, description="state weight on velocity error")
    accel_weight: Positive = Field(0.25, description="input weight on acceleration")
    mass_ratio: Positive = Field(
        1.0,
        description="the plant's mass over the attitude loop's model mass, divided by the same ratio of thrust coefficients: "
        "the planned acceleration's thrust vector (a + g) is scaled by it, so a loop built on the model realises the plan "
        "(1: the model is right; aegis train --privileged-expert sets the episode's drawn value)",
    )
    dead_time_s: Annotated[float, Field(ge=0, le=0.2)] = Field(
        0.0,
        description="sensing + actuation latency (s) the odometry is predicted over, with the last planned acceleration, "
        "before planning (0: plan from the odometry as read; aegis train --privileged-expert sets the episode's drawn value)",
    )


PLANNING_OUTPUTS = (
    Port("nominal", AccelCommand, "/cmd_accel_nominal", description="proposed world-frame acceleration (m/s^2)"),
    Port("reference", RobotState, "/reference", description="the reference being tracked"),
)
"""The quadrotor planning nodes' outputs: the first planned acceleration, for the safety filter, and the reference."""


class TranslationalPlanning:
    """What the quadrotor's planning nodes share: the translational MPC their params describe, the reference over its horizon.

    For a Node whose params carry ``horizon``, the ``safety`` section's limits, the three weights and the
    reference (QuadrotorControllerParams): ``_planning_setup`` returns the problem and keeps the reference
    sampling; ``_horizon_reference`` samples it from ``now`` and gives the /reference message of the first sample.
    """

    def _planning_setup(self) -> Any:
        from aegis.controllers.mpc import translational_mpc

        p = self.params
        self.dt = 1.0 / self.rate_hz
        self.reference = reference_function(p)
        self._offsets = np.arange(p.horizon + 1) * self.dt
        self._heading = yaw_quaternion(p.yaw_rad)
        self._heading_matrix = quaternion_to_matrix(self._heading)
        return translational_mpc(
            self.dt, p.horizon, a_max=p.safety.max_accel_mps2, v_max=p.safety.max_speed_mps,
            position_weight=p.position_weight, velocity_weight=p.velocity_weight, accel_weight=p.accel_weight,
        )

    def _usable_state(self, inputs: Mapping[str, Received | None]) -> RobotState | None:
        """The fresh, usable odometry; None (counted in ``lost_state_ticks``) otherwise: the node then proposes nothing."""
        state = usable_state(inputs.get("state"))
        self.lost_state_ticks += state is None
        return state

    def _horizon_reference(self, now: float) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], dict[str, Any]]:
        """The reference at the horizon's instants from ``now`` (positions, velocities, accelerations, (N+1, 3) each), and the
        outputs holding the /reference message of the first."""
        table = self.reference.table((now + self._offsets).tolist())
        position, velocity = table[0][0].copy(), table[1][0].copy()
        return table, {"reference": reference_message(now, position, velocity, self._heading, self._heading_matrix)}


class QuadrotorMpc(TranslationalPlanning, Node):
    """Plans the next ``horizon`` accelerations toward the reference; proposes the first."""

    type_name = "quadrotor_mpc"
    inputs = (Port("state", RobotState, "/odom", max_age_s=0.05, description="odometry (twist in the body frame)"),)
    outputs = PLANNING_OUTPUTS
    Params = QuadrotorMpcParams
    default_rate_hz = 48.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        p = self.params
        self.mpc = self._planning_setup()
        self._thrust_axis = np.array([0.0, 0.0, p.gravity_mps2])
        self._last_plan = np.zeros(3)
        self.mpc_failures = 0
        self.relaxed_ticks = 0
        self.lost_state_ticks = 0

    def reset(self, seed: int | None = None) -> None:
        self.mpc.reset()
        self._last_plan = np.zeros(3)
        self.mpc_failures = self.relaxed_ticks = self.lost_state_ticks = 0

    def metrics(self) -> dict[str, Any]:
        return {"mpc_failures": self.mpc_failures, "mpc_relaxed_ticks": self.relaxed_ticks}

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        p = self.params
        table, outputs = self._horizon_reference(now)
        state = self._usable_state(inputs)
        if state is None:
            return outputs
        from aegis.controllers.mpc import translational_reference

        position, velocity = state.position, quaternion_to_matrix(state.orientation) @ state.linear_velocity
        if p.dead_time_s > 0.0:  # where the robot will be when this plan acts: the last plan's acceleration meanwhile
            position = position + velocity * p.dead_time_s + 0.5 * self._last_plan * p.dead_time_s**2
            velocity = velocity + self._last_plan * p.dead_time_s
        x0 = np.concatenate([position, velocity])
        x_ref, u_ref = translational_reference(*table)
        u0, info = self.mpc.compute(x0, x_ref, u_ref)
        self.relaxed_ticks += bool(info.relaxed)
        if not info.ok or not np.all(np.isfinite(u0)):
            self.mpc_failures += 1
            return outputs
        self._last_plan = u0
        command = u0 if p.mass_ratio == 1.0 else p.mass_ratio * (u0 + self._thrust_axis) - self._thrust_axis
        outputs["nominal"] = AccelCommand(stamp=now, frame_id="odom", linear=command)
        return outputs


class DiffDriveMpcParams(NodeParams):
    robot: RobotConfig = Field(HUSKY, description="the controlled robot (filled from the hw_config's robot section)")
    scenario: Path | None = Field(None, description="scenario whose reference is tracked (filled from the hw_config)")
    safety: SafetyConfig = Field(SafetyConfig(), description="speed limit (filled from the hw_config's safety section)")
    horizon: Annotated[int, Field(ge=2, le=200)] = Field(20, description="prediction steps, one per control period")
    max_turn_rate_radps: Positive = Field(2.0, description="turn-rate limit (rad/s)")
    position_weight: Positive = Field(100.0, description="state weight on position error")
    heading_weight: Positive = Field(25.0, description="state weight on heading error")

    @model_validator(mode="after")
    def _needs_a_diff_drive_and_a_scenario(self) -> DiffDriveMpcParams:
        if self.robot.kind != "diff_drive":
            raise ValueError(f"diff_drive_mpc needs kind diff_drive, not {self.robot.kind!r}")
        if self.scenario is None:
            raise ValueError("diff_drive_mpc needs a scenario (the hw_config's scenario key)")
        return self


class DiffDriveMpc(Node):
    """Tracks the scenario's reference with a unicycle MPC re-linearised along it; proposes the first twist.

    Takes the place of diff_drive_twist_controller in the filtered chain (same ports). A failed
    solve or unusable odometry publishes no nominal (counted); the filter then filters a stop.
    """

    type_name = "diff_drive_mpc"
    inputs = (Port("state", RobotState, "/odom", max_age_s=0.1, description="odometry (twist in the body frame)"),)
    outputs = (
        Port("nominal", TwistCommand, "/cmd_vel_nominal", description="proposed body twist (linear.x m/s, angular.z rad/s)"),
        Port("reference", RobotState, "/reference", description="the reference being tracked"),
    )
    Params = DiffDriveMpcParams
    default_rate_hz = 50.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from aegis.controllers.mpc import diff_drive_tracking_mpc
        from aegis.nodes.diff_drive_controller import scenario_reference
        from aegis.scenario import load_scenario

        p = self.params
        scenario = load_scenario(p.scenario)
        self.dt = 1.0 / self.rate_hz
        speed = p.safety.max_speed_mps
        self.mpc = diff_drive_tracking_mpc(
            self.dt, p.horizon, v_min=-speed, v_max=speed, omega_max=p.max_turn_rate_radps,
            position_weight=p.position_weight, heading_weight=p.heading_weight,
        )
        self.reference = scenario_reference(scenario, "scenario")
        self.heading_at_rest = scenario.start.yaw_rad
        """The heading the reference holds where it stands still (the scenario's start heading; aegis.training's
        labeler sets it to the robot's own when it asks for the command at rest)."""
        self._offsets = np.arange(p.horizon + 1) * self.dt
        self.mpc_failures = 0
        self.lost_state_ticks = 0

    def reset(self, seed: int | None = None) -> None:
        self.mpc.mpc.reset()
        self.mpc_failures = self.lost_state_ticks = 0

    def metrics(self) -> dict[str, Any]:
        return {"mpc_failures": self.mpc_failures}

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        from aegis.controllers.diff_drive import yaw_of
        from aegis.controllers.mpc import unicycle_reference

        samples = [self.reference(now + offset) for offset in self._offsets]
        positions, velocities, accelerations = (np.array(column) for column in zip(*samples))
        ref_states, ref_inputs = unicycle_reference(positions, velocities, accelerations, heading_at_rest=self.heading_at_rest)
        heading = float(ref_states[0, 2])
        outputs: dict[str, Any] = {
            "reference": RobotState(
                stamp=now, frame_id="odom", child_frame_id="reference", position=positions[0],
                orientation=np.array([0.0, 0.0, math.sin(0.5 * heading), math.cos(0.5 * heading)]),
                linear_velocity=np.array([ref_inputs[0, 0], 0.0, 0.0]), angular_velocity=np.array([0.0, 0.0, ref_inputs[0, 1]]),
            )
        }
        received = inputs.get("state")
        state = received.msg if received is not None and not received.stale else None
        if state is None or not state.is_usable():
            self.lost_state_ticks += 1
            return outputs
        x0 = np.array([state.position[0], state.position[1], yaw_of(state.orientation)])
        u0, info = self.mpc.compute(x0, ref_states, ref_inputs)
        if not info.ok or not np.all(np.isfinite(u0)):
            self.mpc_failures += 1
            return outputs
        outputs["nominal"] = TwistCommand(
            stamp=now, frame_id="base_link", linear=np.array([u0[0], 0.0, 0.0]), angular=np.array([0.0, 0.0, u0[1]])
        )
        return outputs
