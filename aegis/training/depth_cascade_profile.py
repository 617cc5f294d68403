"""`python -m aegis.training.depth_cascade_profile`: where the depth cascade's time goes on held-out frames, and what a better escalation rule saves.

For issue 13's target (the cascade at <= 50 % of the large model's mean time, aegis.training.depth_eval):
this renders the validation and held-out frames of ``aegis train-depth`` (the same seeds as
aegis.training.depth_eval), loads the shipped cheap, large and window models as the node does, and

* picks each escalation rule's threshold on the VALIDATION frames exactly as training does
  (:func:`aegis.training.depth_train.choose_threshold`: the fewest sectors refined keeping the error
  within 2 mm of the large model's), on the ONNX models' answers: the sigma rule and the relative one
  (sigma / range, :func:`aegis.inference.depth_cascade.unsure_scores`), and, for a cheap model with a gain
  output (aegis.training.depth_gain), the gain rule (its predicted gain of the large model) at the threshold
  it carries (picked on the same validation frames); the threshold and rule the cheap model carries are printed beside them;
* on the held-out frames, times per frame, in turns (the large model, then the cascade with each
  rule, so the machine's load falls on them alike; ``--rounds`` passes after a warm-up), the
  cascades' stages: the cheap call, the window call by its number of sectors, the whole large model
  (when it is the cheaper way to the unsure sectors), and the rest (the decision and bookkeeping: the
  frame's time less the calls), and each rule's accuracy;
* ranks candidate signals of where the large network helps (:func:`signals`) on the validation frames:
  the fewest sectors, most unsure first, that keep the error within 2 mm, and on how many frames;
* counts the columns the window calls compute, and what windows merged over runs of adjacent
  unsure sectors (one window over a run's bands and the network's margin each side) would compute;
* prints each rule's floor (the cheap call and the rest on every frame, the cheapest window call on
  every frame it refines) and, on the validation frames, the oracle (:func:`oracle_shares`): the
  fewest sectors or whole frames, chosen by the labels, whose large answers meet depth_eval's 3 mm;
* for each rule, with no cap and with at most 1, 2 or 3 sectors a frame (the most unsure), the largest
  threshold whose answers meet depth_eval's two accuracy criteria on the VALIDATION frames
  (:func:`eval_threshold`; training's :func:`choose_threshold` keeps 2 mm instead), and what it does
  on the held-out frames: accuracy, met or not, the sectors and frames it refines.

Printed, never asserted: the times are the machine's.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from aegis.inference.depth_cascade import RANGE_FLOOR_M
from aegis.training.depth_eval import MAE_TOLERANCE_M, TIME_FRACTION

RULES = ("sigma", "sigma/range")
"""The rules every cheap model can use; one with a gain output (aegis.training.depth_gain) adds "gain": its predicted gain of the large model."""


def rule_scores(rule: str, answer: tuple[np.ndarray, ...]) -> np.ndarray:
    """A rule's unsure scores from the cheap model's answers (ranges, sigmas[, gains]): its sigma, sigma / range, or predicted gain."""
    from aegis.inference.depth_cascade import unsure_scores

    return answer[2] if rule == "gain" else unsure_scores(answer[0], answer[1], rule != "sigma")


def _timed(predict: Any, into: list[float]) -> Any:
    """``predict`` that appends its time (µs) to ``into``."""
    clock = time.perf_counter_ns

    def call(*args: Any) -> Any:
        started = clock()
        answer = predict(*args)
        into.append((clock() - started) / 1e3)
        return answer

    return call


def merged_columns(sectors: np.ndarray, band: int, margin: int, width_px: int) -> int:
    """Columns computed by one window per run of adjacent sectors (their bands plus ``margin`` each side, within the image)."""
    if not sectors.size:
        return 0
    sectors = np.sort(sectors)
    runs = np.split(sectors, np.flatnonzero(np.diff(sectors) > 1) + 1)
    return int(sum(min(width_px, (run[-1] + 1) * band + margin) - max(0, run[0] * band - margin) for run in runs))


def signals(ranges: np.ndarray, sigmas: np.ndarray) -> dict[str, np.ndarray]:
    """Candidate signals of where the large network helps, per sector, from the cheap model's answers (frames x sectors): larger, more unsure."""
    floor = np.maximum(ranges, RANGE_FLOOR_M)
    padded_sigmas, padded_ranges = np.pad(sigmas, ((0, 0), (1, 1)), mode="edge"), np.pad(ranges, ((0, 0), (1, 1)), mode="edge")
    jump = np.maximum(np.abs(padded_ranges[:, :-2] - ranges), np.abs(padded_ranges[:, 2:] - ranges))
    return {
        "sigma": sigmas, "-range": -ranges, "sigma/range": sigmas / floor, "sigma/range^0.5": sigmas / np.sqrt(floor),
        "sigma*(5-range)": sigmas * (5.0 + RANGE_FLOOR_M - ranges), "sigma+neighbours/2": sigmas + 0.5 * np.maximum(padded_sigmas[:, :-2], padded_sigmas[:, 2:]),
        "range jump": jump,
    }


