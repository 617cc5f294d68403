"""`aegis run`: a plan on the wall clock, one OS process per ``process`` group, joined by DDS; a bag and a summary when it ends.

The parent starts one child per group (``python -m aegis.runs.wall_group``, a fresh interpreter:
no fork of a process that holds threads, a DDS participant or a PyBullet world), each running its
group's nodes under the realtime executor with in-process delivery and a
:class:`~aegis.transport.DdsBridge` for the topics between groups, on the run's own DDS domain (by
default one derived from the parent's pid, so parallel runs do not cross-talk) under the
hw_config's ``ros.namespace``. The plant is the simulator bridge in its own group (or whichever
group the config puts it in), stepping at its rate on the wall clock.

Start: every child says ``ready`` once its DDS peers are matched; the parent then gives all the
same start time a little ahead on CLOCK_MONOTONIC (:mod:`aegis.runs.wall_group`).
Stop: the run ends after ``duration_s``, when a node ends it (EndRun: the first group to end stops
the others), or on SIGINT / SIGTERM to the parent, which it passes on as SIGTERM: every child
finishes its tick, writes its result and exits 0; a clean stop is a clean run (exit 0, a summary
with ``stopped: true``). A child that exits otherwise (an error, a signal) fails the run: the others
are stopped and :class:`GroupFailed` names the group, its nodes, its exit status and its log's last
lines. A child that ignores SIGTERM is killed after :data:`STOP_GRACE_S`. Each child's stderr goes
to DIR/processes/<group>.log. The children's recordings are merged into DIR/bag (see
wall_group on why each group records its own bag) and the summary has `aegis sim`'s keys, computed
the same way from the simulator's ground truth, plus the wall clock's: ``deadline_misses``, the
per-node ``timing`` (aegis.runs.timing) and each process's ``processes`` entry.

`aegis hil` (:mod:`aegis.runs.hil_run`) is the same runner with two children joined by a wire link:
it uses :func:`spawn_group`, the waits and :func:`finish` from here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from aegis.launch_plan import LaunchPlan
from aegis.runs.bag import merge_bags
from aegis.runs.episode import EpisodeLog, episode_metrics, episode_outcome, episode_series, outcome_of
from aegis.runs.plan_run import _remove_previous_bag, final_states, load_plan_scenario, run_duration
from aegis.runs.timing import REALTIME_NOTE, merged, realtime_timing
from aegis.runs.wall_group import READY, START, GroupSpec

START_AHEAD_S = 0.3
"""How far ahead of the last ``ready`` the common start time lies (time for every child to read it)."""
READY_TIMEOUT_S = 120.0
"""How long the children may take to import, build their nodes and meet their DDS peers."""
STOP_GRACE_S = 60.0
"""How long a child may take to stop and write its result (a long run's messages take a while to pickle) after SIGTERM before it is killed."""


class GroupFailed(RuntimeError):
    """A process group died or hung: the message names it, its nodes, how it ended and the tail of its log."""


def check_runnable(plan: LaunchPlan) -> None:
    """ValueError saying why ``plan`` cannot run on the wall clock: a swarm (not yet), a group with no node at a rate."""
    from aegis.runs.swarm import swarm_layout

    if swarm_layout(plan) is not None:
        raise ValueError("a swarm config (several robots, one simulator): aegis run does not run swarm configs yet; aegis sim does")
    for name, launches in plan.processes.items():
        if all(launch.rate_hz is None for launch in launches):
            nodes = ", ".join(launch.name for launch in launches)
            raise ValueError(f"process {name} ({nodes}): every node in it is triggered, none runs at a rate to keep its clock: "
                             "put it in a group with a node that has a rate_hz")


def default_domain_id() -> int:
    """A DDS domain for this run: 1..200 from the parent's pid (ROS 2's usual domain 0 is left alone; --domain-id picks one)."""
    return 1 + os.getpid() % 200


def run_wall(
    plan: LaunchPlan,
    config: Path,
    overrides: list[str],
    duration_s: float | None,
    seed: int,
    out_dir: Path,
    domain_id: int,
    stop: threading.Event,
    say: Any = None,
    publish: str = "boundary",
) -> dict[str, Any]:
    """Run ``plan`` (``config`` with ``overrides``) on the wall clock until ``duration_s`` (None: the scenario's) or ``stop``;
    write out_dir/bag and out_dir/summary.json; the summary. ``say`` (a print-like function) hears the progress;
    ``publish`` "all" puts every topic on DDS, not only those between groups."""
    say = say or (lambda *a: None)
    scenario = load_plan_scenario(plan)
    duration = run_duration(scenario, duration_s)
    out_dir.mkdir(parents=True, exist_ok=True)
    groups_dir = out_dir / "processes"
    groups_dir.mkdir(exist_ok=True)
    children: dict[str, subprocess.Popen] = {}
    members = {name: _node_names(plan, [name]) for name in plan.processes}
    try:
        for name in plan.processes:
            spec = GroupSpec(str(config), list(overrides), name, domain_id, duration, seed, "", "", publish)
            children[name] = spawn_group(spec, groups_dir)
            say(f"process {name} (pid {children[name].pid}): {members[name]}")
        if _await_ready(children, members, groups_dir, stop):
            start_ns = time.perf_counter_ns() + round(START_AHEAD_S * 1e9)
            for child in children.values():
                _send(child, f"{START} {start_ns}\n")
            say(f"running on DDS domain {domain_id} for {duration:g} s (Ctrl-C stops)")
        _await_end(children, members, groups_dir, stop)
    finally:
        _stop_all(children)
    return finish(plan, scenario, seed, list(plan.processes), groups_dir, out_dir, stop.is_set(), {"dds_domain_id": domain_id}, members)


def spawn_group(spec: GroupSpec, groups_dir: Path, name: str | None = None, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start one child (``python -m aegis.runs.wall_group``) for ``spec`` under ``name`` (default: its process): its spec,
    result, bag and log are groups_dir/<name>.*; any result or bag a previous run left there is removed first."""
    name = name or spec.process
    result, bag = groups_dir / f"{name}.pkl", groups_dir / f"{name}.bag"
    result.unlink(missing_ok=True)
    _remove_previous_bag(bag)
    spec = dataclasses.replace(spec, result=str(result), bag=str(bag))
    spec.write(groups_dir / f"{name}.json")
    with open(groups_dir / f"{name}.log", "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "aegis.runs.wall_group", str(groups_dir / f"{name}.json")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=_child_env(), pass_fds=pass_fds,
        )  # fmt: skip


def finish(
    plan: LaunchPlan, scenario: Any, seed: int, names: list[str], groups_dir: Path, out_dir: Path, stopped: bool,
    transport: dict[str, Any], members: dict[str, str],
) -> dict[str, Any]:
    """Load the children ``names``' results, merge their bags into out_dir/bag, write and return the summary (``transport``: its keys)."""
    results = [_load_result(groups_dir / f"{name}.pkl", name, members, groups_dir) for name in names]
    bag_path = out_dir / "bag"
    _remove_previous_bag(bag_path)
    merge_bags([groups_dir / f"{name}.bag" for name in names], bag_path, plan.ros_distro)
    for name in names:
        shutil.rmtree(groups_dir / f"{name}.bag")  # merged: the one bag is out_dir/bag
    return _summarize(plan, scenario, seed, results, bag_path, transport, stopped)


def _node_names(plan: LaunchPlan, groups: list[str]) -> str:
    return ", ".join(n.name for n in plan.nodes if n.process in groups)


def _child_env() -> dict[str, str]:
    """The parent's environment, with the folder this aegis was imported from first on PYTHONPATH (the child imports the same)."""
    import aegis

    root = str(Path(aegis.__file__).resolve().parent.parent)
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))


