"""What both safety_filter nodes share: correct a nominal command with a CBF quadratic program, always on, never silent.

``safety_filter`` (quadrotor, double-integrator model) takes the nominal world-frame acceleration
(/cmd_accel_nominal, AccelCommand) and publishes the safe one (/cmd_accel); ``diff_drive_safety_filter``
(unicycle through a look-ahead point) takes a nominal twist (/cmd_vel_nominal) and publishes the safe
one (/cmd_vel). Both read odometry (/odom) and the perceived obstacles (/obstacles), take their limits
and geofence from the hw_config's ``safety`` section, and publish a SafetyFilterReport every tick
(/safety_filter/report: layer, whether it intervened, h per constraint, slack, solver status and time).

What happens when inputs are missing or wrong is decided here, explicitly. Every input's staleness
bound is the hw_config's ``safety.stale_input_timeout_s`` unless its port declares a tighter one
(:meth:`SafetyFilterNode.input_max_age`). Each case is named in the report's status and counted in
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
- obstacles are grown by ``obstacle_uncertainty_sigmas`` x their ``uncertainty_m`` (perception's 1 sigma;
  0 for known ones) combined root-sum-square with ``state_uncertainty_sigmas`` x the odometry's position
  sigma; every report carries ``perception_age_s`` (now minus the obstacles' stamp, when they were
  measured; NaN: none yet, or no source);
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
QP -> backup (brake / stop) -> e-stop, the layer on every report. The two robots' nodes:
:mod:`aegis.nodes.quadrotor_safety_filter` and :mod:`aegis.nodes.diff_drive_safety_filter`.

A tick is two halves: :meth:`SafetyFilterNode.prepare` (what does not depend on the nominal: the believed state,
the obstacles, alpha) and the solve for the nominal; :meth:`SafetyFilterNode.rows` gives the QP's rows before the
nominal exists (the one-frame MCU tick, aegis.inference.mcu_session). The file is long (a little over 400 lines)
because the input cases above and those two halves are one node's contract, read together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

import numpy as np
from pydantic import Field

from aegis.config import SafetyConfig
from aegis.controllers.cbf import NO_NEIGHBOURS, CbfSafetyFilter, Environment, FilterReport, Neighbours, adaptive_alpha, closing_speed, obstacle_density
from aegis.msgs import Obstacles, RobotState, SafetyFilterReport
from aegis.node import Node, NodeParams, Port, Received
from aegis.controllers.cbf.deadlock import StallMonitor, escape_direction, free_passage
from aegis.nodes.neighbours import NeighbourTracker

Positive = Annotated[float, Field(gt=0)]
NOMINAL_TIMEOUT_S = 0.1
ESCAPE_MARGIN_M = 0.15
"""How far past an obstacle's edge (beyond the robot's own clearance) a deadlock escape aims (m)."""
ESCAPE_GAIN = 2.0
"""Gain of the escape's pull (1/s: on the speed along the way around, or on the heading error)."""
NEIGHBOUR_TIMEOUT_S = 0.05
"""A neighbour's odometry older than this is stale (as the robot's own): kept, inflated (aegis.nodes.neighbours)."""


class Escape(NamedTuple):
    """A deadlock escape under way (aegis.controllers.cbf.deadlock)."""

    direction: np.ndarray
    """Unit vector (world, 3-D) the escape pulls along."""
    obstacle: str
    """What it gets round, as the report says it."""
    start: np.ndarray
    """The escape frame's point where it began."""
    distance: float
    """How far along ``direction`` from ``start`` it goes: a free passage's; inf for the edge rule (escape_s decides)."""

    def left(self, point: np.ndarray) -> float:
        """How far ``point`` still is from where the escape goes, along its direction (m; inf for the edge rule)."""
        return self.distance - float((point - self.start) @ self.direction)


