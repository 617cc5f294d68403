"""Campaigns of the same seeds compared episode by episode: `python -m aegis.runs.paired BASE.json OTHER.json ...`.

Each file is what `aegis eval --json` writes. Two policies (or two recipes, two configs) flown on the
same seeds meet the same randomisation, so the difference of their tracking RMSE seed by seed has a
much smaller spread than either RMSE: the mean of those differences and its standard error say
whether one flies better than the other. Per file: episodes, successes, collisions, crashes, RMSE
mean / worst and the lowest barrier value (the simulator's truth, as `aegis eval` measures them);
per file after the first, the paired difference to the first. Files whose episodes are not the same
seeds are refused, naming them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CampaignOutcome:
    """One campaign's outcome: per-seed tracking RMSE (m) and the counts."""

    name: str
    rmse_by_seed: dict[int, float]
    successes: int
    collisions: int
    crashes: int
    lowest_barrier: float | None


def load_campaign(path: Path) -> CampaignOutcome:
    """An `aegis eval --json` file's episodes; ValueError naming the file when it is not one."""
    try:
        episodes = json.loads(Path(path).read_text())["episodes"]
        rmse = {int(e["seed"]): float(e["tracking_rmse_m"]) for e in episodes}
        barriers = [e["min_barrier"] for e in episodes if e.get("min_barrier") is not None]
        return CampaignOutcome(
            name=Path(path).name,
            rmse_by_seed=rmse,
            successes=sum(bool(e.get("success")) for e in episodes),
            collisions=sum(int(e["collisions"]) for e in episodes),
            crashes=sum(int(e.get("crashes", 0)) for e in episodes),
            lowest_barrier=min(barriers) if barriers else None,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not an `aegis eval --json` file ({type(exc).__name__}: {exc})") from exc


def paired_difference(base: CampaignOutcome, other: CampaignOutcome) -> tuple[float, float]:
    """(mean, standard error) of other's RMSE minus base's, seed by seed (m); ValueError when the seeds differ."""
    if set(base.rmse_by_seed) != set(other.rmse_by_seed):
        raise ValueError(f"{other.name} and {base.name} are not the same seeds: nothing to pair")
    differences = [other.rmse_by_seed[seed] - base.rmse_by_seed[seed] for seed in sorted(base.rmse_by_seed)]
    mean = sum(differences) / len(differences)
    if len(differences) < 2:
        return mean, math.nan
    variance = sum((d - mean) ** 2 for d in differences) / (len(differences) - 1)
    return mean, math.sqrt(variance / len(differences))


def comparison_rows(campaigns: list[CampaignOutcome]) -> list[dict[str, Any]]:
    """One row per campaign (cm for lengths); ``vs_first_cm`` (mean, standard error) for every campaign after the first."""
    rows = []
    for index, campaign in enumerate(campaigns):
        values = list(campaign.rmse_by_seed.values())
        row: dict[str, Any] = {
            "file": campaign.name,
            "episodes": len(values),
            "successes": campaign.successes,
            "collisions": campaign.collisions,
            "crashes": campaign.crashes,
            "rmse_mean_cm": 100.0 * sum(values) / len(values) if values else math.nan,
            "rmse_worst_cm": 100.0 * max(values) if values else math.nan,
            "lowest_barrier": campaign.lowest_barrier,
        }
        if index > 0:
            mean, error = paired_difference(campaigns[0], campaign)
            row["vs_first_cm"] = (100.0 * mean, 100.0 * error)
        rows.append(row)
    return rows


def format_rows(rows: list[dict[str, Any]]) -> list[str]:
    """The rows as aligned text, one line each."""
    lines = []
    for row in rows:
        barrier = "-" if row["lowest_barrier"] is None else f"{row['lowest_barrier']:.3f}"
        text = (
            f"{row['file']}: {row['successes']}/{row['episodes']} successes, {row['collisions']} collisions, {row['crashes']} crashes, "
            f"RMSE {row['rmse_mean_cm']:.2f} / {row['rmse_worst_cm']:.2f} cm (mean / worst), lowest h {barrier}"
        )
        if "vs_first_cm" in row:
            mean, error = row["vs_first_cm"]
            text += f"; minus {rows[0]['file']}, paired: {mean:+.2f} ± {error:.2f} cm"
        lines.append(text)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aegis.runs.paired", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, metavar="EVAL.json", help="`aegis eval --json` files; the first is the base")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    try:
        rows = comparison_rows([load_campaign(path) for path in args.files])
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in format_rows(rows):
        print(line)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
