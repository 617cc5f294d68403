"""`aegis train-depth`'s pipeline: render the datasets, train cheap and large, pick the cascade threshold, export, measure all three.

Three datasets from one seed (aegis.training.depth_dataset, each its own stream): ``train`` (fits the
weights), ``validation`` (picks the cascade's sigma threshold) and ``heldout`` (the numbers reported
and written into the model cards; never seen before). The exported models are then loaded back
through :class:`aegis.inference.depth_model.DepthSectorModel` (the contract and the policy runtime,
as the node loads them) and measured on the held-out frames: accuracy of each (mean absolute error
per sector, within 10 / 25 cm) and latency per frame (preprocessing and the ONNX call, mean and p99
µs, one thread), then the cascade (:class:`aegis.inference.depth_model.DepthCascade` with a budget
large enough never to bind) with its escalation rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aegis.training.depth_dataset import generate
from aegis.training.depth_train import (
    ARCHITECTURES,
    TrainSettings,
    accuracy,
    choose_threshold,
    export,
    predict_torch,
    train,
)

SEED_OFFSETS = {"train": 0, "validation": 1000, "heldout": 2000}


@dataclass(frozen=True)
class DepthTrainSettings:
    out_dir: Path
    seed: int = 0
    frames: int = 2000
    validation_frames: int = 400
    heldout_frames: int = 400
    epochs: int = 25
    command: str = ""


def model_paths(out_dir: Path) -> dict[str, Path]:
    return {name: out_dir / f"husky_depth_{name}.onnx" for name in ARCHITECTURES}


def run(settings: DepthTrainSettings, say: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Everything in the module docstring; returns the report (what the command prints and the model cards quote)."""
    from aegis.inference.depth_model import DepthCascade, DepthSectorModel

    started = time.perf_counter()
    data = {}
    for split, frames in (("train", settings.frames), ("validation", settings.validation_frames), ("heldout", settings.heldout_frames)):
        data[split] = generate(frames, settings.seed + SEED_OFFSETS[split])
        say(f"rendered {frames} {split} frames")
    networks, validation = {}, {}
    for name, factor in ARCHITECTURES.items():
        networks[name] = train(
            name, data["train"], settings.seed, TrainSettings(epochs=settings.epochs),
            progress=lambda epoch, loss, name=name: say(f"{name}: epoch {epoch}/{settings.epochs}, loss {loss:.3f}"),
        )
        validation[name] = predict_torch(networks[name], data["validation"], factor)
    threshold = choose_threshold(validation["cheap"], validation["large"], data["validation"].ranges)
    say(f"cascade threshold (validation): sigma {threshold:.3f} m")
    paths = model_paths(settings.out_dir)
    notes = (
        f"trained on {settings.frames} frames of the Husky layout families (seed {settings.seed}), "
        f"threshold picked on {settings.validation_frames}, measured on {settings.heldout_frames} held-out frames"
    )
    for name in ARCHITECTURES:
        export(networks[name], name, paths[name], settings.seed, settings.command, threshold if name == "cheap" else None, notes)
    report: dict[str, Any] = {"seed": settings.seed, "frames": {k: len(v) for k, v in data.items()}, "threshold_m": threshold, "rows": []}
    models = {name: DepthSectorModel(path) for name, path in paths.items()}
    heldout = data["heldout"]
    for name, model in models.items():
        ranges, times = _run_frames(model.predict, heldout.depth)
        report["rows"].append({"name": f"depth_{name}", **accuracy(ranges, heldout.ranges), **_times(times), "escalated": None})
    cascade = DepthCascade(
        models["cheap"].predict, models["large"].predict, models["large"].p99_us, threshold, budget_us=1e9
    )
    stages: list[str] = []

    def step(depth: np.ndarray) -> np.ndarray:
        ranges, _, stage = cascade.predict(depth)
        stages.append(stage)
        return ranges

    ranges, times = _run_frames(step, heldout.depth)
    report["rows"].append(
        {"name": "depth_cascade", **accuracy(ranges, heldout.ranges), **_times(times), "escalated": stages.count("large") / len(stages)}
    )
    report["files"] = {name: str(path) for name, path in paths.items()}
    report["wall_time_s"] = time.perf_counter() - started
    return report


def _run_frames(predict: Callable[[np.ndarray], Any], frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's ranges and its time (µs), after a warm-up pass over the first 50."""
    for depth in frames[:50]:
        predict(depth)
    out, times = [], np.empty(len(frames))
    for i, depth in enumerate(frames):
        start = time.perf_counter_ns()
        answer = predict(depth)
        times[i] = (time.perf_counter_ns() - start) / 1e3
        out.append(answer[0] if isinstance(answer, tuple) else answer)
    return np.asarray(out), times


def _times(times: np.ndarray) -> dict[str, float]:
    return {"mean_us": float(times.mean()), "median_us": float(np.median(times)), "p99_us": float(np.percentile(times, 99))}
