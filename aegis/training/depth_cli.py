"""`aegis train-depth --out-dir DIR --seed N`: the command line of the depth-sector CNNs' training (arguments, progress, the report)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from aegis.cli_options import non_negative_int, output_file, positive_int, seed

ROBOTS = ("husky", "quadrotor")
"""The rigs of aegis.training.depth_dataset.RIGS, named here so that `aegis --help` does not import pybullet (a test checks they agree)."""

TORCH_MISSING = "aegis train-depth needs torch (the [train] extra): pip install 'aegis[train]', or `make train-deps` in a checkout"


def shipped_models_parser(prog: str, description: str, frames_help: str) -> argparse.ArgumentParser:
    """The command line the tools that measure trained depth-sector models share (depth_eval, depth_cascade_profile):
    which models, whose frames, how many, how many timing passes."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--models-dir", type=Path, default=None, help="folder of ROBOT_depth_{cheap,large,window}.onnx (default: the shipped models)")
    parser.add_argument("--robot", choices=ROBOTS, default="husky", help="whose models and frames (default: husky)")
    parser.add_argument("--seed", type=seed, default=0, help="the training seed whose frames to render (default: 0, the shipped models')")
    parser.add_argument("--frames", type=positive_int, default=400, help=frames_help)
    parser.add_argument("--rounds", type=positive_int, default=3, help="timing passes over the held-out frames (default: 3)")
    return parser


def run_shipped_models_tool(run: Callable[..., dict], args: argparse.Namespace) -> dict | None:
    """``run(models_dir, seed, frames, rounds, robot)`` with the parsed arguments; None after one error line on stderr."""
    from aegis.paths import share_dir

    try:
        return run(args.models_dir or share_dir() / "models", args.seed, args.frames, args.rounds, args.robot)
    except (ValueError, FileNotFoundError) as exc:
        print(f"aegis: error: {exc}", file=sys.stderr)
        return None



def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add train-depth to the `aegis` subparsers."""
    parser = sub.add_parser(
        "train-depth",
        help="train the cheap and large depth-sector CNNs on rendered depth, ONNX with their contracts",
        description="Render noisy depth images among the Husky's procedural layouts with sector labels from the clean render, "
        "train the cheap and the large depth-sector CNN, pick the cascade's threshold on validation frames, write both as ONNX "
        "with their contracts (and the large one's window model, the cascade's per-sector second stage), and measure the two and the cascade on held-out frames. Same seed, same weights. Needs torch.",
    )
    parser.add_argument("--out-dir", type=Path, default=Path("models"), help="folder for ROBOT_depth_{cheap,large,window}.onnx (default: models)")
    parser.add_argument(
        "--robot", choices=ROBOTS, default="husky",
        help="whose camera and scenes: husky (husky_depth_sim's camera among the Husky's layouts) or quadrotor (quadrotor_depth_sim's) (default: husky)",
    )
    parser.add_argument("--seed", type=seed, default=0, help="seed of the datasets, initial weights and shuffles (default: 0)")
    parser.add_argument("--frames", type=positive_int, default=2000, help="training frames (default: 2000)")
    parser.add_argument("--validation-frames", type=positive_int, default=400, help="frames the cascade threshold is picked on (default: 400)")
    parser.add_argument(
        "--escalation", choices=("sigma", "relative"), default="sigma",
        help="the cascade's rule: a sector's cheap sigma above the threshold, or its sigma / range (default: sigma)",
    )
    parser.add_argument("--heldout-frames", type=positive_int, default=400, help="frames the report measures on (default: 400)")
    parser.add_argument("--epochs", type=non_negative_int, default=25, help="epochs per model (default: 25)")
    parser.add_argument("--json", type=output_file, default=None, help="also write the report as JSON")
    parser.set_defaults(handler=run_from_args)


def run_from_args(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("torch") is None:
        print(f"aegis: error: {TORCH_MISSING}", file=sys.stderr)
        return 2
    from aegis.training.depth_pipeline import DepthTrainSettings, run

    command = "aegis train-depth " + shlex.join(
        [f"--out-dir={args.out_dir}", f"--seed={args.seed}", f"--frames={args.frames}", f"--validation-frames={args.validation_frames}",
         f"--heldout-frames={args.heldout_frames}", f"--epochs={args.epochs}"] + ([f"--robot={args.robot}"] if args.robot != "husky" else [])
        + ([f"--escalation={args.escalation}"] if args.escalation != "sigma" else [])
    )
    settings = DepthTrainSettings(
        out_dir=args.out_dir, seed=args.seed, frames=args.frames, validation_frames=args.validation_frames,
        heldout_frames=args.heldout_frames, epochs=args.epochs, command=command, robot=args.robot, escalation=args.escalation,
    )
    err = Console(stderr=True)
    report = run(settings, say=lambda line: err.print(line, highlight=False))
    print_report(report)
    if args.json is not None:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        Console().print(f"wrote {args.json}")
    return 0


def _threshold(report: dict) -> str:
    if report.get("rule") == "gain":
        return f"predicted gain {report['threshold_m']:.4f} m"
    return f"sigma / range {report['threshold_m']:.4f}" if report.get("relative") else f"sigma {report['threshold_m']:.3f} m"


def print_report(report: dict, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"depth sectors on {report['frames']['heldout']} held-out frames (cascade threshold {_threshold(report)})")
    for column in ("model", "MAE m", "within 10 cm", "within 25 cm", "median µs", "mean µs", "p99 µs", "escalated", "sectors refined"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in report["rows"]:
        escalated = "" if row["escalated"] is None else f"{row['escalated']:.0%}"
        refined = "" if row.get("sectors_refined") is None else f"{row['sectors_refined']:.1%}"
        table.add_row(
            row["name"], f"{row['mae_m']:.4f}", f"{row['within_10cm']:.1%}", f"{row['within_25cm']:.1%}",
            f"{row['median_us']:.0f}", f"{row['mean_us']:.0f}", f"{row['p99_us']:.0f}", escalated, refined,
        )
    console.print(table)
    for name, path in report["files"].items():
        console.print(f"wrote {path} ({name})")
