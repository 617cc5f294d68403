"""`python -m aegis.training.depth_window_export --robot R`: re-export a robot's window model from its large model's file, no training.

The window model (aegis.training.depth_train.export_window) is the large network's own weights on one
sector's columns. When only its export changes (the dynamic batch dimension that lets the cascade
refine every unsure sector of a frame in one call), retraining is not needed: this reads the weights
from ``ROBOT_depth_large.onnx`` (:func:`~aegis.training.depth_train.large_from_onnx`) and writes
``ROBOT_depth_window.onnx`` with :func:`~aegis.training.depth_train.export_window` and the large
model's producer (seed, the ``aegis train-depth`` command, notes): the file that command writes
today for the same weights (tests/test_depth_learned.py compares the two on a small training run).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def reexport(models_dir: Path, robot: str) -> Path:
    """Write ``models_dir/ROBOT_depth_window.onnx`` from ``ROBOT_depth_large.onnx``'s weights and producer; its path."""
    from aegis.inference.contract import read_contract
    from aegis.training.depth_dataset import RIGS
    from aegis.training.depth_pipeline import model_paths
    from aegis.training.depth_train import export_window, large_from_onnx

    paths = model_paths(models_dir, robot)
    rig = RIGS[robot]
    producer = read_contract(paths["large"]).producer
    if producer is None or producer.seed is None:
        raise ValueError(f"{paths['large']}: its contract names no producer seed: not made by aegis train-depth")
    return export_window(large_from_onnx(paths["large"], rig), paths["window"], producer.seed, producer.command or "", producer.notes or "", rig)


def main(argv: list[str] | None = None) -> int:
    from aegis.training.depth_cli import ROBOTS

    parser = argparse.ArgumentParser(prog="python -m aegis.training.depth_window_export", description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"), help="folder of ROBOT_depth_large.onnx (default: models)")
    parser.add_argument("--robot", choices=ROBOTS, default="husky", help="whose models (default: husky)")
    args = parser.parse_args(argv)
    try:
        print(reexport(args.models_dir, args.robot))
    except (ValueError, FileNotFoundError) as exc:
        print(f"aegis: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