def _send(child: subprocess.Popen, line: str) -> None:
    try:
        child.stdin.write(line)  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
    except (BrokenPipeError, OSError):
        pass  # it is gone: _await_end sees how it ended


def _await_ready(children: dict[str, subprocess.Popen], members: dict[str, str], groups_dir: Path, stop: threading.Event) -> bool:
    """Wait for every child's ``ready``; False when stopped first; GroupFailed when one dies or none comes in time."""
    lines: queue.Queue[tuple[str, str]] = queue.Queue()
    for name, child in children.items():
        threading.Thread(target=_read_lines, args=(name, child, lines), daemon=True).start()
    waiting = set(children)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while waiting:
        if stop.is_set():
            return False
        try:
            name, line = lines.get(timeout=0.1)
        except queue.Empty:
            for name in waiting:
                if children[name].poll() is not None:
                    raise GroupFailed(_failure(name, children[name].returncode, members, groups_dir, "before it was ready"))
            if time.monotonic() > deadline:
                name = sorted(waiting)[0]
                raise GroupFailed(_failure(name, None, members, groups_dir, f"not ready after {READY_TIMEOUT_S:g} s"))
            continue
        if line.strip() == READY:
            waiting.discard(name)
    return True


def _read_lines(name: str, child: subprocess.Popen, lines: queue.Queue) -> None:
    for line in child.stdout:  # type: ignore[union-attr]
        lines.put((name, line))