def oracle_shares(cheap_ranges: np.ndarray, large_ranges: np.ndarray, labels: np.ndarray, tolerance_m: float) -> dict[str, float]:
    """The fewest sectors, and the fewest whole frames, whose large answer brings the mean error within ``tolerance_m`` of the large
    model's, chosen by the labels (an oracle: no rule can do better; the cascade's time floor for its refinements), as shares."""
    gain = np.abs(cheap_ranges - labels) - np.abs(large_ranges - labels)
    need = np.abs(cheap_ranges - labels).mean() - (np.abs(large_ranges - labels).mean() + tolerance_m)
    if need <= 0:
        return {"sectors": 0.0, "frames": 0.0}
    sectors = np.cumsum(np.sort(gain.ravel())[::-1]) / gain.size
    frames = np.cumsum(np.sort(gain.sum(axis=1))[::-1]) / gain.size
    return {"sectors": float((np.searchsorted(sectors, need) + 1) / gain.size), "frames": float((np.searchsorted(frames, need) + 1) / gain.shape[0])}


def capped_refined(scores: np.ndarray, threshold: float, cap: int | None) -> np.ndarray:
    """Which sectors a rule refines: score above ``threshold``, at most ``cap`` per frame (the highest scores; None: no cap)."""
    refined = scores > threshold
    if cap is not None:
        rank = np.argsort(np.argsort(-scores, axis=1, kind="stable"), axis=1, kind="stable")
        refined &= rank < cap
    return refined


def meets(predicted: np.ndarray, large: np.ndarray, labels: np.ndarray) -> bool:
    """Whether answers meet depth_eval's two accuracy criteria against the large model's answers on the same labels."""
    from aegis.training.depth_eval import WITHIN_10CM_TOLERANCE
    from aegis.training.depth_train import accuracy

    mine, theirs = accuracy(predicted, labels), accuracy(large, labels)
    return mine["mae_m"] <= theirs["mae_m"] + MAE_TOLERANCE_M and mine["within_10cm"] >= theirs["within_10cm"] - WITHIN_10CM_TOLERANCE


def eval_threshold(scores: np.ndarray, cheap_ranges: np.ndarray, large_ranges: np.ndarray, labels: np.ndarray, cap: int | None) -> float | None:
    """The largest threshold (of the scores, to 4 digits) whose answers meet depth_eval's two criteria with at most ``cap`` sectors a frame; None: none does."""
    for threshold in np.unique(np.round(scores, 4))[::-1]:
        if meets(np.where(capped_refined(scores, float(threshold), cap), large_ranges, cheap_ranges), large_ranges, labels):
            return float(threshold)
    return None


