"""Replay a recorded bag into some nodes of a plan and compare what they publish with what the bag recorded."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aegis.runs.bag import read_bag
from aegis.executors.lockstep import LockstepExecutor
from aegis.launch_plan import LaunchPlan
from aegis.node import port_topics


@dataclasses.dataclass(frozen=True)
class TopicComparison:
    """How a replayed topic compares with the recording: counts, matching times, largest difference."""

    topic: str
    recorded: int
    replayed: int
    same_times: bool
    max_abs_difference: float

    @property
    def identical(self) -> bool:
        return self.recorded == self.replayed and self.same_times and self.max_abs_difference == 0.0


def replay_and_compare(plan: LaunchPlan, bag: Path, node_names: Sequence[str], seed: int = 0) -> list[TopicComparison]:
    """Run ``node_names`` fed by the bag's recordings of their inputs; compare their outputs with the bag's."""
    by_name = {n.name: n for n in plan.nodes}
    unknown = [name for name in node_names if name not in by_name]
    if unknown:
        raise KeyError(f"no node {', '.join(unknown)} in the plan (nodes: {', '.join(by_name)})")
    chosen = [by_name[name] for name in node_names]
    outputs = {topic for node in chosen for topics in node.outputs.values() for topic in port_topics(topics)}
    inputs = {topic for node in chosen for topics in node.inputs.values() for topic in port_topics(topics)} - outputs
    recording = list(read_bag(bag))
    recorded_topics = {topic for _, topic, _ in recording}
    missing = sorted((inputs | outputs) - recorded_topics)
    if missing:
        raise KeyError(f"{bag}: the bag lacks {', '.join(missing)}, which the replayed nodes use")
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
    comparisons = []
    for topic in sorted(outputs):
        original = [(t, msg) for t, name, msg in recording if name == topic]
        again = replayed[topic]
        pairs = list(zip(original, again))
        comparisons.append(
            TopicComparison(
                topic=topic,
                recorded=len(original),
                replayed=len(again),
                same_times=all(t0 == t1 for (t0, _), (t1, _) in pairs),
                max_abs_difference=max((max_abs_difference(m0, m1) for (_, m0), (_, m1) in pairs), default=0.0),
            )
        )
    return comparisons


def max_abs_difference(a: Any, b: Any) -> float:
    """Largest absolute difference over the numeric fields of two messages of one type (inf if shapes differ)."""
    if type(a) is not type(b):
        return float("inf")
    worst = 0.0
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, np.ndarray) or isinstance(x, (int, float)) and not isinstance(x, bool):
            x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
            if x.shape != y.shape:
                return float("inf")
            if x.size:
                worst = max(worst, float(np.max(np.abs(x - y))))
        elif not _same(x, y):
            return float("inf")
    return worst


def _same(x: Any, y: Any) -> bool:
    try:
        return bool(x == y)
    except ValueError:  # containers of numpy arrays (obstacle lists): compare their text
        return repr(x) == repr(y)
