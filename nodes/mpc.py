"""The quadrotor_mpc node: linear MPC on the translational double integrator, proposing the nominal acceleration.

It takes the place of quadrotor_position_controller in the filtered chain (same ports: /odom in,
/cmd_accel_nominal and /reference out), so the safety filter still corrects whatever it proposes.
Each tick it samples the reference over the horizon (aegis.controllers.mpc.translational_mpc,
OSQP with a shifted warm start, built once) and publishes the first acceleration of the plan.
Acceleration and speed limits come from the hw_config's ``safety`` section.

An MPC that fails (solver status not solved, even after relaxing its state limits) publishes no
nominal this tick and counts it in ``mpc_failures``: the filter then filters zero (hover), and the
attitude loop brakes if that goes stale too. Missing, stale or non-finite odometry: nothing is
published either, counted in ``lost_state_ticks``. The node never raises in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from aegis.config import SafetyConfig
from aegis.controllers.quadrotor_model import quaternion_to_matrix, yaw_quaternion
from aegis.msgs import AccelCommand, RobotState
from aegis.node import Node, Port, Received
from aegis.nodes.quadrotor_controller import (
    QuadrotorControllerParams,
    reference_function,
    reference_message,
)

Positive = Annotated[float, Field(gt=0)]


class QuadrotorMpcParams(QuadrotorControllerParams):
    safety: SafetyConfig = Field(SafetyConfig(), description="acceleration and speed limits (filled from the hw_config)")
    horizon: Annotated[int, Field(ge=2, le=200)] = Field(20, description="prediction steps, one per control period")
    position_weight: Positive = Field(100.0, description="state weight on position error")
    velocity_weight: Positive = Field(4.0, description="state weight on velocity error")
    accel_weight: Positive = Field(0.25, description="input weight on acceleration")


class QuadrotorMpc(Node):
    """Plans the next ``horizon`` accelerations toward the reference; proposes the first."""

    type_name = "quadrotor_mpc"
    inputs = (Port("state", RobotState, "/odom", max_age_s=0.05, description="odometry (twist in the body frame)"),)
    outputs = (
        Port("nominal", AccelCommand, "/cmd_accel_nominal", description="proposed world-frame acceleration (m/s^2)"),
        Port("reference", RobotState, "/reference", description="the reference being tracked"),
    )
    Params = QuadrotorMpcParams
    default_rate_hz = 48.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from aegis.controllers.mpc import translational_mpc

        p = self.params
        self.dt = 1.0 / self.rate_hz
        self.mpc = translational_mpc(
            self.dt,
            p.horizon,
            a_max=p.safety.max_accel_mps2,
            v_max=p.safety.max_speed_mps,
            position_weight=p.position_weight,
            velocity_weight=p.velocity_weight,
            accel_weight=p.accel_weight,
        )
        self.reference = reference_function(p)
        self._offsets = np.arange(p.horizon + 1) * self.dt
        self._heading = yaw_quaternion(p.yaw_rad)
        self._heading_matrix = quaternion_to_matrix(self._heading)
        self.mpc_failures = 0
        self.relaxed_ticks = 0
        self.lost_state_ticks = 0

    def reset(self, seed: int | None = None) -> None:
        self.mpc.reset()
        self.mpc_failures = self.relaxed_ticks = self.lost_state_ticks = 0

    def metrics(self) -> dict[str, Any]:
        return {"mpc_failures": self.mpc_failures, "mpc_relaxed_ticks": self.relaxed_ticks}

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        samples = [self.reference(now + offset) for offset in self._offsets]
        position, velocity, _ = samples[0]
        outputs: dict[str, Any] = {"reference": reference_message(now, position, velocity, self._heading, self._heading_matrix)}
        received = inputs.get("state")
        state = received.msg if received is not None and not received.stale else None
        if state is None or not state.is_usable():
            self.lost_state_ticks += 1
            return outputs
        from aegis.controllers.mpc import translational_reference

        x0 = np.concatenate([state.position, quaternion_to_matrix(state.orientation) @ state.linear_velocity])
        x_ref, u_ref = translational_reference(*(np.array(column) for column in zip(*samples)))
        u0, info = self.mpc.compute(x0, x_ref, u_ref)
        self.relaxed_ticks += bool(info.relaxed)
        if not info.ok or not np.all(np.isfinite(u0)):
            self.mpc_failures += 1
            return outputs
        outputs["nominal"] = AccelCommand(stamp=now, frame_id="odom", linear=u0)
        return outputs
