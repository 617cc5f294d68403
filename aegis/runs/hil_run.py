"""`aegis hil`: the plant and the stack in two processes joined by a wire link (serial or UDP), through the fault proxy when asked.

The same mechanism as `aegis run` (:mod:`aegis.runs.wall_run`: one child per process, the
start-together handshake, the clean stop, the merged bag and the summary), with the transport
between the children a choice: here two children, the config's ``plant`` group (the simulator
stepping at real time) and the stack (every other group, composed in one process), joined by
:func:`~aegis.transport.link_setup.make_link`'s link instead of DDS, each with a
:class:`~aegis.transport.wire_bridge.WireBridge` over its end. The controller side sees what it
would see on a robot: sensor frames in, actuator frames out.

With a fault timeline (``--faults FILE``) the link goes through the
:class:`~aegis.transport.faults.FaultProxy`, whose time zero is the run's start. The timeline's
kills are this runner's: at ``at_s`` the stack is killed (SIGKILL: a crash, nothing written) and,
``restart_after_s`` later, a fresh stack process joins the running run (no handshake: its clock is
the run's, it starts at its next tick). The killed life's bag and counters are lost with it, as a
crashed computer's would be; the summary's ``kills`` says when. Killing the plant is refused: the
plant is the simulated world, and a restarted one would be a new world with the robot back at its start.

With ``mcu_image`` (`aegis hil --mcu`, :mod:`aegis.runs.hil_mcu`) the stack's policy and filter QP run on an
emulated Cortex-M4F that the stack process starts, and the summary adds ``mcu``.

The summary is `aegis run`'s plus ``link``: per direction the frames sent by one end and
received, lost (sequence gaps), late (duplicates and overtaken frames) and rejected (CRC or COBS)
at the other, and the proxy's counts per fault class.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from aegis.launch_plan import LaunchPlan
from aegis.runs.plan_run import load_plan_scenario, run_duration
from aegis.runs.wall_group import START, GroupSpec
from aegis.runs.wall_run import START_AHEAD_S, _await_end, _await_ready, _node_names, _send, _stop_all, check_runnable, finish, spawn_group
from aegis.transport.faults import DIRECTIONS, FaultTimeline
from aegis.transport.link_setup import make_link

PLANT = "plant"
STACK = "stack"


def check_hil(plan: LaunchPlan, timeline: FaultTimeline | None = None) -> None:
    """ValueError saying why ``plan`` (with ``timeline``) cannot run in the loop: no ``plant`` group, a kill of the plant, ..."""
    if PLANT not in plan.processes:
        groups = ", ".join(plan.processes)
        raise ValueError(f"no process group named plant (groups: {groups}): aegis hil runs the plant group against the rest; "
                         "put the simulator's node in `process: plant`")  # fmt: skip
    if len(plan.processes) < 2:
        raise ValueError("every node is in the plant group: there is no stack to put on the other end of the link")
    check_runnable(plan)
    for kill in timeline.kills() if timeline is not None else ():
        if kill.process == PLANT:
            raise ValueError(
                f"fault kill at {kill.at_s:g} s: killing the plant is not supported by aegis hil (it is the simulated world: "
                "a restarted one would be a new world with the robot back at its start); kill the stack"
            )


def run_hil(
    plan: LaunchPlan,
    config: Path,
    overrides: list[str],
    duration_s: float | None,
    seed: int,
    out_dir: Path,
    link_kind: str,
    timeline: FaultTimeline | None,
    stop: threading.Event,
    say: Any = None,
    mcu_image: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``plan`` as plant + stack over a ``link_kind`` link (through the fault proxy if ``timeline``); the summary
    (also out_dir/summary.json, the bag in out_dir/bag). ``mcu_image`` (aegis.runs.hil_mcu.build_image): the stack's policy
    and filter QP run on that emulated MCU, and the summary has its ``mcu`` section."""
    say = say or (lambda *a: None)
    check_hil(plan, timeline)
    scenario = load_plan_scenario(plan)
    duration = run_duration(scenario, duration_s)
    out_dir.mkdir(parents=True, exist_ok=True)
    groups_dir = out_dir / "processes"
    groups_dir.mkdir(exist_ok=True)
    stack_groups = [g for g in plan.processes if g != PLANT]
    members = {PLANT: _node_names(plan, [PLANT]), STACK: _node_names(plan, stack_groups)}
    children: dict[str, subprocess.Popen] = {}
    lives = [STACK]  # the stack's processes, one per life (a restart is a new one)
    kills: list[dict[str, Any]] = []
    with make_link(link_kind, timeline) as setup:  # type: ignore[arg-type]
        base = GroupSpec(str(config), list(overrides), PLANT, 0, duration, seed, "", "")
        plant_spec = replace(base, groups=[PLANT], link=setup.plant.to_arg())
        stack_spec = replace(base, process=STACK, groups=stack_groups, link=setup.stack.to_arg(),
                             mcu=mcu_image["path"] if mcu_image is not None else "")
        setup.start()  # the proxy forwards the hello exchange, with no fault before the run's start
        if setup.proxy is not None:
            setup.proxy.t0 = math.inf
        try:
            children[PLANT] = spawn_group(plant_spec, groups_dir, pass_fds=setup.pass_fds)
            children[STACK] = spawn_group(stack_spec, groups_dir)
            for name, child in children.items():
                say(f"process {name} (pid {child.pid}): {members[name]}")
            start_ns = 0
            if _await_ready(children, members, groups_dir, stop):
                start_ns = time.perf_counter_ns() + round(START_AHEAD_S * 1e9)
                if setup.proxy is not None:
                    setup.proxy.t0 = start_ns / 1e9  # the timeline's zero is the run's (CLOCK_MONOTONIC, as perf_counter)
                for child in children.values():
                    _send(child, f"{START} {start_ns}\n")
                say(f"running over {link_kind} for {duration:g} s (Ctrl-C stops)")
            killer = _Killer(timeline, start_ns, children, members, lives, kills, stack_spec, groups_dir, stop, say)
            _await_end(children, members, groups_dir, stop, on_tick=killer.tick if timeline is not None and timeline.kills() else None)
        finally:
            _stop_all(children)
        proxy_counts = {d: asdict(c) for d, c in setup.proxy.counts.items()} if setup.proxy is not None else None
    killed = {kill["life"] for kill in kills}
    names = [PLANT, *(name for name in lives if name not in killed)]
    results_members = {PLANT: members[PLANT], **{name: members[STACK] for name in lives}}
    link = {"kind": link_kind, "faults": timeline.model_dump(mode="json") if timeline is not None else None, "kills": kills}
    summary = finish(plan, scenario, seed, names, groups_dir, out_dir, stop.is_set(), {"link": link}, results_members)
    summary["link"].update(link_section(groups_dir, names, proxy_counts))
    if mcu_image is not None:
        from aegis.runs.hil_mcu import mcu_section

        summary["mcu"] = mcu_section(groups_dir, names, mcu_image)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def link_section(groups_dir: Path, names: list[str], proxy_counts: dict[str, Any] | None) -> dict[str, Any]:
    """Per direction: frames sent by one end, and received / lost / late / rejected (and by reason: crc, cobs, ...) at the
    other (every stack life summed)."""
    import pickle

    ends: dict[str, dict[str, int]] = {PLANT: {}, STACK: {}}
    for name in names:
        with open(groups_dir / f"{name}.pkl", "rb") as f:
            numbers = pickle.load(f).get("link") or {}
        side = ends[PLANT if name == PLANT else STACK]
        for key, value in numbers.items():
            if isinstance(value, int):
                side[key] = side.get(key, 0) + value
            elif key == "rejected_by":
                for reason, count in value.items():
                    side[f"rejected_{reason}"] = side.get(f"rejected_{reason}", 0) + count
    out: dict[str, Any] = {}
    for direction in DIRECTIONS:
        sender, receiver = (ends[PLANT], ends[STACK]) if direction == "plant_to_stack" else (ends[STACK], ends[PLANT])
        out[direction] = {
            "sent": sender.get("sent", 0),
            "received": receiver.get("received", 0),
            "lost": receiver.get("lost", 0),
            "late": receiver.get("late", 0),
            "rejected": receiver.get("rejected", 0),
            "rejected_by": {k.removeprefix("rejected_"): v for k, v in receiver.items() if k.startswith("rejected_") and v},
            **({"proxy": proxy_counts[direction]} if proxy_counts is not None else {}),
        }
    return out


