"""The depth cascade's gain rule: its training target, its threshold, the cascade refining by predicted gain, the head leaving the cheap answers alone."""

from __future__ import annotations

import numpy as np
import pytest

from aegis.inference.depth_cascade import DepthCascade
from aegis.inference.depth_model import SectorSpec
from aegis.training.depth_gain import choose_gain_threshold, gain_target


def test_the_gain_target_is_how_much_nearer_the_truth_the_large_range_is() -> None:
    labels = np.array([[2.0, 2.0, 2.0, 1.0]])
    cheap = np.array([[2.5, 2.0, 1.9, 1.0]])
    large = np.array([[2.1, 2.3, 1.9, 1.0]])
    # 0.5 -> 0.1 off: +0.4; exact -> 0.3 off: -0.3; equal: 0
    assert np.allclose(gain_target(cheap, large, labels), [[0.4, -0.3, 0.0, 0.0]])


def test_the_gain_threshold_is_the_largest_keeping_the_error_within_2_mm_of_the_large_models() -> None:
    labels = np.full((4, 16), 2.0)
    cheap = labels.copy()
    cheap[0, :3] = [3.0, 2.5, 2.2]  # 1.7 m of error on 64 sectors: 2.7 cm mean; the large model is exact
    gains = np.zeros_like(labels)
    gains[0, :3] = [0.9, 0.4, 0.15]
    gains[1, 5] = 0.3  # a wrong guess: refining it changes nothing
    threshold = choose_gain_threshold(gains, cheap, labels.copy(), labels)
    # above 0.4: 0.7 / 64 = 1.1 cm left; above 0.3 or 0.15: 0.2 / 64 = 3.1 mm; above 0.0 (all four): 0
    assert threshold == pytest.approx(0.0)
    # a tolerance of 4 mm is met above 0.3 (the first two): the largest such threshold
    assert choose_gain_threshold(gains, cheap, labels.copy(), labels, tolerance_m=0.004) == pytest.approx(0.3)


