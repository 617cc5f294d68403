"""`aegis train-depth`'s pipeline: render the datasets, train cheap and large, pick the cascade threshold, export, measure all three.

Three datasets from one seed (aegis.training.depth_dataset, each its own stream): ``train`` (fits the
weights), ``validation`` (picks the cascade's sigma threshold) and ``heldout`` (the numbers reported
and written into the model cards; never seen before). The exported models are then loaded back
through :class:`aegis.inference.depth_model.DepthSectorModel` (the contract and the policy runtime,
as the node loads them) and measured on the held-out frames: accuracy of each (mean absolute error
per sector, within 10 / 25 cm) and latency per frame (preprocessing and the ONNX call, mean and p99
µs, one thread), then the cascade (:class:`aegis.inference.depth_cascade.DepthCascade` with a budget
large enough never to bind) with the share of frames and of sectors the large network refined.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aegis.training.depth_dataset import RIGS, generate
from aegis.training.depth_timing import EVICT_BYTES, TIMINGS
from aegis.training.depth_train import (
    ARCHITECTURES,
    TrainSettings,
    accuracy,
    choose_threshold,
    export,
    export_window,
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
    escalation: str = "sigma"
    """The cascade's escalation rule: "sigma" (a sector's cheap sigma above the threshold) or "relative" (its sigma / range)."""
    robot: str = "husky"
    """The rig (aegis.training.depth_dataset.RIGS): its camera, scenes and the models' file prefix."""


def model_paths(out_dir: Path, robot: str = "husky") -> dict[str, Path]:
    """The files written: the cheap model, the large one, and the large one's window model (the cascade's second stage)."""
    return {name: out_dir / f"{robot}_depth_{name}.onnx" for name in (*ARCHITECTURES, "window")}


def run(settings: DepthTrainSettings, say: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Everything in the module docstring; returns the report (what the command prints and the model cards quote)."""
    from aegis.inference.depth_model import DepthSectorModel, DepthWindowModel

    started = time.perf_counter()
    rig = RIGS[settings.robot]
    data = {}
    for split, frames in (("train", settings.frames), ("validation", settings.validation_frames), ("heldout", settings.heldout_frames)):
        data[split] = generate(frames, settings.seed + SEED_OFFSETS[split], rig=rig)
        say(f"rendered {frames} {split} frames")
    networks, validation = {}, {}
    for name, factor in ARCHITECTURES.items():
        networks[name] = train(
            name, data["train"], settings.seed, TrainSettings(epochs=settings.epochs),
            progress=lambda epoch, loss, name=name: say(f"{name}: epoch {epoch}/{settings.epochs}, loss {loss:.3f}"), rig=rig,
        )
        validation[name] = predict_torch(networks[name], data["validation"], factor)
    relative = settings.escalation == "relative"
    threshold = choose_threshold(validation["cheap"], validation["large"], data["validation"].ranges, relative=relative)
    say(f"cascade threshold (validation): sigma / range {threshold:.4f}" if relative else f"cascade threshold (validation): sigma {threshold:.3f} m")
    paths = model_paths(settings.out_dir, settings.robot)
    notes = (
        f"trained on {settings.frames} frames of the {'Husky' if rig.name == 'husky' else rig.name} layout families (seed {settings.seed}), "
        f"threshold picked on {settings.validation_frames}, measured on {settings.heldout_frames} held-out frames"
    )
    for name in ARCHITECTURES:
        export(networks[name], name, paths[name], settings.seed, settings.command, threshold if name == "cheap" else None, notes, rig, relative)
    export_window(networks["large"], paths["window"], settings.seed, settings.command, notes, rig)
    report: dict[str, Any] = {"seed": settings.seed, "frames": {k: len(v) for k, v in data.items()}, "threshold_m": threshold, "relative": relative, "rows": []}
    models = {name: DepthSectorModel(paths[name]) for name in ARCHITECTURES}
    window = DepthWindowModel(paths["window"])
    report["rows"] = heldout_rows(models["cheap"], models["large"], window, threshold, data["heldout"], relative=relative)
    report["files"] = {name: str(path) for name, path in paths.items()}
    report["wall_time_s"] = time.perf_counter() - started
    return report


def heldout_rows(
    cheap: Any, large: Any, window: Any, threshold_m: float, heldout: Any, rounds: int = 1, relative: bool = False, gain: bool = False,
    timing: str = "turns",
) -> list[dict[str, Any]]:
    """Accuracy and time per frame of the cheap model, the large one and the cascade on labelled frames (one row each).

    Time: ``rounds`` passes over the frames, after a warm-up pass over the first 50, the three timed
    as :data:`aegis.training.depth_timing.TIMINGS` says for ``timing`` (default: in turn on each frame);
    the cascade with a budget that never binds (its escalation is the threshold's; ``gain``: the cheap
    model's predicted gain of the large one, its third output, against the threshold). The cheap row
    times :meth:`predict` (range and sigma).
    """
    if timing not in TIMINGS:
        raise ValueError(f"timing {timing!r}: expected one of {', '.join(TIMINGS)}")
    from aegis.inference.depth_cascade import DepthCascade

    cascade = DepthCascade(
        cheap.predict_with_gain if gain else cheap.predict, window.predict_sectors, window.p99_us, threshold_m, budget_us=1e9, whole=large.predict, whole_p99_us=large.p99_us,
        large_median_us=window.median_us, whole_median_us=large.median_us, relative=relative, gain=gain,
    )
    predictors = {"depth_cheap": cheap.predict, "depth_large": large.predict, "depth_cascade": cascade.predict}
    for depth in heldout.depth[:50]:
        for predict in predictors.values():
            predict(depth)
    cascade.reset()
    n = len(heldout.depth)
    ranges = {name: np.empty((n, heldout.ranges.shape[1])) for name in predictors}
    times = {name: np.empty(n * rounds) for name in predictors}
    clock = time.perf_counter_ns
    calls = [(i, name) for name in predictors for i in range(n)] if timing == "blocks" else [(i, name) for i in range(n) for name in predictors]
    evict = np.ones(EVICT_BYTES // 8).sum if timing == "evicted" else None
    for r in range(rounds):
        for i, name in calls:
            if evict is not None:
                evict()
            start = clock()
            answer = predictors[name](heldout.depth[i])
            times[name][r * n + i] = (clock() - start) / 1e3
            ranges[name][i] = answer[0]
    frames = cascade.counts.cheap_confident + cascade.counts.cheap_budget + cascade.counts.large
    escalated = {"depth_cascade": cascade.counts.large / max(frames, 1)}
    refined = {"depth_cascade": cascade.counts.sectors_refined / max(frames * heldout.ranges.shape[1], 1)}
    return [
        {"name": name, **accuracy(ranges[name], heldout.ranges), **_times(times[name]), "escalated": escalated.get(name), "sectors_refined": refined.get(name)}
        for name in predictors
    ]


def _times(times: np.ndarray) -> dict[str, float]:
    return {"mean_us": float(times.mean()), "median_us": float(np.median(times)), "p99_us": float(np.percentile(times, 99))}
