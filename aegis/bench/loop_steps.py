"""The loop's node steps replayed warm: what each node's own code costs, without the wall clock's sleep or the executor.

:func:`measure_steps` runs the bench's chain once more (``run_chain``: reset, a warm-up, reset, the
run) with every node's ``step`` wrapped to keep what it was called with and what it returned in the
run proper; then, ``passes`` times, it resets the nodes as the run did (:class:`aegis.executors.graph.NodeGraph`
with seed 0) and steps them again in the recorded order on the recorded inputs, back to back, timing
each step alone. The caches stay warm (no sleep between steps, no other process's turn): the median
is the cost of the node's code itself, which the rows at the rate (cold caches after each sleep) and
the breakdown cannot resolve to better than the ~10 % two runs differ by on a shared machine.

Each replayed step must return what it returned in the run, every field but the wall-clock
measurements the message types declare (``MEASURED``: a filter's solve time, a policy's latency):
``same_outputs`` says whether every step did, on every pass (a node that read the wall clock or kept
state across a reset would not). The plant (the recorded replay listed first) is not timed.
"""

from __future__ import annotations

import dataclasses
import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aegis.executors.graph import NodeGraph
from aegis.node import Node
from aegis.runs.replay import first_field_difference

PASSES = 3
"""How many times the recorded steps are replayed (each after a reset)."""


def measure_steps(
    nodes: Sequence[Node],
    run_chain: Callable[[float, Callable[[], None]], Any],
    duration_s: float,
    passes: int = PASSES,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Record the chain's steps while ``run_chain(duration_s, warmed)`` runs it (``warmed()`` is called between its warm-up
    and the run proper), then replay them warm ``passes`` times.

    Returns {"duration_s", "passes", "same_outputs", "first_difference", "nodes": [{node, steps, median_us, mean_us}]}
    for every node but the first (the plant).
    """
    chain = list(nodes[1:])
    recorded: list[tuple[int, float, Mapping[str, Any], Mapping[str, Any]]] = []
    for index, node in enumerate(chain):
        setattr(node, "step", _recording(node.step, index, recorded))
    try:
        run_chain(duration_s, recorded.clear)
    finally:
        for node in chain:
            vars(node).pop("step", None)
    durations: list[list[int]] = [[] for _ in chain]
    difference = None
    graph = NodeGraph(list(nodes))
    steps = [node.step for node in chain]
    clock = time.perf_counter_ns
    for _ in range(passes):
        if stop is not None and stop.is_set():
            break
        graph.reset(0)  # what the run's reset did: the same seeds, so the same states
        for index, now, inputs, outputs in recorded:
            started = clock()
            again = steps[index](now, inputs)
            durations[index].append(clock() - started)
            if difference is None:
                difference = _first_difference(chain[index].name, now, outputs, again)
    rows = [
        {
            "node": node.name,
            "steps": len(times),
            "median_us": statistics.median(times) / 1e3 if times else float("nan"),
            "mean_us": statistics.fmean(times) / 1e3 if times else float("nan"),
        }
        for node, times in zip(chain, durations)
    ]
    return {"duration_s": duration_s, "passes": passes, "same_outputs": difference is None, "first_difference": difference, "nodes": rows}


def _recording(step: Callable[..., Any], index: int, recorded: list[Any]) -> Callable[..., Any]:
    keep = recorded.append

    def recording(now: float, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        outputs = step(now, inputs)
        keep((index, now, dict(inputs), dict(outputs)))
        return outputs

    return recording


def _first_difference(node: str, now: float, recorded: Mapping[str, Any], again: Mapping[str, Any]) -> str | None:
    """Where a replayed step's outputs differ from the recorded ones (None: the same but for the measured fields)."""
    if set(recorded) != set(again):
        return f"{node} at {now:.6f} s: outputs {sorted(again)}, recorded {sorted(recorded)}"
    for port, msg in recorded.items():
        pairs = zip(msg, again[port]) if isinstance(msg, tuple) else ((msg, again[port]),)  # a many port: one message per topic
        for one, one_again in pairs:
            if not dataclasses.is_dataclass(one):
                if one is not one_again and one != one_again:
                    return f"{node} at {now:.6f} s: {port}"
                continue
            field, _ = first_field_difference(one, one_again)
            if field is not None:
                return f"{node} at {now:.6f} s: {port}.{field}"
    return None
