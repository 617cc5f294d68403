"""The `aegis hil` command: the plant and the stack over a serial or UDP link, with scripted link faults, or a fault campaign."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from aegis.cli_options import (
    DEFAULT_SIM_CONFIG,
    UsageError,
    add_overrides,
    duration,
    make_output_folder,
    output_file,
    output_folder,
    positive_int,
    resolve_config_path,
    seed,
)
from aegis.runs.plan_options import load_plan
from aegis.transport.faults import FAULT_KINDS


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add hil to the `aegis` subparsers."""
    hil = sub.add_parser(
        "hil",
        help="hardware in the loop: the plant and the stack in two processes over a serial or UDP link, with link faults",
        description="Run a hw_config's `plant` process group (the simulator, stepping at real time) in one process and "
        "every other group composed in another, joined by aegis's wire frames (docs/wire-format.md) over a pseudo-"
        "terminal pair at 921600 baud or UDP on loopback, through a fault injector when --faults gives a timeline. "
        "Writes a bag and a summary like `aegis run`, with the link's counts. --campaign faults runs every fault "
        "class in short runs and reports what the supervisor did (docs/hil.md).",
    )
    hil.add_argument("config", nargs="?", default=DEFAULT_SIM_CONFIG, help=f"hw_config (default: {DEFAULT_SIM_CONFIG})")
    hil.add_argument("--link", choices=("udp", "serial"), default="serial", help="the link between the processes (default: serial)")
    hil.add_argument("--duration", type=duration, default=None, help="wall seconds, at most 3600 (default: the scenario's, else 10)")
    hil.add_argument("--seed", type=seed, default=0, help="seed for every node's randomness and the faults' (default: 0)")
    hil.add_argument("--faults", type=Path, default=None, help="a fault timeline (YAML: seed, faults; docs/wire-format.md)")
    hil.add_argument("--out", type=output_folder, default=Path("runs/hil"), help="output folder (default: runs/hil)")
    hil.add_argument("--campaign", choices=("faults",), default=None, help="faults: every fault class in short runs (needs --json)")
    hil.add_argument("--runs", type=positive_int, default=None, help="--campaign: runs per fault class, seeded seed, seed+1, ... (default: 3)")
    hil.add_argument(
        "--fault", action="append", choices=FAULT_KINDS, default=None, metavar="KIND",
        help=f"--campaign: only this fault class (repeat for more; default: all of {', '.join(FAULT_KINDS)})",
    )
    hil.add_argument("--mcu", action="store_true",
                     help="the stack's policy and safety-filter QP on an emulated Cortex-M4F (aegis export pil, QEMU mps2-an386) "
                     "fed over its UART; needs arm-none-eabi-gcc, newlib and qemu-system-arm")
    hil.add_argument("--json", type=output_file, default=None, help="--campaign: write the rows here")
    add_overrides(hil)
    hil.set_defaults(handler=_cmd_hil)


def _cmd_hil(args: argparse.Namespace) -> int:
    import threading

    from aegis.executors.realtime import stop_on_signals
    from aegis.runs.hil_run import check_hil, run_hil
    from aegis.runs.wall_run import GroupFailed
    from aegis.transport.faults import load_timeline

    if args.campaign is None and (args.json is not None or args.runs is not None or args.fault):
        raise UsageError("--json, --runs and --fault go with --campaign faults")
    if args.campaign is not None and (args.json is None or args.faults is not None or args.duration is not None):
        raise UsageError("--campaign faults writes its rows to --json FILE and makes its own timelines and run lengths "
                         "(leave --faults and --duration out)")
    if args.mcu and args.campaign is not None:
        raise UsageError("--mcu runs one loop with the MCU; leave --campaign out")
    plan = load_plan(args)
    timeline = load_timeline(args.faults) if args.faults is not None else None
    try:
        check_hil(plan, timeline)
    except ValueError as exc:
        raise UsageError(f"{args.config}: {exc}") from None
    make_output_folder("--out", args.out)
    console = Console(stderr=True)
    say = lambda text: console.print(text, highlight=False)  # noqa: E731
    config = resolve_config_path(args.config)
    with stop_on_signals(threading.Event()) as stop:
        try:
            if args.campaign is not None:
                return _campaign(args, plan, config, stop, say)
            mcu_image = None
            if args.mcu:
                from aegis.runs.hil_mcu import build_image

                say("building the MCU image (aegis export pil)")
                try:
                    mcu_image = build_image(config, args.effective_overrides, args.out / "mcu")
                except ValueError as exc:
                    raise UsageError(f"{args.config}: {exc}") from None
                say(f"MCU image {mcu_image['elf']}: flash {mcu_image['flash_bytes']} B, RAM {mcu_image['ram_bytes']} B + stack")
            summary = run_hil(plan, config, args.effective_overrides, args.duration, args.seed, args.out, args.link, timeline, stop, say,
                              mcu_image)
        except GroupFailed as exc:
            print(f"aegis: hil run failed: {exc}", file=sys.stderr)
            return 1
    from aegis.runs.sim_run import print_summary

    print_summary(summary)
    _print_link(summary["link"])
    for process, group in summary.get("processes", {}).items():  # what an end could not send or read: said, never dropped silently
        for reason in group.get("rejected", {}).values():
            Console().print(f"{process}: {reason}", highlight=False)
    if "mcu" in summary:
        _print_mcu(summary["mcu"])
    return 0