def _await_end(
    children: dict[str, subprocess.Popen], members: dict[str, str], groups_dir: Path, stop: threading.Event, on_tick: Any = None
) -> None:
    """Wait until every child has ended; the first to end (or ``stop``) stops the rest. GroupFailed for one that failed.
    ``on_tick()`` runs every 50 ms until the stop begins (`aegis hil` kills and restarts children there, editing ``children``)."""
    stopping = False
    while True:
        if on_tick is not None and not stopping and not stop.is_set():
            on_tick()
        alive = {name: c for name, c in children.items() if c.poll() is None}
        for name, child in children.items():
            if child.returncode not in (None, 0):
                raise GroupFailed(_failure(name, child.returncode, members, groups_dir, "during the run"))
        if not alive:
            return
        if not stopping and (stop.is_set() or len(alive) < len(children)):
            stopping = True  # a signal, or one group ended (its duration, or EndRun): the others stop too
            for child in alive.values():
                _signal(child, signal.SIGTERM)
            give_up = time.monotonic() + STOP_GRACE_S
        if stopping and time.monotonic() > give_up:
            name = sorted(alive)[0]
            raise GroupFailed(_failure(name, None, members, groups_dir, f"still running {STOP_GRACE_S:g} s after SIGTERM (killed)"))
        time.sleep(0.05)


def _signal(child: subprocess.Popen, sig: int) -> None:
    try:
        child.send_signal(sig)
    except ProcessLookupError:
        pass


def _stop_all(children: dict[str, subprocess.Popen]) -> None:
    """Leave no child behind: SIGTERM those alive, SIGKILL those still there after the grace time; close the pipes."""
    for child in children.values():
        if child.poll() is None:
            _signal(child, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for child in children.values():
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass


def _failure(name: str, returncode: int | None, members: dict[str, str], groups_dir: Path, when: str) -> str:
    nodes = members[name]
    if returncode is None:
        how = when
    elif returncode < 0:
        how = f"killed by {signal.Signals(-returncode).name} {when}"
    else:
        how = f"exited with status {returncode} {when}"
    log = groups_dir / f"{name}.log"
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()] if log.exists() else []
    why = f": {lines[-1]}" if lines and returncode is not None and returncode > 0 else ""  # a child's last line says why it failed
    return f"process {name} (nodes {nodes}) {how}{why} (its log: {log})"


def _load_result(path: Path, name: str, members: dict[str, str], groups_dir: Path) -> dict[str, Any]:
    if not path.exists():
        raise GroupFailed(_failure(name, None, members, groups_dir, "ended without writing its result"))
    with open(path, "rb") as f:
        return pickle.load(f)


def _merged_log(plan: LaunchPlan, logs: list[EpisodeLog]) -> EpisodeLog:
    """One EpisodeLog of the groups' logs (each saw its own nodes' topics): their series joined in time order."""
    log = EpisodeLog(plan)
    for name in ("state", "reference"):
        samples = sorted(
            ((t, k, position, speed) for k, part in enumerate(logs)
             for t, position, speed in zip(getattr(part, name).times, getattr(part, name).positions, getattr(part, name).speeds)),
            key=lambda sample: sample[:2],
        )  # fmt: skip
        series = getattr(log, name)
        for t, _, position, speed in samples:
            series.times.append(t)
            series.positions.append(position)
            series.speeds.append(speed)
    reports = sorted((t, k, i) for k, part in enumerate(logs) for i, t in enumerate(part.filter.times))
    for _, k, i in reports:
        part = logs[k].filter
        log.filter.times.append(part.times[i])
        log.filter.layers.append(part.layers[i])
        log.filter.intervened.append(part.intervened[i])
        log.filter.lowest_h.append(part.lowest_h[i])
    for part in logs:
        log.final_states.update(part.final_states)
    return log


