"""The depth cascade's escalation rules: the relative score (sigma / range), its threshold chosen as training does, the whole-frame choice by medians, merged windows."""

from __future__ import annotations

import numpy as np

from aegis.inference.depth_cascade import RANGE_FLOOR_M, DepthCascade, unsure_scores
from aegis.inference.depth_model import DepthWindowModel
from aegis.paths import share_dir
from aegis.training.depth_cascade_profile import merged_columns
from aegis.training.depth_train import accuracy, cascade_answers, choose_threshold

MODELS = share_dir() / "models"


def test_the_relative_score_is_sigma_over_range_floored() -> None:
    ranges, sigmas = np.array([4.0, 1.0, 0.0, 2.0]), np.array([0.2, 0.2, 0.05, 0.1])
    assert np.allclose(unsure_scores(ranges, sigmas, relative=False), sigmas)
    assert np.allclose(unsure_scores(ranges, sigmas, relative=True), [0.05, 0.2, 0.05 / RANGE_FLOOR_M, 0.05])


def _cascade(ranges: np.ndarray, sigmas: np.ndarray, relative: bool, threshold: float, **whole: object) -> tuple[DepthCascade, list]:
    calls: list = []

    def large(depth: np.ndarray, sectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append(sorted(int(s) for s in sectors))
        return np.full(len(sectors), 0.7), np.full(len(sectors), 0.02)

    cascade = DepthCascade(lambda d: (ranges.copy(), sigmas.copy()), large, lambda n: 1.0, threshold, budget_us=1e6, relative=relative, **whole)
    return cascade, calls


def test_the_relative_rule_refines_a_near_unsure_sector_before_a_far_one_with_the_same_sigma() -> None:
    ranges, sigmas = np.full(16, 4.5), np.full(16, 0.05)
    ranges[[2, 10]], sigmas[[2, 10]] = [0.8, 4.0], [0.2, 0.2]  # the same sigma: 25 % of a near range, 5 % of a far one
    cascade, calls = _cascade(ranges, sigmas, relative=False, threshold=0.15)
    assert cascade.predict(np.zeros((48, 80)))[2] == "large" and calls == [[2, 10]]
    cascade, calls = _cascade(ranges, sigmas, relative=True, threshold=0.1)
    out_ranges, _, stage = cascade.predict(np.zeros((48, 80)))
    assert stage == "large" and calls == [[2]] and out_ranges[2] == 0.7 and out_ranges[10] == 4.0
    assert cascade.counts.sectors_refined == 1


def test_the_whole_large_model_is_chosen_by_medians_when_given() -> None:
    ranges, sigmas = np.full(16, 3.0), np.full(16, 0.5)  # every sector unsure
    whole_calls: list = []

    def whole(depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        whole_calls.append(1)
        return np.full(16, 1.5), np.full(16, 0.03)

    # its p99 (a spike of the machine) above the windows', its median below: the medians decide, the whole model runs
    by_median = dict(whole=whole, whole_p99_us=lambda: 500.0, large_median_us=lambda n: 20.0 * n, whole_median_us=lambda: 100.0)
    cascade, calls = _cascade(ranges, sigmas, relative=False, threshold=0.2, **by_median)
    assert cascade.predict(np.zeros((48, 80)))[0][0] == 1.5 and whole_calls == [1] and calls == [] and cascade.counts.whole_frames == 1
    # without medians the p99s decide (the windows' p99 here: 1 µs), as before
    cascade, calls = _cascade(ranges, sigmas, relative=False, threshold=0.2, whole=whole, whole_p99_us=lambda: 500.0)
    assert cascade.predict(np.zeros((48, 80)))[0][0] == 0.7 and whole_calls == [1] and calls == [list(range(16))]
    # medians given and the windows' lower (few unsure sectors): the windows
    sigmas[3:] = 0.1
    cascade, calls = _cascade(ranges, sigmas, relative=False, threshold=0.2, **by_median)
    assert cascade.predict(np.zeros((48, 80)))[2] == "large" and calls == [[0, 1, 2]] and whole_calls == [1]


def test_choose_threshold_relative_keeps_the_error_within_the_tolerance_with_the_fewest_sectors() -> None:
    rng = np.random.default_rng(3)
    labels = rng.uniform(0.3, 5.0, (300, 16))
    cheap_ranges = labels + rng.normal(0.0, 0.02, labels.shape) + np.where(rng.random(labels.shape) < 0.1, 0.3 * labels, 0.0)
    large = (labels + rng.normal(0.0, 0.02, labels.shape), np.full(labels.shape, 0.02))
    cheap = (cheap_ranges, np.abs(cheap_ranges - labels) + 0.02 * cheap_ranges)  # a sigma that grows with the range
    tolerance = 0.002
    target = accuracy(large[0], labels)["mae_m"] + tolerance
    threshold = choose_threshold(cheap, large, labels, tolerance, relative=True)
    answer, refined = cascade_answers(cheap, large, threshold, relative=True)
    assert accuracy(answer, labels)["mae_m"] <= target and 0 < refined.mean() < 1
    above = np.unique(np.round(unsure_scores(*cheap, relative=True), 4))
    above = above[above > threshold]
    assert all(accuracy(cascade_answers(cheap, large, float(t), relative=True)[0], labels)["mae_m"] > target for t in above)


def test_merged_windows_share_their_margins() -> None:
    # bands of 5 columns, 2 of margin each side, an 80-column image
    assert merged_columns(np.array([], dtype=int), 5, 2, 80) == 0
    assert merged_columns(np.array([5]), 5, 2, 80) == 9
    assert merged_columns(np.array([5, 6, 7]), 5, 2, 80) == 19  # one window over the run, not 3 x 9 = 27
    assert merged_columns(np.array([0, 15, 7]), 5, 2, 80) == 7 + 9 + 7  # the image's edges cut the margins


def test_the_window_models_median_is_monotone_in_the_sectors_and_starts_at_its_probe() -> None:
    window = DepthWindowModel(MODELS / "husky_depth_window.onnx", warmup_calls=5)
    medians = [window.median_us(n) for n in range(1, 17)]
    assert medians == sorted(medians) and medians[0] == window.probe_us[0]
    depth = np.full((48, 80), 2.0, dtype=np.float32)
    for _ in range(25):
        window.predict_sectors(depth, np.array([4]))
    assert window.median_us(1) == window.latency[0].percentile_us(50.0) and window.median_us(2) >= window.median_us(1)


def test_a_spec_says_whether_its_threshold_is_relative_and_older_specs_read_as_sigma() -> None:
    from aegis.inference.depth_model import SectorSpec

    spec = SectorSpec(80, 48, 2, 16, 5.0, 58.0, (0.35, 0.0, 0.45), 0.2, cascade_sigma_threshold_m=0.064, cascade_relative=True)
    assert SectorSpec.from_json(spec.to_json()) == spec
    old = spec.to_json().replace(', "cascade_relative": true', "").replace('"cascade_relative": true, ', "")
    assert "cascade_relative" not in old and SectorSpec.from_json(old).cascade_relative is False


def test_the_node_takes_the_cheap_models_rule_unless_a_sigma_threshold_is_set() -> None:
    from aegis.inference.depth_model import read_sector_spec
    from aegis.nodes.depth_obstacles import DepthObstacles, DepthObstaclesParams

    mount = {"fov_deg": 58.0, "mount_xyz_m": (0.35, 0.0, 0.45), "mount_pitch_rad": 0.2, "max_range_m": 5.0}
    spec = read_sector_spec(MODELS / "husky_depth_cheap.onnx")
    cascade = DepthObstacles("depth", DepthObstaclesParams(**mount, method="cascade"))._learned[1]
    assert spec.cascade_rule == "gain"  # the shipped Husky cheap model: its gain head's prediction (aegis.training.depth_gain)
    assert cascade.gain is True and cascade.relative is False and cascade.sigma_threshold_m == spec.cascade_sigma_threshold_m
    cascade = DepthObstacles("depth", DepthObstaclesParams(**mount, method="cascade", sigma_threshold_m=0.2))._learned[1]
    assert cascade.gain is False and cascade.relative is False and cascade.sigma_threshold_m == 0.2


def test_fewest_refined_takes_the_most_unsure_first_until_within_2_mm() -> None:
    from aegis.training.depth_cascade_profile import fewest_refined, signals

    labels = np.full((4, 16), 2.0)
    cheap_ranges = labels.copy()
    cheap_ranges[0, :4] = 2.5  # 4 sectors 50 cm off: 3.1 cm of mean error; the large model is exact
    score = np.zeros_like(labels)
    score[0, :4] = [0.4, 0.3, 0.2, 0.1]
    refined = fewest_refined((cheap_ranges, score), labels.copy(), labels, score)
    # refining 3 of them leaves 0.5 / 64 = 7.8 mm, all 4: 0; the fewest within 2 mm is all 4, in score order
    assert refined.sum() == 4 and refined[0, :4].all()
    score[0, 3] = -1.0  # the wrong one ranked last: still all 4, after 60 other sectors that change nothing
    assert fewest_refined((cheap_ranges, score), labels.copy(), labels, score)[0, 3]
    assert set(signals(cheap_ranges, score)) >= {"sigma", "sigma/range", "-range"}


def test_the_oracle_counts_the_fewest_sectors_and_whole_frames_within_the_tolerance() -> None:
    from aegis.training.depth_cascade_profile import oracle_shares

    labels = np.full((4, 16), 2.0)
    cheap_ranges = labels.copy()
    cheap_ranges[0, :2] = 2.64  # 2 sectors of frame 0, 64 cm off each: 20 mm of mean error (1.28 / 64)
    cheap_ranges[1, 0] = 2.32  # 1 sector of frame 1, 32 cm: 5 mm more
    # within 6 mm of the exact large model: frame 0's 2 sectors (5 mm left), 1 frame of 4; within 3 mm: all 3, 2 frames
    assert oracle_shares(cheap_ranges, labels.copy(), labels, 0.006) == {"sectors": 2 / 64, "frames": 1 / 4}
    assert oracle_shares(cheap_ranges, labels.copy(), labels, 0.003) == {"sectors": 3 / 64, "frames": 2 / 4}
    assert oracle_shares(labels.copy(), labels.copy(), labels, 0.003) == {"sectors": 0.0, "frames": 0.0}


def test_a_cap_keeps_the_most_unsure_and_the_threshold_is_the_largest_meeting_depth_evals_criteria() -> None:
    from aegis.training.depth_cascade_profile import capped_refined, eval_threshold, meets

    scores = np.array([[0.9, 0.5, 0.7, 0.1], [0.2, 0.3, 0.1, 0.0]])
    assert capped_refined(scores, 0.4, None).tolist() == [[True, True, True, False], [False] * 4]
    assert capped_refined(scores, 0.4, 2).tolist() == [[True, False, True, False], [False] * 4]  # the two most unsure
    labels = np.full((2, 4), 2.0)
    large = labels.copy()  # exact
    cheap = labels.copy()
    cheap[0, 0], cheap[0, 2] = 2.2, 2.1  # 30 cm of error in the two most unsure sectors: 37.5 mm of mean error
    assert not meets(cheap, large, labels)
    assert eval_threshold(scores, cheap, large, labels, None) == 0.5  # refining the sectors above 0.5 (0.9, 0.7) fixes both
    assert eval_threshold(scores, cheap, large, labels, 1) is None  # one a frame leaves the 10 cm of frame 0's second: 12.5 mm