def _campaign(args: argparse.Namespace, plan, config: Path, stop, say) -> int:  # noqa: ANN001
    from aegis.runs.hil_campaign import RUNS, run_campaign, write_rows

    try:
        kinds = tuple(dict.fromkeys(args.fault)) if args.fault else FAULT_KINDS
        runs = args.runs if args.runs is not None else RUNS
        rows = run_campaign(plan, config, args.effective_overrides, args.seed, args.out, args.link, runs, stop, kinds, say=say)
    except ValueError as exc:
        raise UsageError(f"{args.config}: {exc}") from None
    write_rows(rows, args.json)
    table = Table("fault", "runs", "detected", "worst detection ms", "worst safe state ms", "collisions", "crashes", "recovered",
                  "not running at onset")  # fmt: skip
    for row in rows:
        table.add_row(row["fault"], str(row["runs"]), str(row["detected"]), _ms(row["detection_ms"]), _ms(row["safe_state_ms"]),
                      str(row["collisions"]), str(row["crashes"]), f"{row['recovered_runs']}/{row['runs']}",
                      str(row.get("not_running_at_onset", 0)))  # fmt: skip
    Console().print(table)
    Console().print(f"wrote {args.json}")
    return 0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _print_link(link: dict) -> None:
    table = Table("direction", "sent", "received", "lost", "late", "rejected", "injected: drop/corrupt/dup/delay")
    for direction in ("plant_to_stack", "stack_to_plant"):
        row = link[direction]
        proxy = row.get("proxy")
        faults = "-" if proxy is None else (
            f"{proxy['partition'] + proxy['burst_loss'] + proxy['loss']}/{proxy['corrupt']}/{proxy['duplicate']}/{proxy['delayed']}"
        )  # fmt: skip
        table.add_row(direction, *(str(row[k]) for k in ("sent", "received", "lost", "late", "rejected")), faults)
    Console().print(table)


def _print_mcu(mcu: dict) -> None:
    def pair(stats: dict, fmt: str) -> str:
        return "-" if stats["median"] is None else f"{stats['median']:{fmt}} / {stats['max']:{fmt}}"

    table = Table("MCU (median / max)", "value", title=f"{mcu['core']}: flash {mcu['flash_bytes']} B, RAM {mcu['ram_bytes']} B + stack")
    table.add_row("the stack and the MCU's answer", "waits in the tick" if mcu.get("route") == "waits in the tick"
                  else "pipelined: taken at the next tick (a faster loop shares the stack's thread)")
    table.add_row("instructions per policy answer", pair(mcu["instructions_per_policy_answer"], ".0f"))
    table.add_row("instructions per filter QP solve", pair(mcu["instructions_per_qp_solve"], ".0f"))
    table.add_row("instructions per tick", pair(mcu["instructions_per_tick"], ".0f"))
    table.add_row("per tick at 168 MHz (µs)", pair(mcu["us_per_tick_at_168mhz"], ".0f"))
    table.add_row("round trip: one frame / policy / QP (ms, wall)",
                  "; ".join(pair(mcu[key], ".2f") for key in ("one_frame_round_trip_ms", "policy_round_trip_ms", "qp_round_trip_ms")))
    per_tick = mcu["round_trips_per_tick"]
    table.add_row("round trips per tick", "—" if per_tick is None else f"{per_tick:.2f} ({mcu['round_trips']['one_frame']} one-frame)")
    table.add_row("answers: policy / QP / unanswered", f"{mcu['policy_answers']} / {mcu['qp_solves']} / {mcu['unanswered']}")
    ages = ", ".join(f"{n} after {age}" for age, n in mcu["answer_age_ticks"].items()) or "-"
    table.add_row("answers taken, ticks after their request", ages)
    table.add_row("ticks without an answer / QP solved on the host", f"{mcu['ticks_without_answer']} / {mcu['host_qp_solves']}")
    Console().print(table)
