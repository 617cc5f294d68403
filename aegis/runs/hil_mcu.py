"""`aegis hil --mcu`: the policy and the safety filter's QP on an emulated Cortex-M4F in the wall-clock loop: its image, its place in the stack, its summary.

The parent builds the image with ``aegis export pil`` (a tool run in a child process, as the groups are: the
export is a part beside the runs, not below them) into OUT/mcu: the config's policy (contract applied) and its
filter's QP (the float dual active-set solve) linked with the wire frame's C and a UART main. The stack process
starts it under ``qemu-system-arm -M mps2-an386 -icount shift=0`` with its UART on a pseudo-terminal
(:class:`aegis.inference.mcu_session.PilSession`) and routes its policy node's inference and its safety filter's
QP solve through it (:func:`aegis.inference.mcu_session.route_through_mcu`): every tick the policy node sends
one frame with the observation it built from the sensor frames and the rows the filter built from the state and
the obstacles; the MCU's answer is the node's action and the filter's solution. The filter still checks the
answer, the supervisor gates it and the attitude cascade realises it, in Python, in the stack process.

Time: QEMU runs the firmware as fast as the host lets it (``-icount shift=0`` counts 1 ns per instruction for
the SysTick figures, and does not hold QEMU to real time); its answers take the emulator's wall time, the pty's
latency and Python's frame handling (:func:`waits_in_the_tick` chooses how the stack meets that):

- nothing in the stack process ticks faster than the policy (the attitude loop runs beside the plant, as a flight
  controller's own inner loop does: ``--set nodes.attitude.process=plant``): the policy's tick waits for the MCU's
  one-frame answer (up to ``ANSWER_TIMEOUT_S``), the filter at the same instant takes its QP answer, and the MCU's
  chain acts in the tick it was asked in, one round trip after its observation, as the Python chain does;
- a faster node shares the process (the shipped layout: the 240 Hz attitude loop in the stack): nothing waits
  (:mod:`aegis.inference.mcu_pipeline`), since a wait would hold that loop: the request of the policy's tick k is
  answered at tick k + 1 (one period, 20.8 ms at 48 Hz, of latency on the MCU's chain); a tick with no answer
  publishes no nominal and the filter solves on the host, both counted. The summary's ``mcu`` section: the image's flash and RAM,
instructions per policy answer, per QP solve and per tick (the two together), their time at 168 MHz, the round
trips, the answers' ages in ticks, the ticks without an answer, the host's QP solves and the requests the MCU
left unanswered.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")
MCU_CLOCK_HZ = 168e6
"""The Cortex-M4F parts of the issue (STM32F4) run at 168 MHz: the time an instruction count means, one a cycle."""
ANSWER_TIMEOUT_S = 0.1
"""How old a request may grow before the stack gives it up (counted unanswered; its late answer is dropped by its stamp)
and sends the next tick's; looked at each policy tick, and until then each tick without an answer publishes no nominal
and the filter solves on the host. Not shorter: the firmware answers in order and finishes a request it has begun, so a
request given up early only queues the next one behind it (a 25 ms bound gave up 14 and 85 requests in two runs at load
7 to 10, and the ticks without an answer rose with them); a frame lost on the UART costs at most these 0.1 s (5 ticks).
A real M4F answers in well under a millisecond."""
EMULATOR_PRIORITY = 10
"""SCHED_FIFO priority of QEMU's threads in a wall-clock run, all on one core (:func:`attach`): QEMU hands each byte of the
UART between its main loop and its CPU thread; with the threads on different cores, or waiting behind the plant and the
stack for a time slice, a one-frame tick's round trip took 13-34 ms at the median, held 8.0-8.5 ms (`python -m
aegis.bench.pil_round_trip`, docs/hil.md). Below the executor's own ``realtime.priority`` when one is set (50 in the docs)."""
EMULATOR_START_S = 2.0
"""How long :func:`hold_emulator` waits for QEMU's CPU thread to start."""
IMAGE_FILE = "image.json"


def build_image(config: Path, overrides: list[str], out_dir: Path) -> dict[str, Any]:
    """Runs ``aegis export pil`` for the config into ``out_dir``; its image.json (with ``path``: the file). ValueError, one line, when
    a tool is missing or the export refuses the config."""
    absent = [tool for tool in TOOLS if shutil.which(tool) is None]
    if absent:
        raise ValueError(f"--mcu needs {', '.join(absent)} (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")
    command = [sys.executable, "-m", "aegis.cli", "export", "pil", str(config), "-o", str(out_dir),
               *(f"--set={override}" for override in overrides)]
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False, timeout=600)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("pybullet build time")]
        said = lines[-1].removeprefix("aegis: error: ").removeprefix(f"{config}: ") if lines else f"exit status {done.returncode}"
        raise ValueError(f"--mcu: aegis export pil failed: {said}")
    path = out_dir / IMAGE_FILE
    return {**json.loads(path.read_text()), "path": str(path)}


def waits_in_the_tick(nodes: list[Any]) -> bool:
    """Whether the policy's tick may wait for the MCU's answer: no node of the process ticks faster than the policy (a wait
    of one round trip then holds no other loop; the filter and the supervisor at the policy's instants need its answer
    anyway). False when a faster loop (the 240 Hz attitude cascade) shares the thread: then nothing waits (module doc)."""
    policy = next((n for n in nodes if hasattr(getattr(n, "runtime", None), "act")), None)
    if policy is None or policy.rate_hz is None:
        return False
    return all(node.rate_hz is not None and node.rate_hz <= policy.rate_hz for node in nodes)


def _cpu_thread_started(pid: int) -> bool:
    """Whether QEMU (named threads: aegis.inference.mcu_session.QEMU_PIL_ARGS) has started its CPU's thread (``.../TCG``)."""
    try:
        names = [Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip() for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return False
    return any(name.endswith("/TCG") for name in names)


def hold_emulator(pid: int, wait_s: float = EMULATOR_START_S) -> dict[str, str]:
    """QEMU's threads on this process's last CPU under SCHED_FIFO at :data:`EMULATOR_PRIORITY` when the OS permits (each
    outcome, or the refusal, which is logged as a warning and goes into the summary's ``mcu``). Waits up to ``wait_s``
    for the CPU's thread first: QEMU prints the pty's path before starting it, and a hold applied then left the CPU's
    thread, the one that takes each received byte, to the scheduler (``2 threads`` in a summary); ``cpu_thread`` says
    whether it was seen."""
    from aegis.executors.os_settings import apply_to_threads

    deadline = time.monotonic() + wait_s
    while not (started := _cpu_thread_started(pid)) and time.monotonic() < deadline:
        time.sleep(0.002)
    outcomes = apply_to_threads(pid, EMULATOR_PRIORITY, [max(os.sched_getaffinity(0))]).outcomes
    held = {key: value for key, value in outcomes.items() if key != "lock_memory"}
    held["cpu_thread"] = "held" if started else f"not seen within {wait_s:g} s: held what had started"
    return held


def attach(nodes: list[Any], image_file: str) -> tuple[Any, Any, dict[str, str]]:
    """In the stack process: starts the image under QEMU and routes the policy and the filter's QP through it, one frame a
    tick; waiting for each answer in its own tick when :func:`waits_in_the_tick`, else pipelined (nothing waits for the
    MCU: aegis.inference.mcu_pipeline), QEMU's threads held on one core (:func:`hold_emulator`); (session, route, their
    scheduling). The caller binds the route to the executor (:meth:`McuRoute.bind`)."""
    from aegis.inference.mcu_pipeline import StepPipeline
    from aegis.inference.mcu_session import PilSession, route_through_mcu

    image = json.loads(Path(image_file).read_text())
    session = PilSession(image["elf"], image["input_size"], image["output_size"], timeout_s=ANSWER_TIMEOUT_S)
    pipeline = None
    try:
        scheduling = hold_emulator(session.process.pid)
        if not waits_in_the_tick(nodes):
            pipeline = StepPipeline(session, ANSWER_TIMEOUT_S)
        route = route_through_mcu(nodes, session, filter_on_mcu=True, dual=True, one_frame=True, pipeline=pipeline, wall_clock=True)
    except BaseException:
        if pipeline is not None:
            pipeline.close()
        session.close()
        raise
    return session, route, scheduling


def numbers(session: Any, route: Any, scheduling: dict[str, str]) -> dict[str, Any]:
    """What the stack process hands back (its result pickle's ``mcu``): the counts of this life, QEMU's exit status and
    threads' scheduling."""
    pipeline = route.pipeline
    if pipeline is not None:
        pipeline.close()  # its receiver thread first: the session's stop frame and close come after
    exit_status = session.close()
    solvers = route.qp_solvers
    return {
        "waits_in_the_tick": pipeline is None,
        "emulator_scheduling": scheduling,
        "answer_ages_ticks": [float(age) for age in pipeline.ages] if pipeline is not None else [],
        "ticks_without_answer": route.no_answer,
        "ticks_busy": pipeline.busy if pipeline is not None else 0,
        "host_qp_solves": sum(solver.host_solves for solver in solvers),
        "policy_instructions": list(route.policy_instructions),
        "policy_round_trips_s": list(route.policy_round_trips_s),
        "qp_instructions": [count for solver in solvers for count in solver.instructions],
        "qp_steps": [count for solver in solvers for count in solver.iterations],
        "qp_round_trips_s": [t for solver in solvers for t in solver.round_trips_s],
        "step_round_trips_s": list(route.step_round_trips_s),
        "answered_ahead": [float(sum(solver.answered_ahead for solver in solvers))],
        "unanswered": route.unanswered + sum(solver.unanswered for solver in solvers) + (pipeline.unanswered if pipeline is not None else 0),
        "firmware_exit_status": exit_status,
    }


def mcu_section(groups_dir: Path, names: list[str], image: dict[str, Any]) -> dict[str, Any]:
    """The summary's ``mcu``: the image's sizes, and every stack life's counts together (module doc)."""
    merged: dict[str, list[float]] = {}
    unanswered, exits, waits, scheduling = 0, [], [], {}
    counts = {"ticks_without_answer": 0, "ticks_busy": 0, "host_qp_solves": 0}
    for name in names:
        path = groups_dir / f"{name}.pkl"
        if not path.exists():
            continue
        with open(path, "rb") as f:
            found = pickle.load(f).get("mcu")
        if not found:
            continue
        for key, values in found.items():
            if isinstance(values, list):
                merged.setdefault(key, []).extend(values)
        unanswered += found["unanswered"]
        for key in counts:
            counts[key] += int(found.get(key, 0))
        exits.append(found["firmware_exit_status"])
        waits.append(bool(found.get("waits_in_the_tick")))
        scheduling = found.get("emulator_scheduling") or scheduling
    policy, qp = np.asarray(merged.get("policy_instructions", []), float), np.asarray(merged.get("qp_instructions", []), float)
    ticks = min(policy.size, qp.size)
    per_tick = policy[:ticks] + qp[:ticks]  # each tick: one policy answer, then one QP solve (the filter runs after it)

    def stats(values: np.ndarray, scale: float = 1.0) -> dict[str, float | None]:
        if values.size == 0:
            return {"median": None, "max": None}
        return {"median": float(np.median(values)) * scale, "max": float(values.max()) * scale}

    def spread(values: np.ndarray, scale: float = 1.0) -> dict[str, float | int | None]:
        if values.size == 0:
            return {"count": 0, "median": None, "p90": None, "p99": None, "max": None}
        p50, p90, p99 = (float(v) * scale for v in np.percentile(values, [50, 90, 99]))
        return {"count": int(values.size), "median": p50, "p90": p90, "p99": p99, "max": float(values.max()) * scale}

    frames = {kind: len(merged.get(f"{kind}_round_trips_s", [])) for kind in ("step", "policy", "qp")}

    return {
        "image": image.get("elf"),
        "core": "Cortex-M4F (QEMU mps2-an386, -icount shift=0)",
        "route": "waits in the tick" if waits and all(waits) else "pipelined",
        "emulator_scheduling": scheduling,
        "flash_bytes": image.get("flash_bytes"),
        "ram_bytes": image.get("ram_bytes"),
        "policy_answers": int(policy.size),
        "qp_solves": int(qp.size),
        "instructions_per_policy_answer": stats(policy),
        "instructions_per_qp_solve": stats(qp),
        "instructions_per_tick": stats(per_tick),
        "us_per_tick_at_168mhz": stats(per_tick, 1e6 / MCU_CLOCK_HZ),
        "qp_steps": stats(np.asarray(merged.get("qp_steps", []), float)),
        "policy_round_trip_ms": spread(np.asarray(merged.get("policy_round_trips_s", []), float), 1e3),
        "qp_round_trip_ms": spread(np.asarray(merged.get("qp_round_trips_s", []), float), 1e3),
        "one_frame_round_trip_ms": spread(np.asarray(merged.get("step_round_trips_s", []), float), 1e3),
        "round_trips": {"one_frame": frames["step"], "observation": frames["policy"], "qp": frames["qp"]},
        "round_trips_per_tick": (sum(frames.values()) / policy.size) if policy.size else None,
        "qp_answered_in_the_tick_frame": int(sum(merged.get("answered_ahead", []))),
        "unanswered": unanswered,
        "answer_timeout_s": ANSWER_TIMEOUT_S,
        "answer_age_ticks": {str(age): int(n) for age, n in zip(*np.unique(np.asarray(merged.get("answer_ages_ticks", []), int), return_counts=True))},
        **counts,
        "firmware_exit_status": exits,
    }