class DeadlockEscapeParams(NodeParams):
    """When a filtered robot counts as stuck and how it gets around what holds it (aegis.controllers.cbf.deadlock)."""

    stall_speed_mps: Positive = Field(
        0.05, description="moving less than this times stall_s while the filter holds a nominal back counts as stalled (m/s)"
    )
    stall_s: Positive = Field(1.0, description="stalled this long: escape (s)")
    escape_s: Positive = Field(2.0, description="how long an escape steers around the blocking obstacle (s)")
    escape_speed_mps: Positive = Field(0.5, description="speed along the way around while escaping (m/s)")
    aim: Literal["blocking_edge", "free_passage"] = Field(
        "blocking_edge",
        description="'blocking_edge': toward the nearest edge of the obstacle lowest in h, at escape_speed_mps for escape_s; "
        "'free_passage': to the nearest point beside the robot from which the nominal's line passes every obstacle "
        "(none: the way on is already clear, no steering), slowing to stop there; the edge rule where none is within 1 m",
    )
    passage_vertical_reach_m: Positive | None = Field(
        None,
        description="free_passage: no passage more than this above or below the robot (m): where its obstacle sensor sees "
        "only a band about its altitude (level lidar planes); None: any height within 1 m",
    )


class SafetyFilterParams(NodeParams):
    safety: SafetyConfig = Field(SafetyConfig(), description="limits and geofence (filled from the hw_config's safety section)")
    robot_radius_m: Annotated[float, Field(ge=0)] = Field(description="bounding radius kept clear of obstacles (m)")
    alpha: Positive = Field(2.0, description="barrier rate (1/s): how fast the robot may approach a constraint")
    adaptive_alpha: bool = Field(False, description="adapt alpha online to closing speed and obstacle density")
    solver: Literal["osqp-direct", "closed-form", "cvxpygen", "cvxpy-param"] = Field(
        "closed-form", description="QP path (closed-form falls through to OSQP when more than one constraint binds)"
    )
    max_rows: Annotated[int, Field(ge=1, le=64)] = Field(
        8, description="barrier rows per QP; with more candidates, the ones nearest to violation for the nominal are kept: a tick "
        "whose answer misses a row left out says so in its status and counts in left_out_row_missed_ticks"
    )
    swap_rounds: Annotated[int, Field(ge=0, le=64)] = Field(
        0, description="with more candidate rows than max_rows: how many times to swap the rows the answer misses in and solve "
        "again (qp_swap_solves in the metrics); 0: the nearest for the nominal only (on the perturbed quadrotor campaigns, "
        "16 kept every row and deadlocked in clutter: docs/campaigns.md)"
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
    obstacle_uncertainty_sigmas: Annotated[float, Field(ge=0)] = Field(
        2.0, description="each obstacle is grown by this many of its own uncertainty_m (1 sigma, perception's; 0 for known ones)"
    )
    state_uncertainty_sigmas: Annotated[float, Field(ge=0)] = Field(
        0.0,
        description="and by this many of the odometry's position sigma (pose covariance), combined root-sum-square; "
        "0 (default): the robot's own estimate is taken as exact",
    )
    obstacles_grace_s: Annotated[float, Field(ge=0)] | None = Field(
        None,
        description="start-up time (s) from the first tick during which no obstacles yet means the geofence alone, "
        "not the backup layer; default: the obstacles' staleness bound",
    )


class SafetyFilterNode(Node):
    """Shared wiring: obstacles into an Environment once per message, the filter per tick, the report always."""

    Params: ClassVar[type[SafetyFilterParams]] = SafetyFilterParams
    bypass = ("nominal", "command")  # `--no-filter`: the command's readers read the nominal instead
    default_rate_hz = 48.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filter = CbfSafetyFilter(
            self._model(), solver=self.params.solver, max_rows=self.params.max_rows, swap_rounds=self.params.swap_rounds, name=self.name
        )
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
        self._escape: Escape | None = None
        self._environment = self._geofence_only
        self._obstacles_msg: Obstacles | None = None
        self._obstacles_problem: str | None = None
        self._state_sigma_mm = self._built_sigma_mm = 0  # the robot's position sigma (whole mm); the one the environment has
        self._perception_age = math.nan
        grace = self.params.obstacles_grace_s
        self._grace_s = self.max_ages["obstacles"] if grace is None else grace
        self._first_tick: float | None = None
        self._prepared: tuple[Any, ...] | None = None
        """This tick's :meth:`prepare` (its ``now`` first), until :meth:`step` uses it."""
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
        self._state_sigma_mm = self._built_sigma_mm = 0
        self._perception_age = math.nan
        self._first_tick = None
        self._prepared = None
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
            "qp_swap_solves": self.filter.swaps,
            "left_out_row_missed_ticks": self.filter.missed_ticks,
        }
        if self._stall is not None:
            metrics["deadlock_escapes"] = self._stall.escapes
            metrics["escape_ticks"] = self.escape_ticks
        if self._neighbours is not None:
            metrics["stale_neighbour_ticks"] = self._neighbours.stale_ticks
            metrics["unknown_neighbour_ticks"] = self._neighbours.unknown_ticks
        return metrics

    def prepare(self, now: float, inputs: Mapping[str, Received | None]) -> tuple[Any, ...]:
        """This tick's work that does not depend on the nominal (the believed state, the obstacles, neighbours, alpha),
        done once per tick: the next :meth:`step` (within two periods) reuses it, so a caller may prepare the tick earlier in it
        (:meth:`rows`: the one-frame MCU tick sends the rows with the policy's observation)."""
        if self._prepared is not None and 0.0 <= now - self._prepared[0] < 2.0 / self.rate_hz:
            return self._prepared  # this tick's, prepared earlier in it (at the wall clock, up to an MCU answer's wait before)
        if self._first_tick is None:
            self._first_tick = now
        received = inputs.get("state")
        if self.params.state_uncertainty_sigmas > 0.0 and received is not None and not received.stale:
            self._track_state_sigma(received.msg)
        obstacles_problem, obstacles_note = self._obstacles(now, inputs.get("obstacles"))
        x = neighbours = alpha = None
        if not (received is None or received.stale or not received.msg.is_usable()):
            x = self._believed_state(now, received.msg, inputs)
            neighbours = NO_NEIGHBOURS
            if self._neighbours is not None:
                neighbours = self._neighbours.update(now, inputs.get("neighbours") or (), self._position_velocity(x)[0])
            if obstacles_problem is None:
                alpha = self._alpha(x, neighbours) if self.params.adaptive_alpha else self.params.alpha
        self._prepared = (now, received, obstacles_problem, obstacles_note, x, neighbours, alpha)
        return self._prepared

    def rows(self, now: float, inputs: Mapping[str, Received | None]) -> tuple[np.ndarray, np.ndarray] | None:
        """The QP's rows (a, b) this tick will solve with, whatever the nominal; None when the tick will not solve the
        QP with the nominal as it comes (a fallback layer, a deadlock escape, or more rows than the QP keeps)."""
        _, _, problem, _, x, neighbours, alpha = self.prepare(now, inputs)
        if x is None or problem is not None or (self._escape is not None and self._stall.escaping(now)):
            return None
        return self.filter.rows(x, self._environment, neighbours, alpha)

    def step(self, now: float, inputs: Mapping[str, Received | None]) -> Mapping[str, Any]:
        _, received, obstacles_problem, obstacles_note, x, neighbours, alpha = self.prepare(now, inputs)
        self._prepared = None
        if x is None:
            self.unusable_odometry_ticks += 1
            self.fallbacks += 1
            problem = self._odometry_problem(received)
            report = SafetyFilterReport(stamp=now, name=self.name, layer="estop", solver_status=problem, perception_age_s=self._perception_age)
            return {"report": report}
        nominal = inputs.get("nominal")
        nominal_note = ""
        if nominal is None or nominal.stale:
            self.stale_nominal_ticks += 1
            age = "no nominal" if nominal is None else f"nominal {nominal.age_s:.3f} s old"
            nominal_note = f" ({age}: filtered as zero)"
        u_nominal = self._nominal_vector(nominal.msg if nominal is not None and not nominal.stale else None)
        if obstacles_problem is not None:
            self.unusable_obstacles_ticks += 1
            u, report = _as_message(*self.filter.backup(x, u_nominal, obstacles_problem))
        else:
            self.geofence_only_ticks += bool(obstacles_note)
            asked = u_nominal
            escape_note = ""
            if self._escape is not None and self._stall.escaping(now):
                u_nominal = self._escaping_nominal(x, received.msg, u_nominal, self._escape)
                escape_note = f" (deadlock escape around {self._escape.obstacle})"
                self.escape_ticks += 1
            u, report = _as_message(*self.filter.compute(x, u_nominal, self._environment, neighbours, alpha=alpha))
            report.solver_status += obstacles_note + escape_note
            self._watch_for_deadlock(now, x, received.msg, asked, report)
        report.stamp = now
        report.perception_age_s = self._perception_age
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
        name = self._environment.obstacle_names[index]
        distance = math.inf
        passage = None
        if self.params.deadlock_escape.aim == "free_passage":
            body = self._escape_clearance() - ESCAPE_MARGIN_M
            vertical = self.params.deadlock_escape.passage_vertical_reach_m
            passage = free_passage(
                position, pull, obstacles, index, body, self._environment.walls, planar=self._planar,
                vertical_reach_m=math.inf if vertical is None else vertical,
            )
        if passage is None:
            direction = escape_direction(position, pull, obstacles[index], self._escape_clearance(), self._environment.walls, planar=self._planar)
        else:
            direction, distance = passage
            name = f"{name}, to a passage {distance:.3f} m aside"
        self._escape = Escape(direction, name, np.array(position, dtype=float), distance) if np.any(direction) else None

    _planar = False

    def _asks_for_motion(self, nominal: np.ndarray) -> bool:
        raise NotImplementedError

    def _escape_frame(self, x: np.ndarray, nominal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the point the barriers are on, the direction the nominal pulls it) for :func:`escape_direction`."""
        raise NotImplementedError

    def _escape_clearance(self) -> float:
        raise NotImplementedError

    def _escaping_nominal(self, x: np.ndarray, state: RobotState, nominal: np.ndarray, escape: Escape) -> np.ndarray:
        raise NotImplementedError

    def _escape_speed(self, point: np.ndarray, escape: Escape) -> float:
        """The speed to escape at from ``point`` (the escape frame's): ``escape_speed_mps``, slowing (P, ESCAPE_GAIN) to
        stop where a free passage's distance is covered."""
        speed = self.params.deadlock_escape.escape_speed_mps
        if math.isinf(escape.distance):
            return speed
        return min(speed, max(0.0, ESCAPE_GAIN * escape.left(point)))

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
        self._perception_age = math.nan
        if self.params.obstacle_source == "none":
            return None, " (no obstacle source: geofence only)"
        if received is None:
            since = now - self._first_tick
            if since <= self._grace_s:
                return None, " (no obstacles received yet: geofence only, start-up grace)"
            return f"no obstacles received in {since:.3f} s since the first tick (grace {self._grace_s:g} s)", ""
        if received.msg is not self._obstacles_msg or self._state_sigma_mm != self._built_sigma_mm:
            self._obstacles_msg = received.msg
            self._built_sigma_mm = self._state_sigma_mm
            self._environment, self._obstacles_problem = self._environment_of(received.msg)
        self._perception_age = now - received.msg.stamp
        if self._obstacles_problem is not None:
            return self._obstacles_problem, ""
        if received.stale:
            return f"obstacles {received.age_s:.3f} s old (bound {self.max_ages['obstacles']:g} s)", ""
        return None, ""

    def _track_state_sigma(self, state: RobotState) -> None:
        """The robot's position sigma from its odometry's pose covariance, kept in whole mm (the environment is rebuilt when it moves)."""
        variance = float(np.max(np.diag(state.pose_covariance)[:3]))
        sigma = math.sqrt(variance) if math.isfinite(variance) and variance > 0.0 else 0.0
        self._state_sigma_mm = math.ceil(sigma * 1000.0)

    def _inflation_m(self, obstacle_uncertainty_m: float) -> float:
        """How far an obstacle is grown: obstacle and robot uncertainty, each times its sigmas, root sum of squares."""
        p = self.params
        return math.hypot(p.obstacle_uncertainty_sigmas * obstacle_uncertainty_m, p.state_uncertainty_sigmas * self._state_sigma_mm / 1000.0)

    def _environment_of(self, msg: Obstacles) -> tuple[Environment, str | None]:
        """The environment of an obstacles message and None, or the geofence alone and why the message is unusable."""
        problems = msg.problems()
        if problems:
            return self._geofence_only, "unusable obstacles: " + "; ".join(problems)
        try:
            return Environment.build([o.grown(self._inflation_m(o.uncertainty_m)) for o in msg.obstacles], self._walls), None
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


def _as_message(command: np.ndarray, report: FilterReport) -> tuple[np.ndarray, SafetyFilterReport]:
    """The filter's command and its report as the message the node publishes (stamp and notes added by the caller)."""
    return command, SafetyFilterReport.of_typed(
        report.name, report.layer, report.intervened, report.h, report.active, report.slack, report.solver_status, report.solve_time_s
    )
