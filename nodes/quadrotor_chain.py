"""The quadrotor control chain split at the acceleration command, so a safety filter can sit in between.

``quadrotor_position_controller`` runs the cascade's outer loops (position -> velocity ->
acceleration, with the reference's feed-forward) and publishes the NOMINAL acceleration on
/cmd_accel_nominal (and its reference on /reference). ``quadrotor_attitude_controller`` realises an
acceleration command from /cmd_accel through the inner loops (thrust vector -> attitude -> body
rates -> torques -> rotor speeds). ``quadrotor_rate_controller`` takes collective thrust + body
rates (/cmd_thrust_rates, the interface PX4 and the Crazyflie commander offer) to rotor speeds. With no filter between them (``aegis sim --no-filter``) the
attitude controller reads the nominal command directly; that is the only difference.

Both read odometry (/odom). Missing, stale or non-finite odometry: the position controller
publishes nothing (there is no honest acceleration to propose; the attitude controller's command
then goes stale), and the attitude controller commands equal rotor speeds at
``lost_state_thrust_ratio`` of the weight, as quadrotor_controller does. A missing or stale
acceleration command with good odometry: the attitude controller brakes, a = -brake_gain v
(clipped to the cascade's acceleration limit), which ends in a hover where the robot is. Both
count such ticks and never raise in step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from aegis.controllers.hover_thrust import HoverThrustEstimator, HoverThrustParams
from aegis.controllers.quadrotor_cascade import CascadeGains, QuadrotorCascade
from aegis.controllers.quadrotor_model import QuadrotorModel, quaternion_to_matrix, yaw_quaternion
from aegis.msgs import AccelCommand, MotorSpeeds, RobotState, ThrustRatesCommand
from aegis.node import Node, NodeParams, Port, Received
from aegis.nodes.quadrotor_controller import (
    QuadrotorControllerParams,
    reference_function,
    reference_message,
    usable_state,
)

ACCEL_COMMAND_TIMEOUT_S = 0.1


class _CascadeNode(Node):
    """Shared construction: the model and a cascade at this node's rate."""

    Params = QuadrotorControllerParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        p = self.params
        self.model = QuadrotorModel.from_robot(p.robot, p.gravity_mps2)
        self.cascade = QuadrotorCascade(self.model, CascadeGains(**p.gains.model_dump()), dt=1.0 / self.rate_hz)
        self.lost_state_ticks = 0

    def reset(self, seed: int | None = None) -> None:
        self.cascade.reset()
        self.lost_state_ticks = 0


class _InnerLoopNode(_CascadeNode):
    """Shared fallbacks of the nodes that drive the motors: blind -> equal speeds below the weight; no command -> brake."""

    # subclasses use InnerLoopParams (brake_gain) or its AttitudeControllerParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lost_speed = self.model.hover_motor_speed * math.sqrt(self.params.lost_state_thrust_ratio)
        self.braking_ticks = 0

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.braking_ticks = 0

    def _blind(self) -> np.ndarray:
        self.lost_state_ticks += 1
        return np.full(4, self._lost_speed)

    def _brake(self, state: RobotState) -> np.ndarray:
        """a = -brake_gain v (clipped): ends in a hover where the robot is."""
        self.braking_ticks += 1
        velocity_world = quaternion_to_matrix(state.orientation) @ state.linear_velocity
        limit = self.params.gains.max_accel_mps2
        brake = np.clip(-self.params.brake_gain * velocity_world, -limit, limit)
        return self.cascade.compute_acceleration(state.orientation, state.angular_velocity, brake, self.params.yaw_rad)


class QuadrotorPositionController(_CascadeNode):
    """Outer loops: odometry and the reference in, the nominal world-frame acceleration out."""

    type_name = "quadrotor_position_controller"
    inputs = (Port("state", RobotState, "/odom", max_age_s=0.05, description="odometry (twist in the body frame)"),)
    outputs = (
        Port("nominal", AccelCommand, "/cmd_accel_nominal", description="proposed world-frame acceleration (m/s^2)"),
        Port("reference", RobotState, "/reference", description="the reference being tracked"),
    )
    default_rate_hz = 48.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reference = reference_function(self.params)
        self._heading = yaw_quaternion(self.params.yaw_rad)
        self._heading_matrix = quaternion_to_matrix(self._heading)

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        position, velocity, acceleration = self.reference(now)
        outputs: dict[str, Any] = {"reference": reference_message(now, position, velocity, self._heading, self._heading_matrix)}
        state = usable_state(inputs.get("state"))
        if state is None:
            self.lost_state_ticks += 1
            return outputs
        velocity_world = quaternion_to_matrix(state.orientation) @ state.linear_velocity
        accel = self.cascade.position_to_acceleration(state.position, velocity_world, position, velocity, acceleration)
        outputs["nominal"] = AccelCommand(stamp=now, frame_id="odom", linear=accel)
        return outputs


