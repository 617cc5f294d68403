"""The safety_filter nodes: correct a nominal command with a CBF quadratic program, always on, never silent.

``safety_filter`` (quadrotor, double-integrator model) takes the nominal world-frame acceleration
(/cmd_accel_nominal, AccelCommand) and publishes the safe one (/cmd_accel); ``diff_drive_safety_filter``
(unicycle through a look-ahead point) takes a nominal twist (/cmd_vel_nominal) and publishes the safe
one (/cmd_vel). Both read odometry (/odom) and the perceived obstacles (/obstacles), take their limits
and geofence from the hw_config's ``safety`` section, and publish a SafetyFilterReport every tick
(/safety_filter/report: layer, whether it intervened, h per constraint, slack, solver status and time).

What happens when inputs are missing or wrong is decided here, explicitly. Every input's staleness
bound is the hw_config's ``safety.stale_input_timeout_s`` unless its port declares a tighter one
(:meth:`_SafetyFilterNode.input_max_age`). Each case is named in the report's status and counted in
the node's metrics (so ``aegis sim`` summaries carry them):

- odometry missing, stale, not finite or with a quaternion off unit norm (RobotState.is_usable): no
  command is published (the downstream node's own staleness fallback brakes) and the report's layer
  is ``estop`` (``unusable_odometry_ticks``);
- nominal missing or stale: the nominal is taken as zero (hover / stand still), and filtered
  (``stale_nominal_ticks``);
- obstacles unusable: a size not finite and > 0, a position not finite or an orientation off unit norm
  (Obstacles.problems; never clipped or shrunk into something usable), stale, or never received
  once ``obstacles_grace_s`` has passed since the first tick: the filter's backup layer (brake /
  stop), its status naming the obstacle and the problem (``unusable_obstacles_ticks``);
- obstacles not received yet, within the grace, or ``obstacle_source: none`` (a deployment with no
  obstacle perception; the launch plan then refuses a publisher on the port): the filter runs with
  the geofence alone and says so in the status (``geofence_only_ticks``);
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
from aegis.msgs import AccelCommand, ImuSample, Obstacles, RobotState, SafetyFilterReport, TwistCommand
from aegis.node import Node, NodeParams, Port, Received
from aegis.controllers.cbf.deadlock import StallMonitor, escape_direction
from aegis.nodes.neighbours import NeighbourTracker

Positive = Annotated[float, Field(gt=0)]
NOMINAL_TIMEOUT_S = 0.1
ESCAPE_MARGIN_M = 0.15
"""How far past an obstacle's edge (beyond the robot's own clearance) a deadlock escape aims (m)."""
ESCAPE_GAIN = 2.0
"""Gain of the escape's pull (1/s: on the speed along the way around, or on the heading error)."""
NEIGHBOUR_TIMEOUT_S = 0.05
"""A neighbour's odometry older than this is stale (as the robot's own): kept, inflated (aegis.nodes.neighbours)."""


