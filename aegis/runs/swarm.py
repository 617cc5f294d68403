"""Multi-robot runs: which nodes of a plan serve which robot, each robot's recorded episode, and the swarm's numbers.

A plan is a swarm when its plant (the first node) publishes odometry on a many port, one topic
per robot (``swarm_sim_bridge``). A node belongs to robot ``k`` when its ``state`` input reads
robot ``k``'s odometry topic: that is how each robot's controller, safety filter and attitude loop
are found, with no naming convention. A :class:`SwarmLog` listens to a run and keeps, per robot,
what aegis.runs.episode keeps for one robot (its true state from the plant's ``truth`` topics, or its
odometry when the plant lists none; the reference its nodes publish; its filter's reports), so each robot's tracking and clearance are measured exactly as in a one-robot run; :func:`swarm_metrics` adds what only a swarm has (inter-robot distance and
collisions, from the plant) and totals over the robots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aegis.runs.episode import EpisodeSeries, FilterTrace, Series, episode_metrics, episode_series
from aegis.launch_plan import LaunchPlan
from aegis.msgs import RobotState, SafetyFilterReport
from aegis.node import port_topics

STATE_PORT = "state"
TRUTH_PORT = "truth"
REFERENCE_PORT = "reference"


@dataclass(frozen=True)
class SwarmLayout:
    """The robots of a swarm plan, in the plant's order: names, odometry topics and each one's nodes (plan indices)."""

    names: tuple[str, ...]
    state_topics: tuple[str, ...]
    node_indices: tuple[tuple[int, ...], ...]
    reference_topics: tuple[frozenset[str], ...]
    report_topics: tuple[frozenset[str], ...]
    truth_topics: tuple[str, ...] = ()
    """Each robot's ground-truth topic (the plant's ``truth`` port), in the same order; empty when it has none."""

    @property
    def measured_topics(self) -> tuple[str, ...]:
        """What each robot's numbers are measured from: its ground truth when the plant publishes it, else its odometry."""
        return self.truth_topics or self.state_topics


def swarm_layout(plan: LaunchPlan) -> SwarmLayout | None:
    """The plan's robots and their nodes, or None when the plant publishes one robot's odometry (or none)."""
    if not plan.nodes:
        return None
    plant = plan.nodes[0]
    state_topics = plant.outputs.get(STATE_PORT)
    if not isinstance(state_topics, tuple):
        return None
    names = tuple(plant.params.get("robots") or (f"robot{k}" for k in range(len(state_topics))))
    members: list[list[int]] = [[] for _ in state_topics]
    for index, node in enumerate(plan.nodes[1:], start=1):
        topic = node.inputs.get(STATE_PORT)
        if isinstance(topic, str) and topic in state_topics:
            members[state_topics.index(topic)].append(index)
    references, reports = [], []
    for indices in members:
        nodes = [plan.nodes[i] for i in indices]
        references.append(frozenset(n.outputs[REFERENCE_PORT] for n in nodes if isinstance(n.outputs.get(REFERENCE_PORT), str)))
        reports.append(
            frozenset(
                topic
                for n in nodes
                for port, topics in n.outputs.items()
                if n.msg_types[port] == SafetyFilterReport.__name__
                for topic in port_topics(topics)
            )
        )
    truth = plant.outputs.get(TRUTH_PORT)
    truth_topics = tuple(truth) if isinstance(truth, tuple) and len(truth) == len(state_topics) else ()
    return SwarmLayout(names, state_topics, tuple(tuple(m) for m in members), tuple(references), tuple(reports), truth_topics)


class RobotRecord:
    """One robot's true state, reference and filter reports over a run (what aegis.runs.episode.episode_series reads)."""

    def __init__(self) -> None:
        self.state = Series()
        self.reference = Series()
        self.filter = FilterTrace()


class SwarmLog:
    """A run listener keeping a :class:`RobotRecord` per robot of ``layout``, and the last RobotState of every topic."""

    def __init__(self, layout: SwarmLayout) -> None:
        self.layout = layout
        self.records = {name: RobotRecord() for name in layout.names}
        self.final_states: dict[str, RobotState] = {}
        self._routes: dict[str, tuple[RobotRecord, str]] = {}
        for name, state, references, reports in zip(layout.names, layout.measured_topics, layout.reference_topics, layout.report_topics):
            record = self.records[name]
            self._routes[state] = (record, "state")
            self._routes.update({topic: (record, "reference") for topic in references})
            self._routes.update({topic: (record, "report") for topic in reports})

    def __call__(self, topic: str, msg: Any, t_ns: int) -> None:
        if isinstance(msg, RobotState):
            self.final_states[topic] = msg
        route = self._routes.get(topic)
        if route is None:
            return
        record, kind = route
        if kind == "report":
            record.filter.add(msg, t_ns / 1e9)
            return
        series = record.state if kind == "state" else record.reference
        series.times.append(t_ns / 1e9)
        series.positions.append(msg.position)
        series.speeds.append(float(np.linalg.norm(msg.linear_velocity)))


