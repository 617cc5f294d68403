"""The learned depth path: sector labels and model input, sectors -> obstacles and their memory, the cascade's escalation, the shipped models, the node."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aegis.inference.depth_cascade import DepthCascade, escalate
from aegis.inference.depth_model import DepthSectorModel, DepthWindowModel, read_sector_spec
from aegis.msgs import Image, RobotState
from aegis.node import Received
from aegis.paths import share_dir
from aegis.perception.depth_sectors import ModelInput, SectorGeometry, SectorMemory, model_input, sector_obstacles
from aegis.sim.sensors.depth_noise import DepthNoiseParams, noisy_depth

MODELS = share_dir() / "models"


def _yaw(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_model_input_clips_fills_holes_and_block_mins() -> None:
    depth = np.array([[1.0, np.nan, np.inf, 9.0], [2.0, 3.0, np.nan, np.nan]], dtype=np.float32)
    assert model_input(depth, 5.0).tolist() == [1.0, 0.0, 5.0, 5.0, 2.0, 3.0, 0.0, 0.0]
    # 2x2 blocks: the nearest valid pixel; a block of holes only stays a hole (0)
    assert model_input(depth, 5.0, factor=2).tolist() == [1.0, 5.0]
    assert model_input(np.full((2, 2), np.nan, dtype=np.float32), 5.0, factor=2).tolist() == [0.0]


@pytest.mark.parametrize("factor", [1, 2])
def test_model_input_is_the_plain_numpy_reference_on_noisy_images(factor: int) -> None:
    rng = np.random.default_rng(0)
    depth = rng.uniform(-1.0, 8.0, (48, 80)).astype(np.float32)
    depth[rng.random(depth.shape) < 0.3] = np.nan
    depth[rng.random(depth.shape) < 0.1] = np.inf
    blocks = depth.reshape(48 // factor, factor, 80 // factor, factor).transpose(0, 2, 1, 3).reshape(48 // factor, 80 // factor, -1)
    with np.errstate(all="ignore"):
        nearest = np.where(np.isnan(blocks).all(axis=2), np.nan, np.nanmin(np.where(np.isnan(blocks), np.inf, blocks), axis=2))
    reference = np.clip(np.nan_to_num(nearest, nan=0.0, posinf=5.0), 0.0, 5.0).reshape(-1)
    out = np.empty(reference.size, dtype=np.float32)
    assert np.array_equal(model_input(depth, 5.0, factor, out=out), reference.astype(np.float32))


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_model_input_buffers_give_model_inputs_values(factor: int) -> None:
    rng = np.random.default_rng(factor)
    prepare = ModelInput(48, 72, 5.0, factor)
    for _ in range(3):  # the buffers are rewritten, never carried over from the frame before
        depth = rng.uniform(-1.0, 8.0, (48, 72)).astype(np.float32)
        depth[rng.random(depth.shape) < 0.3] = np.nan
        depth[rng.random(depth.shape) < 0.1] = np.inf
        depth[:factor, :factor] = np.nan  # a block of holes only
        assert np.array_equal(prepare(depth), model_input(depth, 5.0, factor))
    assert np.array_equal(prepare(depth.astype(np.float64)), model_input(depth, 5.0, factor))
    with pytest.raises(ValueError, match=r"depth image \(80, 48\) px, expected \(72, 48\)"):
        prepare(np.zeros((48, 80), dtype=np.float32))
    with pytest.raises(ValueError, match="not a whole number of 5x5 blocks"):
        ModelInput(48, 72, 5.0, 5)


def test_noise_model_is_seeded_and_makes_holes() -> None:
    clean = np.full((48, 80), 3.0, dtype=np.float32)
    clean[:, 40:] = np.inf
    a = noisy_depth(clean, DepthNoiseParams(), np.random.default_rng(4))
    b = noisy_depth(clean, DepthNoiseParams(), np.random.default_rng(4))
    assert np.array_equal(a, b, equal_nan=True)
    assert np.isnan(a).any() and np.isinf(a[:, 41:]).sum() + np.isnan(a[:, 41:]).sum() == 48 * 39
    finite = a[np.isfinite(a)]
    assert 0.01 < float(np.std(finite)) < 0.2 and abs(float(np.mean(finite)) - 3.0) < 0.05


def test_labels_of_a_wall_ahead() -> None:
    """A flat wall 2 m ahead of a level camera: every sector's label is its horizontal distance, 2 m at the centre, more at the edges."""
    g = SectorGeometry(80, 48, 58.0, sectors=16, max_range_m=5.0, ground_z_m=-10.0, max_height_m=10.0)
    labels = g.labels(np.full((48, 80), 2.0))
    assert labels[7] == pytest.approx(2.0, abs=0.01) and labels[8] == pytest.approx(2.0, abs=0.01)
    assert labels[0] > 2.2 and labels[0] == pytest.approx(labels[15])
    assert g.labels(np.full((48, 80), np.inf)).tolist() == [5.0] * 16


