"""The safety_filter nodes: correct a nominal command with a CBF quadratic program, always on, never silent.

``safety_filter`` (quadrotor, double-integrator model) takes the nominal world-frame acceleration
(/cmd_accel_nominal, AccelCommand) and publishes the safe one (/cmd_accel); ``diff_drive_safety_filter``
(unicycle through a look-ahead point) takes a nominal twist (/cmd_vel_nominal) and publishes the safe
one (/cmd_vel). Both read odometry (/odom) and the perceived obstacles (/obstacles), take their limits
and geofence from the hw_config's ``safety`` section, and publish a SafetyFilterReport every tick
(/safety_filter/report: layer, whether it intervened, h per constraint, slack, solver status and time).

What happens when inputs are missing is decided here, explicitly:

- nominal missing or stale: the nominal is taken as zero (hover / stand still), and filtered;
- obstacles never received: the filter runs with the geofence alone and says so in the report's status;
- odometry missing, stale or not finite: no command is published (the downstream node's own
  staleness fallback brakes) and the report's layer is ``estop``;
- neighbours (``safety_filter`` only, optional): the other robots' odometry, one topic each (a many
  port, wired in the hw_config: ``topics: {neighbours: [/cf2/odom, /cf3/odom]}``), become moving
  spheres the robot keeps clear of, each taking half of the avoidance (reciprocal, decentralized:
  every robot runs its own filter). A fresh neighbour is where its odometry says; a stale one is
  kept, inflated to everywhere it may have gone since; one never heard of is ignored. Both are
  counted and named in the report (aegis.nodes.neighbours). None wired: no neighbours, as before.

The filter itself (aegis.controllers.cbf) never raises and never falls back to the nominal command:
QP -> backup (brake / stop) -> e-stop, the layer on every report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from aegis.config import SafetyConfig
from aegis.controllers.cbf import NO_NEIGHBOURS, CbfSafetyFilter, Environment, Neighbours, adaptive_alpha, closing_speed, obstacle_density
from aegis.msgs import AccelCommand, Obstacles, RobotState, SafetyFilterReport, TwistCommand
from aegis.node import Node, NodeParams, Port, Received
from aegis.nodes.neighbours import NeighbourTracker

Positive = Annotated[float, Field(gt=0)]
NOMINAL_TIMEOUT_S = 0.1
NEIGHBOUR_TIMEOUT_S = 0.05
"""A neighbour's odometry older than this is stale (as the robot's own): kept, inflated (aegis.nodes.neighbours)."""


class SafetyFilterParams(NodeParams):
    safety: SafetyConfig = Field(SafetyConfig(), description="limits and geofence (filled from the hw_config's safety section)")
    robot_radius_m: Annotated[float, Field(ge=0)] = Field(description="bounding radius kept clear of obstacles (m)")
    alpha: Positive = Field(2.0, description="barrier rate (1/s): how fast the robot may approach a constraint")
    adaptive_alpha: bool = Field(False, description="adapt alpha online to closing speed and obstacle density")
    solver: Literal["osqp-direct", "closed-form", "cvxpygen", "cvxpy-param"] = Field(
        "closed-form", description="QP path (closed-form falls through to OSQP when more than one constraint binds)"
    )
    max_rows: Annotated[int, Field(ge=1, le=64)] = Field(
        8, description="barrier rows per QP; with more candidates, the ones nearest to violation are kept"
    )
    neighbour_radius_m: Annotated[float, Field(ge=0)] | None = Field(
        None, description="bounding radius of each neighbour (m); default: robot_radius_m (robots alike)"
    )


class _SafetyFilterNode(Node):
    """Shared wiring: obstacles into an Environment once per message, the filter per tick, the report always."""

    Params: ClassVar[type[SafetyFilterParams]] = SafetyFilterParams
    bypass = ("nominal", "command")  # `--no-filter`: the command's readers read the nominal instead
    default_rate_hz = 48.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filter = CbfSafetyFilter(self._model(), solver=self.params.solver, max_rows=self.params.max_rows, name=self.name)
        self._neighbours = self._neighbour_tracker()
        geofence = self.params.safety.geofence
        if geofence is not None:
            from aegis.scenario import geofence_walls

            self._walls = geofence_walls(geofence)
        else:
            self._walls = ()
        self._environment = Environment.build((), self._walls)
        self._obstacles_msg: Obstacles | None = None
        self.interventions = 0
        self.fallbacks = 0
        self.min_barrier = math.inf

    def _model(self) -> Any:
        raise NotImplementedError

    def _state_vector(self, state: RobotState) -> np.ndarray:
        raise NotImplementedError

    def _nominal_vector(self, msg: Any | None) -> np.ndarray:
        raise NotImplementedError

    def _command(self, now: float, u: np.ndarray) -> Any:
        raise NotImplementedError

    def _neighbour_tracker(self) -> NeighbourTracker | None:
        """One tracker for the neighbours' topics, or None when the node has none wired."""
        topics = self.topics.get("neighbours", ())
        if not topics:
            return None
        p = self.params
        radius = p.robot_radius_m if p.neighbour_radius_m is None else p.neighbour_radius_m
        return NeighbourTracker(len(topics), radius, self.input_port("neighbours").max_age_s, p.safety.max_speed_mps)

    def reset(self, seed: int | None = None) -> None:
        self.filter.reset()
        if self._neighbours is not None:
            self._neighbours.reset()
        self._environment = Environment.build((), self._walls)
        self._obstacles_msg = None
        self.interventions = 0
        self.fallbacks = 0
        self.min_barrier = math.inf

    def metrics(self) -> dict[str, Any]:
        """Counts over the run: ticks the filter changed the command, ticks a fallback layer produced it, the lowest h."""
        metrics = {
            "filter_interventions": self.interventions,
            "fallbacks": self.fallbacks,
            "min_barrier": self.min_barrier if math.isfinite(self.min_barrier) else None,
        }
        if self._neighbours is not None:
            metrics["stale_neighbour_ticks"] = self._neighbours.stale_ticks
            metrics["unknown_neighbour_ticks"] = self._neighbours.unknown_ticks
        return metrics

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        obstacles = inputs.get("obstacles")
        if obstacles is not None and obstacles.msg is not self._obstacles_msg:
            self._obstacles_msg = obstacles.msg
            self._environment = Environment.build(obstacles.msg.obstacles, self._walls)
        received = inputs.get("state")
        state = received.msg if received is not None and not received.stale else None
        if state is None:
            self.fallbacks += 1
            status = "no odometry" if received is None else f"odometry {received.age_s:.3f} s old"
            return {"report": SafetyFilterReport(stamp=now, name=self.name, layer="estop", solver_status=status)}
        nominal = inputs.get("nominal")
        x = self._state_vector(state)
        u_nominal = self._nominal_vector(nominal.msg if nominal is not None and not nominal.stale else None)
        neighbours = NO_NEIGHBOURS
        if self._neighbours is not None:
            neighbours = self._neighbours.update(now, inputs.get("neighbours") or (), self._position_velocity(x)[0])
        alpha = self._alpha(x, neighbours) if self.params.adaptive_alpha else self.params.alpha
        u, report = self.filter.compute(x, u_nominal, self._environment, neighbours, alpha=alpha)
        report.stamp = now
        if self._obstacles_msg is None:
            report.solver_status += " (no obstacles received)"
        if self._neighbours is not None:
            report.solver_status += self._neighbours.last_status
        self.interventions += bool(report.intervened)
        self.fallbacks += report.layer not in ("qp", "relaxed_qp")
        if report.h.size:
            self.min_barrier = min(self.min_barrier, float(report.h.min()))
        if report.layer == "estop" and not np.all(np.isfinite(u)):
            return {"report": report}
        return {"command": self._command(now, u), "report": report}

    def _alpha(self, x: np.ndarray, neighbours: Neighbours) -> float:
        position, velocity = self._position_velocity(x)
        return adaptive_alpha(
            self.params.alpha,
            closing_speed(position, velocity, self._environment, neighbours),
            obstacle_density(position, self._environment, neighbours),
        )

    def _position_velocity(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class QuadrotorSafetyFilterParams(SafetyFilterParams):
    speed_alpha: Positive = Field(
        5.0, description="rate (1/s) of the speed-limit barrier: lower starts braking earlier, for a lagging inner loop"
    )


class SafetyFilter(_SafetyFilterNode):
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
    )
    outputs = (
        Port("command", AccelCommand, "/cmd_accel", description="safe world-frame acceleration (m/s^2)"),
        Port("report", SafetyFilterReport, "/safety_filter/report", description="what the filter did, every tick"),
    )

    Params = QuadrotorSafetyFilterParams

    def _model(self) -> Any:
        from aegis.controllers.cbf import DoubleIntegratorModel

        safety = self.params.safety
        return DoubleIntegratorModel(
            max_acceleration=safety.max_accel_mps2,
            robot_radius=self.params.robot_radius_m,
            max_speed=safety.max_speed_mps,
            alpha=self.params.alpha,
            speed_alpha=self.params.speed_alpha,
        )

    def _state_vector(self, state: RobotState) -> np.ndarray:
        from aegis.controllers.quadrotor_model import quaternion_to_matrix

        return np.concatenate([state.position, quaternion_to_matrix(state.orientation) @ state.linear_velocity])

    def _position_velocity(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x[:3], x[3:]

    def _nominal_vector(self, msg: AccelCommand | None) -> np.ndarray:
        return np.zeros(3) if msg is None else msg.linear

    def _command(self, now: float, u: np.ndarray) -> AccelCommand:
        return AccelCommand(stamp=now, frame_id="odom", linear=u)


class DiffDriveSafetyFilterParams(SafetyFilterParams):
    lookahead_m: Positive = Field(0.3, description="distance of the controlled point ahead of the axle centre (m)")
    max_turn_rate_radps: Positive = Field(1.5, description="turn-rate limit (rad/s)")
    alpha: Positive = Field(1.0, description="barrier rate (1/s)")
    slip_speed_mps: Annotated[float, Field(ge=0)] = Field(
        0.0, description="bound on the look-ahead point's unmodelled speed (side slip, wheel lag), kept as robustness (m/s)"
    )


class DiffDriveSafetyFilter(_SafetyFilterNode):
    """The ground robot's filter: a unicycle through a look-ahead point, on the twist (v, omega)."""

    type_name = "diff_drive_safety_filter"
    inputs = (
        Port("state", RobotState, "/odom", max_age_s=0.1, description="odometry (twist in the body frame)"),
        Port("nominal", TwistCommand, "/cmd_vel_nominal", max_age_s=NOMINAL_TIMEOUT_S * 2.5, description="proposed twist"),
        Port("obstacles", Obstacles, "/obstacles", description="perceived obstacles"),
    )
    outputs = (
        Port("command", TwistCommand, "/cmd_vel", description="safe body twist (linear.x m/s, angular.z rad/s)"),
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

    def _nominal_vector(self, msg: TwistCommand | None) -> np.ndarray:
        return np.zeros(2) if msg is None else np.array([msg.linear[0], msg.angular[2]])

    def _command(self, now: float, u: np.ndarray) -> TwistCommand:
        return TwistCommand(stamp=now, frame_id="base_link", linear=np.array([u[0], 0.0, 0.0]), angular=np.array([0.0, 0.0, u[1]]))
