"""`aegis train CONFIG --out FILE --seed N`: the command line of the training pipeline (arguments, progress, the printed report)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from aegis.cli_options import (
    add_backend_options,
    add_overlay_option,
    duration,
    non_negative_int,
    output_file,
    positive_float,
    positive_int,
    resolve_config_path,
    seed,
    workers,
)

if TYPE_CHECKING:
    from aegis.training.pipeline import TrainReport, TrainSettings

TORCH_MISSING = "aegis train needs torch (the [train] extra): pip install 'aegis[train]', or `make train-deps` in a checkout"



def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add train to the `aegis` subparsers."""
    train = sub.add_parser(
        "train",
        help="imitate a config's MPC expert: demonstrations, DAgger, Lipschitz-bounded BC, ONNX with its contract",
        description="Train an MLP policy from the MPC expert of CONFIG in randomized lockstep sim (demonstrations, then "
        "DAgger rollouts through the policy node), under a per-layer spectral-norm bound; write it as ONNX with its "
        "contract. Same seed, same file. Needs torch (the [train] extra).",
    )
    add_arguments(train)
    train.set_defaults(handler=lambda args: run_from_args(args, resolve_config_path(args.config)))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from aegis.training.bc import BcSettings  # numpy only: torch is imported when a fit starts

    parser.add_argument("config", help="hw_config with one MPC expert in the chain (e.g. hw_configs/quadrotor_mpc_sim.yaml)")
    parser.add_argument("--out", type=output_file, required=True, help="ONNX file to write (e.g. models/NAME.onnx)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of every draw: scenarios, runs, initial weights, shuffles (default: 0)")
    parser.add_argument("--iterations", type=non_negative_int, default=3, help="DAgger iterations after the demonstrations (default: 3)")
    parser.add_argument("--episodes", type=positive_int, default=30, help="expert demonstration episodes (default: 30)")
    parser.add_argument("--dagger-episodes", type=positive_int, default=15, help="policy rollouts per DAgger iteration (default: 15)")
    parser.add_argument("--validation-episodes", type=positive_int, default=6, help="held-out expert episodes (default: 6)")
    parser.add_argument("--max-duration", type=duration, default=20.0, help="longest episode, seconds (default: 20)")
    parser.add_argument("--epochs", type=positive_int, default=40, help="BC epochs per training round (default: 40)")
    parser.add_argument("--hidden", default="64,64", help="hidden layer widths (default: 64,64)")
    parser.add_argument("--lipschitz", type=positive_float, default=4.0, help="bound of the network map, split evenly over its layers (default: 4)")
    parser.add_argument("--learning-rate", type=positive_float, default=2e-3, help="Adam's initial learning rate, cosine-annealed (default: 0.002)")
    parser.add_argument("--batch-size", type=positive_int, default=BcSettings.batch_size, help=f"minibatch size (default: {BcSettings.batch_size})")
    parser.add_argument(
        "--observation",
        default=None,
        metavar="FIELD,FIELD",
        help="observation fields in order (default: the robot kind's DEFAULT_OBSERVATIONS, aegis.inference.observations)",
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a config value; repeatable")
    parser.add_argument(
        "--dynamics", default=None, metavar="NAME|FILE",
        help="train under dynamics randomisation: every demonstration and rollout episode draws its plant from this set "
        "(aegis.sim.dynamics: a shipped set or a file), per its seed, as `aegis eval --dynamics` does",
    )
    add_overlay_option(parser)
    parser.add_argument(
        "--privileged-expert", action="store_true",
        help="the expert is told each episode's true plant (the drawn mass, thrust coefficient and latencies: "
        "aegis.runs.privileged), in demonstrations and in its DAgger labels; the policy still observes only its fields",
    )
    parser.add_argument(
        "--workers", type=workers, default=None,
        help="rollouts in parallel: worker processes, or a local Ray instance's CPUs (default: the CPU count, at most "
        "the episodes of a stage; 1: one after another in this process); the model is the same whatever runs them",
    )
    add_backend_options(parser)
    parser.add_argument("--json", type=output_file, default=None, metavar="FILE", help="write the report as JSON")


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, every option spelled out (recorded in the model's contract)."""
    words = ["aegis", "train", args.config, "--out", str(args.out), "--seed", str(args.seed)]
    words += ["--iterations", str(args.iterations), "--episodes", str(args.episodes), "--dagger-episodes", str(args.dagger_episodes)]
    words += ["--validation-episodes", str(args.validation_episodes), "--max-duration", f"{args.max_duration:g}"]
    words += ["--epochs", str(args.epochs), "--hidden", args.hidden, "--lipschitz", f"{args.lipschitz:g}"]
    words += ["--learning-rate", f"{args.learning_rate:g}", "--batch-size", str(args.batch_size)]
    if args.observation is not None:
        words += ["--observation", args.observation]
    for override in args.overrides:
        words += ["--set", override]
    if getattr(args, "dynamics", None) is not None:
        words += ["--dynamics", str(args.dynamics)]
    if getattr(args, "overlay", None) is not None:
        words += ["--overlay", str(args.overlay)]
    if getattr(args, "privileged_expert", False):
        words += ["--privileged-expert"]
    return shlex.join(words)


def settings_from_args(args: argparse.Namespace, config: Path) -> TrainSettings:
    from aegis.runs.backends import Backend
    from aegis.training.bc import BcSettings
    from aegis.training.pipeline import TrainSettings, plant_overrides_of

    try:
        hidden = tuple(int(w) for w in args.hidden.split(","))
    except ValueError:
        raise ValueError(f"--hidden {args.hidden!r}: give widths separated by commas, e.g. 64,64") from None
    if not hidden or min(hidden) < 1:
        raise ValueError(f"--hidden {args.hidden!r}: widths must be >= 1")
    if not args.lipschitz > 0:
        raise ValueError(f"--lipschitz must be > 0, got {args.lipschitz}")
    settings = TrainSettings(
        config=config,
        out=args.out,
        seed=args.seed,
        overrides=tuple(args.overrides),
        dynamics=getattr(args, "dynamics", None),
        overlay=getattr(args, "overlay", None),
        privileged_expert=getattr(args, "privileged_expert", False),
        observation=None if args.observation is None else tuple(f.strip() for f in args.observation.split(",") if f.strip()),
        episodes=args.episodes,
        iterations=args.iterations,
        dagger_episodes=args.dagger_episodes,
        validation_episodes=args.validation_episodes,
        max_duration_s=args.max_duration,
        bc=BcSettings(hidden=hidden, lipschitz=args.lipschitz, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate),
        command=command_line(args),
        backend=Backend(args.backend, args.workers or min(os.cpu_count() or 1, max(args.episodes, args.dagger_episodes)), args.address),
    )
    plant_overrides_of(settings)  # a bad set, overlay or key: refused here, in one line, before anything runs
    return settings


def run_from_args(args: argparse.Namespace, config: Path) -> int:
    """Train, print the report; 2 when torch is missing."""
    if importlib.util.find_spec("torch") is None:
        print(f"aegis: error: {TORCH_MISSING}", file=sys.stderr)  # plain: rich would read [train] as markup
        return 2
    from aegis.training.pipeline import train

    try:
        settings = settings_from_args(args, config)
    except ValueError as exc:
        print(f"aegis: error: {exc}", file=sys.stderr)
        return 2
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int, note: str) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total, note="")
            progress.update(tasks[stage], completed=done, note=note)

        result = train(settings, report)
    print_report(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.as_dict(), indent=2) + "\n")
        Console().print(f"wrote {args.json}")
    return 0