def test_sector_obstacles_at_range_and_bearing_in_the_world() -> None:
    g = SectorGeometry(80, 48, 58.0, mount_xyz_m=(0.35, 0.0, 0.45), sectors=16, max_range_m=5.0)
    ranges = np.full(16, 5.0)
    ranges[3] = 2.0  # left of centre
    position, rotation = np.array([1.0, 2.0, 0.0]), _yaw(math.pi / 2)  # facing world +y
    [cylinder] = sector_obstacles(ranges, np.full(16, 0.1), g, position, rotation, stamp=1.0)
    camera = position + rotation @ np.array([0.35, 0.0, 0.45])
    offset = cylinder.centre[:2] - camera[:2]
    assert np.hypot(*offset) - cylinder.radius_m == pytest.approx(2.0)  # its near face at the predicted range
    assert math.atan2(offset[1], offset[0]) == pytest.approx(math.pi / 2 + g.bearings_rad[3])
    assert g.bearings_rad[3] > 0.0  # sectors count from the image's left: body +y
    assert cylinder.sigma_m == 0.1 and cylinder.stamp == 1.0


def test_sector_memory_keeps_what_left_the_view_and_replaces_what_is_in_it() -> None:
    g = SectorGeometry(80, 48, 58.0, sectors=16, max_range_m=5.0)
    memory = SectorMemory(g, memory_s=10.0)
    ranges = np.full(16, 5.0)
    ranges[8] = 1.5
    seen = sector_obstacles(ranges, np.full(16, 0.1), g, np.zeros(3), _yaw(0.0), stamp=0.0)
    assert len(memory.update(seen, np.zeros(3), _yaw(0.0), 0.0)) == 1
    # turned away: the obstacle is out of view, remembered
    assert len(memory.update([], np.zeros(3), _yaw(math.pi), 1.0)) == 1
    # looking at it again and seeing free space there: forgotten
    assert memory.update([], np.zeros(3), _yaw(0.0), 2.0) == []
    seen = sector_obstacles(ranges, np.full(16, 0.1), g, np.zeros(3), _yaw(0.0), stamp=3.0)
    memory.update(seen, np.zeros(3), _yaw(0.0), 3.0)
    assert len(memory.update([], np.zeros(3), _yaw(math.pi), 12.0)) == 1
    assert memory.update([], np.zeros(3), _yaw(math.pi), 13.5) == []  # older than memory_s


def test_escalate_needs_low_confidence_and_budget() -> None:
    assert escalate(0.05, 0.2, spent_us=50, budget_us=1000, large_p99_us=300) == (False, "confident")
    assert escalate(0.5, 0.2, spent_us=50, budget_us=1000, large_p99_us=300) == (True, "large")
    assert escalate(0.5, 0.2, spent_us=800, budget_us=1000, large_p99_us=300) == (False, "budget")


class _FakeClock:
    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


