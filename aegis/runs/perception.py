"""Perception against the truth: detection recall and precision, position error and latency of a run's perception nodes.

When a plan runs a perception node (:data:`PERCEPTION_TYPES`), every Obstacles message it publishes
is matched against the obstacles the simulator really had, seen from the robot's TRUE position at
the message's stamp (when the scan was measured; aegis.runs.episode keeps the truth):

- a true obstacle is **in range** when its surface is within the sensor's range of the robot
  (the lidar's ``range_max_m``, the plant's ``lidar`` parameters; a depth_obstacles node's own
  ``max_range_m``); occluded ones count too (and, for a camera, ones outside its field of view
  that it has not seen yet), so recall also says how much of what is near the robot was unknown to it;
- a perceived obstacle's **face** is its point nearest the robot (a cylinder's or sphere's surface
  toward it, a box's nearest point): what the safety filter keeps clear of;
- a perceived obstacle **matches** a true one when its face lies within :data:`MATCH_M` of that
  obstacle's surface (signed distance, measured at the true obstacle's mid height);
- ``recall`` = true obstacles in range with a match / true obstacles in range, ``precision`` =
  perceived obstacles with a match / perceived obstacles, summed over every message;
  ``position_error_m`` = the mean distance from each matched face to the nearest true surface;
  ``latency_p50_us`` / ``latency_p99_us`` = the perception nodes' step times (wall clock, the
  executor's own timing of each step);
- ``true_min_h``: the safety filter's barrier evaluated on the TRUE obstacles along the TRUE path
  (its zeroth-order h: the distance from the point it keeps clear, the look-ahead point of a
  diff-drive filter or the robot's centre, to the nearest true surface, less its margin,
  ``robot_radius_m`` + ``lookahead_m``), at every true sample; the filter's own ``min_barrier`` is
  what it believed about the obstacles it perceived. None without a safety filter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aegis.launch_plan import LaunchPlan
from aegis.msgs import Obstacles

PERCEPTION_TYPES = ("lidar_obstacles", "depth_obstacles")
"""Node types whose ``obstacles`` output is perception (matched against the truth)."""
MATCH_M = 0.3
"""A perceived obstacle's face within this of a true obstacle's surface is a detection of it (m)."""
DEFAULT_RANGE_M = 10.0


@dataclass
class PerceptionLog:
    """A run listener keeping every Obstacles message the plan's perception nodes publish, and the true poses."""

    topics: frozenset[str]
    nodes: tuple[str, ...]
    range_m: float
    messages: list[Obstacles] = field(default_factory=list)
    truth_topic: str | None = None
    barrier: tuple[float, float] | None = None
    """The safety filter's (look-ahead distance, margin) in m: look-ahead 0 for a filter on the robot's centre."""
    poses: list[tuple[float, float, float, float]] = field(default_factory=list)
    """(x, y, z, yaw) of every true sample."""

    def __call__(self, topic: str, msg: Any, t_ns: int) -> None:
        if topic in self.topics and isinstance(msg, Obstacles):
            self.messages.append(msg)
        elif topic == self.truth_topic and self.barrier is not None:
            qx, qy, qz, qw = (float(v) for v in msg.orientation)
            yaw = math.atan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz))
            self.poses.append((float(msg.position[0]), float(msg.position[1]), float(msg.position[2]), yaw))


def perception_log(plan: LaunchPlan) -> PerceptionLog | None:
    """A log for the plan's perception nodes, or None when it runs none."""
    nodes = [n for n in plan.nodes if n.type_name in PERCEPTION_TYPES]
    if not nodes:
        return None
    range_m = max(_sensor_range_m(plan, node) for node in nodes)
    filters = [n for n in plan.nodes if n.type_name.endswith("safety_filter")]
    barrier = None
    if filters:
        params = filters[0].params
        lookahead = float(params.get("lookahead_m", 0.0))
        barrier = (lookahead, float(params["robot_radius_m"]) + lookahead)
    return PerceptionLog(
        frozenset(n.outputs["obstacles"] for n in nodes), tuple(n.name for n in nodes), range_m,
        truth_topic=plan.nodes[0].outputs.get("truth"), barrier=barrier,
    )


def _sensor_range_m(plan: LaunchPlan, node: Any) -> float:
    """How far a perception node sees: the plant's lidar range for lidar_obstacles, the node's own max_range_m for depth."""
    if node.type_name == "depth_obstacles":
        from aegis.registry import node_class

        return float(node_class(node.type_name).Params.model_validate(node.params or {}).max_range_m)
    lidar = (plan.nodes[0].params or {}).get("lidar") or {}
    return float(lidar.get("range_max_m", DEFAULT_RANGE_M))


def true_min_h(log: PerceptionLog, true_obstacles: Sequence[Any]) -> float | None:
    """The filter's zeroth-order barrier on the true obstacles along the true path (module doc); None without a filter or truth."""
    from aegis.scenario.geometry import signed_distance

    if log.barrier is None or not log.poses or not true_obstacles:
        return None
    lookahead, margin = log.barrier
    poses = np.asarray(log.poses)
    points = poses[:, :3].copy()
    points[:, 0] += lookahead * np.cos(poses[:, 3])
    points[:, 1] += lookahead * np.sin(poses[:, 3])
    lowest = math.inf
    for obstacle in true_obstacles:
        if lookahead > 0.0:  # a ground robot's filter works in the plane: measure at the obstacle's mid height
            points[:, 2] = float(obstacle.position[2])
        lowest = min(lowest, float(np.min(signed_distance(obstacle, points))))
    return lowest - margin


