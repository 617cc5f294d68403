"""Tools around ONNX policies: ``model inspect`` facts, ``doctor`` per hw_config, the runtime from a hw_config, the MLP helpers and the benchmark's rows.

Models are built here from numpy weights (fixed seeds). Only the CPU provider exists here, so
configs asking for TensorRT/CUDA are checked through what doctor reports about their absence.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from aegis.config import load_config
from aegis.export.toolchain import host_cc
from aegis.inference import (
    ActionField,
    ContractMismatch,
    Normalization,
    ObservationField,
    PolicyContract,
    expectation_from_config,
    mapping_path_for,
    write_contract,
    write_mapping,
)
from aegis.inference.doctor import doctor, format_doctor
from aegis.inference.inspection import format_inspection, inspect_model
from aegis.inference.mlp import mlp_model, numpy_forward, random_mlp_weights
from aegis.inference.runtime import PolicyRuntime

REPO = Path(__file__).resolve().parent.parent
SIZES = (12, 64, 64, 4)
PARAMETERS = 12 * 64 + 64 + 64 * 64 + 64 + 64 * 4 + 4


def contract(robot_kind: str = "point_mass", rate: float = 50.0) -> PolicyContract:
    return PolicyContract(
        robot_kind=robot_kind,
        control_rate_hz=rate,
        observation=(
            ObservationField(name="position_error", size=6, unit="m", normalization=Normalization(mean=0.0, std=2.0)),
            ObservationField(name="velocity", size=6, unit="m/s"),
        ),
        action=(ActionField(name="acceleration", size=4, unit="m/s^2", scale=5.0, low=-5.0, high=5.0),),
        lipschitz_bound=3.25,
    )


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    model = mlp_model(random_mlp_weights(SIZES, seed=3))
    write_contract(model, contract())
    path = tmp_path / "policy.onnx"
    onnx.save(model, str(path))
    return path


def hw_config(tmp_path: Path, model: Path | None, **inference) -> Path:
    """The shipped point-mass config with an inference section pointing at ``model`` (relative path)."""
    raw = yaml.safe_load((REPO / "hw_configs" / "point_mass_sim.yaml").read_text())
    if model is not None:
        raw["inference"] = {"model": model.name, "sha256": hashlib.sha256(model.read_bytes()).hexdigest(), **inference}
    path = tmp_path / f"robot_{len(list(tmp_path.glob('robot_*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# --- the MLP helpers ---------------------------------------------------------------------------


def test_mlp_model_and_numpy_forward_agree_with_onnxruntime() -> None:
    weights = random_mlp_weights(SIZES, seed=1)
    model = mlp_model(weights)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((8, 12)).astype(np.float32)
    expected = session.run(None, {"obs": x})[0]
    np.testing.assert_allclose(numpy_forward(model)(x), expected, atol=1e-5)
    by_hand = np.tanh(np.maximum(np.maximum(x @ weights[0][0].T + weights[0][1], 0) @ weights[1][0].T + weights[1][1], 0) @ weights[2][0].T + weights[2][1])
    np.testing.assert_allclose(by_hand, expected, atol=1e-5)


def test_numpy_forward_names_the_ops_it_does_not_support() -> None:
    model = mlp_model(random_mlp_weights((4, 3), seed=0))
    model.graph.node[-1].op_type = "Softplus"
    with pytest.raises(ValueError, match="the graph also has Softplus"):
        numpy_forward(model)


# --- model inspect -----------------------------------------------------------------------------


def test_inspect_reports_graph_ops_parameters_sha256_and_contract(model_file: Path) -> None:
    info = inspect_model(model_file)
    assert info["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert info["inputs"] == [{"name": "obs", "shape": ["batch", 12], "dtype": "float32"}]
    assert info["outputs"] == [{"name": "action", "shape": ["batch", 4], "dtype": "float32"}]
    assert info["opsets"] == {"ai.onnx": 17}
    assert info["ops"] == {"Gemm": 3, "Relu": 2, "Tanh": 1}
    assert info["parameters"] == PARAMETERS
    assert info["contract_source"] == "policy.onnx metadata"
    assert info["contract"]["lipschitz_bound"] == 3.25
    assert info["contract_check"]["ok"] is True
    json.dumps(info)  # JSON-ready

    text = format_inspection(info)
    for fragment in (
        info["sha256"], "obs  float32 [batch, 12]", "action  float32 [batch, 4]", "Gemm x3, Relu x2, Tanh x1",
        f"parameters {PARAMETERS:,}", "contract   from policy.onnx metadata", "robot kind point_mass",
        "control rate 50 Hz", "Lipschitz bound 3.25", "position_error  6     m", "(x - mean 0) / std 2",
        "acceleration  4     m/s^2  5      0       -5   5", "graph check ok",
    ):  # fmt: skip
        assert fragment in text, fragment


def test_inspect_a_model_without_contract_says_where_it_looked(tmp_path: Path) -> None:
    path = tmp_path / "bare.onnx"
    onnx.save(mlp_model(random_mlp_weights(SIZES)), str(path))
    info = inspect_model(path)
    assert info["contract"] is None and info["parameters"] == PARAMETERS
    text = format_inspection(info)
    assert "contract   none" in text and "aegis.contract" in text and "bare.aegis.yaml" in text


def test_inspect_shows_a_mapping_contract_and_its_mismatch_with_the_graph(tmp_path: Path) -> None:
    path = tmp_path / "sb3.onnx"
    onnx.save(mlp_model(random_mlp_weights((10, 8, 4))), str(path))
    write_mapping(contract(), mapping_path_for(path))
    info = inspect_model(path)
    assert info["contract_source"] == f"mapping file {mapping_path_for(path)}"
    assert info["contract_check"]["ok"] is False
    text = format_inspection(info)
    assert "graph check FAILED" in text and "model input 'obs' has 10" in text and "sums to 12" in text


# --- the runtime from a hw_config --------------------------------------------------------------


def test_runtime_from_a_hw_config(tmp_path: Path, model_file: Path) -> None:
    config = load_config(hw_config(tmp_path, model_file, threads=1))
    runtime = PolicyRuntime.from_config(config, expected=expectation_from_config(config, control_rate_hz=50.0))
    assert runtime.model_path == model_file and runtime.fallbacks == []
    assert runtime.act(np.zeros(12)).shape == (4,)

    with pytest.raises(ContractMismatch) as err:
        PolicyRuntime.from_config(config, expected=expectation_from_config(config, control_rate_hz=48.0))
    assert f"control rate: hw_config {config.source.name} runs the policy at 48 Hz" in str(err.value)
    assert "control_rate_hz 50 Hz" in str(err.value)


def test_runtime_from_a_hw_config_of_another_robot_is_refused(tmp_path: Path) -> None:
    model = mlp_model(random_mlp_weights(SIZES))
    write_contract(model, contract(robot_kind="quadrotor"))
    path = tmp_path / "quad.onnx"
    onnx.save(model, str(path))
    config = load_config(hw_config(tmp_path, path))
    with pytest.raises(ContractMismatch, match=r"robot kind: hw_config robot_0.yaml has robot kind 'point_mass', the contract \(quad.onnx metadata\) has robot_kind 'quadrotor'"):
        PolicyRuntime.from_config(config, expected=expectation_from_config(config))


# --- doctor ------------------------------------------------------------------------------------


def test_doctor_reports_versions_providers_and_each_config(tmp_path: Path, model_file: Path) -> None:
    cpu = hw_config(tmp_path, model_file)
    jetson = hw_config(tmp_path, model_file, providers=["TensorrtExecutionProvider", "CUDAExecutionProvider"], precision="fp16")
    broken = tmp_path / "broken.yaml"
    broken.write_text("robot: {kind: point_mass}\n")
    report = doctor([cpu, jetson, broken, REPO / "hw_configs" / "point_mass_sim.yaml"])

    assert report["onnxruntime"] == ort.__version__ and report["onnx"] == onnx.__version__
    assert report["available_providers"] == ort.get_available_providers()
    first, second, third, shipped = report["configs"]
    assert first["ok"] and first["providers"] == ["CPUExecutionProvider"] and first["runs_on"] == "CPUExecutionProvider"
    assert first["contract"] == {"ok": True, "source": "policy.onnx metadata", "problems": []}
    assert second["precision"] == "fp16" and second["providers"] == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    if "TensorrtExecutionProvider" not in report["available_providers"]:
        assert second["available"]["TensorrtExecutionProvider"] is False and not second["ok"]
        assert any(line.startswith("TensorrtExecutionProvider was requested") and "would run on CPUExecutionProvider" in line for line in second["fallbacks"])
    assert third["ok"] is False and "broken.yaml" in third["error"]
    assert shipped["ok"] and shipped["model"] is None and shipped["target"] == "sim"
    json.dumps(report)

    text = format_doctor(report)
    assert f"onnxruntime {ort.__version__}" in text and "providers here: " in text
    assert f"{cpu}: ok" in text and "contract from policy.onnx metadata matches graph and config" in text
    assert f"{broken}: config error" in text
    if "TensorrtExecutionProvider" not in report["available_providers"]:
        assert f"{jetson}: falls back to CPUExecutionProvider" in text
        assert "TensorrtExecutionProvider (absent)" in text


def test_doctor_reports_a_contract_that_does_not_fit_the_config(tmp_path: Path) -> None:
    model = mlp_model(random_mlp_weights(SIZES))
    write_contract(model, contract(robot_kind="diff_drive"))
    path = tmp_path / "husky.onnx"
    onnx.save(model, str(path))
    entry = doctor([hw_config(tmp_path, path)])["configs"][0]
    assert entry["ok"] is False
    assert entry["contract"]["problems"] == [
        "robot kind: hw_config robot_0.yaml has robot kind 'point_mass', the contract (husky.onnx metadata) has robot_kind 'diff_drive'"
    ]
    assert "contract problems" in format_doctor(doctor([hw_config(tmp_path, path)]))


# --- the benchmark -----------------------------------------------------------------------------


def test_policy_benchmark_rows_and_report(tmp_path: Path) -> None:
    from rich.console import Console

    from aegis.bench import inference as bench

    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--calls", "50", "--repeats", "1", "--json", str(tmp_path / "policy.json")])
    out = io.StringIO()
    rows = bench.run_from_args(args, Console(file=out, width=120))
    assert [r["name"] for r in rows] == list(bench.ROW_NAMES) == [
        "ort-run", "ort-iobinding", "ort-iobinding-floor", "ort-iobinding-physical", "aegis-runtime", "aegis-runtime-numpy", "numpy",
        "ort-int8", "c-float32", "c-int8",
    ]
    by_name = {row["name"]: row for row in rows}
    with_c = host_cc() is not None
    for row in rows:
        if row["name"].startswith("c-") and not with_c:
            assert row["calls"] == 0 and "no host C compiler" in row["note"]
            continue
        assert set(bench.ROW_KEYS) <= set(row) and row["median_us"] > 0 and row["calls"] == 50, row
    assert by_name["ort-iobinding"]["vs_iobinding"] == 1.0
    assert "in the graph, moved there at load" in by_name["aegis-runtime"]["note"]
    assert "target wrapper overhead <= 1.3x raw io_binding" in out.getvalue()
    assert "target wrapper overhead, same graph <= 1.3x raw io_binding of the physical graph" in out.getvalue()
    if with_c:
        assert "physical units; from Python through ctypes" in by_name["c-float32"]["note"]
        assert "target host C export <= 2 µs per inference" in out.getvalue()
    document = json.loads((tmp_path / "policy.json").read_text())
    assert document["benchmark"] == "policy" and document["wrapper_overhead"] == by_name["aegis-runtime"]["vs_iobinding"]
    assert document["wrapper_overhead_same_graph"] == by_name["aegis-runtime"]["median_us"] / by_name["ort-iobinding-physical"]["median_us"]