def print_report(report: TrainReport, console: Console | None = None) -> None:
    console = console or Console()
    rounds = Table(title=f"aegis train: {report.robot_kind} policy imitating {report.expert}, seed {report.seed}")
    # per round: where the new data came from, rollouts' collisions and tracking RMSE (policy rounds), loss, held-out error
    for column in ("round", "from", "episodes", "added", "samples", "collisions", "RMSE", "loss", "held-out"):
        rounds.add_column(column, justify="right")
    for r in report.iterations:
        rounds.add_row(
            str(r.iteration), r.source, str(r.episodes), str(r.samples_added), str(r.samples_total),
            "-" if r.rollout_collisions is None else str(r.rollout_collisions),
            "-" if r.rollout_tracking_rmse_m is None else f"{r.rollout_tracking_rmse_m * 100:.1f} cm",
            f"{r.train_loss:.2e}", f"{r.heldout_error:.4f}",
        )  # fmt: skip
    console.print(rounds)
    table = Table(title="policy")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("held-out imitation error (RMS / action limit)", f"{report.heldout_error:.4f} (zero action: {report.heldout_error_untrained:.4f})")
    table.add_row("held-out samples", str(report.heldout_samples))
    table.add_row("layer spectral norms (bound each)", ", ".join(f"{n:.4f}" for n in report.layer_norms) + f" (<= {report.layer_bound:.4f})")
    table.add_row("Lipschitz, network: certified / empirical", f"{report.certified_bound:.3f} / {max(report.empirical_gradient, report.empirical_ratio):.3f}")
    table.add_row(
        "Lipschitz, physical: certified / empirical",
        f"{report.certified_bound_physical:.1f} / {max(report.empirical_gradient_physical, report.empirical_ratio_physical):.1f}",
    )
    if "dynamics" in report.plant:
        table.add_row("dynamics set (drawn per episode)", escape(f"{report.plant['dynamics']['set']}: {report.plant['dynamics']['description']}"))
    if "overlay" in report.plant:
        table.add_row("overlay (centre)", escape(", ".join(f"{k}={v}" for k, v in report.plant["overlay"].items())))
    if report.plant.get("privileged_expert"):
        table.add_row("expert", "privileged: told each episode's true plant")
    table.add_row("training time", f"{report.wall_time_s:.1f} s")
    table.add_row("model", str(report.out))
    table.add_row("sha256", report.sha256)
    console.print(table)
    if report.stages:
        console.print(stage_table(report))
    if report.critical_path_s is not None:
        cores = f"{report.cores} free core" + ("s" if report.cores != 1 else "")
        console.print(f"estimated wall time on {cores}: {report.critical_path_s:.1f} s (per stage, the longer of main CPU and (main + workers CPU) / {report.cores})")


def stage_table(report: TrainReport) -> Table:
    """Where the time went: per stage, this process's CPU, the local workers' CPU and the wall seconds, and their totals."""
    table = Table(title="time per stage (CPU s: this process, its workers; wall s)")
    for column in ("stage", "main CPU", "workers CPU", "wall"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for s in report.stages:
        table.add_row(escape(s.stage), f"{s.main_cpu_s:.1f}", f"{s.workers_cpu_s:.1f}", f"{s.wall_s:.1f}")
    totals = [sum(getattr(s, name) for s in report.stages) for name in ("main_cpu_s", "workers_cpu_s", "wall_s")]
    table.add_row("total", *(f"{t:.1f}" for t in totals))
    return table

