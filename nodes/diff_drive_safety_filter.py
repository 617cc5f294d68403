"""The ground robot's diff_drive_safety_filter node: a unicycle through a look-ahead point, on the twist (v, omega)."""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from aegis.msgs import Obstacles, RobotState, SafetyFilterReport, TwistCommand
from aegis.node import Port

from aegis.nodes.safety_filter import ESCAPE_GAIN, ESCAPE_MARGIN_M, NOMINAL_TIMEOUT_S, Escape, DeadlockEscapeParams, Positive, SafetyFilterNode, SafetyFilterParams


class DiffDriveSafetyFilterParams(SafetyFilterParams):
    deadlock_escape: DeadlockEscapeParams | None = Field(
        None,
        description="off by default for a diff-drive: the unicycle filter turns a held-back Husky round an obstacle by "
        "itself (husky_adversarial, the layout families: no stall in 30 s), and an escape started during a long, slow "
        "turn cost 1-2 of 10 clutter episodes their goal; set it to get round a true stall",
    )
    lookahead_m: Positive = Field(0.3, description="distance of the controlled point ahead of the axle centre (m)")
    max_turn_rate_radps: Positive = Field(1.5, description="turn-rate limit (rad/s)")
    alpha: Positive = Field(1.0, description="barrier rate (1/s)")
    slip_speed_mps: Annotated[float, Field(ge=0)] = Field(
        0.0, description="bound on the look-ahead point's unmodelled speed (side slip, wheel lag), kept as robustness (m/s)"
    )


class DiffDriveSafetyFilter(SafetyFilterNode):
    """The ground robot's filter: a unicycle through a look-ahead point, on the twist (v, omega)."""

    type_name = "diff_drive_safety_filter"
    inputs = (
        Port("state", RobotState, "/odom", max_age_s=0.1, description="odometry (twist in the body frame)"),
        Port("nominal", TwistCommand, "/cmd_vel_nominal", max_age_s=NOMINAL_TIMEOUT_S * 2.5, description="proposed twist"),
        Port("obstacles", Obstacles, "/obstacles", description="perceived obstacles"),
    )
    outputs = (
        Port("command", TwistCommand, "/cmd_vel_filtered", description="safe body twist (linear.x m/s, angular.z rad/s), to the supervisor"),
        Port("report", SafetyFilterReport, "/safety_filter/report", description="what the filter did, every tick"),
    )
    Params = DiffDriveSafetyFilterParams
    default_rate_hz = 50.0

    def _model(self) -> Any:
        from aegis.controllers.cbf import UnicycleLookaheadModel

        p = self.params
        return UnicycleLookaheadModel(
            lookahead_distance=p.lookahead_m,
            robot_radius=p.robot_radius_m,
            max_speed=p.safety.max_speed_mps,
            max_turn_rate=p.max_turn_rate_radps,
            alpha=p.alpha,
            disturbance_speed=p.slip_speed_mps,
        )

    def _state_vector(self, state: RobotState) -> np.ndarray:
        x, y, z, w = state.orientation
        yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
        return np.array([state.position[0], state.position[1], yaw])

    def _position_velocity(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x[:2], np.zeros(2)  # closing speed from the pose alone is not known: adapt on density only

    _planar = True

    def _asks_for_motion(self, nominal: np.ndarray) -> bool:
        return abs(float(nominal[0])) > 0.05  # m/s forward or back

    def _escape_frame(self, x: np.ndarray, nominal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The look-ahead point (what the barriers keep clear) and the heading the nominal drives it along."""
        heading = np.array([math.cos(x[2]), math.sin(x[2]), 0.0]) * math.copysign(1.0, nominal[0])
        lookahead = self.params.lookahead_m
        return np.array([x[0] + lookahead * math.cos(x[2]), x[1] + lookahead * math.sin(x[2]), 0.0]), heading

    def _escape_clearance(self) -> float:
        return self.params.robot_radius_m + self.params.lookahead_m + ESCAPE_MARGIN_M

    def _escaping_nominal(self, x: np.ndarray, state: RobotState, nominal: np.ndarray, escape: Escape) -> np.ndarray:
        """Turn toward the way around and creep along it (forward speed falls with the heading error)."""
        direction = escape.direction
        speed = self._escape_speed(self._escape_frame(x, nominal)[0], escape)
        error = math.remainder(math.atan2(direction[1], direction[0]) - x[2], math.tau)
        turn = float(np.clip(ESCAPE_GAIN * error, -self.params.max_turn_rate_radps, self.params.max_turn_rate_radps))
        return np.array([speed * max(0.0, math.cos(error)), turn])

    def _nominal_vector(self, msg: TwistCommand | None) -> np.ndarray:
        return np.zeros(2) if msg is None else np.array([msg.linear[0], msg.angular[2]])

    def _command(self, now: float, u: np.ndarray) -> TwistCommand:
        return TwistCommand(stamp=now, frame_id="base_link", linear=np.array([u[0], 0.0, 0.0]), angular=np.array([0.0, 0.0, u[1]]))