def robot_series(log: SwarmLog, obstacles: Any, body_radius_m: float | None) -> dict[str, EpisodeSeries]:
    """Each robot's episode arrays (tracking error, clearance to the obstacles, barrier), by robot name."""
    return {name: episode_series(record, obstacles, body_radius_m) for name, record in log.records.items()}


def min_pair_distance(series: dict[str, EpisodeSeries]) -> tuple[np.ndarray, np.ndarray]:
    """(times, smallest centre-to-centre distance between any two robots) at the first robot's odometry times."""
    robots = list(series.values())
    if len(robots) < 2 or not robots[0].times.size:
        return np.empty(0), np.empty(0)
    times = robots[0].times
    positions = []
    for one in robots:  # each robot's odometry at (or last before) those times
        index = np.clip(np.searchsorted(one.times, times, side="right") - 1, 0, max(one.times.size - 1, 0))
        positions.append(one.positions[index])
    stacked = np.stack(positions)  # (robots, samples, 3)
    distances = np.linalg.norm(stacked[:, None] - stacked[None, :], axis=-1)  # (robots, robots, samples)
    upper = np.triu_indices(len(robots), k=1)
    return times, distances[upper].min(axis=0)


def swarm_metrics(
    layout: SwarmLayout, series: dict[str, EpisodeSeries], plant: dict[str, Any], node_metrics: list[dict[str, Any]], tasks: dict[str, Any]
) -> dict[str, Any]:
    """The summary keys of a swarm run: per robot under ``robots``, and totals over them at the top level.

    ``plant`` is the plant's metrics (with its own per-robot ``robots``); ``node_metrics`` every
    node's metrics in plan order; ``tasks`` each robot's scenario task (for its goal).
    """
    robots: dict[str, dict[str, Any]] = {}
    for name, indices in zip(layout.names, layout.node_indices):
        own: dict[str, Any] = {}
        for index in indices:
            own.update(node_metrics[index])
        plant_own = plant.get("robots", {}).get(name, {})
        row = {**episode_metrics(series[name], {**own, **plant_own}), **_goal(series[name], tasks.get(name))}
        robots[name] = row
    rows = list(robots.values())
    filtered = [row for row in rows if "filter_interventions" in row]
    errors = np.concatenate([s.tracking_error for s in series.values()]) if series else np.empty(0)
    clearances = [row["min_clearance_m"] for row in rows if row["min_clearance_m"] is not None]
    goals = [row["goal_reached"] for row in rows if row["goal_reached"] is not None]
    totals: dict[str, Any] = {
        "collisions": int(plant.get("collisions", 0)),
        "obstacle_collisions": int(plant.get("obstacle_collisions", 0)),
        "inter_robot_collisions": int(plant.get("inter_robot_collisions", 0)),
        "min_inter_robot_distance_m": plant.get("min_inter_robot_distance_m"),
        "robot_radius_m": plant.get("body_radius_m"),
        "min_clearance_m": min(clearances) if clearances else None,
        "tracking_rmse_m": float(np.sqrt(np.mean(errors**2))) if errors.size else None,
        "tracking_max_m": float(errors.max()) if errors.size else None,
        "goals_reached": sum(goals) if goals else None,
        "command_timeouts": int(plant.get("command_timeouts", 0)),
        "crashes": int(plant.get("crashes", 0)),
        "crash_time_s": plant.get("crash_time_s"),
    }
    if filtered:
        barriers = [row["min_barrier"] for row in filtered if row["min_barrier"] is not None]
        totals["filter_interventions"] = sum(row["filter_interventions"] for row in filtered)
        totals["fallbacks"] = sum(row["fallbacks"] for row in filtered)
        for key in ("unusable_odometry_ticks", "unusable_obstacles_ticks", "stale_nominal_ticks", "geofence_only_ticks"):
            totals[key] = sum(row.get(key, 0) for row in filtered)  # what the filters' inputs made them do
        totals["min_barrier"] = min(barriers) if barriers else None
    return {**totals, "robots": robots}


def _goal(series: EpisodeSeries, task: Any) -> dict[str, Any]:
    """Whether the robot ended within its goal's tolerance, and how far from it (None without a goal)."""
    if task is None or task.goal is None or not series.positions.size:
        return {"goal_reached": None, "final_goal_distance_m": None}
    distance = float(np.linalg.norm(series.positions[-1] - np.asarray(task.goal.position)))
    return {"goal_reached": distance <= task.goal.tolerance_m, "final_goal_distance_m": distance}
