"""The depth cascade's target on held-out frames: `python -m aegis.training.depth_eval` measures the shipped models and says met or not.

Issue 13's target for the cascade: the large model's accuracy at <= 50 % of its mean time. This
renders the held-out frames `aegis train-depth` measured the models on (the same seed, the same
frames: ``--seed`` + 2000, the held-out stream of aegis.training.depth_pipeline), loads the three
files as the node does (cheap, large, and the large one's window model, through the contract and
the policy runtime), and measures each on every frame: accuracy, and time per frame over
``--rounds`` passes, by default in turns (each frame: cheap, large, cascade, so that the machine's load
falls on the three alike; ``--timing`` blocks or evicted time them each alone or after other memory
was read, aegis.training.depth_timing.TIMINGS: the caches each call starts from move the cascade's
share of the large model's time, and the verdict is for the timing asked). "Within the large model's accuracy" is read as both of:

* mean absolute error per sector <= the large model's + 3 mm (:data:`MAE_TOLERANCE_M`), and
* the share of sectors within 10 cm >= the large model's - 1 point (:data:`WITHIN_10CM_TOLERANCE`),

and the time half as the cascade's mean per frame <= 50 % of the large model's mean
(:data:`TIME_FRACTION`). Printed, never asserted: the time is the machine's.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

MAE_TOLERANCE_M = 0.003
WITHIN_10CM_TOLERANCE = 0.01
TIME_FRACTION = 0.5


def verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The target's three parts (name, value, limit, met) from the rows of the large model and the cascade."""
    by_name = {row["name"]: row for row in rows}
    large, cascade = by_name["depth_large"], by_name["depth_cascade"]
    return [
        {"name": "cascade mean abs error <= large's + 3 mm (m)", "value": cascade["mae_m"], "limit": large["mae_m"] + MAE_TOLERANCE_M},
        {"name": "cascade within 10 cm >= large's - 1 point", "value": cascade["within_10cm"], "limit": large["within_10cm"] - WITHIN_10CM_TOLERANCE},
        {"name": "cascade mean time <= 50 % of large's (µs)", "value": cascade["mean_us"], "limit": TIME_FRACTION * large["mean_us"]},
    ]


def _met(verdict: dict[str, Any]) -> bool:
    return verdict["value"] >= verdict["limit"] if "within" in verdict["name"] else verdict["value"] <= verdict["limit"]


def run(models_dir: Path, seed: int, frames: int, rounds: int, robot: str = "husky", timing: str = "turns") -> dict[str, Any]:
    """Render the held-out frames, measure the three (module docstring); the report as `aegis train-depth --json` writes it, with the verdicts."""
    from aegis.inference.depth_model import DepthSectorModel, DepthWindowModel
    from aegis.training.depth_dataset import RIGS, generate
    from aegis.training.depth_pipeline import SEED_OFFSETS, heldout_rows, model_paths

    paths = model_paths(models_dir, robot)
    cheap, large, window = DepthSectorModel(paths["cheap"]), DepthSectorModel(paths["large"]), DepthWindowModel(paths["window"])
    threshold = cheap.spec.cascade_sigma_threshold_m
    if threshold is None:
        raise ValueError(f"{paths['cheap']}: carries no cascade threshold (not a cheap stage made by aegis train-depth)")
    heldout = generate(frames, seed + SEED_OFFSETS["heldout"], rig=RIGS[robot])
    rows = heldout_rows(
        cheap, large, window, threshold, heldout, rounds=rounds, relative=cheap.spec.cascade_relative, gain=cheap.spec.cascade_gain, timing=timing
    )
    checks = [{**v, "met": _met(v)} for v in verdicts(rows)]
    return {"robot": robot, "seed": seed, "frames": {"heldout": frames}, "rounds": rounds, "timing": timing, "threshold_m": threshold, "relative": cheap.spec.cascade_relative, "rule": cheap.spec.cascade_rule, "rows": rows,
            "targets": checks, "files": {k: str(v) for k, v in paths.items()}}


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from aegis.training.depth_cli import print_report, run_shipped_models_tool, shipped_models_parser
    from aegis.training.depth_timing import TIMINGS

    parser = shipped_models_parser(
        "python -m aegis.training.depth_eval", __doc__.splitlines()[0], "held-out frames (default: 400, as aegis train-depth)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    parser.add_argument(
        "--timing", choices=tuple(TIMINGS), default="turns",
        help="; ".join(f"{name}: {what}" for name, what in TIMINGS.items()) + " (default: turns)",
    )
    args = parser.parse_args(argv)
    report = run_shipped_models_tool(functools.partial(run, timing=args.timing), args)
    if report is None:
        return 2
    console = Console()
    print_report({**report, "files": {}}, console)
    console.print(f"timing: {args.timing}, {TIMINGS[args.timing]}", highlight=False)
    for target in report["targets"]:
        console.print(f"{target['name']}: {target['value']:.4g} against {target['limit']:.4g}, {'met' if target['met'] else 'NOT met'}", highlight=False)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