def faces(msg: Obstacles, robot_xy: np.ndarray) -> np.ndarray:
    """(N, 2): each obstacle's point nearest ``robot_xy`` in the plane."""
    out = np.empty((len(msg.obstacles), 2))
    for i, o in enumerate(msg.obstacles):
        centre = o.position[:2]
        if o.shape == "box":
            x, y, z, w = o.orientation
            yaw = 2.0 * math.atan2(z, w)
            c, s = math.cos(yaw), math.sin(yaw)
            rel = robot_xy - centre
            local = np.array([c * rel[0] + s * rel[1], -s * rel[0] + c * rel[1]])
            local = np.clip(local, -0.5 * o.size[:2], 0.5 * o.size[:2])
            out[i] = centre + np.array([c * local[0] - s * local[1], s * local[0] + c * local[1]])
        else:
            away = robot_xy - centre
            norm = float(np.hypot(away[0], away[1]))
            out[i] = centre + (away / norm * 0.5 * o.size[0] if norm > 0 else 0.0)
    return out


def perception_counts(log: PerceptionLog, truth_times: np.ndarray, truth_positions: np.ndarray, true_obstacles: Sequence[Any]) -> dict[str, float]:
    """Sums over the run's messages: true obstacles in range and detected, perceived and matched, matched error."""
    from aegis.scenario.geometry import signed_distance

    counts = {"in_range": 0, "detected": 0, "perceived": 0, "matched": 0, "error_sum_m": 0.0}
    if not log.messages or truth_times.size == 0:
        return counts
    heights = [float(o.position[2]) for o in true_obstacles]
    for msg in log.messages:
        k = int(np.clip(np.searchsorted(truth_times, msg.stamp, side="right") - 1, 0, truth_times.size - 1))
        robot = truth_positions[k]
        surfaces = np.array([float(signed_distance(o, [robot[0], robot[1], z])) for o, z in zip(true_obstacles, heights)])
        in_range = surfaces <= log.range_m
        points = faces(msg, robot[:2])
        # distance from each face (rows) to each true obstacle's surface (columns)
        gaps = np.array([[abs(float(signed_distance(o, [p[0], p[1], z]))) for o, z in zip(true_obstacles, heights)] for p in points])
        gaps = gaps.reshape(len(points), len(true_obstacles))
        close = gaps <= MATCH_M
        counts["in_range"] += int(in_range.sum())
        counts["detected"] += int((in_range & close.any(axis=0)).sum()) if len(points) else 0
        counts["perceived"] += len(points)
        matched = close.any(axis=1) if len(true_obstacles) else np.zeros(len(points), dtype=bool)
        counts["matched"] += int(matched.sum())
        counts["error_sum_m"] += float(gaps[matched].min(axis=1).sum()) if matched.any() else 0.0
    return counts


def perception_summary(counts: dict[str, float], durations_ns: Sequence[int], true_h: float | None = None) -> dict[str, Any]:
    """The summary's ``perception`` entry from :func:`perception_counts`, the perception nodes' step times and :func:`true_min_h`."""
    us = np.asarray(durations_ns, dtype=float) / 1e3
    return {
        "true_min_h": true_h,
        "recall": counts["detected"] / counts["in_range"] if counts["in_range"] else None,
        "precision": counts["matched"] / counts["perceived"] if counts["perceived"] else None,
        "position_error_m": counts["error_sum_m"] / counts["matched"] if counts["matched"] else None,
        "latency_p50_us": float(np.percentile(us, 50)) if us.size else None,
        "latency_p99_us": float(np.percentile(us, 99)) if us.size else None,
        "counts": counts,
    }


def run_perception(log: PerceptionLog | None, episode_log: Any, true_obstacles: Sequence[Any], stats: Any) -> dict[str, Any] | None:
    """The ``perception`` entry of one run (None without a perception node)."""
    if log is None:
        return None
    times, positions = episode_log.state.arrays()
    durations = [d for name in log.nodes for d in stats.timings[name].durations_ns]
    return perception_summary(perception_counts(log, times, positions, true_obstacles), durations, true_min_h(log, true_obstacles))


def aggregate_perception(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """A campaign's ``perception``: counts summed over its episodes, latency p99 the worst episode's (None without one)."""
    entries = [row["perception"] for row in rows if row.get("perception")]
    if not entries:
        return None
    counts = {key: sum(e["counts"][key] for e in entries) for key in entries[0]["counts"]}
    summary = perception_summary(counts, [])
    p50 = [e["latency_p50_us"] for e in entries if e["latency_p50_us"] is not None]
    p99 = [e["latency_p99_us"] for e in entries if e["latency_p99_us"] is not None]
    summary["latency_p50_us"] = float(np.median(p50)) if p50 else None
    summary["latency_p99_us"] = max(p99) if p99 else None
    lowest = [e["true_min_h"] for e in entries if e.get("true_min_h") is not None]
    summary["true_min_h"] = min(lowest) if lowest else None
    return summary


def perception_rows(perception: dict[str, Any]) -> list[tuple[str, str]]:
    """Two rows for a summary table: what was detected (recall, precision, error), then latency p99 and true h.

    Two short rows, not one long one: a row wider than the terminal wraps where a number's digits
    fall, so the same run would print different lines on a quiet and a loaded machine.
    """

    def part(key: str, fmt: str) -> str:
        value = perception.get(key)
        return "-" if value is None else format(value, fmt)

    return [
        (
            "perception (vs the true obstacles)",
            f"recall {part('recall', '.3f')}, precision {part('precision', '.3f')}, error {part('position_error_m', '.3f')} m",
        ),
        (
            "perception: p99 / filter h on the truth",
            f"{part('latency_p99_us', '.0f')} µs / {part('true_min_h', '.4f')}",
        ),
    ]