class DeadlockEscapeParams(NodeParams):
    """When a filtered robot counts as stuck and how it gets around what holds it (aegis.controllers.cbf.deadlock)."""

    stall_speed_mps: Positive = Field(
        0.05, description="moving less than this times stall_s while the filter holds a nominal back counts as stalled (m/s)"
    )
    stall_s: Positive = Field(1.0, description="stalled this long: escape (s)")
    escape_s: Positive = Field(2.0, description="how long an escape steers around the blocking obstacle (s)")
    escape_speed_mps: Positive = Field(0.5, description="speed along the way around while escaping (m/s)")


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
    obstacle_source: Literal["topic", "none"] = Field(
        "topic",
        description="'topic': obstacles come on the obstacles port, and while they are unusable (invalid, stale, never "
        "received after obstacles_grace_s) the filter runs its backup layer; 'none': this deployment has no obstacle "
        "perception: the geofence (and neighbours) alone, said on every report, and no node may publish the port's topic",
    )
    deadlock_escape: DeadlockEscapeParams | None = Field(
        DeadlockEscapeParams(),
        description="get a robot the filter holds in front of an obstacle around it (None: stay stopped, safe and stuck)",
    )
    obstacles_grace_s: Annotated[float, Field(ge=0)] | None = Field(
        None,
        description="start-up time (s) from the first tick during which no obstacles yet means the geofence alone, "
        "not the backup layer; default: the obstacles' staleness bound",
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
        self._geofence_only = Environment.build((), self._walls)
        escape = self.params.deadlock_escape
        self._stall = None if escape is None else StallMonitor(escape.stall_speed_mps, escape.stall_s, escape.escape_s)
        self._escape: tuple[np.ndarray, str] | None = None  # (direction, obstacle name) of the escape under way
        self._environment = self._geofence_only
        self._obstacles_msg: Obstacles | None = None
        self._obstacles_problem: str | None = None
        grace = self.params.obstacles_grace_s
        self._grace_s = self.max_ages["obstacles"] if grace is None else grace
        self._first_tick: float | None = None
        self._reset_counters()

    def input_max_age(self, port: Port) -> float | None:
        """Every input of a filter is safety-relevant: ``safety.stale_input_timeout_s`` bounds it unless its port's bound is tighter."""
        bound = self.params.safety.stale_input_timeout_s
        return bound if port.max_age_s is None else min(port.max_age_s, bound)

    @classmethod
    def unread_inputs(cls, params: SafetyFilterParams) -> tuple[str, ...]:
        """The obstacles port when the parameters declare no obstacle source (``obstacle_source: none``)."""
        return ("obstacles",) if params.obstacle_source == "none" else ()

    def _reset_counters(self) -> None:
        if self._stall is not None:
            self._stall.reset()
        self._escape = None
        self.escape_ticks = 0
        self.interventions = 0
        self.fallbacks = 0
        self.min_barrier = math.inf
        self.unusable_odometry_ticks = 0
        self.unusable_obstacles_ticks = 0
        self.stale_nominal_ticks = 0
        self.geofence_only_ticks = 0

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
        return NeighbourTracker(len(topics), radius, self.max_ages["neighbours"], p.safety.max_speed_mps)

    def reset(self, seed: int | None = None) -> None:
        self.filter.reset()
        if self._neighbours is not None:
            self._neighbours.reset()
        self._environment = self._geofence_only
        self._obstacles_msg = None
        self._obstacles_problem = None
        self._first_tick = None
        self._reset_counters()

    def metrics(self) -> dict[str, Any]:
        """Counts over the run: ticks the filter changed the command, ticks a fallback layer produced it, the lowest h,
        and per input the ticks it was unusable (odometry: estop; obstacles: backup), stale (nominal: zero) or absent
        (obstacles: the geofence alone)."""
        metrics = {
            "filter_interventions": self.interventions,
            "fallbacks": self.fallbacks,
            "min_barrier": self.min_barrier if math.isfinite(self.min_barrier) else None,
            "unusable_odometry_ticks": self.unusable_odometry_ticks,
            "unusable_obstacles_ticks": self.unusable_obstacles_ticks,
            "stale_nominal_ticks": self.stale_nominal_ticks,
            "geofence_only_ticks": self.geofence_only_ticks,
        }
        if self._stall is not None:
            metrics["deadlock_escapes"] = self._stall.escapes
            metrics["escape_ticks"] = self.escape_ticks
        if self._neighbours is not None:
            metrics["stale_neighbour_ticks"] = self._neighbours.stale_ticks
            metrics["unknown_neighbour_ticks"] = self._neighbours.unknown_ticks
        return metrics

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        if self._first_tick is None:
            self._first_tick = now
        obstacles_problem, obstacles_note = self._obstacles(now, inputs.get("obstacles"))
        received = inputs.get("state")
        if received is None or received.stale or not received.msg.is_usable():
            self.unusable_odometry_ticks += 1
            self.fallbacks += 1
            report = SafetyFilterReport(stamp=now, name=self.name, layer="estop", solver_status=self._odometry_problem(received))
            return {"report": report}
        nominal = inputs.get("nominal")
        nominal_note = ""
        if nominal is None or nominal.stale:
            self.stale_nominal_ticks += 1
            age = "no nominal" if nominal is None else f"nominal {nominal.age_s:.3f} s old"
            nominal_note = f" ({age}: filtered as zero)"
        x = self._believed_state(now, received.msg, inputs)
        u_nominal = self._nominal_vector(nominal.msg if nominal is not None and not nominal.stale else None)
        neighbours = NO_NEIGHBOURS
        if self._neighbours is not None:
            neighbours = self._neighbours.update(now, inputs.get("neighbours") or (), self._position_velocity(x)[0])
        if obstacles_problem is not None:
            self.unusable_obstacles_ticks += 1
            u, report = self.filter.backup(x, u_nominal, obstacles_problem)
        else:
            self.geofence_only_ticks += bool(obstacles_note)
            alpha = self._alpha(x, neighbours) if self.params.adaptive_alpha else self.params.alpha
            asked = u_nominal
            escape_note = ""
            if self._escape is not None and self._stall.escaping(now):
                u_nominal = self._escaping_nominal(x, received.msg, u_nominal, self._escape[0])
                escape_note = f" (deadlock escape around {self._escape[1]})"
                self.escape_ticks += 1
            u, report = self.filter.compute(x, u_nominal, self._environment, neighbours, alpha=alpha)
            report.solver_status += obstacles_note + escape_note
            self._watch_for_deadlock(now, x, received.msg, asked, report)
        report.stamp = now
        report.solver_status += nominal_note
        if self._neighbours is not None:
            report.solver_status += self._neighbours.last_status
        self.interventions += bool(report.intervened)
        self.fallbacks += report.layer not in ("qp", "relaxed_qp")
        if report.h.size:
            self.min_barrier = min(self.min_barrier, float(report.h.min()))
        if report.layer == "estop" and not np.all(np.isfinite(u)):
            return {"report": report}
        self._sent(now, u, report)
        return {"command": self._command(now, u), "report": report}

    def _watch_for_deadlock(self, now: float, x: np.ndarray, state: RobotState, nominal: np.ndarray, report: SafetyFilterReport) -> None:
        """Count this tick toward a stall; when one is found, pick the way around the obstacle lowest in h."""
        if self._stall is None:
            return
        held_back = bool(report.intervened) and self._asks_for_motion(nominal)
        position, pull = self._escape_frame(x, nominal)
        if not self._stall.update(now, position, held_back):  # the barriers' point: a diff-drive turning on the spot moves it
            return
        obstacles = self._environment.obstacles
        if not obstacles or report.h.size < len(obstacles):
            self._escape = None
            return
        index = int(np.argmin(report.h[: len(obstacles)]))
        direction = escape_direction(position, pull, obstacles[index], self._escape_clearance(), self._environment.walls, planar=self._planar)
        name = self._environment.obstacle_names[index]
        self._escape = (direction, name) if np.any(direction) else None

    _planar = False

    def _asks_for_motion(self, nominal: np.ndarray) -> bool:
        raise NotImplementedError

    def _escape_frame(self, x: np.ndarray, nominal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the point the barriers are on, the direction the nominal pulls it) for :func:`escape_direction`."""
        raise NotImplementedError

    def _escape_clearance(self) -> float:
        raise NotImplementedError

    def _escaping_nominal(self, x: np.ndarray, state: RobotState, nominal: np.ndarray, direction: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _believed_state(self, now: float, state: RobotState, inputs: Mapping[str, Received | None]) -> np.ndarray:
        """The state the barrier model is evaluated at (the odometry's, unless a subclass predicts)."""
        return self._state_vector(state)

    def _sent(self, now: float, u: np.ndarray, report: SafetyFilterReport) -> None:
        """A command goes out with ``report`` (a subclass that models its plant records it)."""

    def _odometry_problem(self, received: Received | None) -> str:
        """The estop report's status: why odometry cannot be used (missing, stale, or RobotState.unusable_reason)."""
        if received is None:
            return "no odometry"
        if received.stale:
            return f"odometry {received.age_s:.3f} s old (bound {self.max_ages['state']:g} s)"
        return f"odometry unusable: {received.msg.unusable_reason()}"

    def _obstacles(self, now: float, received: Received | None) -> tuple[str | None, str]:
        """Bring the environment up to date with the obstacles input: (why the obstacles are unusable, or None; a note for the status).

        A message is checked and built into an Environment once, when it arrives; every tick
        checks its age. Unusable (a bad message, stale, none after the grace) -> the caller's
        backup layer; not there yet (within the grace) or none declared -> the geofence alone, noted.
        """
        if self.params.obstacle_source == "none":
            return None, " (no obstacle source: geofence only)"
        if received is None:
            since = now - self._first_tick
            if since <= self._grace_s:
                return None, " (no obstacles received yet: geofence only, start-up grace)"
            return f"no obstacles received in {since:.3f} s since the first tick (grace {self._grace_s:g} s)", ""
        if received.msg is not self._obstacles_msg:
            self._obstacles_msg = received.msg
            self._environment, self._obstacles_problem = self._environment_of(received.msg)
        if self._obstacles_problem is not None:
            return self._obstacles_problem, ""
        if received.stale:
            return f"obstacles {received.age_s:.3f} s old (bound {self.max_ages['obstacles']:g} s)", ""
        return None, ""

    def _environment_of(self, msg: Obstacles) -> tuple[Environment, str | None]:
        """The environment of an obstacles message and None, or the geofence alone and why the message is unusable."""
        problems = msg.problems()
        if problems:
            return self._geofence_only, "unusable obstacles: " + "; ".join(problems)
        try:
            return Environment.build(msg.obstacles, self._walls), None
        except ValueError as exc:  # a shape the barrier cannot model (a tilted box or cylinder): name it
            for obstacle in msg.obstacles:
                try:
                    Environment.build((obstacle,))
                except ValueError as one:
                    return self._geofence_only, f"unusable obstacles: obstacle {obstacle.id} ({obstacle.shape}): {one}"
            return self._geofence_only, f"unusable obstacles: {exc}"

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
        Port("imu", ImuSample, "/imu", max_age_s=0.1, description="measured acceleration, for the bias observer (with actuator_lag_s)"),
    )
    outputs = (
        Port("command", AccelCommand, "/cmd_accel", description="safe world-frame acceleration (m/s^2)"),
        Port("report", SafetyFilterReport, "/safety_filter/report", description="what the filter did, every tick"),
    )

    Params = QuadrotorSafetyFilterParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        p = self.params
        self.acceleration_model = None
        if p.actuator_lag_s is not None:
            from aegis.controllers.cbf.acceleration_model import AccelerationModel

            self.acceleration_model = AccelerationModel(p.actuator_lag_s, p.actuator_delay_s, p.observer_time_constant_s, p.max_bias_mps2)
        self.model_warnings = 0
        self.max_model_residual = 0.0

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        if self.acceleration_model is not None:
            self.acceleration_model.reset()
        self.model_warnings = 0
        self.max_model_residual = 0.0

    def metrics(self) -> dict[str, Any]:
        metrics = super().metrics()
        if self.acceleration_model is not None:
            metrics["model_warnings"] = self.model_warnings
            metrics["max_model_residual_mps2"] = self.max_model_residual
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
        x = self._state_vector(state)
        model = self.acceleration_model
        if model is None:
            return x
        model.advance(now)
        imu = inputs.get("imu")
        if imu is not None and not imu.stale and _finite_imu(imu.msg):
            from aegis.controllers.quadrotor_model import quaternion_to_matrix

            measured = quaternion_to_matrix(imu.msg.orientation) @ imu.msg.linear_acceleration
            measured[2] -= GRAVITY_MPS2
            model.observe(measured, imu.msg.stamp)
        return model.predict(x[:3], x[3:], state.stamp, now)

    def _sent(self, now: float, u: np.ndarray, report: SafetyFilterReport) -> None:
        model = self.acceleration_model
        if model is None:
            return
        model.commanded(now, u)
        residual = float(np.linalg.norm(model.filtered_residual))
        report.model_residual_mps2 = residual
        self.max_model_residual = max(self.max_model_residual, residual)
        declared = self.params.model_error_mps2
        if model.bias_saturated or residual > declared:
            what = "bias at its bound" if model.bias_saturated else f"acceleration residual {residual:.2f} m/s^2 above the declared {declared:g}"
            report.model_warning = f"model assumption violated: {what}"
            self.model_warnings += 1

    def _state_vector(self, state: RobotState) -> np.ndarray:
        from aegis.controllers.quadrotor_model import quaternion_to_matrix

        return np.concatenate([state.position, quaternion_to_matrix(state.orientation) @ state.linear_velocity])


    def _position_velocity(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x[:3], x[3:6]

    def _asks_for_motion(self, nominal: np.ndarray) -> bool:
        return float(np.linalg.norm(nominal)) > 0.5  # m/s^2

    def _escape_frame(self, x: np.ndarray, nominal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x[:3], nominal

    def _escape_clearance(self) -> float:
        return self.params.robot_radius_m + ESCAPE_MARGIN_M

    def _escaping_nominal(self, x: np.ndarray, state: RobotState, nominal: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """The nominal plus a pull to ``escape_speed_mps`` along the way around (a P loop on that speed, 2 /s)."""
        along = float(x[3:6] @ direction)
        return nominal + ESCAPE_GAIN * (self.params.deadlock_escape.escape_speed_mps - along) * direction

    def _nominal_vector(self, msg: AccelCommand | None) -> np.ndarray:
        return np.zeros(3) if msg is None else msg.linear

    def _command(self, now: float, u: np.ndarray) -> AccelCommand:
        return AccelCommand(stamp=now, frame_id="odom", linear=u)


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

    def _escaping_nominal(self, x: np.ndarray, state: RobotState, nominal: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """Turn toward the way around and creep along it (forward speed falls with the heading error)."""
        error = math.remainder(math.atan2(direction[1], direction[0]) - x[2], math.tau)
        turn = float(np.clip(ESCAPE_GAIN * error, -self.params.max_turn_rate_radps, self.params.max_turn_rate_radps))
        return np.array([self.params.deadlock_escape.escape_speed_mps * max(0.0, math.cos(error)), turn])

    def _nominal_vector(self, msg: TwistCommand | None) -> np.ndarray:
        return np.zeros(2) if msg is None else np.array([msg.linear[0], msg.angular[2]])

    def _command(self, now: float, u: np.ndarray) -> TwistCommand:
        return TwistCommand(stamp=now, frame_id="base_link", linear=np.array([u[0], 0.0, 0.0]), angular=np.array([0.0, 0.0, u[1]]))


GRAVITY_MPS2 = 9.81
"""Gravity removed from the IMU's specific force (m/s^2), as the simulator and the controllers take it."""


def _finite_imu(imu: ImuSample) -> bool:
    return bool(np.all(np.isfinite(imu.orientation)) and np.all(np.isfinite(imu.linear_acceleration)))