class InnerLoopParams(QuadrotorControllerParams):
    brake_gain: Annotated[float, Field(gt=0)] = Field(
        2.0, description="acceleration per m/s of velocity while the acceleration command is missing (1/s)"
    )


_HOVER = HoverThrustParams()


class HoverThrustEstimation(NodeParams):
    """The attitude loop's hover-thrust estimator (aegis.controllers.hover_thrust): learns the plant's mass over the model's."""

    enabled: bool = Field(False, description="estimate the thrust ratio in flight and scale the thrust vector by it (off: the model's mass)")
    window_s: Annotated[float, Field(gt=0)] = Field(
        0.1, description="span of one measurement: the vertical velocity's difference across it, in whole control ticks (s)"
    )
    accel_noise_std_mps2: Annotated[float, Field(gt=0)] = Field(
        _HOVER.accel_noise_std_mps2, description="measurement noise of a window's mean vertical acceleration (m/s^2)"
    )
    ratio_noise_std: Annotated[float, Field(ge=0)] = Field(_HOVER.ratio_noise_std, description="random walk of the ratio (1/sqrt(s))")
    initial_ratio_std: Annotated[float, Field(gt=0)] = Field(_HOVER.initial_ratio_std, description="the ratio's standard deviation at reset")
    gate: Annotated[float, Field(gt=0)] = Field(_HOVER.gate, description="innovation gate (standard deviations): a larger innovation is not fused")
    rejection_bump: Annotated[float, Field(ge=0)] = Field(
        _HOVER.rejection_bump, description="a window the gate refuses adds this many windows' process noise to the variance"
    )
    min_ratio: Annotated[float, Field(gt=0, le=1)] = Field(_HOVER.min_ratio, description="lowest ratio the estimate may take")
    max_ratio: Annotated[float, Field(ge=1)] = Field(_HOVER.max_ratio, description="highest ratio the estimate may take")
    max_tilt_rad: Annotated[float, Field(gt=0, lt=math.pi / 2)] = Field(
        _HOVER.max_tilt_rad, description="tilt beyond which the estimate is frozen (rad)"
    )

    def estimator(self, dt: float, model: QuadrotorModel) -> HoverThrustEstimator:
        """The estimator at control period ``dt`` (s) for ``model`` (its gravity and motor lag)."""
        settings = self.model_dump(exclude={"enabled", "window_s"})
        window = max(1, round(self.window_s / dt))
        params = HoverThrustParams(window_ticks=window, motor_time_constant_s=model.motor_time_constant_s, **settings)
        return HoverThrustEstimator(params, dt, model.gravity_mps2)


class AttitudeControllerParams(InnerLoopParams):
    hover_thrust: HoverThrustEstimation = Field(
        HoverThrustEstimation(),
        description="hover-thrust estimator: the thrust vector m r (a + g z) with r estimated from vertical motion (default off)",
    )