def test_the_gain_rule_refines_where_the_predicted_gain_is_high_whatever_the_sigma() -> None:
    ranges, sigmas, gains = np.full(16, 3.0), np.full(16, 0.05), np.zeros(16)
    sigmas[4] = 0.9  # very unsure, but the large model would not help there
    gains[[7, 12]] = [0.3, 0.05]
    calls: list = []

    def large(depth: np.ndarray, sectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append(sorted(int(s) for s in sectors))
        return np.full(len(sectors), 1.2), np.full(len(sectors), 0.02)

    cascade = DepthCascade(lambda d: (ranges.copy(), sigmas.copy(), gains.copy()), large, lambda n: 1.0, 0.1, budget_us=1e6, gain=True)
    out_ranges, out_sigmas, stage = cascade.predict(np.zeros((48, 80)))
    assert stage == "large" and calls == [[7]] and out_ranges[7] == 1.2 and out_ranges[4] == 3.0 and out_sigmas[4] == 0.9
    gains[:] = 0.0
    assert cascade.predict(np.zeros((48, 80)))[2] == "cheap" and calls == [[7]]
    assert cascade.counts.sectors_refined == 1 and cascade.counts.cheap_confident == 1


def test_a_spec_carries_the_gain_rule_and_older_specs_read_as_without_it() -> None:
    spec = SectorSpec(80, 48, 2, 16, 5.0, 58.0, (0.35, 0.0, 0.45), 0.2, cascade_sigma_threshold_m=0.05, cascade_gain=True)
    assert SectorSpec.from_json(spec.to_json()) == spec and spec.cascade_rule == "gain"
    old = spec.to_json().replace(', "cascade_gain": true', "").replace('"cascade_gain": true, ', "")
    assert "cascade_gain" not in old and SectorSpec.from_json(old).cascade_rule == "sigma"


def test_the_gain_head_leaves_the_cheap_answers_and_trains_the_same_for_a_seed() -> None:
    torch = pytest.importorskip("torch")
    from aegis.training.depth_dataset import HUSKY_CAMERA, MAX_RANGE_M, SECTORS
    from aegis.training.depth_gain import gain_network, train_gain
    from aegis.training.depth_train import _network

    height, width = HUSKY_CAMERA.height_px // 2, HUSKY_CAMERA.width_px // 2
    rng = np.random.default_rng(0)
    inputs = rng.uniform(0.1, 1.0, (32, height * width)).astype(np.float32)
    targets = rng.normal(0.0, 0.1, (32, SECTORS))
    weights = []
    for _ in range(2):
        torch.manual_seed(1)
        cheap = _network(torch, "cheap", height, width, SECTORS, MAX_RANGE_M).eval()
        with torch.no_grad():
            before = cheap(torch.from_numpy(inputs)).numpy()
        network = train_gain(gain_network(torch, cheap), inputs, targets, seed=3, epochs=2, batch_size=16)
        with torch.no_grad():
            out = network(torch.from_numpy(inputs)).numpy()
        assert out.shape == (32, 3 * SECTORS) and np.array_equal(out[:, : 2 * SECTORS], before)  # range and sigma untouched
        weights.append(np.concatenate([p.detach().numpy().ravel() for p in network.gain.parameters()]))
    assert np.array_equal(weights[0], weights[1])


def test_a_gain_model_file_answers_as_the_cheap_model_plus_gains_and_its_lean_graph_as_its_export(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from aegis.inference.depth_model import DepthSectorModel, read_sector_spec
    from aegis.paths import share_dir
    from aegis.training.depth_gain import export_gain_model, gain_network
    from aegis.training.depth_dataset import RIGS
    from aegis.training.depth_train import network_from_onnx

    shipped = share_dir() / "models" / "quadrotor_depth_cheap.onnx"  # a plain cheap model (the Husky's ships with its gain head)
    torch.manual_seed(0)
    network = gain_network(torch, network_from_onnx(shipped, "cheap", RIGS["quadrotor"])).eval()  # an untrained head: any weights will do
    files = {lean: export_gain_model(network, shipped, tmp_path / f"lean_{lean}.onnx", 0.05, "test", 0, "test", lean=lean) for lean in (False, True)}
    spec = read_sector_spec(files[True])
    assert spec.cascade_rule == "gain" and spec.cascade_sigma_threshold_m == 0.05
    cheap, exported, lean = DepthSectorModel(shipped, warmup_calls=1), DepthSectorModel(files[False], warmup_calls=1), DepthSectorModel(files[True], warmup_calls=1)
    assert lean.has_gain and lean.runtime.contract.action_names == ("range", "sigma", "gain") and not cheap.has_gain
    rng = np.random.default_rng(0)
    for _ in range(5):
        depth = rng.uniform(0.3, 6.0, (48, 80)).astype(np.float32)
        depth[rng.random((48, 80)) < 0.05] = np.nan
        ranges, sigmas = (a.copy() for a in cheap.predict(depth))
        a, b = [np.concatenate(m.predict_with_gain(depth)) for m in (exported, lean)]
        assert np.allclose(a, b, atol=1e-5)
        assert np.allclose(b[:16], ranges, atol=1e-5) and np.allclose(b[16:32], sigmas, atol=1e-5)


def test_the_node_runs_the_gain_rule_of_a_cheap_model_that_carries_it_unless_a_sigma_threshold_is_set(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from aegis.nodes.depth_obstacles import DepthObstacles, DepthObstaclesParams
    from aegis.paths import share_dir
    from aegis.training.depth_gain import export_gain_model, gain_network
    from aegis.inference.depth_model import read_sector_spec
    from aegis.training.depth_dataset import RIGS
    from aegis.training.depth_train import network_from_onnx

    shipped = share_dir() / "models" / "quadrotor_depth_cheap.onnx"  # a plain cheap model (the Husky's ships with its gain head)
    torch.manual_seed(0)
    network = gain_network(torch, network_from_onnx(shipped, "cheap", RIGS["quadrotor"])).eval()
    path = export_gain_model(network, shipped, tmp_path / "cheap.onnx", 0.08, "test", 0, "test")
    spec = read_sector_spec(shipped)
    mount = {"fov_deg": spec.fov_deg, "mount_xyz_m": spec.mount_xyz_m, "mount_pitch_rad": spec.mount_pitch_rad, "max_range_m": 5.0, "shipped_models": "quadrotor"}
    cascade = DepthObstacles("depth", DepthObstaclesParams(**mount, method="cascade", cheap_model=path))._learned[1]
    assert cascade.gain and cascade.sigma_threshold_m == pytest.approx(0.08)
    assert cascade.predict(np.full((48, 80), 2.0, dtype=np.float32)) is not None
    cascade = DepthObstacles("depth", DepthObstaclesParams(**mount, method="cascade", cheap_model=path, sigma_threshold_m=0.2))._learned[1]
    assert not cascade.gain and not cascade.relative and cascade.sigma_threshold_m == 0.2


def test_the_gain_head_is_trained_on_a_plain_cheap_model_and_refuses_one_that_has_a_head(tmp_path, capsys) -> None:
    import shutil

    pytest.importorskip("torch")
    from aegis.inference.depth_model import read_sector_spec
    from aegis.paths import share_dir
    from aegis.training.depth_gain import main, run

    models = share_dir() / "models"
    assert read_sector_spec(models / "husky_depth_cheap.onnx").cascade_rule == "gain"  # the shipped Husky cheap model carries its head
    for name in ("cheap", "large", "window"):
        shutil.copyfile(models / f"husky_depth_{name}.onnx", tmp_path / f"husky_depth_{name}.onnx")
    with pytest.raises(ValueError, match=r"husky_depth_cheap.onnx: already has a gain head.*--models-dir"):
        run(tmp_path, tmp_path / "out", frames=1, validation_frames=1, epochs=1)
    assert main(["--models-dir", str(tmp_path), "--out", str(tmp_path / "out"), "--frames", "1", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "error: " in err and "already has a gain head" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_the_gain_head_is_never_written_over_the_plain_model_it_is_trained_on(tmp_path) -> None:
    import shutil

    pytest.importorskip("torch")
    from aegis.paths import share_dir
    from aegis.training.depth_gain import run

    plain = share_dir() / "models" / "quadrotor_depth_cheap.onnx"
    for name in ("cheap", "large", "window"):
        shutil.copyfile(share_dir() / "models" / f"quadrotor_depth_{name}.onnx", tmp_path / f"quadrotor_depth_{name}.onnx")
    with pytest.raises(ValueError, match="the folder of the plain cheap model"):
        run(tmp_path, tmp_path, frames=1, validation_frames=1, epochs=1, robot="quadrotor")
    assert (tmp_path / "quadrotor_depth_cheap.onnx").read_bytes() == plain.read_bytes()
