"""One episode's trajectory and its numbers: tracking RMSE, clearance, collisions, crashes, its outcome.

An :class:`EpisodeLog` listens to a lockstep run and keeps the robot's TRUE state (the sim
bridge's ``truth`` port, /sim/ground_truth: no noise, no latency) and the controller's reference
(plain arrays, no bag needed); :func:`episode_metrics` turns them, the plant's own counters and the
scenario into the summary keys `aegis sim` and `aegis eval` report. Every number is measured from
what really happened, never from the published odometry the controllers act on (a plant without a
``truth`` port is measured from its ``state``). Clearance is measured from every true sample to
the obstacles' surfaces, minus the robot's bounding radius: negative means the robot's bounding
sphere overlaps an obstacle.

An episode's ``outcome`` is one word (:data:`OUTCOMES`), the first that applies: ``crash`` (the
bridge ended the run: flip, hard ground contact, non-finite state, left the world; or the true
state went non-finite, inf or NaN, under a plant that does not judge crashes: ``non_finite_state``
says which runs diverged, and `aegis sim` exits 1 on one), ``collision``
(touched an obstacle), ``geofence`` (left the scenario's geofence), ``deadlock`` (stopped for good
short of the goal: over the last :data:`DEADLOCK_WINDOW_S` of the run its true position stayed
within ``DEADLOCK_SPEED_MPS * DEADLOCK_WINDOW_S`` = 0.1 m of where it ended, outside the goal's
tolerance: a net speed of about 0, whatever a hovering robot's jitter), ``goal_missed`` (ended
elsewhere, still on its way), else ``success``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aegis.launch_plan import LaunchPlan
from aegis.msgs import RobotState, SafetyFilterReport

GEOFENCE_TOLERANCE_M = 0.02
REFERENCE_PORT = "reference"
STATE_PORT = "state"
TRUTH_PORT = "truth"

DEADLOCK_SPEED_MPS = 0.05
"""A robot whose net true speed over the final :data:`DEADLOCK_WINDOW_S` is below this has stopped for good."""
DEADLOCK_WINDOW_S = 2.0
"""The final stretch of a run over which a robot short of its goal must have stood still to be deadlocked."""

NON_FINITE = "non-finite state"
"""The crash reason of a run whose true state went inf or NaN (aegis.sim.crash's words)."""

OUTCOMES = ("success", "collision", "crash", "geofence", "deadlock", "goal_missed")
"""Every outcome an episode can have (see the module doc for which applies)."""

QP_LAYERS = ("qp", "relaxed_qp")
"""The safety filter's optimisation layers; a report from any other layer (backup, estop) is a fallback, as the filter counts it."""


@dataclass
class Series:
    """Times (s) and positions (m) of one RobotState topic."""

    times: list[float] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)
    speeds: list[float] = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.times), np.asarray(self.positions).reshape(-1, 3)


class FilterTrace:
    """Every report of the safety filter over a run, in order: when (s), its layer, whether it changed the command, its lowest h.

    This is what the filter says it did (its own report topic), plotted as such; the lowest h is NaN
    on a tick without barrier rows (an e-stop on unusable odometry reports none).
    """

    def __init__(self) -> None:
        self.times: list[float] = []
        self.layers: list[str] = []
        self.intervened: list[bool] = []
        self.lowest_h: list[float] = []

    def add(self, msg: SafetyFilterReport, t_s: float) -> None:
        self.times.append(t_s)
        self.layers.append(msg.layer)
        self.intervened.append(bool(msg.intervened))
        self.lowest_h.append(float(msg.h.min()) if msg.h.size else float("nan"))


class EpisodeLog:
    """A run listener keeping the plant's true state and the reference the controllers publish."""

    def __init__(self, plan: LaunchPlan) -> None:
        plant = plan.nodes[0].outputs  # the plant (sim bridge) is listed first
        self.state_topic = plant.get(TRUTH_PORT, plant.get(STATE_PORT))
        self.reference_topics = {n.outputs[REFERENCE_PORT] for n in plan.nodes if REFERENCE_PORT in n.outputs}
        self.state = Series()
        self.reference = Series()
        self.final_states: dict[str, RobotState] = {}
        self.filter = FilterTrace()

    def __call__(self, topic: str, msg: Any, t_ns: int) -> None:
        if isinstance(msg, SafetyFilterReport):
            self.filter.add(msg, t_ns / 1e9)
            return
        if not isinstance(msg, RobotState):
            return
        self.final_states[topic] = msg
        series = self.state if topic == self.state_topic else self.reference if topic in self.reference_topics else None
        if series is not None:
            series.times.append(t_ns / 1e9)
            series.positions.append(msg.position)
            series.speeds.append(float(np.linalg.norm(msg.linear_velocity)))


