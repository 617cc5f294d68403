"""Replay a recorded bag into some nodes of a plan and compare what they publish with what the bag recorded.

Only what is deterministic is compared: each message's time and every field but those its type
declares ``MEASURED`` (durations and latencies taken on the wall clock, such as a safety filter's
``solve_time_s``; they differ between any two runs and are not what a replay checks). A topic
that differs says where first: the message's time and the field (or the count, or the time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aegis.config_files import did_you_mean
from aegis.executors.lockstep import LockstepExecutor
from aegis.launch_plan import LaunchPlan
from aegis.node import port_topics
from aegis.runs.bag import read_bag


@dataclasses.dataclass(frozen=True)
class TopicComparison:
    """How a replayed topic compares with the recording: counts, matching times, largest difference."""

    topic: str
    recorded: int
    replayed: int
    same_times: bool
    max_abs_difference: float
    first_difference: str | None = None
    """Where the replay first departs from the recording (time and field), None when it does not."""

    @property
    def identical(self) -> bool:
        return self.first_difference is None


def replay_and_compare(plan: LaunchPlan, bag: Path, node_names: Sequence[str], seed: int = 0) -> list[TopicComparison]:
    """Run ``node_names`` fed by the bag's recordings of their inputs; compare their outputs with the bag's."""
    by_name = {n.name: n for n in plan.nodes}
    unknown = [name for name in node_names if name not in by_name]
    if unknown:
        raise KeyError(f"no node {', '.join(unknown)} in the plan (nodes: {', '.join(by_name)}){did_you_mean(unknown[0], by_name)}")
    chosen = [by_name[name] for name in node_names]
    outputs = {topic for node in chosen for topics in node.outputs.values() for topic in port_topics(topics)}
    inputs = {topic for node in chosen for topics in node.inputs.values() for topic in port_topics(topics)} - outputs
    recording = list(read_bag(bag))
    recorded_topics = {topic for _, topic, _ in recording}
    # an input no node of the plan publishes (an external e-stop) was never in the run either: replayed as silent
    published = {topic for node in plan.nodes for topics in node.outputs.values() for topic in port_topics(topics)}
    missing = sorted((inputs & published) - recorded_topics)
    if missing or not recording:
        raise KeyError(f"{bag}: the bag lacks {', '.join(missing) or 'any message'}, which the replayed nodes use")
    end_ns = max(t for t, _, _ in recording) + 1
    replayed: dict[str, list[tuple[int, Any]]] = {topic: [] for topic in outputs}

    def collect(topic: str, msg: Any, t_ns: int) -> None:
        if topic in replayed:
            replayed[topic].append((t_ns, msg))

    executor = LockstepExecutor(
        [node.instantiate() for node in chosen],
        sources=[[event for event in recording if event[1] in inputs]],
        listeners=[collect],
    )
    executor.reset(seed)
    executor.run(end_ns / 1e9)
    return [_compare(topic, [(t, msg) for t, name, msg in recording if name == topic], replayed[topic]) for topic in sorted(outputs)]


def _compare(topic: str, original: list[tuple[int, Any]], again: list[tuple[int, Any]]) -> TopicComparison:
    """One topic's recording against its replay: counts, times, the deterministic fields, and the first difference."""
    first = None
    worst = 0.0
    for (t0, m0), (t1, m1) in zip(original, again):
        if first is None and t0 != t1:
            first = f"message at {t0 / 1e9:.6f} s replayed at {t1 / 1e9:.6f} s"
        field, difference = first_field_difference(m0, m1)
        worst = max(worst, max_abs_difference(m0, m1))
        if first is None and field is not None:
            first = f"at {t0 / 1e9:.6f} s: {field}" + (f" differs by {difference:.3g}" if difference < float("inf") else " differs")
    if first is None and len(original) != len(again):
        more = original[len(again)] if len(original) > len(again) else again[len(original)]
        first = f"{len(original)} messages recorded, {len(again)} replayed (the first extra at {more[0] / 1e9:.6f} s)"
    times = all(t0 == t1 for (t0, _), (t1, _) in zip(original, again))
    return TopicComparison(topic, len(original), len(again), times, worst, first)


def compared_fields(msg: Any) -> list[str]:
    """The fields of a message a replay compares: all but the wall-clock measurements its type declares (``MEASURED``)."""
    measured = set(getattr(type(msg), "MEASURED", ()))
    return [field.name for field in dataclasses.fields(msg) if field.name not in measured]


def first_field_difference(a: Any, b: Any) -> tuple[str | None, float]:
    """The first compared field in which two messages differ and by how much (inf when not by a number); (None, 0)."""
    if type(a) is not type(b):
        return f"type ({type(a).__name__} recorded, {type(b).__name__} replayed)", float("inf")
    for name in compared_fields(a):
        difference = _difference(getattr(a, name), getattr(b, name))
        if difference != 0.0:
            return name, difference
    return None, 0.0


def max_abs_difference(a: Any, b: Any) -> float:
    """Largest absolute difference over the compared fields of two messages of one type (inf if shapes or non-numbers differ)."""
    if type(a) is not type(b):
        return float("inf")
    return max((_difference(getattr(a, name), getattr(b, name)) for name in compared_fields(a)), default=0.0)


def _difference(x: Any, y: Any) -> float:
    if isinstance(x, np.ndarray) or isinstance(x, (int, float)) and not isinstance(x, bool):
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if x.shape != y.shape:
            return float("inf")
        if not x.size:
            return 0.0
        same_nan = np.isnan(x) & np.isnan(y)
        return float(np.max(np.where(same_nan | (x == y), 0.0, np.abs(x - y))))
    return 0.0 if _same(x, y) else float("inf")


def _same(x: Any, y: Any) -> bool:
    try:
        return bool(x == y)
    except ValueError:  # containers of numpy arrays (obstacle lists): compare their text
        return repr(x) == repr(y)
