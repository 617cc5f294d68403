"""The quadrotor's safety_filter node: a double integrator in world-frame acceleration (with the plant's lag as a state when configured), higher-order CBFs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from aegis.controllers.cbf.deadlock import PASSAGE_MARGIN_M
from aegis.controllers.quadrotor_model import GRAVITY_MPS2
from aegis.msgs import AccelCommand, ImuSample, Obstacles, RobotState, SafetyFilterReport
from aegis.node import Port, Received

from aegis.nodes.safety_filter import ESCAPE_GAIN, ESCAPE_MARGIN_M, Escape, NEIGHBOUR_TIMEOUT_S, NOMINAL_TIMEOUT_S, Positive, SafetyFilterNode, SafetyFilterParams


class QuadrotorSafetyFilterParams(SafetyFilterParams):
    speed_alpha: Positive = Field(
        5.0, description="rate (1/s) of the speed-limit barrier: lower starts braking earlier, for a lagging inner loop"
    )
    actuator_lag_s: tuple[Positive, Positive, Positive] | None = Field(
        None,
        description="time constant (s, world x, y, z) with which the inner loops realise a commanded acceleration; "
        "set: third-order barriers on [p, v, a], the state predicted over latency, the bias observed (none: a = u at once)",
    )
    actuator_delay_s: Annotated[float, Field(ge=0, lt=1)] | tuple[
        Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]
    ] = Field(
        0.0,
        description="with actuator_lag_s: dead time (s, one for all axes or world x, y, z) before a commanded acceleration "
        "starts to show, the inner loop's own plus any known actuation latency; the odometry's delay is read from its stamps",
    )
    model_error_mps2: Annotated[float, Field(ge=0, lt=20)] = Field(
        0.0, description="with actuator_lag_s: declared bound on the acceleration the model gets wrong after the bias estimate (m/s^2)"
    )
    observer_time_constant_s: Positive = Field(0.5, description="with actuator_lag_s: time constant of the bias observer (s)")
    max_bias_mps2: Annotated[float, Field(ge=0, lt=20)] = Field(
        3.0, description="with actuator_lag_s: largest bias (m/s^2 per axis) the model admits; at the bound the report warns"
    )
    fit_actuator_lag: bool = Field(
        False,
        description="with actuator_lag_s and an IMU: fit the horizontal lag and dead time in flight from the commands and the "
        "measured acceleration and report them (actuator_lag_fitted_s, actuator_delay_fitted_s in the summary); the filter "
        "keeps modelling the declared ones (controllers/cbf/lag_estimator.py)",
    )
    imu_source: Literal["topic", "none"] = Field(
        "topic",
        description="'topic': the bias observer (with actuator_lag_s) reads measured accelerations on the imu port; 'none': "
        "this deployment has no sensor_msgs/Imu (crazyswarm2 publishes none): the observer gets no measurement (its bias stays zero), "
        "and no node may publish the port's topic",
    )

    @model_validator(mode="after")
    def _fitting_needs_a_lag_and_an_imu(self) -> QuadrotorSafetyFilterParams:
        if self.fit_actuator_lag and (self.actuator_lag_s is None or self.imu_source == "none"):
            raise ValueError(
                "fit_actuator_lag: true needs actuator_lag_s (the declared lag it starts from) and imu_source: topic "
                "(the measured acceleration it fits)"
            )
        return self


class SafetyFilter(SafetyFilterNode):
    """The quadrotor's filter: a double integrator in world-frame acceleration, higher-order CBFs."""

    type_name = "safety_filter"
    inputs = (
        Port("state", RobotState, "/odom", max_age_s=0.05, description="odometry (twist in the body frame)"),
        Port("nominal", AccelCommand, "/cmd_accel_nominal", max_age_s=NOMINAL_TIMEOUT_S, description="proposed acceleration"),
        Port("obstacles", Obstacles, "/obstacles", description="perceived obstacles"),
        Port(
            "neighbours", RobotState, (), max_age_s=NEIGHBOUR_TIMEOUT_S, many=True,
            description="other robots' odometry, one topic per robot (none wired: no neighbours)",
        ),
        Port("imu", ImuSample, "/imu", max_age_s=0.1, description="measured acceleration, for the bias observer (with actuator_lag_s)"),
    )
    outputs = (
        Port("command", AccelCommand, "/cmd_accel_filtered", description="safe world-frame acceleration (m/s^2), to the supervisor"),
        Port("report", SafetyFilterReport, "/safety_filter/report", description="what the filter did, every tick"),
    )

    Params = QuadrotorSafetyFilterParams

    @classmethod
    def unread_inputs(cls, params: QuadrotorSafetyFilterParams) -> tuple[str, ...]:
        """The obstacles port without an obstacle source, and the imu port without an IMU (``imu_source: none``)."""
        return super().unread_inputs(params) + (("imu",) if params.imu_source == "none" else ())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        p = self.params
        self.acceleration_model = None
        if p.actuator_lag_s is not None:
            from aegis.controllers.cbf.acceleration_model import AccelerationModel

            self.acceleration_model = AccelerationModel(p.actuator_lag_s, p.actuator_delay_s, p.observer_time_constant_s, p.max_bias_mps2)
        self.lag_estimator = None
        if p.fit_actuator_lag:
            from aegis.controllers.cbf.lag_estimator import LagEstimator

            self.lag_estimator = LagEstimator(p.actuator_lag_s, p.actuator_delay_s)
        self.model_warnings = 0
        self.max_model_residual = 0.0

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        if self.acceleration_model is not None:
            self.acceleration_model.reset()
        if self.lag_estimator is not None:
            self.lag_estimator.reset()
        self.model_warnings = 0
        self.max_model_residual = 0.0

    def metrics(self) -> dict[str, Any]:
        metrics = super().metrics()
        if self.acceleration_model is not None:
            metrics["model_warnings"] = self.model_warnings
            metrics["max_model_residual_mps2"] = self.max_model_residual
        if self.lag_estimator is not None:
            metrics["actuator_lag_fitted_s"] = self.lag_estimator.lag.tolist()
            metrics["actuator_delay_fitted_s"] = self.lag_estimator.delay.tolist()
            metrics["actuator_lag_fits"] = self.lag_estimator.fits
        return metrics

    def _model(self) -> Any:
        from aegis.controllers.cbf import DoubleIntegratorModel

        safety, p = self.params.safety, self.params
        return DoubleIntegratorModel(
            max_acceleration=safety.max_accel_mps2,
            robot_radius=p.robot_radius_m,
            max_speed=safety.max_speed_mps,
            alpha=p.alpha,
            speed_alpha=p.speed_alpha,
            actuator_lag=p.actuator_lag_s,
            model_error=p.model_error_mps2,
            sample_period=1.0 / self.rate_hz,
        )

    def _believed_state(self, now: float, state: RobotState, inputs: Mapping[str, Received | None]) -> np.ndarray:
        """With a lag model: [p, v, a, bias] predicted to when this tick's command acts, the bias updated from the IMU."""
        model = self.acceleration_model
        if model is None:
            return self._state_vector(state)
        model.advance(now)
        imu = inputs.get("imu")
        if imu is not None and not imu.stale and model.observes(imu.msg.stamp) and _finite_imu(imu.msg):
            measured = _rotated(imu.msg.orientation.tolist(), imu.msg.linear_acceleration.tolist())
            measured[2] -= GRAVITY_MPS2
            model.observe(np.array(measured), imu.msg.stamp)
            if self.lag_estimator is not None:
                self.lag_estimator.measured(imu.msg.stamp, measured)
        if self.lag_estimator is not None:
            self.lag_estimator.update(now)
        return model.predict(state.position, _rotated(state.orientation.tolist(), state.linear_velocity.tolist()), state.stamp, now)

    def _sent(self, now: float, u: np.ndarray, report: SafetyFilterReport) -> None:
        model = self.acceleration_model
        if model is None:
            return
        model.commanded(now, u)
        if self.lag_estimator is not None:
            self.lag_estimator.commanded(now, u.tolist())
        residual = math.hypot(*model.filtered_residual.tolist())
        report.model_residual_mps2 = residual
        self.max_model_residual = max(self.max_model_residual, residual)
        declared = self.params.model_error_mps2
        if model.bias_saturated or residual > declared:
            what = "bias at its bound" if model.bias_saturated else f"acceleration residual {residual:.2f} m/s^2 above the declared {declared:g}"
            report.model_warning = f"model assumption violated: {what}"
            self.model_warnings += 1

    def _state_vector(self, state: RobotState) -> np.ndarray:
        return np.array(state.position.tolist() + _rotated(state.orientation.tolist(), state.linear_velocity.tolist()))


    def _position_velocity(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x[:3], x[3:6]

    def _asks_for_motion(self, nominal: np.ndarray) -> bool:
        return math.hypot(*nominal.tolist()) > 0.5  # m/s^2

    def _escape_frame(self, x: np.ndarray, nominal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x[:3], nominal

    def _escape_clearance(self) -> float:
        return self.params.robot_radius_m + ESCAPE_MARGIN_M

    def _escaping_nominal(self, x: np.ndarray, state: RobotState, nominal: np.ndarray, escape: Escape) -> np.ndarray:
        """The nominal plus a pull to the escape's speed along the way around (a P loop on that speed, 2 /s).

        On the way to a free passage, the nominal's pull against that way is dropped: it is what holds the drone in front
        of the obstacle (a policy pulls back to its reference harder the further the escape takes the drone from it).
        Within the passage's margin of it (PASSAGE_MARGIN_M) the nominal is whole again: dropped further, its pull back
        to the flight altitude went with it, and the barriers alone took a drone under a lintel down past what its
        level lidar planes had seen (wall seed 1402, docs/campaigns.md)."""
        direction = escape.direction
        along = float(x[3:6] @ direction)
        if not math.isinf(escape.distance) and escape.left(x[:3]) > PASSAGE_MARGIN_M:  # on the way to a passage
            nominal = nominal - min(0.0, float(nominal @ direction)) * direction
        return nominal + ESCAPE_GAIN * (self._escape_speed(x[:3], escape) - along) * direction

    def _nominal_vector(self, msg: AccelCommand | None) -> np.ndarray:
        return np.zeros(3) if msg is None else msg.linear

    def _command(self, now: float, u: np.ndarray) -> AccelCommand:
        return AccelCommand.of_typed(now, "odom", u)  # the filter's float64 (3,) command


def _rotated(q: list[float], v: list[float]) -> list[float]:
    """``quaternion_to_matrix(q) @ v`` on floats (body to world; numpy's overhead on a 3-vector exceeds the arithmetic)."""
    x, y, z, w = q
    vx, vy, vz = v
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz, wx, wy, wz = x * y, x * z, y * z, w * x, w * y, w * z
    return [
        (1.0 - 2.0 * (yy + zz)) * vx + 2.0 * (xy - wz) * vy + 2.0 * (xz + wy) * vz,
        2.0 * (xy + wz) * vx + (1.0 - 2.0 * (xx + zz)) * vy + 2.0 * (yz - wx) * vz,
        2.0 * (xz - wy) * vx + 2.0 * (yz + wx) * vy + (1.0 - 2.0 * (xx + yy)) * vz,
    ]


def _finite_imu(imu: ImuSample) -> bool:
    finite = math.isfinite  # per float: np.all(np.isfinite(...)) on a 3- or 4-vector costs several times more
    return all(map(finite, imu.orientation.tolist())) and all(map(finite, imu.linear_acceleration.tolist()))