class _Killer:
    """Executes the timeline's kills of the stack on the run's time line (called every 50 ms by the waiting loop)."""

    def __init__(
        self,
        timeline: FaultTimeline | None,
        start_ns: int,
        children: dict[str, subprocess.Popen],
        members: dict[str, str],
        lives: list[str],
        kills: list[dict[str, Any]],
        spec: GroupSpec,
        groups_dir: Path,
        stop: threading.Event,
        say: Any,
    ) -> None:
        self.pending = sorted(timeline.kills(), key=lambda k: k.at_s) if timeline is not None else []
        self.start_ns, self.children, self.members, self.lives, self.kills = start_ns, children, members, lives, kills
        self.spec, self.groups_dir, self.stop, self.say = spec, groups_dir, stop, say
        self.restart_at: float | None = None

    def tick(self) -> None:
        t = (time.perf_counter_ns() - self.start_ns) / 1e9
        if self.pending and t >= self.pending[0].at_s and STACK in self.children:
            kill = self.pending.pop(0)
            child = self.children.pop(STACK)
            child.send_signal(signal.SIGKILL)
            child.wait()
            _stop_all({STACK: child})  # closes its pipes
            self.kills.append({"process": STACK, "life": self.lives[-1], "at_s": round(t, 3), "restarted_at_s": None})
            shutil.rmtree(self.groups_dir / f"{self.lives[-1]}.bag", ignore_errors=True)  # unfinished: unreadable, and in the way of a rerun
            self.say(f"killed the stack (pid {child.pid}) at {t:.2f} s")
            self.restart_at = kill.at_s + kill.restart_after_s if kill.restart_after_s is not None else None
        if self.restart_at is not None and t >= self.restart_at:
            self.restart_at = None
            name = f"{STACK}-{len(self.lives) + 1}"
            self.lives.append(name)
            self.members[name] = self.members[STACK]
            child = spawn_group(replace(self.spec, process=name, resume=True), self.groups_dir, name)
            if _await_ready({name: child}, self.members, self.groups_dir, self.stop):
                _send(child, f"{START} {self.start_ns}\n")
            self.children[STACK] = child
            self.kills[-1]["restarted_at_s"] = round((time.perf_counter_ns() - self.start_ns) / 1e9, 3)
            self.say(f"restarted the stack (pid {child.pid}) at {self.kills[-1]['restarted_at_s']:.2f} s")
