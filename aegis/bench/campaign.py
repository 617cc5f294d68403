"""Campaign throughput per backend: episodes per second per core of the same `aegis eval` campaign on the local pool and on Ray.

The same campaign (config, episodes, seeds, duration) runs three times, with ``--workers`` cores each:

``local pool``
    aegis.runs.backends' process pool, spawn included (what `aegis eval` pays).
``ray (instance started)``
    a Ray instance started for the run with ``--workers`` CPUs, its start and shutdown included
    (what `aegis eval --backend ray` without ``--address`` pays).
``ray (running cluster)``
    the same instance already running before the clock starts (what a campaign on a running
    cluster, ``--address``, pays): chunks of episodes, worker start-up included.

Episodes per second per core = episodes / wall seconds / workers. The rows of the three runs are
compared without their wall-clock keys (``same rows``). Target (from the issue, printed, never
asserted): Ray on a running cluster within 15 % of the local pool. On a shared machine the numbers
move with the load: run it on a quiet moment, and compare only numbers measured together.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from aegis.bench import machine, write_document

TARGET_RATIO = 0.85
"""Ray's episodes per second per core over the local pool's: at least this (within 15 %)."""
WALL_CLOCK_KEYS = ("real_time_factor", "policy_latency_us")
"""Row keys measured on the wall clock: they differ between any two runs, on one backend too."""


def _rows(result: dict[str, Any]) -> str:
    return json.dumps([{k: v for k, v in row.items() if k not in WALL_CLOCK_KEYS} for row in result["episodes"]])


def run_campaign_benchmark(config: Path, episodes: int, workers: int, duration_s: float, seed: int = 0) -> list[dict[str, Any]]:
    """The three runs' rows: name, wall seconds, episodes per second, per core, and whether its episodes equal the local pool's."""
    import ray

    from aegis.runs.backends import Backend, connect_ray
    from aegis.runs.evaluation import Campaign, run_campaign

    campaign = Campaign(config, (), episodes, seed, duration_s)
    runs: list[tuple[str, Any]] = []

    def timed(name: str, backend: Backend) -> None:
        started = time.perf_counter()
        result = run_campaign(campaign, backend=backend)
        runs.append((name, time.perf_counter() - started, result))

    timed("local pool", Backend("local", workers))
    timed("ray (instance started)", Backend("ray", workers))
    connect_ray(ray, Backend("ray", workers))
    try:
        timed("ray (running cluster)", Backend("ray", workers))
    finally:
        ray.shutdown()
    reference = _rows(runs[0][2])
    return [
        {
            "name": name,
            "wall_s": wall,
            "episodes": episodes,
            "workers": workers,
            "episodes_per_s": episodes / wall,
            "episodes_per_s_per_core": episodes / wall / workers,
            "same_rows": _rows(result) == reference,
        }
        for name, wall, result in runs
    ]


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ray on a running cluster against the local pool, episodes per second per core."""
    local, cluster = rows[0]["episodes_per_s_per_core"], rows[-1]["episodes_per_s_per_core"]
    return [{"target": "ray (running cluster) / local pool, episodes/s/core", "goal": f">= {TARGET_RATIO}",
             "value": cluster / local, "met": cluster / local >= TARGET_RATIO}]


def print_report(rows: list[dict[str, Any]], console: Any = None) -> None:
    """A table of the runs, then the target and whether it is met."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"{rows[0]['episodes']} episodes on {rows[0]['workers']} cores per backend")
    for column in ("backend", "wall s", "episodes/s", "episodes/s/core", "same rows"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    for row in rows:
        table.add_row(row["name"], f"{row['wall_s']:.1f}", f"{row['episodes_per_s']:.3f}", f"{row['episodes_per_s_per_core']:.3f}",
                      "yes" if row["same_rows"] else "no")
    console.print(table)
    for target in targets(rows):
        verdict = "[green]met[/green]" if target["met"] else "[red]not met[/red]"
        console.print(f"target {target['target']} {target['goal']}: {target['value']:.2f} — {verdict}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the campaign benchmark, for the ``aegis bench campaign`` command line."""
    from aegis.cli_options import duration, positive_int, workers

    parser.add_argument("config", nargs="?", default="quadrotor_oracle_sim", help="hw_config (default: quadrotor_oracle_sim)")
    parser.add_argument("--episodes", type=positive_int, default=8, help="episodes per backend (default 8)")
    parser.add_argument("--workers", type=workers, default=2, help="cores per backend (default 2)")
    parser.add_argument("--duration", type=duration, default=5.0, help="simulated seconds per episode (default 5)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the rows, target and machine as JSON")


def run_from_args(args: argparse.Namespace, console: Any = None) -> list[dict[str, Any]]:
    """Run with parsed :func:`add_arguments` options: print the table and the target, write --json if given."""
    from aegis.cli_options import resolve_config_path
    from aegis.runs.backends import import_ray

    ray = import_ray()  # one line naming the extra when Ray is missing
    rows = run_campaign_benchmark(resolve_config_path(args.config), args.episodes, args.workers, args.duration)
    print_report(rows, console)
    if args.json is not None:
        write_document({"benchmark": "campaign", "rows": rows, "targets": targets(rows), "machine": machine(ray=ray.__version__)}, args.json)
    return rows
