"""The loop's floor: the tick's two numerical calls alone (the bare ONNX inference and the bare CBF QP solve), warm and at the rate.

:func:`measure_floor` runs the bench's chain briefly to catch its real calls (the policy node's
``runtime.act`` with each model input, the safety filter's ``filter.solver.solve`` with each
nominal and rows, arrays copied), then replays those same calls in their order, round and round,
with nothing else around them:

- ``warm``: back to back (the caches hold their code and data: what a micro-benchmark reports);
- ``at rate``: once per period, waiting as the realtime executor waits (sleep until ``spin_s``
  before the due time, then spin), so the calls meet the caches as the tick meets them after the
  sleep (on a shared machine, other processes ran on the core meanwhile).

No node, message or executor is involved: what the two calls cost at the rate is the least any
tick of this chain can cost on this machine in this process, whatever the node layer does.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from aegis.node import Node

CALLS = (("runtime.act", "inference (bare onnxruntime call)"), ("filter.solver.solve", "CBF QP (bare solve)"))
"""(attribute path on a node, label) of the calls the floor times; both found on the chain's nodes or no floor."""
CATCH_S = 0.3
"""How long the chain runs to catch one call of each."""


def measure_floor(
    nodes: Sequence[Node],
    run_chain: Callable[[float], Any],
    rate_hz: float,
    duration_s: float,
    spin_s: float,
    stop: threading.Event | None = None,
) -> dict[str, Any] | None:
    """Catch the chain's calls of :data:`CALLS` while ``run_chain(CATCH_S)`` runs it, then replay and time them warm and at ``rate_hz``.

    Returns {"duration_s", "parts": [{part, warm_median_us, at_rate_median_us, at_rate_p99_us}]}, the
    last part both calls in a row; None when a node with one of the calls is missing (another chain).
    """
    caught: list[tuple[str, Callable[[], Any]]] = []
    undo: list[Callable[[], None]] = []
    slots: list[list[Any]] = []
    for path, label in CALLS:
        owner_path, _, method = path.rpartition(".")
        owner = next((o for o in (_attribute(node, owner_path) for node in nodes) if o is not None and hasattr(o, method)), None)
        if owner is None:
            return None
        slot: list[Any] = []
        setattr(owner, method, _catching(getattr(owner, method), slot))
        undo.append(lambda owner=owner, method=method: vars(owner).pop(method, None))
        slots.append(slot)
        caught.append((label, owner))
    try:
        run_chain(CATCH_S)
    finally:
        for restore in undo:
            restore()
    calls = []
    for (label, owner), slot, (path, _) in zip(caught, slots, CALLS):
        if not slot:
            return None
        function = getattr(owner, path.rpartition(".")[2])
        calls.append((label, _replay(function, slot)))
    both = [call for _, call in calls]
    calls.append(("both in a row: the floor of a tick", lambda: [call() for call in both]))
    period_ns = round(1e9 / rate_hz)
    samples = max(1, round(duration_s * rate_hz))
    parts = []
    for label, call in calls:
        if stop is not None and stop.is_set():
            break
        warm = _warm(call, samples)
        at_rate = _at_rate(call, samples, period_ns, round(spin_s * 1e9), stop)
        parts.append(
            {
                "part": label,
                "warm_median_us": statistics.median(warm) / 1e3,
                "at_rate_median_us": statistics.median(at_rate) / 1e3,
                "at_rate_p99_us": _nearest_rank(sorted(at_rate), 99) / 1e3,
            }
        )
    return {"duration_s": duration_s, "rate_hz": rate_hz, "parts": parts}


def _attribute(obj: Any, path: str) -> Any:
    for name in path.split(".") if path else ():
        obj = getattr(obj, name, None)
    return obj


def _catching(function: Callable[..., Any], slot: list[Any]) -> Callable[..., Any]:
    """``function``, keeping each call's arguments in ``slot`` (arrays copied: the caller reuses its buffers)."""

    def catching(*args: Any, **kwargs: Any) -> Any:
        slot.append((tuple(_copy(a) for a in args), {k: _copy(v) for k, v in kwargs.items()}))
        return function(*args, **kwargs)

    return catching


def _copy(value: Any) -> Any:
    return value.copy() if isinstance(value, np.ndarray) else value


def _replay(function: Callable[..., Any], caught: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> Callable[[], Any]:
    """A call of ``function`` with the next caught arguments each time, round and round."""
    index = [0]

    def replay() -> Any:
        args, kwargs = caught[index[0]]
        index[0] = (index[0] + 1) % len(caught)
        return function(*args, **kwargs)

    return replay


def _warm(call: Callable[[], Any], samples: int) -> list[int]:
    clock, durations = time.perf_counter_ns, []
    call()
    for _ in range(samples):
        started = clock()
        call()
        durations.append(clock() - started)
    return durations


def _at_rate(call: Callable[[], Any], samples: int, period_ns: int, spin_ns: int, stop: threading.Event | None) -> list[int]:
    """One call per period, after sleeping until ``spin_ns`` before its due time and spinning the rest (the executor's wait)."""
    clock, durations = time.perf_counter_ns, []
    start = clock() + period_ns
    for k in range(samples):
        if stop is not None and stop.is_set():
            break
        due = start + k * period_ns
        remaining = due - clock() - spin_ns
        if remaining > 0:
            time.sleep(remaining / 1e9)
        while clock() < due:
            pass
        started = clock()
        call()
        durations.append(clock() - started)
    return durations or [0]


def _nearest_rank(sorted_values: list[int], q: float) -> int:
    return sorted_values[max(0, math.ceil(q / 100.0 * len(sorted_values)) - 1)]
