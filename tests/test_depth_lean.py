"""The lean depth-sector graphs (aegis.training.depth_lean): the shipped models' answers in fewer nodes, their metadata kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from aegis.inference.depth_model import DepthSectorModel, read_sector_spec
from aegis.paths import share_dir
from aegis.sim.sensors.depth_noise import DepthNoiseParams, noisy_depth
from aegis.training.depth_lean import lean_sector_model, main

MODELS = share_dir() / "models"


@pytest.mark.parametrize("robot, name", [("husky", "large"), ("quadrotor", "cheap"), ("quadrotor", "large")])  # the Husky's cheap model ships lean
def test_the_lean_graph_answers_as_the_exported_one_in_fewer_nodes(robot: str, name: str, tmp_path: Path) -> None:
    path = MODELS / f"{robot}_depth_{name}.onnx"
    lean = lean_sector_model(path)
    out = tmp_path / path.name
    onnx.save(lean, str(out))
    assert read_sector_spec(out) == read_sector_spec(path)  # the metadata (the sector spec, the contract) copied
    assert len(lean.graph.node) < len(onnx.load(str(path)).graph.node)
    exported, rewritten = DepthSectorModel(path, warmup_calls=1), DepthSectorModel(out, warmup_calls=1)  # the contract checked against the graph
    rng = np.random.default_rng(3)
    spec = exported.spec
    frames = [np.full((spec.height_px, spec.width_px), np.inf, dtype=np.float32)]
    frames += [noisy_depth(rng.uniform(0.3, 7.0, (spec.height_px, spec.width_px)).astype(np.float32), DepthNoiseParams(), rng) for _ in range(8)]
    for depth in frames:
        (a_ranges, a_sigmas), (b_ranges, b_sigmas) = exported.predict(depth), rewritten.predict(depth)
        assert np.allclose(a_ranges, b_ranges, atol=1e-5) and np.allclose(a_sigmas, b_sigmas, atol=1e-5)


def test_a_window_model_is_refused_and_the_tool_never_writes_over_the_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="window model"):
        lean_sector_model(MODELS / "husky_depth_window.onnx")
    assert main(["--models-dir", str(MODELS), "--out", str(MODELS)]) == 2
    assert "the models' own folder" in capsys.readouterr().err
    assert main(["--models-dir", str(MODELS), "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["husky_depth_cheap.onnx", "husky_depth_large.onnx", "husky_depth_window.onnx"]
    for name in ("cheap", "window"):  # the Husky's cheap model has its gain head, written lean by aegis.training.depth_gain: copied as it is
        assert (tmp_path / f"husky_depth_{name}.onnx").read_bytes() == (MODELS / f"husky_depth_{name}.onnx").read_bytes()
