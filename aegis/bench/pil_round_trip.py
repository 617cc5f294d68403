"""The emulated MCU's one-frame round trip on this machine, with QEMU's threads left to the scheduler and held on one core (SCHED_FIFO).

``python -m aegis.bench.pil_round_trip [CONFIG] [--rounds R] [--frames N] [--json FILE]`` builds the config's PIL image
(``aegis export pil``), then, in R rounds, starts it twice under QEMU as ``aegis hil --mcu`` does: once as it comes
(``free``) and once with :func:`aegis.runs.hil_mcu.hold_emulator` (``held``: every QEMU thread on one CPU, SCHED_FIFO
where permitted); each life answers N one-frame ticks (id 7 -> 8: an observation and 12 candidate rows, the figure-8's
count, docs/hil.md) sent one at a time, 15 ms apart. Prints each life's median and p90 round trip, and the medians of
both kinds. QEMU's UART takes one byte per turn of its main loop and hands it to its CPU thread: what costs is those
hand-offs, between cores or behind other processes' time slices, so one life's median is the machine's state more than
the code's; compare the kinds in the same rounds. Nothing here is asserted; the numbers are the machine's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from aegis.bench import machine, write_document

CANDIDATE_ROWS = 12
"""Rows a one-frame tick of quadrotor_oracle_sim's figure-8 carries (geofence, speed limits, obstacles)."""
GAP_S = 0.015


def _life(image: dict[str, Any], held: bool, frames: int, seed: int) -> dict[str, Any]:
    """One QEMU life answering ``frames`` one-frame ticks: its round trips' median and p90 (ms) and its scheduling."""
    from aegis.inference.mcu_session import PilSession
    from aegis.runs.hil_mcu import hold_emulator

    rng = np.random.default_rng(seed)
    times: list[float] = []
    with PilSession(image["elf"], image["input_size"], image["output_size"], timeout_s=5.0) as session:
        scheduling = hold_emulator(session.process.pid) if held else {}
        for _ in range(frames):
            observation = rng.normal(size=image["input_size"]).astype("<f4")
            a = rng.normal(size=(CANDIDATE_ROWS, image["output_size"])).astype("<f4") * 6
            b = (-np.abs(rng.normal(size=CANDIDATE_ROWS)) * 40).astype("<f4")
            started = time.perf_counter()
            session.step(observation, a, b)
            times.append(time.perf_counter() - started)
            time.sleep(GAP_S)
        session.close()
    ms = np.asarray(times[3:]) * 1e3  # the first answers carry the emulator's start
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)), "scheduling": scheduling}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aegis.bench.pil_round_trip", description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="hw_configs/quadrotor_oracle_sim.yaml")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from aegis.runs.hil_mcu import build_image

    with tempfile.TemporaryDirectory(prefix="aegis_pil_rt_") as tmp:
        image = build_image(Path(args.config), [], Path(tmp))
        lives: dict[str, list[dict[str, Any]]] = {"free": [], "held": []}
        for round_index in range(args.rounds):
            for kind in lives:
                life = _life(image, kind == "held", args.frames, round_index)
                lives[kind].append(life)
                print(f"round {round_index} {kind}: one-frame round trip median {life['median_ms']:.2f} ms, p90 {life['p90_ms']:.2f} ms", flush=True)
    for kind, found in lives.items():
        print(f"{kind}: medians " + ", ".join(f"{life['median_ms']:.2f}" for life in found) + " ms")
    if lives["held"] and lives["held"][0]["scheduling"]:
        print("held: " + "; ".join(f"{k} {v}" for k, v in lives["held"][0]["scheduling"].items()))
    if args.json is not None:
        write_document({"benchmark": "pil_round_trip", "config": args.config, "frames": args.frames, "lives": lives, "machine": machine()}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
