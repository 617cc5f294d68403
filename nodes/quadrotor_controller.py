"""The quadrotor_controller node: flies a reference (hover, or hover then a figure-8) through the cascade to motor speeds.

Each tick it reads odometry (/odom; position in the world frame, twist in the body frame as
nav_msgs/Odometry has it), evaluates the reference at ``now``, runs
aegis.controllers.quadrotor_cascade (position -> velocity -> attitude -> body rates -> mixing)
and publishes rotor speeds on /cmd_motors, and the reference it tracks on /reference (a
RobotState: position, velocity in the reference's heading frame, orientation = heading).

Missing, stale (older than the port's bound) or non-finite odometry: there is no safe attitude
hold without a state, so the node commands all four rotors at the same speed, giving
``lost_state_thrust_ratio`` of the weight (no torque: the body keeps whatever attitude it has, and
sinks), holds its integrators, and counts the tick in ``lost_state_ticks``. It never raises in step.

The reference, with c the hover position, a the size and w = 2 pi / period, from
``figure8_start_s`` on (a Lissajous figure-8, twice as wide along x as along y):

    x = c_x + a sin(phi),   y = c_y + (a / 2) sin(2 phi),   z = c_z

with the phase phi speeding up smoothly (a smoothstep in phi') over the first half period, so the
reference's velocity is continuous where the figure-8 starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from aegis.config import CRAZYFLIE_2X, RobotConfig
from aegis.controllers.lqr import HoverLqr
from aegis.controllers.quadrotor_cascade import CascadeGains, QuadrotorCascade
from aegis.controllers.quadrotor_model import QuadrotorModel, quaternion_to_matrix, yaw_quaternion
from aegis.msgs import MotorSpeeds, RobotState
from aegis.node import Node, NodeParams, Port, Received

Vector3 = tuple[float, float, float]
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
NonNegativeVector3 = tuple[NonNegative, NonNegative, NonNegative]
PositiveVector3 = tuple[Positive, Positive, Positive]
_DEFAULT = CascadeGains()


class QuadrotorGains(NodeParams):
    """The cascade's gains and limits (aegis.controllers.quadrotor_cascade.CascadeGains), per axis x, y, z."""

    position_kp: NonNegativeVector3 = Field(_DEFAULT.position_kp, description="velocity command per m of error (1/s)")
    velocity_kp: NonNegativeVector3 = Field(_DEFAULT.velocity_kp, description="acceleration per m/s of error (1/s)")
    velocity_ki: NonNegativeVector3 = Field(_DEFAULT.velocity_ki, description="integral gain of the velocity loop (1/s^2)")
    velocity_integral_limit: NonNegativeVector3 = Field(_DEFAULT.velocity_integral_limit, description="integrator clamp (m)")
    attitude_kp: NonNegativeVector3 = Field(_DEFAULT.attitude_kp, description="body rate per rad of attitude error (1/s)")
    rate_kp: NonNegativeVector3 = Field(_DEFAULT.rate_kp, description="angular acceleration per rad/s of error (1/s)")
    rate_ki: NonNegativeVector3 = Field(_DEFAULT.rate_ki, description="integral gain of the rate loop (1/s^2)")
    rate_integral_limit: NonNegativeVector3 = Field(_DEFAULT.rate_integral_limit, description="integrator clamp (rad)")
    max_speed_mps: Positive = Field(_DEFAULT.max_speed_mps, description="velocity command limit (m/s)")
    max_accel_mps2: Positive = Field(_DEFAULT.max_accel_mps2, description="acceleration command limit per axis (m/s^2)")
    max_tilt_rad: Annotated[float, Field(gt=0, lt=math.pi / 2)] = Field(_DEFAULT.max_tilt_rad, description="tilt limit (rad)")
    max_rate_radps: PositiveVector3 = Field(_DEFAULT.max_rate_radps, description="body rate command limit (rad/s)")


