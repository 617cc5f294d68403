"""`aegis hil --campaign faults`: every link fault class in several short runs, and what the stack's supervisor made of each.

Each class gets a generated timeline per run (:func:`class_timeline`): the fault in the middle of a
short run (:data:`FAULT_AT_S` to :data:`FAULT_AT_S` + :data:`FAULT_S`, both directions), seeded by
the run's index (``seed + k`` for run k). From each run's bag (the supervisor's ``/supervisor/status``
and its command topic) and summary:

- ``detection_ms``: from the fault's onset to the first status not ``running`` (None: it stayed running);
- ``safe_state_ms``: from the onset to the first command the supervisor published at or after that
  status (the gate's output switched to the safe command in that same step);
- ``stale_age_ms``: when the supervisor's reason at detection is a stale input, that input's age
  then (by its stamp): its excess over the input's staleness bound is how long after the fault
  became detectable the supervisor acted, at most one of its periods;
- ``recovered``: the supervisor ``running`` again after the fault cleared (and at the end of the run);
- ``collisions``, ``crashes``: from the simulator's ground truth.

A run whose supervisor was not ``running`` just before the onset (a starved machine's late inputs
had degraded it) measures nothing about the fault: it has no times and counts in the row's
``not_running_at_onset``.

A class's row gives the WORST (largest) of its runs' times, each run's times, how many runs detected
the fault and how many recovered, and the collisions and crashes summed over its runs. The kill
class kills the stack process (its supervisor dies with it) and restarts it: its times are the
plant's, from the onset (the kill) to the first tick the simulated flight controller's link-loss
failsafe flew (the plant summary's ``failsafe_takeover_s``; aegis.sim.link_loss): it detects the
lost link when the last command outlives its staleness bound and levels in that tick. A plant
without such a failsafe (a ground robot's drive stops by itself) has no times there.
``restart_s`` says how long the stack was gone (kill to its restarted process running);
``recovered`` is the new supervisor reaching ``running``.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

from aegis.launch_plan import LaunchPlan
from aegis.transport.faults import FAULT_KINDS, FaultTimeline

FAULT_AT_S = 2.5
"""When each class's fault starts (s into the run): the supervisor is running by then."""
FAULT_S = 1.0
"""How long it lasts, but for a partition (:data:`PARTITION_S`)."""
PARTITION_S = 0.3
"""A partition's length: long enough to outlast every staleness bound (the odometry's 50 ms, the plant's command's 0.1 s,
after which the quadrotor's firmware failsafe levels it), short of the failsafe's 2 s motor shutdown."""
RUNS = 3
"""Runs per class unless ``--runs`` says otherwise."""
STALE_AGE = re.compile(r"stale \(([0-9.]+) s\)")
"""The input's age in the supervisor's reason for a staleness fault (``odometry stale (0.062 s)``)."""
RUN_S = 6.0
"""Each run's length: the fault, then time to recover (the supervisor's recovery_s is 0.5 s)."""
KILL_RUN_S = 12.0
"""A kill run's length: a restarted stack is a fresh interpreter (4.7 to 7.2 s on a 2-core machine at load 15), and the
run must last until it runs again, and long enough that whatever the plant did meanwhile (hover, land, fall) is seen."""
FAULT_PARAMS: dict[str, dict[str, Any]] = {
    "partition": {},
    "burst_loss": {"p_enter": 0.2, "p_exit": 0.1},
    "loss": {"probability": 0.3},
    "corrupt": {"probability": 0.3, "bits": 1},
    "duplicate": {"probability": 0.5, "copies": 1},
    "delay": {"delay_ms": 100.0},
    "jitter": {"jitter_ms": 80.0},
    "reorder": {"probability": 0.3, "hold_ms": 20.0},
    "kill": {"process": "stack", "restart_after_s": 1.0},
}
"""Each class's parameters in the campaign (docs/hil.md lists them)."""
assert set(FAULT_PARAMS) == set(FAULT_KINDS)


def class_timeline(kind: str, seed: int) -> FaultTimeline:
    """The campaign's timeline for fault class ``kind``: the fault from FAULT_AT_S for FAULT_S."""
    window = {"at_s": FAULT_AT_S} if kind == "kill" else {"at_s": FAULT_AT_S, "duration_s": fault_s(kind)}
    return FaultTimeline.model_validate({"seed": seed, "faults": [{"kind": kind, **window, **FAULT_PARAMS[kind]}]})


def fault_s(kind: str) -> float:
    return PARTITION_S if kind == "partition" else FAULT_S


def supervisor_topics(plan: LaunchPlan) -> tuple[str, str]:
    """The (status, command) topics of the plan's supervisor; ValueError if the plan has none."""
    for launch in plan.nodes:
        if "supervisor" in launch.type_name and {"status", "command"} <= set(launch.outputs):
            return launch.outputs["status"], launch.outputs["command"]
    raise ValueError("the plan has no supervisor node: the campaign measures what the supervisor does")


