"""`aegis bench bc`: behaviour cloning's CPU per Adam step and per epoch at several batch sizes, the fits of `aegis train` without the rollouts.

Each row runs aegis.training.bc.train_bc itself (the 12-64-64-3 MLP of the quadrotor policy, Adam,
the cosine schedule and the spectral-norm projection after every step, one torch thread) for
``--epochs`` epochs on ``--samples`` synthetic rows (normal inputs, a tanh of a fixed random linear map
as targets, seed 0: the data's values do not change the work). Batch sizes are timed in turns,
``--repeats`` times, so that the machine's load falls on them alike; each row is the median. Times are
this process's CPU (time.process_time), which on a shared machine holds better than the wall clock.

``ratio`` is a row's CPU per epoch over the first row's: what a batch size does to the fits of a
training run (four fits of 40 epochs at 16k to 42k samples in `aegis train`'s default run).
Needs torch (the [train] extra).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

from aegis.cli_options import output_file, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-sizes", default="256,512", metavar="B,B", help="batch sizes, in turns (default: 256,512)")
    parser.add_argument("--samples", type=positive_int, default=41576, help="training rows (default: 41576, the last fit of the default run)")
    parser.add_argument("--epochs", type=positive_int, default=2, help="epochs per timed fit (default: 2)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="timed fits per batch size (default: 3)")
    parser.add_argument("--json", type=output_file, default=None, metavar="FILE", help="also write the rows as JSON")


def run_bc_benchmark(batch_sizes: list[int], samples: int, epochs: int, repeats: int) -> list[dict[str, Any]]:
    """Rows per batch size: steps per epoch, CPU ms per step, CPU s per epoch (medians), and the ratio to the first row."""
    from aegis.training.bc import BcSettings, train_bc

    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((samples, 12))
    targets = np.tanh(inputs @ rng.standard_normal((12, 3)) * 0.3)
    train_bc(inputs[:512], targets[:512], BcSettings(epochs=1), 0)  # warm-up: torch's first calls
    cpu: dict[int, list[float]] = {size: [] for size in batch_sizes}
    for _ in range(repeats):
        for size in batch_sizes:
            start = time.process_time()
            train_bc(inputs, targets, BcSettings(epochs=epochs, batch_size=size), 0)
            cpu[size].append((time.process_time() - start) / epochs)
    rows = []
    for size in batch_sizes:
        steps = -(-samples // size)
        per_epoch = statistics.median(cpu[size])
        rows.append({"batch_size": size, "steps_per_epoch": steps, "cpu_ms_per_step": 1e3 * per_epoch / steps, "cpu_s_per_epoch": per_epoch})
    for row in rows:
        row["ratio"] = row["cpu_s_per_epoch"] / rows[0]["cpu_s_per_epoch"]
    return rows


def run_from_args(args: argparse.Namespace) -> list[dict[str, Any]]:
    import importlib.util
    import json

    from rich.console import Console
    from rich.table import Table

    from aegis.cli_options import UsageError

    if importlib.util.find_spec("torch") is None:
        raise UsageError("aegis bench bc needs torch (the [train] extra): pip install 'aegis[train]'")
    try:
        sizes = [int(b) for b in args.batch_sizes.split(",")]
    except ValueError:
        raise UsageError(f"--batch-sizes {args.batch_sizes!r}: give sizes separated by commas, e.g. 256,512") from None
    if not sizes or min(sizes) < 1:
        raise UsageError(f"--batch-sizes {args.batch_sizes!r}: sizes must be >= 1")
    rows = run_bc_benchmark(sizes, args.samples, args.epochs, args.repeats)
    table = Table(title=f"aegis bench bc: {args.samples} samples, 12-64-64-3 MLP, CPU of this process (median of {args.repeats})")
    for column in ("batch", "steps / epoch", "CPU ms / step", "CPU s / epoch", "ratio"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            str(row["batch_size"]), str(row["steps_per_epoch"]), f"{row['cpu_ms_per_step']:.3f}", f"{row['cpu_s_per_epoch']:.3f}", f"{row['ratio']:.2f}"
        )
    Console().print(table)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return rows