class QuadrotorControllerParams(NodeParams):
    robot: RobotConfig = Field(CRAZYFLIE_2X, description="the controlled robot (filled from the hw_config's robot section)")
    gravity_mps2: Positive = Field(9.81, description="gravity (m/s^2)")
    reference: Literal["hover", "figure8", "scenario"] = Field(
        "hover", description="hover at hover_position_m, or then a figure-8 around it, or the scenario's reference"
    )
    scenario: Path | None = Field(None, description="scenario file (filled from the hw_config's scenario)")
    scenario_robot: str | None = Field(
        None, description="which robot of a multi-robot scenario (its robots: section) this node flies; none for a one-robot scenario"
    )
    law: Literal["cascade", "lqr"] = Field(
        "cascade", description="cascade PID (tracks moving references with feed-forward) or LQR about hover (holds positions)"
    )
    hover_position_m: Vector3 = Field((0.0, 0.0, 1.0), description="position to hold, and the figure-8's centre (m, world)")
    yaw_rad: float = Field(0.0, description="heading to hold (rad)")
    figure8_start_s: NonNegative = Field(5.0, description="time the figure-8 starts; hover before it (s)")
    figure8_size_m: Positive = Field(1.0, description="half-width of the figure-8 along x; half that along y (m)")
    figure8_period_s: Positive = Field(8.0, description="time of one figure-8 (s)")
    lost_state_thrust_ratio: Annotated[float, Field(gt=0, le=1)] = Field(
        0.8, description="collective thrust, as a fraction of the weight, while odometry is missing or stale"
    )
    gains: QuadrotorGains = Field(QuadrotorGains(), description="cascade gains and limits")

    @field_validator("robot")
    @classmethod
    def _quadrotor_only(cls, robot: RobotConfig) -> RobotConfig:
        if robot.kind != "quadrotor":
            raise ValueError(f"quadrotor_controller needs kind quadrotor, not {robot.kind!r}")
        return robot

    @model_validator(mode="after")
    def _scenario_given_when_used(self) -> QuadrotorControllerParams:
        if self.reference == "scenario" and self.scenario is None:
            raise ValueError("reference 'scenario' needs a scenario (the hw_config's scenario key)")
        if self.reference == "scenario":
            from aegis.scenario import load_scenario

            load_scenario(self.scenario).task(self.scenario_robot)  # ValueError naming the scenario's robots
        elif self.scenario_robot is not None:
            raise ValueError(f"scenario_robot {self.scenario_robot!r} is only used with reference 'scenario'")
        return self