@dataclass(frozen=True)
class EpisodeSeries:
    """The arrays behind the numbers (for plots and videos): true state, reference, error, clearance and the filter's reports over time."""

    times: np.ndarray
    positions: np.ndarray
    reference_times: np.ndarray
    reference_positions: np.ndarray
    tracking_error: np.ndarray
    clearance: np.ndarray | None
    barrier_times: np.ndarray
    barrier: np.ndarray
    """The safety filter's lowest h at each of its ticks (empty without a filter)."""
    speeds: np.ndarray = field(default_factory=lambda: np.empty(0))
    """The true speed (m/s) at each of ``times``."""
    filter_times: np.ndarray = field(default_factory=lambda: np.empty(0))
    """The time (s) of every safety-filter report (empty without a filter)."""
    filter_layers: tuple[str, ...] = ()
    """The layer of each report ("qp", "relaxed_qp", "backup", "estop", ...)."""
    filter_intervened: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    """Whether the filter changed the nominal command, per report."""
    body_radius_m: float | None = None
    """The robot's bounding radius (m) that clearance subtracts; None when the plant does not say."""

    @property
    def filter_fallback(self) -> np.ndarray:
        """Per report: whether a fallback layer (not one of :data:`QP_LAYERS`) produced the command."""
        return np.array([layer not in QP_LAYERS for layer in self.filter_layers], dtype=bool)

    def intervention_spans(self) -> list[tuple[float, float]]:
        """The stretches of time (s) over which the filter changed the command, from its reports' ``intervened`` flags."""
        return flag_spans(self.filter_times, self.filter_intervened)

    def fallback_spans(self) -> list[tuple[float, float]]:
        """The stretches of time (s) over which a fallback layer produced the command."""
        return flag_spans(self.filter_times, self.filter_fallback)