def _summarize(
    plan: LaunchPlan, scenario: Any, seed: int, results: list[dict[str, Any]], bag_path: Path, transport: dict[str, Any], stopped: bool
) -> dict[str, Any]:
    """The summary of the groups' results (also written next to the bag, summary.json)."""
    log = _merged_log(plan, [r["log"] for r in results])
    node_metrics = {name: m for r in results for name, m in r["node_metrics"].items()}
    plant_metrics = {k: v for launch in plan.nodes for k, v in node_metrics.get(launch.name, {}).items()}
    plant = next(r for r in results if plan.nodes[0].name in r["node_metrics"])
    obstacles = plant["obstacles"] if plant["obstacles"] is not None else (scenario.obstacles if scenario is not None else ())
    series = episode_series(log, obstacles, plant_metrics.get("body_radius_m"))
    summary = {
        "robot": plan.robot,
        "scenario": scenario.name if scenario is not None else None,
        "seed": seed,
        "executor": "realtime",
        **episode_metrics(series, plant_metrics),
        **episode_outcome(scenario, series),
        **({"dynamics": plant["dynamics"]} if plant["dynamics"] else {}),
        **_wall_numbers(plan, results, sum(r["messages"] for r in results)),
        "stopped": stopped,
        **transport,
        "final_states": final_states(log),
        "bag": str(bag_path),
    }
    summary["outcome"] = outcome_of(summary)
    (bag_path.parent / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _wall_numbers(plan: LaunchPlan, results: list[dict[str, Any]], messages: int) -> dict[str, Any]:
    """The run's time, the plant's progress and every node's timing, from the groups' executor stats."""
    loops = {}
    processes = {}
    for r in results:
        stats = r["stats"]
        processes[r["process"]] = {
            "nodes": [n for n in r["node_metrics"]],
            "wall_time_s": stats.wall_time_s if stats else 0.0,
            "ended_by": stats.ended_by if stats else None,
            "end_reason": stats.end_reason if stats else None,
            "stopped": stats.stopped if stats else True,
            "settings": dict(stats.settings) if stats else {},
            "rejected": r["rejected"],
            "bad_stamps": dict(stats.bad_stamps) if stats else {},
        }
        if stats is not None:
            loops.update({name: (r["process"], loop) for name, loop in stats.loops.items()})
    clock = plan.nodes[0]
    plant_steps = loops[clock.name][1].steps if clock.name in loops else 0
    wall = max((p["wall_time_s"] for p in processes.values()), default=0.0)
    sim_time = plant_steps / clock.rate_hz if clock.rate_hz else wall
    others = [loop.durations for name, (_, loop) in loops.items() if name != clock.name] or [
        loop.durations for _, loop in loops.values()
    ]
    loop_time = merged(others)
    timing = {
        launch.name: realtime_timing(launch.process, launch.rate_hz, loops[launch.name][1]) for launch in plan.nodes if launch.name in loops
    }
    return {
        "duration_s": sim_time,
        "sim_steps": plant_steps,
        "wall_time_s": wall,
        "real_time_factor": sim_time / wall if wall > 0 else 0.0,
        "loop_time_us": {"p50": loop_time.percentile_us(50), "p99": loop_time.percentile_us(99)},
        "nodes": {name: {"steps": row["steps"], "p50": row["step_p50_us"], "p99": row["step_p99_us"]} for name, row in timing.items()},
        "messages": messages,
        "deadline_misses": sum(row["deadline_misses"] for row in timing.values()),
        "timing": timing,
        "timing_note": REALTIME_NOTE,
        "processes": processes,
    }
