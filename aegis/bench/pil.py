"""Processor in the loop, in simulated time: the quadrotor chain flies its scenario with the policy on the emulated Cortex-M4F, beside the Python chain.

The plan runs in lockstep (``aegis sim``'s executor, PyBullet, the whole chain: filter, supervisor,
attitude loops). In the second run the policy node's inference is the firmware's: every
observation the node builds goes as a wire frame over QEMU mps2-an386's UART to the image of
:mod:`aegis.export.pil` (the exported policy, contract applied in the C), and the action frame
that comes back is the node's action. Rows: tracking RMSE, collisions and crashes of each run, the
largest distance between the two runs' positions, the MCU's instructions per answer (``-icount``;
time at 168 MHz if an instruction took one cycle), the image's flash and RAM.

This is not yet the issue's ``aegis hil --mcu`` (the MCU at real time in a wall-clock run): the
lockstep executor waits for each answer, so the timing of the loop is the simulator's, not the
MCU's. Target (issue 14, printed, never asserted): tracking within 0.5 cm RMSE of the Python chain.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from aegis.bench import machine, write_document

TARGET_RMSE_DIFF_M = 0.005
DEFAULT_CONFIG = "quadrotor_oracle_sim"
MCU_CLOCK_HZ = 168e6


def _fly(plan: Any, duration_s: float, seed: int, session: Any = None,
         filter_on_mcu: bool = False, dual: bool = False, one_frame: bool = False) -> tuple[dict[str, Any], np.ndarray, list[float], tuple[list[float], list[int]], dict[str, int]]:
    """One lockstep run; with ``session`` the policy node acts through the MCU, and with ``filter_on_mcu`` the safety
    filter solves its QP there too (``one_frame``: both in one frame a tick). (metrics, true positions, instructions
    per policy answer, (instructions, OSQP iterations) per QP answer, the requests sent by kind)."""
    from aegis.runs.episode import EpisodeLog, episode_metrics, episode_series
    from aegis.runs.plan_run import run_plan

    log = EpisodeLog(plan)
    routes: list[Any] = []

    def through_mcu(nodes: list[Any]) -> None:
        from aegis.inference.mcu_session import route_through_mcu

        routes.append(route_through_mcu(nodes, session, filter_on_mcu, dual, one_frame))

    def bind(executor: Any) -> None:
        for route in routes:
            route.bind(executor)

    run = run_plan(plan, duration_s, seed, [log], prepare=through_mcu if session is not None else None, attach=bind)
    instructions = [count for route in routes for count in route.policy_instructions]
    qp_solvers = [solver for route in routes for solver in route.qp_solvers]
    series = episode_series(log, run.obstacles, run.metrics.get("body_radius_m"))
    qp_instructions = [count for solver in qp_solvers for count in solver.instructions]
    qp_iterations = [count for solver in qp_solvers for count in solver.iterations]
    requests = {"one_frame_ticks": sum(len(route.step_round_trips_s) for route in routes),
                "observation_frames": sum(len(route.policy_round_trips_s) for route in routes),
                "qp_frames": sum(len(solver.round_trips_s) for solver in qp_solvers)}
    return episode_metrics(series, run.metrics), series.positions, instructions, (qp_instructions, qp_iterations), requests


def run_pil_benchmark(config: str = DEFAULT_CONFIG, duration_s: float | None = None, seed: int = 0, filter_on_mcu: bool = False,
                      filter_solver: str = "osqp", two_frames: bool = False) -> dict[str, Any]:
    """Both runs (for the scenario's duration when ``duration_s`` is None) and the MCU's figures, as the JSON document's body."""
    from aegis.config import load_config
    from aegis.export import export_c
    from aegis.export.filter_dual import export_filter_dual
    from aegis.export.filter_qp import export_filter_qp
    from aegis.export.pil import PilSession, build_pil_image
    from aegis.launch_plan import make_plan
    from aegis.cli_options import resolve_config_path

    from aegis.runs.plan_run import load_plan_scenario, run_duration

    plan = make_plan(load_config(resolve_config_path(config)))
    duration_s = run_duration(load_plan_scenario(plan), duration_s)
    python_metrics, python_positions, _, _, _ = _fly(plan, duration_s, seed)
    with tempfile.TemporaryDirectory(prefix="aegis_pil_") as tmp:
        model_path, spec = _policy_model(plan)
        report = export_c(model_path, Path(tmp) / "c")
        qp = None
        if filter_on_mcu:
            if spec is None:
                from aegis.cli_options import UsageError

                raise UsageError("aegis bench pil --filter-on-mcu: the plan has no CBF safety filter")
            qp = (export_filter_dual if filter_solver == "active-set" else export_filter_qp)(spec, Path(tmp) / "qp")
        image = build_pil_image(report, Path(tmp) / "pil", qp)
        with PilSession(image, report.input_size, report.output_size) as session:
            dual = filter_on_mcu and filter_solver == "active-set"
            mcu_metrics, mcu_positions, instructions, (qp_instructions, qp_iterations), requests = _fly(
                plan, duration_s, seed, session, filter_on_mcu, dual, one_frame=dual and not two_frames)
            exit_status = session.close()
    n = min(len(python_positions), len(mcu_positions))
    deviation = float(np.max(np.linalg.norm(python_positions[:n] - mcu_positions[:n], axis=1))) if n else None
    counts = np.asarray(instructions, dtype=float)
    qp_counts = np.asarray(qp_instructions, dtype=float)
    keys = ("tracking_rmse_m", "tracking_max_m", "collisions", "crashes", "min_clearance_m")
    rows = [{"chain": "python (onnxruntime)", **{k: python_metrics.get(k) for k in keys}},
            {"chain": "mcu: policy" + (f" + filter QP ({filter_solver})" if filter_on_mcu else ""), **{k: mcu_metrics.get(k) for k in keys}}]
    rmse_diff = None
    if rows[0]["tracking_rmse_m"] is not None and rows[1]["tracking_rmse_m"] is not None:
        rmse_diff = abs(rows[1]["tracking_rmse_m"] - rows[0]["tracking_rmse_m"])
    return {
        "benchmark": "pil",
        "config": config,
        "duration_s": duration_s,
        "seed": seed,
        "rows": rows,
        "max_position_difference_m": deviation,
        "rmse_difference_m": rmse_diff,
        "mcu_answers": int(counts.size),
        "instructions_per_answer_median": float(np.median(counts)) if counts.size else None,
        "instructions_per_answer_max": float(counts.max()) if counts.size else None,
        "us_at_168mhz_median": float(np.median(counts)) / MCU_CLOCK_HZ * 1e6 if counts.size else None,
        "filter_on_mcu": filter_on_mcu,
        "filter_solver": filter_solver if filter_on_mcu else None,
        "qp_answers": int(qp_counts.size),
        "requests": requests,
        "qp_instructions_median": float(np.median(qp_counts)) if qp_counts.size else None,
        "qp_instructions_max": float(qp_counts.max()) if qp_counts.size else None,
        "qp_iterations_median": float(np.median(qp_iterations)) if qp_iterations else None,
        "qp_iterations_max": int(max(qp_iterations)) if qp_iterations else None,
        "flash_bytes": image.sizes.flash,
        "ram_bytes": image.sizes.ram,
        "firmware_exit_status": exit_status,
        "targets": [{"target": "tracking RMSE within 0.5 cm of the Python chain", "goal": f"<= {TARGET_RMSE_DIFF_M} m",
                     "value": rmse_diff, "met": rmse_diff is not None and rmse_diff <= TARGET_RMSE_DIFF_M}],
    }


def _policy_model(plan: Any) -> tuple[Path, Any]:
    """The ONNX model the plan's policy node loads (the hw_config's inference.model, resolved by the node), and the
    QpSpec of its CBF safety filter (None without one)."""
    nodes = plan.instantiate()
    try:
        policy = next((n for n in nodes if hasattr(n, "runtime") and hasattr(n.runtime, "model_path")), None)
        if policy is None:
            from aegis.cli_options import UsageError

            raise UsageError("aegis bench pil: the plan has no policy node (use a config whose controller is a policy)")
        cbf = next((n.filter for n in nodes if hasattr(getattr(n, "filter", None), "spec")), None)
        return Path(policy.runtime.model_path), (cbf.spec if cbf is not None else None)
    finally:
        for node in nodes:
            if hasattr(node, "close"):
                node.close()


def print_report(document: dict[str, Any], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"{document['config']}, {document['duration_s']:g} s, seed {document['seed']}: the policy in Python and on the MCU")
    for column in ("chain", "tracking RMSE m", "max m", "collisions", "crashes"):
        table.add_column(column, justify="left" if column == "chain" else "right")
    for row in document["rows"]:
        rmse, worst = row["tracking_rmse_m"], row["tracking_max_m"]
        table.add_row(row["chain"], "—" if rmse is None else f"{rmse:.4f}", "—" if worst is None else f"{worst:.4f}",
                      str(row["collisions"]), str(row["crashes"]))
    console.print(table)
    deviation = document["max_position_difference_m"]
    console.print(f"largest distance between the two flights: {'—' if deviation is None else f'{deviation:.2e} m'}")
    if document["mcu_answers"]:
        console.print(f"MCU: {document['mcu_answers']} answers, {document['instructions_per_answer_median']:.0f} instructions per answer "
                      f"(median; max {document['instructions_per_answer_max']:.0f}) = {document['us_at_168mhz_median']:.0f} µs at 168 MHz "
                      f"at one instruction a cycle; image flash {document['flash_bytes']} B, RAM {document['ram_bytes']} B (no stack)")
    if document["qp_answers"]:
        console.print(f"MCU filter QP: {document['qp_answers']} solves, {document['qp_instructions_median']:.0f} instructions per solve "
                      f"(median; max {document['qp_instructions_max']:.0f}) = {_duration(document['qp_instructions_median'] / MCU_CLOCK_HZ)} "
                      f"at 168 MHz at one instruction a cycle; {'active-set steps' if document.get('filter_solver') == 'active-set' else 'OSQP iterations'} median {document['qp_iterations_median']:.0f}, "
                      f"max {document['qp_iterations_max']}")
    requests = document.get("requests")
    if requests and document["qp_answers"]:
        console.print(f"frames to the MCU: {requests['one_frame_ticks']} one-frame ticks (observation and rows), "
                      f"{requests['observation_frames']} observation frames, {requests['qp_frames']} QP frames")
    for target in document["targets"]:
        value = "—" if target["value"] is None else f"{target['value']:.2e} m"
        verdict = "[green]met[/green]" if target["met"] else "[red]not met[/red]"
        console.print(f"target {target['target']} {target['goal']}: {value} — {verdict}")


def _duration(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.0f} µs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help=f"hw_config with a policy node (default {DEFAULT_CONFIG})")
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="seconds of simulated flight (default: the scenario's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--filter-on-mcu", action="store_true", help="solve the safety filter's QP on the MCU too (aegis export filter-c in the image)")
    parser.add_argument("--filter-solver", choices=("osqp", "active-set"), default="osqp",
                        help="with --filter-on-mcu: cvxpygen's OSQP in double (default) or the float active-set solve (aegis export filter-c --solver)")
    parser.add_argument("--two-frames", action="store_true",
                        help="with --filter-solver active-set: an observation frame and a QP frame a tick, not the one combined frame (ids 7/8)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the document as JSON")


def run_from_args(args: argparse.Namespace, console: Any = None) -> dict[str, Any]:
    from aegis.cli_options import UsageError
    from aegis.export.mcu import missing_tools

    absent = missing_tools()
    if absent:
        raise UsageError(f"aegis bench pil: needs {', '.join(absent)} (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")
    if args.duration is not None and not 0 < args.duration <= 3600:
        raise UsageError(f"aegis bench pil: --duration must be in (0, 3600] s, got {args.duration:g}")
    if args.filter_solver != "osqp" and not args.filter_on_mcu:
        raise UsageError("aegis bench pil: --filter-solver goes with --filter-on-mcu")
    if args.two_frames and args.filter_solver != "active-set":
        raise UsageError("aegis bench pil: --two-frames goes with --filter-on-mcu --filter-solver active-set")
    document = run_pil_benchmark(args.config, args.duration, args.seed, args.filter_on_mcu, args.filter_solver, args.two_frames)
    print_report(document, console)
    if args.json is not None:
        write_document({**document, "machine": machine()}, args.json)
    return document