def run_measures(bag: Path, status_topic: str, command_topic: str, onset_s: float, cleared_s: float) -> dict[str, Any]:
    """detection_ms, safe_state_ms and recovered of one run, from its bag (module doc)."""
    from aegis.runs.bag import read_bag

    onset_ns, cleared_ns = round(onset_s * 1e9), round(cleared_s * 1e9)
    detected_ns, stale_age_ms = None, None
    last_state, running_after, state_at_onset = None, False, None
    commands = []
    topics = [status_topic, command_topic] if _has_topic(bag, status_topic) else []
    for t_ns, topic, msg in read_bag(bag, topics) if topics else ():
        if topic == status_topic:
            if t_ns < onset_ns:
                state_at_onset = msg.state
            last_state = msg.state
            if detected_ns is None and t_ns >= onset_ns and msg.state != "running":
                detected_ns = t_ns
                age = STALE_AGE.search(msg.reason)
                stale_age_ms = None if age is None else float(age.group(1)) * 1e3
            if t_ns >= cleared_ns and msg.state == "running":
                running_after = True
        else:
            commands.append(t_ns)
    if state_at_onset != "running":  # degraded before the fault (a starved machine): the run says nothing about the fault
        return {"detection_ms": None, "safe_state_ms": None, "recovered": bool(running_after and last_state == "running"),
                "stale_age_ms": None, "running_at_onset": False}  # fmt: skip
    safe_ns = next((t for t in commands if t >= detected_ns), None) if detected_ns is not None else None  # the same step's command
    return {
        "detection_ms": None if detected_ns is None else (detected_ns - onset_ns) / 1e6,
        "safe_state_ms": None if safe_ns is None else (safe_ns - onset_ns) / 1e6,
        "recovered": bool(running_after and last_state == "running"),
        "stale_age_ms": stale_age_ms,
        "running_at_onset": True,
    }


def run_campaign(
    plan: LaunchPlan,
    config: Path,
    overrides: list[str],
    seed: int,
    out_dir: Path,
    link_kind: str,
    runs: int,
    stop: threading.Event,
    kinds: tuple[str, ...] = FAULT_KINDS,
    say: Any = None,
) -> list[dict[str, Any]]:
    """One row per fault class in ``kinds`` over ``runs`` runs each (out_dir/<class>-<k>/ holds each run)."""
    from aegis.runs.hil_run import run_hil

    say = say or (lambda *a: None)
    status_topic, command_topic = supervisor_topics(plan)
    rows = []
    for kind in kinds:
        measures, collisions, crashes = [], 0, 0
        for k in range(runs):
            if stop.is_set():
                break
            timeline = class_timeline(kind, seed + k)
            run_s = KILL_RUN_S if kind == "kill" else RUN_S
            summary = run_hil(plan, config, overrides, run_s, seed + k, out_dir / f"{kind}-{k}", link_kind, timeline, stop)
            if kind == "kill":
                measure = kill_measures(summary, _final_state(summary, status_topic) == "running")
            else:
                measure = run_measures(Path(summary["bag"]), status_topic, command_topic, FAULT_AT_S, FAULT_AT_S + fault_s(kind))
            measures.append(measure)
            collisions += int(summary.get("collisions", 0))
            crashes += int(summary.get("crashes", 0))
            say(f"{kind} run {k}: {measure}, collisions {summary.get('collisions')}, crashes {summary.get('crashes')}")
        rows.append(_row(kind, measures, collisions, crashes))
    return rows


def _final_state(summary: dict[str, Any], status_topic: str) -> str | None:
    """The supervisor's last state in the run's bag (None: it never published, e.g. a restarted stack the run ended before)."""
    from aegis.runs.bag import read_bag

    if not _has_topic(summary["bag"], status_topic):
        return None
    state = None
    for _, _, msg in read_bag(summary["bag"], [status_topic]):
        state = msg.state
    return state


def _has_topic(bag: str | Path, topic: str) -> bool:
    from aegis.runs.bag import bag_info

    return topic in {row["topic"] for row in bag_info(bag)["topics"]}


def kill_measures(summary: dict[str, Any], recovered: bool) -> dict[str, Any]:
    """A kill run's times: from the kill to the plant's link-loss failsafe taking over (module doc); how long the stack was gone."""
    kills = summary.get("link", {}).get("kills") or []
    if not kills:
        return {"detection_ms": None, "safe_state_ms": None, "recovered": recovered, "restart_s": None}
    killed_s, restarted_s = kills[0]["at_s"], kills[0].get("restarted_at_s")
    takeover_s = next((t for t in summary.get("failsafe_takeover_s") or [] if t >= killed_s - 0.1), None)
    took_ms = None if takeover_s is None else round((takeover_s - killed_s) * 1e3, 1)
    return {
        "detection_ms": took_ms,
        "safe_state_ms": took_ms,  # the failsafe flies the tick it detects
        "recovered": recovered,
        "restart_s": None if restarted_s is None else round(restarted_s - killed_s, 2),
    }


def _worst(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(max(present), 1) if present else None


def _row(kind: str, measures: list[dict[str, Any]], collisions: int, crashes: int) -> dict[str, Any]:
    row = {
        "fault": kind,
        "runs": len(measures),
        "detection_ms": _worst([m["detection_ms"] for m in measures]),
        "safe_state_ms": _worst([m["safe_state_ms"] for m in measures]),
        "collisions": collisions,
        "crashes": crashes,
        "recovered": bool(measures) and all(m["recovered"] for m in measures),
        "recovered_runs": sum(bool(m["recovered"]) for m in measures),
        "detected": sum(m["detection_ms"] is not None for m in measures),
        "not_running_at_onset": sum(not m.get("running_at_onset", True) for m in measures),
        "each_detection_ms": [m["detection_ms"] for m in measures],
        "each_safe_state_ms": [m["safe_state_ms"] for m in measures],
        "each_stale_age_ms": [m.get("stale_age_ms") for m in measures],
    }
    if kind == "kill":
        row["each_restart_s"] = [m.get("restart_s") for m in measures]
    return row


def write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    path.write_text(json.dumps(rows, indent=2) + "\n")