class Figure8:
    """Position, velocity and acceleration of the hover-then-figure-8 reference at a time (see the module doc)."""

    def __init__(self, center: Vector3, size: float, period: float, start: float) -> None:
        self.center = np.asarray(center, dtype=float)
        self.size = float(size)
        self.omega = 2.0 * math.pi / period
        self.start = float(start)
        self.ramp = 0.5 * period

    def phase(self, t: float) -> tuple[float, float, float]:
        """(phi, phi', phi'') at time t."""
        s = t - self.start
        if s <= 0.0:
            return 0.0, 0.0, 0.0
        w, ramp = self.omega, self.ramp
        if s < ramp:
            x = s / ramp
            return w * ramp * (x**3 - 0.5 * x**4), w * (3 * x**2 - 2 * x**3), w / ramp * (6 * x - 6 * x**2)
        return w * (0.5 * ramp + s - ramp), w, 0.0

    def table(self, times: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions, velocities, accelerations at ``times``, (k, 3) each: the calls' results stacked."""
        from aegis.scenario.reference import stacked

        return stacked([self(t) for t in times])

    def __call__(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        phi, dphi, ddphi = self.phase(t)
        a = self.size
        s1, c1, s2, c2 = math.sin(phi), math.cos(phi), math.sin(2 * phi), math.cos(2 * phi)
        position = self.center + np.array([a * s1, 0.5 * a * s2, 0.0])
        velocity = np.array([a * c1 * dphi, a * c2 * dphi, 0.0])
        acceleration = np.array(
            [-a * s1 * dphi**2 + a * c1 * ddphi, -2 * a * s2 * dphi**2 + a * c2 * ddphi, 0.0]
        )
        return position, velocity, acceleration


class QuadrotorController(Node):
    """Cascade control of a quadrotor to a reference; equal rotor speeds below hover thrust while blind."""

    type_name = "quadrotor_controller"
    inputs = (Port("state", RobotState, "/odom", max_age_s=0.05, description="odometry (twist in the body frame)"),)
    outputs = (
        Port("command", MotorSpeeds, "/cmd_motors", description="rotor speed command (rad/s)"),
        Port("reference", RobotState, "/reference", description="the reference being tracked"),
    )
    Params = QuadrotorControllerParams
    default_rate_hz = 48.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        p = self.params
        self.model = QuadrotorModel.from_robot(p.robot, p.gravity_mps2)
        self.cascade = QuadrotorCascade(self.model, CascadeGains(**p.gains.model_dump()), dt=1.0 / self.rate_hz)
        self.lqr = HoverLqr(self.model, dt=1.0 / self.rate_hz) if p.law == "lqr" else None
        self.reference = reference_function(p)
        self._heading = yaw_quaternion(p.yaw_rad)
        self._heading_matrix = quaternion_to_matrix(self._heading)
        self._lost_speed = self.model.hover_motor_speed * math.sqrt(p.lost_state_thrust_ratio)
        self.lost_state_ticks = 0

    def reset(self, seed: int | None = None) -> None:
        self.cascade.reset()
        self.lost_state_ticks = 0

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        position, velocity, acceleration = self.reference(now)
        received = inputs.get("state")
        state = received.msg if received is not None and not received.stale else None
        if state is not None and state.is_usable():
            velocity_world = quaternion_to_matrix(state.orientation) @ state.linear_velocity  # body twist to world
            if self.lqr is not None:
                speeds = self.lqr.compute(
                    state.position, velocity_world, state.orientation, state.angular_velocity, position, self.params.yaw_rad
                )
            else:
                speeds = self.cascade.compute(
                    state.position,
                    velocity_world,
                    state.orientation,
                    state.angular_velocity,
                    position,
                    velocity,
                    acceleration,
                    self.params.yaw_rad,
                )
        else:
            speeds = np.full(4, self._lost_speed)
            self.lost_state_ticks += 1
        reference = reference_message(now, position, velocity, self._heading, self._heading_matrix)
        return {"command": MotorSpeeds(stamp=now, frame_id="base_link", velocities=speeds), "reference": reference}


def usable_state(received: Received | None) -> RobotState | None:
    """The odometry ``received`` carries when it is fresh and usable (finite, a unit quaternion); else None."""
    state = received.msg if received is not None and not received.stale else None
    return state if state is not None and state.is_usable() else None


def reference_function(p: QuadrotorControllerParams) -> ScenarioReference | Figure8:
    """The reference as a function of time: the built-in hover / figure-8, or the scenario's."""
    if p.reference == "scenario":
        from aegis.scenario import load_scenario

        return ScenarioReference(load_scenario(p.scenario).task(p.scenario_robot).reference)
    start = p.figure8_start_s if p.reference == "figure8" else math.inf
    return Figure8(p.hover_position_m, p.figure8_size_m, p.figure8_period_s, start)


class ScenarioReference:
    """A scenario's reference as a function of time (aegis.scenario.reference_at), and over many times at once (``table``)."""

    def __init__(self, reference: Any) -> None:
        from aegis.scenario import reference_at, reference_table

        self.reference = reference
        self._at, self._table = reference_at, reference_table  # resolved once: called every tick

    def __call__(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._at(self.reference, t)

    def table(self, times: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions, velocities, accelerations at ``times``, (k, 3) each: the calls' results stacked."""
        return self._table(self.reference, times)


def reference_message(
    now: float, position: np.ndarray, velocity: np.ndarray, heading: np.ndarray, heading_matrix: np.ndarray
) -> RobotState:
    """The reference as published on /reference: world position, velocity in the heading's frame (float64 arrays from
    aegis.scenario.reference and the node's heading: the unchecked constructor, every tick)."""
    return RobotState.of_typed(now, "odom", "reference", position, heading, velocity @ heading_matrix)