def fewest_refined(cheap: tuple[np.ndarray, np.ndarray], large: np.ndarray, labels: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Which sectors to refine, most unsure by ``score`` first, so that the fewest keep the error within training's 2 mm of the large model's."""
    from aegis.training.depth_train import TOLERANCE_M

    order = np.argsort(-score.ravel(), kind="stable")
    change = (np.abs(large - labels) - np.abs(cheap[0] - labels)).ravel()[order]
    error = np.abs(cheap[0] - labels).mean() + np.cumsum(change) / change.size
    within = np.flatnonzero(error <= np.abs(large - labels).mean() + TOLERANCE_M)
    refined = np.zeros(score.size, dtype=bool)
    refined[order[: within[0] + 1 if within.size else score.size]] = True
    return refined.reshape(score.shape)


def run(models_dir: Path, seed: int, frames: int, rounds: int, robot: str = "husky") -> dict[str, Any]:
    """The module docstring's measurements; a dict of the thresholds, the stage times and the accuracies."""
    from aegis.inference.depth_cascade import DepthCascade
    from aegis.inference.depth_model import DepthSectorModel, DepthWindowModel
    from aegis.training.depth_dataset import RIGS, generate
    from aegis.training.depth_pipeline import SEED_OFFSETS, model_paths
    from aegis.training.depth_train import accuracy, choose_threshold

    paths = model_paths(models_dir, robot)
    cheap, large, window = DepthSectorModel(paths["cheap"]), DepthSectorModel(paths["large"]), DepthWindowModel(paths["window"])
    if cheap.spec.cascade_sigma_threshold_m is None:
        raise ValueError(f"{paths['cheap']}: carries no cascade threshold (not a cheap stage made by aegis train-depth)")
    validation = generate(frames, seed + SEED_OFFSETS["validation"], rig=RIGS[robot])
    heldout = generate(frames, seed + SEED_OFFSETS["heldout"], rig=RIGS[robot])

    rules = RULES + ("gain",) if cheap.has_gain else RULES

    def answers(model: DepthSectorModel, data: Any) -> tuple[np.ndarray, ...]:
        out = [model.predict_with_gain(depth) if model.has_gain else model.predict(depth) for depth in data.depth]
        return tuple(np.array([a[j] for a in out]) for j in range(len(out[0])))

    val_cheap, val_large = answers(cheap, validation), answers(large, validation)
    thresholds = {rule: choose_threshold(val_cheap[:2], val_large, validation.ranges, relative=rule != "sigma") for rule in RULES}
    if cheap.has_gain:  # the threshold it carries (aegis.training.depth_gain picked it on these frames, by its --criteria)
        thresholds["gain"] = float(cheap.spec.cascade_sigma_threshold_m)
    validation_refined = {rule: float((rule_scores(rule, val_cheap) > thresholds[rule]).mean()) for rule in rules}
    gain = np.abs(val_cheap[0] - validation.ranges) - np.abs(val_large[0] - validation.ranges)
    signal_rows = {}
    candidates = {**signals(val_cheap[0], val_cheap[1]), **({"predicted gain": val_cheap[2]} if cheap.has_gain else {})}
    for name, score in candidates.items():
        refined = fewest_refined(val_cheap, val_large[0], validation.ranges, score)
        signal_rows[name] = {"sectors": float(refined.mean()), "frames": float(refined.any(axis=1).mean()),
                             "gain_correlation": float(np.corrcoef(score.ravel(), gain.ravel())[0, 1])}
    oracle = oracle_shares(val_cheap[0], val_large[0], validation.ranges, MAE_TOLERANCE_M)
    heldout_large = answers(large, heldout)
    heldout_cheap = answers(cheap, heldout)
    criteria_rows = []  # each rule's threshold chosen on the validation frames for depth_eval's own criteria, with and without a cap, then on the held-out ones
    for rule in rules:
        val_scores, held_scores = rule_scores(rule, val_cheap), rule_scores(rule, heldout_cheap)
        for cap in (None, 1, 2, 3):
            threshold = eval_threshold(val_scores, val_cheap[0], val_large[0], validation.ranges, cap)
            row: dict[str, Any] = {"rule": rule, "cap": cap, "threshold": threshold}
            if threshold is not None:
                refined = capped_refined(held_scores, threshold, cap)
                answer = np.where(refined, heldout_large[0], heldout_cheap[0])
                row.update({**accuracy(answer, heldout.ranges), "met": meets(answer, heldout_large[0], heldout.ranges),
                            "sectors": float(refined.mean()), "frames": float(refined.any(axis=1).mean())})
            criteria_rows.append(row)
    shipped = {"threshold": cheap.spec.cascade_sigma_threshold_m, "rule": {"relative": "sigma/range"}.get(cheap.spec.cascade_rule, cheap.spec.cascade_rule)}

    stages: dict[str, dict[str, list[float]]] = {rule: {"cheap": [], "window": [], "whole": []} for rule in rules}
    cascades = {
        rule: DepthCascade(
            _timed(cheap.predict_with_gain if rule == "gain" else cheap.predict, stages[rule]["cheap"]), _timed(window.predict_sectors, stages[rule]["window"]),
            window.p99_us, thresholds[rule], budget_us=1e9, whole=_timed(large.predict, stages[rule]["whole"]), whole_p99_us=large.p99_us,
            relative=rule != "sigma", large_median_us=window.median_us, whole_median_us=large.median_us, gain=rule == "gain",
        )
        for rule in rules
    }
    for depth in heldout.depth[:50]:  # warm-up, as depth_pipeline.heldout_rows
        large.predict(depth)
        for cascade in cascades.values():
            cascade.predict(depth)
    for rule, cascade in cascades.items():
        cascade.reset()
        for times in stages[rule].values():
            times.clear()
    n = len(heldout.depth)
    clock = time.perf_counter_ns
    large_us = np.empty(n * rounds)
    frame_us = {rule: np.empty(n * rounds) for rule in rules}
    window_n = {rule: np.zeros(n * rounds, dtype=int) for rule in rules}
    window_us = {rule: np.zeros(n * rounds) for rule in rules}
    whole_us = {rule: np.zeros(n * rounds) for rule in rules}
    ranges = {rule: np.empty_like(heldout.ranges) for rule in rules}
    columns = {rule: [0, 0] for rule in rules}  # per-sector windows, merged windows
    for rule in rules:
        for unsure in rule_scores(rule, heldout_cheap) > thresholds[rule]:
            sectors = np.flatnonzero(unsure)
            columns[rule][0] += sectors.size * window.width
            columns[rule][1] += merged_columns(sectors, window.band, (window.width - window.band) // 2, cheap.spec.width_px)
    for r in range(rounds):
        for i, depth in enumerate(heldout.depth):
            started = clock()
            large.predict(depth)
            large_us[r * n + i] = (clock() - started) / 1e3
            for rule, cascade in cascades.items():
                before = (cascade.counts.sectors_refined, len(stages[rule]["window"]), len(stages[rule]["whole"]))
                started = clock()
                answer = cascade.predict(depth)
                frame_us[rule][r * n + i] = (clock() - started) / 1e3
                if len(stages[rule]["window"]) > before[1]:
                    window_us[rule][r * n + i] = stages[rule]["window"][-1]
                    window_n[rule][r * n + i] = cascade.counts.sectors_refined - before[0]
                if len(stages[rule]["whole"]) > before[2]:
                    whole_us[rule][r * n + i] = stages[rule]["whole"][-1]
                ranges[rule][i] = answer[0]
    report: dict[str, Any] = {
        "robot": robot, "seed": seed, "frames": frames, "rounds": rounds, "thresholds": thresholds, "validation_refined": validation_refined, "shipped": shipped, "signals": signal_rows, "oracle": oracle, "criteria_thresholds": criteria_rows,
        "large": {"mean_us": float(large_us.mean()), "median_us": float(np.median(large_us)), **accuracy(heldout_large[0], heldout.ranges)},
        "rules": {},
    }
    for rule in rules:
        cheap_us = np.array(stages[rule]["cheap"])
        rest = frame_us[rule] - cheap_us - window_us[rule] - whole_us[rule]
        by_size = {}
        for size in range(1, cheap.spec.sectors + 1):
            calls = window_us[rule][window_n[rule] == size]
            if calls.size:
                by_size[size] = {"frames": float(calls.size / (n * rounds)), "median_us": float(np.median(calls)), "mean_us": float(calls.mean()),
                                 "per_frame_us": float(calls.sum() / (n * rounds))}
        counts = cascades[rule].counts
        report["rules"][rule] = {
            **accuracy(ranges[rule], heldout.ranges),
            "mean_us": float(frame_us[rule].mean()), "median_us": float(np.median(frame_us[rule])),
            "cheap_mean_us": float(cheap_us.mean()), "cheap_median_us": float(np.median(cheap_us)),
            "window_mean_us": float(window_us[rule].mean()), "whole_mean_us": float(whole_us[rule].mean()), "whole_median_us": float(np.median(whole_us[rule][whole_us[rule] > 0])) if (whole_us[rule] > 0).any() else 0.0, "rest_mean_us": float(rest.mean()), "rest_median_us": float(np.median(rest)),
            "window_by_sectors": by_size,
            "frames_refined": float(((window_n[rule] > 0) | (whole_us[rule] > 0)).mean()), "sectors_refined": counts.sectors_refined / max(n * rounds * cheap.spec.sectors, 1),
            "whole_frames": counts.whole_frames,
            "floor_us": float(cheap_us.mean() + rest.mean() + ((window_n[rule] > 0) | (whole_us[rule] > 0)).mean() * by_size.get(1, {"median_us": np.nan})["median_us"]),
            "floor_median_us": float(np.median(cheap_us) + np.median(rest) + ((window_n[rule] > 0) | (whole_us[rule] > 0)).mean() * by_size.get(1, {"median_us": np.nan})["median_us"]),
            "columns_per_frame": columns[rule][0] / n, "merged_columns_per_frame": columns[rule][1] / n,
        }
    return report


def print_profile(report: dict[str, Any]) -> None:
    """The report as lines of text."""
    large = report["large"]
    print(f"{report['frames']} held-out frames x {report['rounds']} rounds ({report['robot']}, seed {report['seed']}); "
          f"large: mean {large['mean_us']:.0f} µs, median {large['median_us']:.0f} µs, MAE {100 * large['mae_m']:.2f} cm, within 10 cm {large['within_10cm']:.1%}")
    shipped = report["shipped"]
    gain = (f"; predicted gain threshold {report['thresholds']['gain']:.4f} m, refining {report['validation_refined']['gain']:.1%}"
            if "gain" in report["thresholds"] else "")
    print(f"validation: sigma threshold {report['thresholds']['sigma']:.3f} m, refining {report['validation_refined']['sigma']:.1%} of sectors; "
          f"sigma/range threshold {report['thresholds']['sigma/range']:.4f}, refining {report['validation_refined']['sigma/range']:.1%}{gain} "
          f"(the cheap model carries {shipped['rule']} {shipped['threshold']:.4g})")
    for name, row in report["signals"].items():
        print(f"validation signal {name}: the fewest sectors for 2 mm {row['sectors']:.1%} on {row['frames']:.1%} of frames; "
              f"correlation with the large model's gain {row['gain_correlation']:+.2f}")
    oracle = report["oracle"]
    print(f"validation oracle (by the labels): the large answer on {oracle['sectors']:.1%} of sectors, or on {oracle['frames']:.1%} of frames whole, "
          f"brings the error within {1000 * MAE_TOLERANCE_M:.0f} mm of the large model's")
    for row in report["criteria_thresholds"]:
        cap = "no cap" if row["cap"] is None else f"at most {row['cap']} a frame"
        if row["threshold"] is None:
            print(f"depth_eval's criteria on the validation frames, {row['rule']}, {cap}: no threshold meets them")
            continue
        print(f"depth_eval's criteria on the validation frames, {row['rule']}, {cap}: threshold {row['threshold']:.4g}; held-out MAE {100 * row['mae_m']:.2f} cm, "
              f"within 10 cm {row['within_10cm']:.1%} ({'met' if row['met'] else 'NOT met'}), refining {row['sectors']:.1%} of sectors on {row['frames']:.1%} of frames")
    for rule, row in report["rules"].items():
        print(f"rule {rule}: MAE {100 * row['mae_m']:.2f} cm, within 10 cm {row['within_10cm']:.1%}; mean {row['mean_us']:.0f} µs "
              f"({row['mean_us'] / large['mean_us']:.0%} of large), median {row['median_us']:.0f} µs; refined {row['sectors_refined']:.1%} of sectors "
              f"on {row['frames_refined']:.1%} of frames ({row['whole_frames']} by the whole large model)")
        print(f"  mean per frame: cheap {row['cheap_mean_us']:.0f} µs (median {row['cheap_median_us']:.0f}), window {row['window_mean_us']:.0f}, "
              f"whole large model {row['whole_mean_us']:.0f} (median of a call {row['whole_median_us']:.0f}), rest {row['rest_mean_us']:.0f} (median {row['rest_median_us']:.1f})")
        for size, w in row["window_by_sectors"].items():
            print(f"  window call of {size} sectors: {w['frames']:.1%} of frames, median {w['median_us']:.0f} µs, mean {w['mean_us']:.0f}, "
                  f"{w['per_frame_us']:.1f} µs per frame")
        print(f"  window columns per frame {row['columns_per_frame']:.1f}; merged over runs of adjacent sectors {row['merged_columns_per_frame']:.1f}")
        print(f"  floor of this rule: the cheap call and the rest on every frame, a window call of 1 sector (its median) on each refined frame: "
              f"{row['floor_us']:.0f} µs ({row['floor_us'] / large['mean_us']:.0%} of large's mean; the target is {TIME_FRACTION:.0%}); by the medians "
              f"{row['floor_median_us']:.0f} µs ({row['floor_median_us'] / large['median_us']:.0%} of large's)")


def main(argv: list[str] | None = None) -> int:
    from aegis.training.depth_cli import run_shipped_models_tool, shipped_models_parser

    parser = shipped_models_parser(
        "python -m aegis.training.depth_cascade_profile", __doc__.splitlines()[0],
        "validation and held-out frames each (default: 400, as aegis train-depth)",
    )
    args = parser.parse_args(argv)
    report = run_shipped_models_tool(run, args)
    if report is None:
        return 2
    print_profile(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
