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


@dataclass
class Series:
    """Times (s) and positions (m) of one RobotState topic."""

    times: list[float] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)
    speeds: list[float] = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.times), np.asarray(self.positions).reshape(-1, 3)


class EpisodeLog:
    """A run listener keeping the plant's true state and the reference the controllers publish."""

    def __init__(self, plan: LaunchPlan) -> None:
        plant = plan.nodes[0].outputs  # the plant (sim bridge) is listed first
        self.state_topic = plant.get(TRUTH_PORT, plant.get(STATE_PORT))
        self.reference_topics = {n.outputs[REFERENCE_PORT] for n in plan.nodes if REFERENCE_PORT in n.outputs}
        self.state = Series()
        self.reference = Series()
        self.final_states: dict[str, RobotState] = {}
        self.barrier_times: list[float] = []
        self.barrier: list[float] = []

    def __call__(self, topic: str, msg: Any, t_ns: int) -> None:
        if isinstance(msg, SafetyFilterReport):
            if msg.h.size:
                self.barrier_times.append(t_ns / 1e9)
                self.barrier.append(float(msg.h.min()))
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
    """The arrays behind the numbers (for plots): true state, reference, error and clearance over time."""

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


def episode_series(log: EpisodeLog, obstacles: Any, body_radius_m: float | None) -> EpisodeSeries:
    """The arrays of a run; clearance to ``obstacles`` (the ones the plant actually had, jitter included)."""
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
    return EpisodeSeries(
        times, positions, ref_times, ref_positions, errors, clearance, np.asarray(log.barrier_times), np.asarray(log.barrier),
        np.asarray(log.state.speeds, dtype=float),
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