class QuadrotorAttitudeController(_InnerLoopNode):
    """Inner loops: an acceleration command (usually the safety filter's) and odometry in, rotor speeds out.

    With ``hover_thrust.enabled`` it estimates the plant's thrust ratio r (its mass over the model's,
    aegis.controllers.hover_thrust) from the odometry's vertical velocity and its own thrust commands,
    and realises an acceleration a with the thrust vector m r (a + g z); the estimate is frozen while
    the odometry is unusable, the body tilts beyond ``hover_thrust.max_tilt_rad`` or the thrust sits at a
    limit. :meth:`metrics` reports it (``hover_thrust_ratio``, ``hover_thrust_mass_kg``).
    """

    type_name = "quadrotor_attitude_controller"
    inputs = (
        Port("state", RobotState, "/odom", max_age_s=0.05, description="odometry (twist in the body frame)"),
        Port(
            "acceleration", AccelCommand, "/cmd_accel", max_age_s=ACCEL_COMMAND_TIMEOUT_S,
            description="world-frame acceleration to realise (m/s^2)",
        ),
    )
    outputs = (Port("command", MotorSpeeds, "/cmd_motors", description="rotor speed command (rad/s)"),)
    Params = AttitudeControllerParams
    default_rate_hz = 240.0  # an onboard inner loop: at 48 Hz the hold alone costs the rate loop 30 degrees of phase

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        hover = self.params.hover_thrust
        self.hover_thrust = hover.estimator(1.0 / self.rate_hz, self.model) if hover.enabled else None
        self._thrust_z = 0.0  # the last tick's vertical thrust over the nominal weight
        self._thrust_limited = True  # no thrust of ours yet

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        if self.hover_thrust is not None:
            self.hover_thrust.reset()
        self.cascade.thrust_ratio = 1.0
        self._thrust_z = 0.0
        self._thrust_limited = True

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        state = usable_state(inputs.get("state"))
        received = inputs.get("acceleration")
        command = received.msg.linear if received is not None and not received.stale else None
        tilt_cos = self._update_thrust_ratio(state) if self.hover_thrust is not None else 0.0
        if state is None:
            speeds = self._blind()
        elif command is None or not all(map(math.isfinite, command.tolist())):
            speeds = self._brake(state)
        else:
            speeds = self.cascade.compute_acceleration(state.orientation, state.angular_velocity, command, self.params.yaw_rad)
        if self.hover_thrust is not None:
            self._thrust_limited = state is None or self.cascade.thrust_limited
            self._thrust_z = self.cascade.thrust_setpoint * tilt_cos / self.model.weight_n
        return {"command": MotorSpeeds.of_typed(now, "base_link", speeds)}  # the cascade's float64 (4,) speeds

    def _update_thrust_ratio(self, state: RobotState | None) -> float:
        """One tick of the hover-thrust estimator (on only): the cascade's thrust ratio from it; the body z axis' vertical
        component, which this tick's thrust is projected with."""
        if state is None:
            self.hover_thrust.update(math.nan, math.nan, 0.0, usable=False)
            return 0.0
        qx, qy, qz, qw = state.orientation.tolist()
        tilt_cos = 1.0 - 2.0 * (qx * qx + qy * qy)  # the body z axis' vertical component
        vx, vy, vz = state.linear_velocity.tolist()  # body frame: its world z component
        velocity_z = 2.0 * (qx * qz - qw * qy) * vx + 2.0 * (qy * qz + qw * qx) * vy + tilt_cos * vz
        self.cascade.thrust_ratio = self.hover_thrust.update(velocity_z, self._thrust_z, tilt_cos, True, self._thrust_limited)
        return tilt_cos

    def metrics(self) -> dict[str, Any]:
        """The hover-thrust estimate, for run summaries (keys prefixed ``hover_thrust_``; empty when the estimator is off)."""
        estimator = self.hover_thrust
        if estimator is None:
            return {}
        return {
            "hover_thrust_ratio": round(estimator.ratio, 4),
            "hover_thrust_ratio_std": round(estimator.std, 4),
            "hover_thrust_mass_kg": round(estimator.ratio * self.model.mass_kg, 5),
            "hover_thrust_fused": estimator.fused,
            "hover_thrust_rejected": estimator.rejected,
            "hover_thrust_frozen_ticks": estimator.frozen_ticks,
        }


class QuadrotorRateController(_InnerLoopNode):
    """Innermost loop: collective thrust + body rates (the PX4 / Crazyflie commander interface) in, rotor speeds out.

    A missing or stale command with good odometry brakes through the attitude loop (as the
    attitude controller does); without odometry, equal rotor speeds below the weight.
    """

    type_name = "quadrotor_rate_controller"
    inputs = (
        Port("state", RobotState, "/odom", max_age_s=0.05, description="odometry (body rates are the twist's angular part)"),
        Port(
            "command", ThrustRatesCommand, "/cmd_thrust_rates", max_age_s=ACCEL_COMMAND_TIMEOUT_S,
            description="collective thrust (N) and body rates (rad/s, FLU)",
        ),
    )
    outputs = (Port("motors", MotorSpeeds, "/cmd_motors", description="rotor speed command (rad/s)"),)
    Params = InnerLoopParams
    default_rate_hz = 240.0

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        state = usable_state(inputs.get("state"))
        received = inputs.get("command")
        command = received.msg if received is not None and not received.stale else None
        if state is None:
            speeds = self._blind()
        elif command is None or not (math.isfinite(command.collective_thrust) and np.all(np.isfinite(command.body_rates))):
            speeds = self._brake(state)
        else:
            speeds = self.cascade.compute_thrust_rates(state.angular_velocity, command.collective_thrust, command.body_rates)
        return {"motors": MotorSpeeds(stamp=now, frame_id="base_link", velocities=speeds)}
