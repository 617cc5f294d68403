"""The emulated MCU's one-frame round trip on this machine, with QEMU's threads left to the scheduler and held on one core (SCHED_FIFO).

``python -m aegis.bench.pil_round_trip [CONFIG] [--rounds R] [--frames N] [--rows K ...] [--json FILE]`` builds the
config's PIL image (``aegis export pil``), then, in R rounds, starts it twice under QEMU as ``aegis hil --mcu`` does:
once as it comes (``free``) and once with :func:`aegis.runs.hil_mcu.hold_emulator` (``held``: every QEMU thread on one
CPU, SCHED_FIFO where permitted); each life answers N one-frame ticks (id 7 -> 8: an observation and K candidate rows,
12 by default, the figure-8's count before any was left out, docs/hil.md) sent one at a time, 15 ms apart, for each K
of ``--rows`` in turn (the bytes a tick: what the UART's round trip grows with). Prints each life's median and p90
round trip per K, and the medians of both kinds. QEMU's UART takes one byte per turn of its main loop and hands it to
its CPU thread: what costs is those hand-offs, between cores or behind other processes' time slices, so one life's
median is the machine's state more than the code's; compare the kinds in the same rounds. Nothing here is asserted; the
numbers are the machine's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from aegis.bench import machine, write_document
from aegis.inference.mcu_step_frame import STEP_MAX_ROWS

CANDIDATE_ROWS = 12
"""Rows a one-frame tick of quadrotor_oracle_sim's figure-8 carries (geofence, speed limits, obstacles)."""
GAP_S = 0.015


def _life(image: dict[str, Any], held: bool, frames: int, seed: int, rows: list[int]) -> dict[str, Any]:
    """One QEMU life answering ``frames`` one-frame ticks for each count of candidate rows in ``rows``: the round trips'
    median and p90 (ms) per count, and its scheduling."""
    from aegis.inference.mcu_session import PilSession
    from aegis.inference.mcu_step_frame import step_payload
    from aegis.runs.hil_mcu import hold_emulator

    rng = np.random.default_rng(seed)
    found: dict[str, dict[str, float]] = {}
    with PilSession(image["elf"], image["input_size"], image["output_size"], timeout_s=5.0) as session:
        scheduling = hold_emulator(session.process.pid) if held else {}
        for count in rows:
            times: list[float] = []
            for _ in range(frames):
                observation = rng.normal(size=image["input_size"]).astype("<f4")
                a = rng.normal(size=(count, image["output_size"])).astype("<f4") * 6
                b = (-np.abs(rng.normal(size=count)) * 40).astype("<f4")
                started = time.perf_counter()
                session.step(observation, a, b)
                times.append(time.perf_counter() - started)
                time.sleep(GAP_S)
            ms = np.asarray(times[3:]) * 1e3  # the first answers carry the emulator's start (or the row count's change)
            found[str(count)] = {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)),
                                 "request_bytes": len(step_payload(observation, a, b))}
        session.close()
    return {"rows": found, "scheduling": scheduling}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aegis.bench.pil_round_trip", description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="hw_configs/quadrotor_oracle_sim.yaml")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rows", type=int, nargs="+", default=[CANDIDATE_ROWS], metavar="K",
                        help=f"candidate rows a request carries, each K in turn in every life (1..{STEP_MAX_ROWS}; default {CANDIDATE_ROWS})")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not all(1 <= count <= STEP_MAX_ROWS for count in args.rows):
        parser.error(f"--rows: each count must be 1..{STEP_MAX_ROWS}, got {args.rows}")
    from aegis.runs.hil_mcu import build_image

    with tempfile.TemporaryDirectory(prefix="aegis_pil_rt_") as tmp:
        image = build_image(Path(args.config), [], Path(tmp))
        lives: dict[str, list[dict[str, Any]]] = {"free": [], "held": []}
        for round_index in range(args.rounds):
            for kind in lives:
                life = _life(image, kind == "held", args.frames, round_index, args.rows)
                lives[kind].append(life)
                said = "; ".join(f"{count} rows ({row['request_bytes']} B) median {row['median_ms']:.2f} ms, p90 {row['p90_ms']:.2f}"
                                 for count, row in life["rows"].items())
                print(f"round {round_index} {kind}: one-frame round trip, {said}", flush=True)
    for kind, found in lives.items():
        for count in map(str, args.rows):
            print(f"{kind}, {count} rows: medians " + ", ".join(f"{life['rows'][count]['median_ms']:.2f}" for life in found) + " ms")
    if lives["held"] and lives["held"][0]["scheduling"]:
        print("held: " + "; ".join(f"{k} {v}" for k, v in lives["held"][0]["scheduling"].items()))
    if args.json is not None:
        write_document({"benchmark": "pil_round_trip", "config": args.config, "frames": args.frames, "rows": args.rows, "lives": lives, "machine": machine()}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