def _fake_cascade(budget_us: float, sigmas: np.ndarray) -> tuple[DepthCascade, list]:
    """A cascade whose cheap stage takes 100 µs and answers ``sigmas``, whose large network's one call takes 10 µs + 30 µs a sector
    (p99: 15 µs + 35 µs a sector), on a fake clock; ``calls`` lists "cheap" and each large call's sectors."""
    clock, calls = _FakeClock(), []

    def cheap(depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append("cheap")
        clock.ns += 100_000
        return np.full(16, 3.0), np.array(sigmas, dtype=float)

    def large(depth: np.ndarray, sectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append(list(sectors))
        clock.ns += 10_000 + 30_000 * len(sectors)
        return np.full(len(sectors), 2.0), np.full(len(sectors), 0.05)

    return DepthCascade(cheap, large, lambda n: 15.0 + 35.0 * n, sigma_threshold_m=0.2, budget_us=budget_us, clock_ns=clock), calls


def test_cascade_refines_only_the_unsure_sectors_in_one_call() -> None:
    sigmas = np.full(16, 0.1)
    sigmas[[3, 9, 12]] = [0.3, 0.6, 0.4]
    cascade, calls = _fake_cascade(budget_us=1000.0, sigmas=sigmas)
    ranges, out_sigmas, stage = cascade.predict(np.zeros((48, 80)))
    assert stage == "large" and calls == ["cheap", [3, 9, 12]]  # all fit: in sector order, unsorted (most unsure first only when the budget binds)
    assert np.flatnonzero(ranges == 2.0).tolist() == [3, 9, 12] and out_sigmas[9] == 0.05 and out_sigmas[0] == 0.1
    assert cascade.counts.sectors_refined == 3 and cascade.counts.large == 1
    cascade, calls = _fake_cascade(budget_us=1000.0, sigmas=np.full(16, 0.1))
    assert cascade.predict(np.zeros((48, 80)))[2] == "cheap" and calls == ["cheap"]


def test_cascade_refines_as_many_sectors_as_the_budget_left_covers() -> None:
    sigmas = np.full(16, 0.1)
    sigmas[[3, 9, 12]] = [0.3, 0.6, 0.4]
    # 100 µs cheap; a call on n sectors needs its p99 (15 + 35 n µs) left: 200 µs takes two sectors (85 µs), not three (120)
    cascade, calls = _fake_cascade(budget_us=200.0, sigmas=sigmas)
    for _ in range(3):
        ranges, _, stage = cascade.predict(np.zeros((48, 80)))
        assert stage == "cheap_budget" and ranges[3] == 3.0 and ranges[9] == ranges[12] == 2.0
    assert calls[1:3] == [[9, 12], "cheap"] and cascade.counts.sectors_refined == 6 and cascade.counts.sectors_budget == 3
    assert max(cascade.frame_us) <= 200.0
    # no room at all: the cheap answer, whatever the confidence
    cascade, calls = _fake_cascade(budget_us=149.0, sigmas=np.full(16, 0.5))
    assert cascade.predict(np.zeros((48, 80)))[2] == "cheap_budget" and calls == ["cheap"] and cascade.counts.sectors_budget == 16


def test_a_sector_the_large_network_answers_with_nan_keeps_the_cheap_answer() -> None:
    def large(depth: np.ndarray, sectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.array([2.0, np.nan]), np.array([0.05, 0.05])

    sigmas = np.full(16, 0.1)
    sigmas[[4, 7]] = [0.5, 0.4]
    cascade = DepthCascade(lambda d: (np.full(16, 3.0), sigmas.copy()), large, lambda n: 1.0, sigma_threshold_m=0.2, budget_us=1e6)
    ranges, _, stage = cascade.predict(np.zeros((48, 80)))
    assert stage == "large" and ranges[4] == 2.0 and ranges[7] == 3.0
    assert cascade.counts.sectors_refined == 1 and cascade.counts.failed == 1


def test_the_window_model_answers_each_sector_as_the_large_model() -> None:
    large, window = DepthSectorModel(MODELS / "husky_depth_large.onnx"), DepthWindowModel(MODELS / "husky_depth_window.onnx")
    rng = np.random.default_rng(0)
    frames = [_wall_ahead(d) for d in (1.0, 2.5)]
    frames += [noisy_depth(rng.uniform(0.5, 6.0, (48, 80)).astype(np.float32), DepthNoiseParams(), rng) for _ in range(3)]
    for depth in frames:
        a, b = large.predict(depth), window.predict(depth)
        assert np.allclose(a[0], b[0], atol=1e-4) and np.allclose(a[1], b[1], atol=1e-4)
    assert window.spec.window_px == 9 and window.starts[0] == 0 and window.starts[-1] == 71


@pytest.mark.parametrize("robot", ["husky", "quadrotor"])
def test_one_batched_call_answers_each_sector_as_one_call_per_sector(robot: str) -> None:
    window = DepthWindowModel(MODELS / f"{robot}_depth_window.onnx")
    rng = np.random.default_rng(1)
    for _ in range(4):
        depth = noisy_depth(rng.uniform(0.5, 6.0, (48, 80)).astype(np.float32), DepthNoiseParams(), rng)
        for n in (1, 3, 16):
            sectors = rng.permutation(16)[:n]
            ranges, sigmas = window.predict_sectors(depth, sectors)
            one_by_one = np.array([window.predict_sector(depth, int(s)) for s in sectors])
            assert np.allclose(ranges, one_by_one[:, 0], atol=1e-5) and np.allclose(sigmas, one_by_one[:, 1], atol=1e-5)
    assert [window.latency[n - 1].count for n in (1, 3, 16)] == [4, 4, 4]  # one call each, timed by its number of sectors
    assert all(window.p99_us(n) <= window.p99_us(n + 1) for n in range(1, 16))  # a larger call never looks cheaper


def test_a_non_finite_window_gives_a_nan_sector_and_the_others_their_answers() -> None:
    window = DepthWindowModel(MODELS / "husky_depth_window.onnx")
    depth = _wall_ahead(2.0).astype(np.float32)
    good = window.predict_sectors(depth, np.array([2, 8]))
    window._bearing_table[8, 0] = np.nan  # a broken input in sector 8's window only
    ranges, sigmas = window.predict_sectors(depth, np.array([2, 8]))
    assert ranges[0] == good[0][0] and sigmas[0] == good[1][0] and np.isnan(ranges[1]) and np.isnan(sigmas[1])


@pytest.mark.parametrize("name, factor", [("cheap", 2), ("large", 1)])
def test_shipped_models_load_through_the_runtime_and_their_contract(name: str, factor: int) -> None:
    path = MODELS / f"husky_depth_{name}.onnx"
    spec = read_sector_spec(path)
    assert (spec.width_px, spec.height_px, spec.factor, spec.sectors) == (80, 48, factor, 16)
    assert (spec.cascade_sigma_threshold_m is not None) == (name == "cheap")
    model = DepthSectorModel(path)
    contract = model.runtime.contract
    assert contract.observation_names == ("depth",) and contract.input_size == 80 * 48 // factor**2
    head = ("gain",) if name == "cheap" else ()  # the Husky's cheap model ships with its gain head (aegis.training.depth_gain)
    assert contract.action_names == ("range", "sigma", *head) and {f.unit for f in contract.action} == {"m"}
    assert contract.producer is not None and contract.producer.name == ("aegis depth_gain" if head else "aegis train-depth")
    wall = np.full((48, 80), np.inf, dtype=np.float32)
    ranges, sigmas = model.predict(wall)
    assert ranges.shape == (16,) and np.all((ranges >= 0) & (ranges <= 5.0)) and np.all(sigmas > 0)


def test_depth_dataset_is_deterministic_for_a_seed() -> None:
    from aegis.training.depth_dataset import generate

    a, b, c = generate(6, seed=3, poses_per_layout=3), generate(6, seed=3, poses_per_layout=3), generate(6, seed=4, poses_per_layout=3)
    assert np.array_equal(a.depth, b.depth, equal_nan=True) and np.array_equal(a.ranges, b.ranges)
    assert not np.array_equal(a.depth, c.depth, equal_nan=True)
    assert a.depth.shape == (6, 48, 80) and a.ranges.shape == (6, 16) and np.all(a.ranges <= 5.0)


def _node(**params: object):
    from aegis.nodes.depth_obstacles import DepthObstacles, DepthObstaclesParams

    mount = {"fov_deg": 58.0, "mount_xyz_m": (0.35, 0.0, 0.45), "mount_pitch_rad": 0.2, "max_range_m": 5.0}
    return DepthObstacles("depth", DepthObstaclesParams(**{**mount, **params}))


def _frame(node, depth: np.ndarray, t: float):
    image = Image(stamp=t, frame_id="camera_optical_frame", encoding="32FC1", data=depth.astype(np.float32))
    state = RobotState(stamp=t, orientation=np.array([0.0, 0.0, 0.0, 1.0]))
    return node.step(t, {"depth": Received(image, 0.0, False), "state": Received(state, 0.0, False)})


def _wall_ahead(distance: float) -> np.ndarray:
    """A z-depth image of a wall across the whole view ``distance`` ahead of a camera pitched 0.2 rad down at 0.45 m (the floor in front)."""
    g = SectorGeometry(80, 48, 58.0, (0.35, 0.0, 0.45), 0.2)
    rays = g._rays  # body-frame offset per metre of z-depth
    z_wall = distance / rays[..., 0]
    z_floor = np.where(rays[..., 2] < 0, 0.45 / -rays[..., 2], np.inf)
    return np.minimum(z_wall, z_floor)


def test_node_cascade_with_a_tight_budget_never_runs_the_large_model() -> None:
    node = _node(method="cascade", budget_us=1.0, sigma_threshold_m=0.011)  # always unsure, never time
    for i in range(5):
        out = _frame(node, _wall_ahead(2.0), i / 30.0)
    metrics = node.metrics()
    assert metrics["perception_stage_large"] == 0
    assert metrics["perception_stage_cheap_budget"] == 5 and metrics["perception_frames"] == 5
    assert metrics["perception_sectors_refined"] == 0 and metrics["perception_sectors_over_budget"] == 5 * 16
    assert out["obstacles"].obstacles  # the cheap answer stands


def test_node_cascade_with_room_escalates_and_learned_sees_the_wall() -> None:
    node = _node(method="cascade", budget_us=1e7, sigma_threshold_m=0.011)
    _frame(node, _wall_ahead(2.0), 0.0)
    assert node.metrics()["perception_stage_large"] == 1 and node.metrics()["perception_sectors_refined"] == 16
    window = node._learned[1].large.__self__  # the cascade's bound DepthWindowModel.predict_sectors
    whole = node.metrics()["perception_frames_whole_large"]  # all 16 unsure: the whole large model is likely the cheaper way
    assert window.latency[15].count + whole == 1 and sum(s.count for s in window.latency) == 1 - whole  # one call either way
    node = _node(method="learned")
    obstacles = _frame(node, _wall_ahead(2.0), 0.0)["obstacles"].obstacles
    assert len(obstacles) >= 8 and all(o.shape == "cylinder" for o in obstacles)
    nearest = min(float(np.hypot(o.position[0] - 0.35, o.position[1])) - o.size[0] / 2 for o in obstacles)
    assert 1.5 < nearest < 2.3


def test_node_refuses_a_model_trained_for_another_camera() -> None:
    with pytest.raises(ValueError, match="trained for another camera"):
        _node(method="learned", mount_pitch_rad=0.0)


@pytest.mark.parametrize("which, method", [("cheap", "cascade"), ("window", "cascade"), ("large", "learned")])
def test_node_loads_the_model_files_it_is_given(which: str, method: str, tmp_path) -> None:
    not_a_model = tmp_path / "not_a_model.onnx"
    not_a_model.write_bytes(b"not onnx")
    with pytest.raises(ValueError, match=f"params.{which}_model"):
        _node(method=method, **{f"{which}_model": not_a_model})


def test_node_refuses_a_whole_image_model_as_the_window_model() -> None:
    with pytest.raises(ValueError, match="params.window_model: .*not a window model"):
        _node(method="cascade", window_model=MODELS / "husky_depth_large.onnx")


@pytest.mark.parametrize("name", [f"{robot}_depth_{which}" for robot in ("husky", "quadrotor") for which in ("cheap", "large", "window")])
def test_model_cards_name_the_file_and_the_command(name: str) -> None:
    import re

    from aegis.config_files import sha256_of
    from aegis.inference.contract import read_contract

    model = MODELS / f"{name}.onnx"
    card = (MODELS / f"{name}.md").read_text()
    assert set(re.findall(r"\b[0-9a-f]{64}\b", card)) == {sha256_of(model)}
    command = read_contract(model).producer.command
    assert command.startswith(("aegis train-depth ", "python -m aegis.training.depth_gain ")) and command in card
    if "depth_gain" in command:  # a gain head on the plain cheap model aegis train-depth made with the large one: both commands
        assert read_contract(MODELS / f"{name.replace('cheap', 'large')}.onnx").producer.command in card


def test_a_range_near_max_range_is_free_space() -> None:
    g = SectorGeometry(80, 48, 58.0, sectors=16, max_range_m=5.0)
    ranges = np.full(16, 4.98)  # a sigmoid's way to say 5
    assert sector_obstacles(ranges, np.full(16, 0.01), g, np.zeros(3), _yaw(0.0), stamp=0.0) == []


def test_a_large_sector_sigma_moves_the_cylinder_closer_instead_of_inflating_it() -> None:
    g = SectorGeometry(80, 48, 58.0, sectors=16, max_range_m=5.0)
    ranges = np.full(16, 5.0)
    ranges[8] = 2.5
    [c] = sector_obstacles(ranges, np.full(16, 0.8), g, np.zeros(3), _yaw(0.0), stamp=0.0, max_sigma_m=0.2)
    assert c.sigma_m == 0.2 and np.hypot(*c.centre[:2]) - c.radius_m == pytest.approx(2.5 - 0.6)


@pytest.mark.slow  # about 7 s: renders, trains one epoch of each model, exports and loads them
def test_aegis_train_depth_writes_both_models_with_contracts_and_a_report(tmp_path) -> None:
    import json

    pytest.importorskip("torch")
    from aegis.cli import main
    from aegis.inference.contract import read_contract

    report = tmp_path / "report.json"
    args = ["train-depth", "--out-dir", str(tmp_path), "--frames", "24", "--validation-frames", "8", "--heldout-frames", "8", "--epochs", "1", "--escalation", "relative"]
    assert main([*args, "--json", str(report)]) == 0
    assert read_sector_spec(tmp_path / "husky_depth_cheap.onnx").cascade_relative and json.loads(report.read_text())["relative"]
    import onnx

    assert "Expand" not in {node.op_type for node in onnx.load(str(tmp_path / "husky_depth_cheap.onnx")).graph.node}  # the cheap model's lean graph
    rows = {row["name"]: row for row in json.loads(report.read_text())["rows"]}
    assert set(rows) == {"depth_cheap", "depth_large", "depth_cascade"} and all(0 <= r["mae_m"] <= 5 for r in rows.values())
    window = DepthWindowModel(tmp_path / "husky_depth_window.onnx")
    assert read_contract(tmp_path / "husky_depth_window.onnx").producer.command == read_contract(tmp_path / "husky_depth_large.onnx").producer.command
    assert window.predict(np.full((48, 80), np.inf, dtype=np.float32)) is not None
    from aegis.training.depth_window_export import reexport

    exported = (tmp_path / "husky_depth_window.onnx").read_bytes()
    assert reexport(tmp_path, "husky").read_bytes() == exported  # the large file's weights make train-depth's window model again
    for name in ("cheap", "large"):
        contract = read_contract(tmp_path / f"husky_depth_{name}.onnx")
        assert contract.producer.command.startswith("aegis train-depth ") and "--frames=24" in contract.producer.command
        assert "--escalation=relative" in contract.producer.command  # the command that makes the file again
        assert DepthSectorModel(tmp_path / f"husky_depth_{name}.onnx").predict(np.full((48, 80), np.inf, dtype=np.float32)) is not None


def test_train_depth_robots_are_the_dataset_rigs() -> None:
    from aegis.training.depth_cli import ROBOTS
    from aegis.training.depth_dataset import RIGS

    assert set(ROBOTS) == set(RIGS) and all(name == rig.name for name, rig in RIGS.items())


def test_depth_eval_measures_the_shipped_models_and_says_whether_the_target_is_met(tmp_path) -> None:
    import json

    from aegis.training.depth_eval import main

    out = tmp_path / "eval.json"
    assert main(["--frames", "8", "--rounds", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = {row["name"]: row for row in report["rows"]}
    assert set(rows) == {"depth_cheap", "depth_large", "depth_cascade"} and report["threshold_m"] > 0
    assert [t["met"] for t in report["targets"]] == [t["value"] <= t["limit"] if "within" not in t["name"] else t["value"] >= t["limit"] for t in report["targets"]]
    assert 0.0 <= rows["depth_cascade"]["sectors_refined"] <= 1.0 and rows["depth_large"]["sectors_refined"] is None
    assert main(["--models-dir", str(tmp_path), "--frames", "2"]) == 2  # no models there: one line, exit 2


@pytest.mark.parametrize("timing", ["blocks", "evicted"])
def test_depth_eval_times_the_models_as_asked_and_says_how(tmp_path, timing: str, capsys) -> None:
    import json

    from aegis.training.depth_eval import main

    out = tmp_path / "eval.json"
    assert main(["--frames", "4", "--rounds", "1", "--timing", timing, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["timing"] == timing and f"timing: {timing}, " in capsys.readouterr().out
    assert all(row["mean_us"] > 0 for row in report["rows"]) and len(report["targets"]) == 3


def test_heldout_rows_refuses_a_timing_it_does_not_know() -> None:
    from aegis.training.depth_pipeline import heldout_rows

    with pytest.raises(ValueError, match="timing 'random': expected one of turns, blocks, evicted"):
        heldout_rows(None, None, None, 0.1, None, timing="random")


def test_the_quadrotor_cascade_sees_a_wall_ahead_of_the_drone() -> None:
    from aegis.nodes.depth_obstacles import DepthObstacles, DepthObstaclesParams

    camera = {"fov_deg": 58.0, "mount_xyz_m": (0.05, 0.0, 0.0), "mount_pitch_rad": 0.0, "max_range_m": 5.0}
    node = DepthObstacles("depth", DepthObstaclesParams(method="cascade", shipped_models="quadrotor", budget_us=1e7, obstacle_height_m=3.0, **camera))
    g = SectorGeometry(80, 48, 58.0, (0.05, 0.0, 0.0), 0.0)
    wall = (2.0 / g._rays[..., 0]).astype(np.float32)  # a wall 2 m ahead across the whole view, level camera
    image = Image(stamp=0.0, frame_id="camera_optical_frame", encoding="32FC1", data=wall)
    state = RobotState(stamp=0.0, position=np.array([0.0, 0.0, 1.0]), orientation=np.array([0.0, 0.0, 0.0, 1.0]))
    obstacles = node.step(0.0, {"depth": Received(image, 0.0, False), "state": Received(state, 0.0, False)})["obstacles"].obstacles
    assert len(obstacles) >= 8 and all(o.size[2] == 3.0 for o in obstacles)
    nearest = min(float(np.hypot(o.position[0] - 0.05, o.position[1])) - o.size[0] / 2 for o in obstacles)
    assert 1.4 < nearest < 2.4
    with pytest.raises(ValueError, match="trained for another camera"):  # the Husky's models on the drone's camera
        DepthObstacles("depth", DepthObstaclesParams(method="cascade", **camera))


def test_a_batched_call_refuses_a_model_whose_batch_is_fixed() -> None:
    from aegis.inference.batch_call import BatchCall
    from aegis.inference.contract import ContractError
    from aegis.inference.runtime import PolicyRuntime

    runtime = PolicyRuntime(MODELS / "husky_depth_large.onnx", warmup_calls=1)  # exported with batch 1
    with pytest.raises(ContractError, match="fixed batch of 1: export it with a dynamic one"):
        BatchCall(runtime, 4)
    assert BatchCall(runtime, 1)(1).shape == (1, 32)  # one row fits a fixed batch of 1


def test_the_cascade_runs_the_whole_large_model_when_it_is_cheaper_than_the_windows() -> None:
    whole_calls = []

    def whole(depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        whole_calls.append(1)
        return np.full(16, 1.5), np.full(16, 0.04)

    sigmas = np.full(16, 0.1)
    sigmas[:6] = 0.5  # six unsure: windows' p99 15 + 35 x 6 = 225 µs, the whole model's 120 µs
    cascade, calls = _fake_cascade(budget_us=1000.0, sigmas=sigmas)
    cascade.whole, cascade.whole_p99_us = whole, lambda: 120.0
    ranges, out_sigmas, stage = cascade.predict(np.zeros((48, 80)))
    assert stage == "large" and calls == ["cheap"] and whole_calls == [1]
    assert np.all(ranges[:6] == 1.5) and np.all(ranges[6:] == 3.0) and np.all(out_sigmas[6:] == 0.1)
    assert cascade.counts.whole_frames == 1 and cascade.counts.sectors_refined == 6
    sigmas[2:6] = 0.1  # two unsure: their windows (85 µs) are the cheaper way
    cascade.predict(np.zeros((48, 80)))
    assert calls[-1] == [0, 1] and whole_calls == [1] and cascade.counts.whole_frames == 1
    sigmas[:6] = 0.5  # the whole model no longer fits the budget left (100 µs spent of 200): the windows that fit
    cascade.budget_us = 200.0
    assert cascade.predict(np.zeros((48, 80)))[2] == "cheap_budget" and whole_calls == [1] and calls[-1] == [0, 1]