def flag_spans(times: np.ndarray, flags: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) of each run of consecutive true ``flags``: from its first tick's time to one tick period
    (the median spacing of ``times``) after its last, so a single flagged tick is a span one tick wide."""
    times, flags = np.asarray(times, dtype=float), np.asarray(flags, dtype=bool)
    if not flags.any():
        return []
    period = float(np.median(np.diff(times))) if times.size > 1 else 0.0
    padded = np.concatenate(([False], flags, [False])).astype(np.int8)
    starts = np.flatnonzero(np.diff(padded) == 1)
    ends = np.flatnonzero(np.diff(padded) == -1) - 1
    return [(float(times[a]), float(times[b]) + period) for a, b in zip(starts, ends)]


def episode_series(log: Any, obstacles: Any, body_radius_m: float | None) -> EpisodeSeries:
    """The arrays of a run; clearance to ``obstacles`` (the ones the plant actually had, jitter included).

    ``log`` is an :class:`EpisodeLog` or anything with its ``state``, ``reference`` and ``filter`` (a swarm's RobotRecord)."""
    times, positions = log.state.arrays()
    ref_times, ref_positions = log.reference.arrays()
    errors = np.empty(0)
    if times.size and ref_times.size:
        # the true position at (or last before) each reference instant
        index = np.clip(np.searchsorted(times, ref_times, side="right") - 1, 0, times.size - 1)
        errors = np.linalg.norm(positions[index] - ref_positions, axis=1)
    clearance = None
    if obstacles and times.size:
        from aegis.scenario import clearances

        clearance = clearances(obstacles, positions) - (body_radius_m or 0.0)
    trace = log.filter
    filter_times, lowest_h = np.asarray(trace.times, dtype=float), np.asarray(trace.lowest_h, dtype=float)
    with_rows = np.isfinite(lowest_h)
    return EpisodeSeries(
        times, positions, ref_times, ref_positions, errors, clearance, filter_times[with_rows], lowest_h[with_rows],
        np.asarray(log.state.speeds, dtype=float), filter_times, tuple(trace.layers), np.asarray(trace.intervened, dtype=bool),
        body_radius_m,
    )


def episode_metrics(series: EpisodeSeries, plant_metrics: dict[str, Any]) -> dict[str, Any]:
    """The summary keys of one episode (None where the run has nothing to measure it by)."""
    errors = series.tracking_error
    crashes = int(plant_metrics.get("crashes", 0))
    reason = plant_metrics.get("crash_reason")
    finite = np.all(np.isfinite(series.positions), axis=1)
    if series.speeds.size == finite.size:
        finite &= np.isfinite(series.speeds)
    diverged = not bool(np.all(finite))
    extra = {}
    if diverged and not crashes:  # a plant without a crash judge: the state went inf or NaN and the run went on
        crashes, reason = 1, NON_FINITE
        extra = {"crash_reason": reason, "crash_time_s": float(series.times[int(np.argmin(finite))])}
    return {
        "collisions": int(plant_metrics.get("collisions", 0)),
        "crashes": crashes,
        "non_finite_state": bool(diverged or str(reason or "").startswith(NON_FINITE)),
        "min_clearance_m": float(series.clearance.min()) if series.clearance is not None else None,
        "tracking_rmse_m": float(np.sqrt(np.mean(errors**2))) if errors.size else None,
        "tracking_max_m": float(errors.max()) if errors.size else None,
        **{k: v for k, v in plant_metrics.items() if k not in ("collisions", "crashes", "body_radius_m")},
        **extra,
    }


def episode_outcome(scenario: Any, series: Any) -> dict[str, Any]:
    """Inside the geofence, goal reached, the final distance to it, stopped for good short of it: None where the scenario has none."""
    inside = goal_reached = final_goal_distance = deadlocked = None
    if scenario is not None and series.positions.size:
        if scenario.geofence is not None:
            # 2 cm of tolerance: a ground robot on compliant tyres sits a few mm below z = 0
            low = np.asarray(scenario.geofence.min_m) - GEOFENCE_TOLERANCE_M
            high = np.asarray(scenario.geofence.max_m) + GEOFENCE_TOLERANCE_M
            inside = bool(np.all((series.positions >= low) & (series.positions <= high)))
        if scenario.goal is not None:
            final_goal_distance = float(np.linalg.norm(series.positions[-1] - np.asarray(scenario.goal.position)))
            goal_reached = final_goal_distance <= scenario.goal.tolerance_m
            deadlocked = not goal_reached and stopped_for_good(series.times, series.positions)
    return {
        "inside_geofence": inside,
        "goal_reached": goal_reached,
        "final_goal_distance_m": final_goal_distance,
        "deadlocked": deadlocked,
    }


def stopped_for_good(times: np.ndarray, positions: np.ndarray) -> bool:
    """Whether every true position of the final DEADLOCK_WINDOW_S lies within DEADLOCK_SPEED_MPS * DEADLOCK_WINDOW_S
    of the last one (False for a run shorter than the window)."""
    times, positions = np.asarray(times, dtype=float), np.asarray(positions, dtype=float).reshape(-1, 3)
    if times.size == 0 or times.size != len(positions) or times[-1] - times[0] < DEADLOCK_WINDOW_S:
        return False
    final = times >= times[-1] - DEADLOCK_WINDOW_S
    spread = np.linalg.norm(positions[final] - positions[-1], axis=1)
    return bool(np.all(spread < DEADLOCK_SPEED_MPS * DEADLOCK_WINDOW_S))


def outcome_of(row: dict[str, Any]) -> str:
    """The episode's outcome (one of OUTCOMES) from its row: the first of crash, collision, geofence, deadlock, goal_missed."""
    if row.get("crashes", 0):
        return "crash"
    if row.get("collisions", 0):
        return "collision"
    if row.get("inside_geofence") is False:
        return "geofence"
    if row.get("goal_reached") is False:
        return "deadlock" if row.get("deadlocked") else "goal_missed"
    return "success"
