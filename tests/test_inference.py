"""ONNX policy contract and runtime: contracts round-trip, mismatches are refused naming both sides, act() equals a numpy forward pass.

Models are built here with onnx.helper from numpy weights (fixed seeds), never shipped. Only the
CPU provider exists on this machine: CUDA/TensorRT are exercised through their fallback path
(requested, absent, recorded and warned), and their options are checked as data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
import itertools

from onnx import TensorProto, helper, numpy_helper

from aegis.inference import (
    ActionField,
    ContractError,
    ContractMismatch,
    DeploymentExpectation,
    Normalization,
    ObservationField,
    PolicyContract,
    Producer,
    load_contract,
    mapping_path_for,
    read_contract,
    read_mapping,
    write_contract,
    write_mapping,
)
from aegis.inference.contract import CONTRACT_KEY, VERSION_KEY
from aegis.inference.providers import TENSORRT, plan_providers, provider_options
from aegis.inference.runtime import LatencyStats, PolicyRuntime

SIZES = (12, 64, 64, 4)
Weights = list[tuple[np.ndarray, np.ndarray]]


# --- models and contracts ----------------------------------------------------------------------


def make_weights(sizes=SIZES, seed: int = 0) -> Weights:
    rng = np.random.default_rng(seed)
    return [
        ((rng.standard_normal((b, a)) / np.sqrt(a)).astype(np.float32), (0.1 * rng.standard_normal(b)).astype(np.float32))
        for a, b in itertools.pairwise(sizes)
    ]


def mlp(
    weights: Weights,
    input_name: str = "obs",
    output_name: str = "action",
    input_shape=("batch", 12),
    output_shape=("batch", 4),
    input_type=TensorProto.FLOAT,
    value_output: bool = False,
    op: str = "Gemm",
    output_type=TensorProto.FLOAT,
) -> onnx.ModelProto:
    """Gemm (or MatMul + Add, as torch.onnx writes) + Relu per hidden layer, Tanh last; optionally a value output (as SB3)."""
    nodes, inits, prev = [], [], input_name
    if input_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [input_name], ["obs_f"], to=TensorProto.FLOAT))
        prev = "obs_f"
    for i, (w, b) in enumerate(weights):
        last = i == len(weights) - 1
        if op == "Gemm":
            inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
            nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"b{i}"], [f"z{i}"], transB=1))
        else:
            inits += [numpy_helper.from_array(np.ascontiguousarray(w.T), f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
            nodes.append(helper.make_node("MatMul", [prev, f"W{i}"], [f"m{i}"]))
            nodes.append(helper.make_node("Add", [f"m{i}", f"b{i}"], [f"z{i}"]))
        prev = (output_name if output_type == TensorProto.FLOAT else "tanh") if last else f"h{i}"
        nodes.append(helper.make_node("Tanh" if last else "Relu", [f"z{i}"], [prev]))
    if output_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["tanh"], [output_name], to=output_type))
    outputs = [helper.make_tensor_value_info(output_name, output_type, list(output_shape))]
    if value_output:
        nodes.append(helper.make_node("ReduceSum", [output_name], ["value"], keepdims=1))
        outputs.append(helper.make_tensor_value_info("value", TensorProto.FLOAT, ["batch", 1]))
    graph = helper.make_graph(
        nodes, "policy", [helper.make_tensor_value_info(input_name, input_type, list(input_shape))], outputs, inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def make_contract(**changes) -> PolicyContract:
    """A quadrotor-like contract over 12 -> 4 whose normalisation, scaling and limits all do something."""
    fields = {
        "robot_kind": "quadrotor",
        "control_rate_hz": 50.0,
        "observation": (
            ObservationField(name="position_error", size=3, unit="m", normalization=Normalization(mean=(0.1, -0.2, 0.0), std=0.5)),
            ObservationField(name="velocity", size=3, unit="m/s", normalization=Normalization(offset=0.2, scale=(0.5, 0.5, 2.0))),
            ObservationField(name="attitude", size=3, unit="rad"),
            ObservationField(name="body_rates", size=3, unit="rad/s", normalization=Normalization(scale=0.25)),
        ),
        "action": (
            ActionField(name="thrust", size=1, unit="N", scale=0.2, offset=0.265, low=0.2, high=0.4),
            ActionField(name="rates", size=3, unit="rad/s", scale=3.0, low=(-1.0, -1.0, -np.inf), high=(1.0, 1.0, np.inf)),
        ),
        "lipschitz_bound": 7.5,
        "producer": Producer(name="tests", version="0", command="pytest tests/test_inference.py", seed=0),
    }
    fields.update(changes)
    return PolicyContract(**fields)


def reference_act(weights: Weights, contract: PolicyContract, observation: np.ndarray) -> np.ndarray:
    """The contract's semantics written out in numpy: normalise, forward in float32, scale, clip."""
    offset, gain = contract.observation_affine()
    x = ((observation - offset) * gain).astype(np.float32)
    for i, (w, b) in enumerate(weights):
        x = x @ w.T + b
        x = np.tanh(x) if i == len(weights) - 1 else np.maximum(x, 0)
    scale, a_offset, low, high = contract.action_affine()
    return np.clip(x.astype(np.float64) * scale + a_offset, low, high)


def save(model: onnx.ModelProto, path: Path, contract: PolicyContract | None = None) -> Path:
    if contract is not None:
        write_contract(model, contract)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def weights() -> Weights:
    return make_weights()


@pytest.fixture
def policy(tmp_path: Path, weights: Weights) -> Path:
    """policy.onnx with the contract in its metadata."""
    return save(mlp(weights), tmp_path / "policy.onnx", make_contract())


def observations(n: int, seed: int = 1, size: int = 12) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 2.0, size=(n, size))


# --- the contract ------------------------------------------------------------------------------


def test_contract_round_trips_through_onnx_metadata(tmp_path: Path, weights: Weights) -> None:
    model = mlp(weights)
    model.metadata_props.add(key="author", value="someone")
    contract = make_contract()
    path = save(model, tmp_path / "policy.onnx", contract)

    assert read_contract(path) == contract
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["author"] == "someone"  # metadata of others is kept
    assert props[VERSION_KEY] == "1"
    stored = json.loads(props[CONTRACT_KEY])
    assert stored["schema_version"] == 1 and stored["robot_kind"] == "quadrotor"
    assert stored["action"][1]["high"] == [1.0, 1.0, "Infinity"]  # infinite limits survive as JSON-safe strings

    # rewriting replaces the aegis keys rather than adding a second set
    write_contract(path, make_contract(control_rate_hz=100.0))
    keys = [p.key for p in onnx.load(str(path)).metadata_props]
    assert sorted(keys) == sorted(["author", CONTRACT_KEY, VERSION_KEY])
    assert read_contract(path).control_rate_hz == 100.0


def test_write_contract_refuses_a_contract_that_does_not_fit_the_graph(weights: Weights) -> None:
    too_long = make_contract(observation=(*make_contract().observation, ObservationField(name="extra", size=1, unit="1")))
    with pytest.raises(ContractMismatch, match=r"model input 'obs' has 12, .* sums to 13"):
        write_contract(mlp(weights), too_long)


def test_metadata_less_model_loads_with_the_mapping_file_beside_it(tmp_path: Path, weights: Weights) -> None:
    path = save(mlp(weights), tmp_path / "isaac_policy.onnx")
    contract = make_contract()
    mapping = write_mapping(contract, mapping_path_for(path))
    assert mapping == tmp_path / "isaac_policy.aegis.yaml"
    assert yaml.safe_load(mapping.read_text())["action"][1]["high"][2] == float("inf")  # YAML writes .inf

    loaded = load_contract(path)
    assert loaded.contract == contract and loaded.origin == "mapping" and loaded.path == mapping

    runtime = PolicyRuntime(path)
    obs = observations(1)[0]
    np.testing.assert_allclose(runtime.act(obs), reference_act(weights, contract, obs), atol=1e-5)


def test_an_explicit_mapping_file_anywhere_is_used(tmp_path: Path, weights: Weights) -> None:
    path = save(mlp(weights), tmp_path / "policy.onnx")
    elsewhere = tmp_path / "contracts" / "sb3.yaml"
    elsewhere.parent.mkdir()
    write_mapping(make_contract(), elsewhere)
    assert read_contract(path, elsewhere) == make_contract()
    assert PolicyRuntime(path, contract=elsewhere).contract == make_contract()
    with pytest.raises(ContractError, match="mapping file .*missing.yaml: no such file"):
        read_contract(path, tmp_path / "missing.yaml")


def test_a_model_with_neither_metadata_nor_mapping_is_refused_naming_both_places(tmp_path: Path, weights: Weights) -> None:
    path = save(mlp(weights), tmp_path / "bare.onnx")
    for load in (lambda: read_contract(path), lambda: PolicyRuntime(path)):
        with pytest.raises(ContractError) as err:
            load()
        message = str(err.value)
        assert "metadata" in message and CONTRACT_KEY in message
        assert str(tmp_path / "bare.aegis.yaml") in message


def test_metadata_and_a_different_mapping_are_refused(policy: Path) -> None:
    write_mapping(make_contract(control_rate_hz=25.0), mapping_path_for(policy))
    with pytest.raises(ContractError, match=r"carries a contract in its metadata .* gives a different one \(differing: control_rate_hz\)"):
        read_contract(policy)
    write_mapping(make_contract(), mapping_path_for(policy))  # the same contract twice is fine
    assert load_contract(policy).origin == "metadata"


def test_metadata_of_a_newer_schema_or_broken_json_is_refused(tmp_path: Path, weights: Weights) -> None:
    model = mlp(weights)
    model.metadata_props.add(key=CONTRACT_KEY, value="{not json")
    path = save(model, tmp_path / "broken.onnx")
    with pytest.raises(ContractError, match=f"broken.onnx: metadata {CONTRACT_KEY} is not valid JSON"):
        read_contract(path)
    model.metadata_props.add(key=VERSION_KEY, value="2")
    path = save(model, tmp_path / "newer.onnx")
    with pytest.raises(ContractError, match=f"metadata {VERSION_KEY} is '2'; this aegis reads schema version 1"):
        read_contract(path)


def test_mapping_file_errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    raw = json.loads(make_contract().to_json())
    raw["observation"][0]["normalization"] = {"mean": 0.0, "std": 0.0}
    raw["action"][0]["units"] = "N"
    raw["control_rate"] = 50
    path = tmp_path / "bad.aegis.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ContractError) as err:
        read_mapping(path)
    message = str(err.value)
    assert str(path) in message
    assert "observation.0.normalization" in message and "std must be > 0" in message
    assert "action.0.units: unknown key" in message
    assert "control_rate: unknown key" in message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"observation": [{"name": "a", "size": 2, "unit": "m"}, {"name": "a", "size": 1, "unit": "m"}]}, "repeated: a"),
        ({"observation": [{"name": "a", "size": 3, "unit": "m", "normalization": {"mean": [0, 1], "std": 1}}]}, "has 2 values, the field's size is 3"),
        ({"observation": [{"name": "a", "size": 3, "unit": "m", "normalization": {"mean": 0, "scale": 1}}]}, "not both"),
        ({"observation": [{"name": "a", "size": 1, "unit": "m", "normalization": {"mean": 0}}]}, "needs both mean and std"),
        ({"observation": [{"name": "a", "size": 1, "unit": "m", "normalization": {"offset": float("nan")}}]}, "offset must be finite"),
        ({"observation": [{"name": "a b", "size": 1, "unit": "m"}]}, "should match pattern"),
        ({"action": [{"name": "u", "size": 2, "unit": "N", "low": 1.0, "high": 0.0}]}, "must not be above high"),
        ({"action": [{"name": "u", "size": 2, "unit": "N", "scale": 0.0, "low": 0.0, "high": 1.0}]}, "scale must not be 0"),
        ({"action": [{"name": "u", "size": 2, "unit": "N", "low": 0.0}]}, "high\n  Field required"),
        ({"control_rate_hz": 0.0}, "greater than 0"),
        ({"history_length": 0}, "greater than or equal to 1"),
        ({"schema_version": 2}, "schema_version"),
    ],
)
def test_invalid_contracts_are_refused(change: dict, message: str) -> None:
    raw = {**json.loads(make_contract().to_json()), **change}
    with pytest.raises(ValueError, match=message):
        PolicyContract.model_validate(raw)


# --- mismatches: graph and deployment ----------------------------------------------------------


def refused(tmp_path: Path, model: onnx.ModelProto, contract: PolicyContract, expected: DeploymentExpectation | None = None) -> str:
    """Save ``model`` with ``contract`` as its mapping (so no write-time check), load it, return the refusal."""
    path = save(model, tmp_path / "m.onnx")
    write_mapping(contract, mapping_path_for(path))
    with pytest.raises(ContractMismatch) as err:
        PolicyRuntime(path, expected=expected)
    return str(err.value)


def test_observation_size_mismatch_names_both_sides(tmp_path: Path) -> None:
    model = mlp(make_weights((154, 16, 4)), input_shape=("batch", 154))
    contract = make_contract(
        observation=(
            ObservationField(name="position", size=3, unit="m"),
            ObservationField(name="joint_positions", size=12, unit="rad"),
            ObservationField(name="height_scan", size=145, unit="m"),
        )
    )
    message = refused(tmp_path, model, contract)
    assert "observation size: model input 'obs' has 154" in message
    assert "sums to 160 (position 3 + joint_positions 12 + height_scan 145)" in message
    assert "m.aegis.yaml" in message  # which contract


def test_history_multiplies_the_observation_size(tmp_path: Path) -> None:
    weights = make_weights((24, 16, 4))
    contract = make_contract(history_length=2)
    path = save(mlp(weights, input_shape=("batch", 24)), tmp_path / "h.onnx", contract)
    obs = observations(1, size=24)[0]
    np.testing.assert_allclose(PolicyRuntime(path).act(obs), reference_act(weights, contract, obs), atol=1e-5)

    message = refused(tmp_path, mlp(make_weights()), make_contract(history_length=2))
    assert "model input 'obs' has 12" in message and "sums to 24" in message and "x history_length 2" in message


def test_action_size_mismatch_names_both_sides(tmp_path: Path) -> None:
    message = refused(tmp_path, mlp(make_weights((12, 8, 3)), output_shape=("batch", 3)), make_contract())
    assert "action size: model output 'action' has 3, the action layout of the contract" in message
    assert "sums to 4 (thrust 1 + rates 3)" in message


@pytest.mark.parametrize(
    ("expected", "fragments"),
    [
        (DeploymentExpectation(source="hw_config husky.yaml", robot_kind="diff_drive"), ["robot kind", "hw_config husky.yaml has robot kind 'diff_drive'", "robot_kind 'quadrotor'"]),
        (DeploymentExpectation(source="hw_config cf.yaml", control_rate_hz=48.0), ["control rate", "runs the policy at 48 Hz", "control_rate_hz 50 Hz"]),
        (
            DeploymentExpectation(observation_names=("position_error", "attitude", "velocity", "body_rates")),
            ["observation names", "expects [position_error, attitude, velocity, body_rates]", "has [position_error, velocity, attitude, body_rates]", "position 1: 'attitude' vs 'velocity'"],
        ),
        (DeploymentExpectation(action_names=("thrust", "torques")), ["action names", "expects [thrust, torques]", "has [thrust, rates]"]),
        (DeploymentExpectation(units={"velocity": "km/h"}), ["unit of observation 'velocity'", "expects 'km/h'", "has 'm/s'"]),
        (DeploymentExpectation(units={"wind": "m/s"}), ["unit of 'wind'", "has no field 'wind'"]),
    ],
    ids=["robot-kind", "rate", "observation-names", "action-names", "unit", "unit-of-missing-field"],
)
def test_deployment_mismatches_name_both_sides(tmp_path: Path, weights: Weights, expected, fragments: list[str]) -> None:
    message = refused(tmp_path, mlp(weights), make_contract(), expected)
    for fragment in fragments:
        assert fragment in message
    assert "the contract (mapping file" in message


def test_a_matching_deployment_loads(policy: Path) -> None:
    contract = make_contract()
    expected = DeploymentExpectation(
        robot_kind="quadrotor", control_rate_hz=50.0, observation_names=contract.observation_names,
        action_names=contract.action_names, units={"velocity": "m/s", "thrust": "N"},
    )  # fmt: skip
    assert PolicyRuntime(policy, expected=expected).contract == contract


def test_every_mismatch_is_reported_at_once(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        mlp(make_weights((10, 8, 3)), input_shape=("batch", 10), output_shape=("batch", 3)),
        make_contract(),
        DeploymentExpectation(robot_kind="diff_drive", control_rate_hz=20.0),
    )
    assert "4 mismatches" in message
    for fragment in ("observation size", "action size", "robot kind", "control rate"):
        assert fragment in message


@pytest.mark.parametrize(
    ("model_kwargs", "contract_changes", "fragment"),
    [
        ({"input_shape": (8, 12), "output_shape": (8, 4)}, {}, "batch fixed at 8, the runtime runs one observation (batch 1)"),
        ({"input_shape": (1, 3, 12), "output_shape": (1, 3, 4), "op": "MatMul"}, {}, "has shape [1, 3, 12], the runtime needs [12] or [batch, 12]"),
        ({"value_output": True}, {}, "the model has 2 outputs ('action', 'value'), the contract (mapping file"),
        ({"value_output": True}, {"output_name": "actions"}, "names output_name 'actions', the model's outputs are 'action', 'value'"),
        ({"input_type": TensorProto.INT64}, {}, "dtype: model input 'obs' is int64"),
    ],
    ids=["fixed-batch", "rank-3", "two-outputs", "wrong-output-name", "integer-input"],
)
def test_graph_shapes_the_runtime_cannot_feed_are_refused(tmp_path: Path, weights: Weights, model_kwargs, contract_changes, fragment) -> None:
    message = refused(tmp_path, mlp(weights, **model_kwargs), make_contract(**contract_changes))
    assert fragment in message


def test_a_named_output_of_several_is_used(tmp_path: Path, weights: Weights) -> None:
    contract = make_contract(output_name="action", input_name="obs")
    path = save(mlp(weights, value_output=True), tmp_path / "sb3.onnx", contract)
    obs = observations(1)[0]
    np.testing.assert_allclose(PolicyRuntime(path).act(obs), reference_act(weights, contract, obs), atol=1e-5)


@pytest.mark.parametrize(
    ("input_shape", "output_shape", "op"),
    [((12,), (4,), "MatMul"), ((1, 12), (1, 4), "Gemm"), (("N", 12), ("N", 4), "Gemm"), ((None, 12), (None, 4), "MatMul")],
)
def test_static_dynamic_and_unbatched_shapes_are_accepted(tmp_path: Path, weights: Weights, input_shape, output_shape, op) -> None:
    path = save(mlp(weights, input_shape=input_shape, output_shape=output_shape, op=op), tmp_path / "p.onnx", make_contract())
    obs = observations(1)[0]
    np.testing.assert_allclose(PolicyRuntime(path).act(obs), reference_act(weights, make_contract(), obs), atol=1e-5)


# --- the runtime -------------------------------------------------------------------------------


def test_act_equals_a_numpy_forward_pass_with_normalisation_scaling_and_clipping(policy: Path, weights: Weights) -> None:
    runtime = PolicyRuntime(policy)
    contract = make_contract()
    _, _, low, high = contract.action_affine()
    batch = observations(500)
    actions = np.array([runtime.act(obs) for obs in batch])
    expected = np.array([reference_act(weights, contract, obs) for obs in batch])
    np.testing.assert_allclose(actions, expected, rtol=0, atol=1e-5)
    assert actions.dtype == np.float64
    assert np.all(actions >= low) and np.all(actions <= high)
    assert np.any(actions == low) and np.any(actions == high)  # the limits did clip (thrust and rates hit both ends)
    assert np.any((actions > low) & (actions < high))  # and some elements are inside them


@pytest.mark.parametrize("physical_graph", [True, False], ids=["physical-graph", "contract-in-numpy"])
def test_iobinding_and_session_run_give_the_same_actions(policy: Path, physical_graph: bool) -> None:
    by_binding = PolicyRuntime(policy, call_mode="iobinding", physical_graph=physical_graph)
    by_run = PolicyRuntime(policy, call_mode="run", physical_graph=physical_graph)
    assert (by_binding.call_mode, by_run.call_mode) == ("iobinding", "run")
    raw = ort.InferenceSession(str(policy), providers=["CPUExecutionProvider"])
    offset, gain = make_contract().observation_affine()
    scale, a_offset, low, high = make_contract().action_affine()
    for obs in observations(50):
        a = by_binding.act(obs)
        np.testing.assert_array_equal(a, by_run.act(obs))
        network = raw.run(None, {"obs": ((obs - offset) * gain).astype(np.float32)[None]})[0][0]
        in_numpy = np.clip(network.astype(np.float64) * scale + a_offset, low, high)
        if physical_graph:  # float32 arithmetic in the graph: equal to float32 rounding (scale 3: a few 1e-7)
            np.testing.assert_allclose(a, in_numpy, rtol=0, atol=2e-6)
        else:  # the contract in numpy on the bare network's output: the same operations, the same bits
            np.testing.assert_array_equal(a, in_numpy)


def test_auto_mode_times_both_ways_and_keeps_the_faster(policy: Path) -> None:
    runtime = PolicyRuntime(policy)
    assert set(runtime.call_timing_us) == {"iobinding", "run"}
    assert runtime.call_mode == min(runtime.call_timing_us, key=runtime.call_timing_us.get)


def test_an_absent_provider_falls_back_to_cpu_loudly(policy: Path, caplog: pytest.LogCaptureFixture) -> None:
    available = ort.get_available_providers()
    if TENSORRT in available:
        pytest.skip("TensorRT is available here: no fallback to see")
    with caplog.at_level(logging.WARNING, logger="aegis.inference.runtime"):
        runtime = PolicyRuntime(policy, providers=[TENSORRT, "CPUExecutionProvider"], precision="fp16")
    assert runtime.providers == ("CPUExecutionProvider",)
    assert len(runtime.fallbacks) == 1
    line = runtime.fallbacks[0]
    assert "TensorrtExecutionProvider was requested but is not available" in line and "running on CPUExecutionProvider" in line
    assert any(line in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert runtime.diagnostics()["fallbacks"] == line
    obs = observations(1)[0]
    np.testing.assert_allclose(runtime.act(obs), reference_act(make_weights(), make_contract(), obs), atol=1e-5)


def test_unknown_and_absent_providers_without_cpu_in_the_list_still_run_on_cpu(policy: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        runtime = PolicyRuntime(policy, providers=["NoSuchExecutionProvider", "CUDAExecutionProvider"])
    assert runtime.providers[0] == "CPUExecutionProvider"
    assert any("NoSuchExecutionProvider was requested but is not an execution provider onnxruntime" in f for f in runtime.fallbacks)
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert any(f.startswith("CUDAExecutionProvider was requested") for f in runtime.fallbacks)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == len(runtime.fallbacks)
    assert runtime.act(observations(1)[0]) is not None


def test_cpu_alone_records_no_fallback(policy: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        runtime = PolicyRuntime(policy, providers=["CPUExecutionProvider"], threads=2)
    assert runtime.fallbacks == [] and not caplog.records
    assert runtime.session.get_session_options().intra_op_num_threads == 2


def test_tensorrt_and_cuda_get_their_options() -> None:
    # Not runnable here (CPU-only onnxruntime): the options handed to onnxruntime are checked as data.
    trt = provider_options(TENSORRT, "fp16", Path("/var/cache/trt"))
    assert trt["trt_fp16_enable"] is True and trt["trt_int8_enable"] is False
    assert trt["trt_engine_cache_enable"] is True and trt["trt_engine_cache_path"] == "/var/cache/trt"
    assert provider_options(TENSORRT, "int8")["trt_int8_enable"] is True
    assert provider_options("CUDAExecutionProvider") == {"device_id": 0}
    plan = plan_providers([TENSORRT, "CUDAExecutionProvider"], "fp16", info=("9.9", [TENSORRT, "CUDAExecutionProvider", "CPUExecutionProvider"], []))
    assert plan.providers == (TENSORRT, "CUDAExecutionProvider", "CPUExecutionProvider") and plan.missing == ()
    assert plan.options[0]["trt_fp16_enable"] is True


def test_latency_statistics_are_kept_for_real_calls_only(policy: Path) -> None:
    runtime = PolicyRuntime(policy, warmup_calls=30, latency_window=64)
    assert runtime.latency.count == 0  # warm-up calls are not counted
    for obs in observations(100):
        runtime.act(obs)
    stats = runtime.latency.summary()
    assert stats["count"] == 100 and stats["window"] == 64
    assert runtime.latency.recent_us().shape == (64,)
    assert 0 < stats["p50_us"] <= stats["p99_us"] <= stats["max_us"]
    runtime.reset_stats()
    assert runtime.latency.count == 0 and np.isnan(runtime.latency.summary()["p50_us"])


def test_latency_ring_buffer_wraps() -> None:
    stats = LatencyStats(window=4)
    for ns in (1000, 2000, 3000, 4000, 5000, 6000):
        stats.record(ns)
    assert stats.count == 6
    assert sorted(stats.recent_us()) == [3.0, 4.0, 5.0, 6.0]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_observation_returns_none_and_is_counted(policy: Path, bad: float) -> None:
    runtime = PolicyRuntime(policy)
    obs = observations(1)[0]
    obs[4] = bad
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # quietly: no numpy RuntimeWarning on the way
        assert runtime.act(obs) is None
    assert (runtime.nonfinite_observations, runtime.nonfinite_actions, runtime.latency.count) == (1, 0, 0)
    good = observations(1, seed=2)[0]
    np.testing.assert_allclose(runtime.act(good), reference_act(make_weights(), make_contract(), good), atol=1e-5)
    assert runtime.diagnostics()["nonfinite_observations"] == "1"


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_an_observation_beyond_float32_is_refused_like_a_non_finite_one(policy: Path) -> None:
    runtime = PolicyRuntime(policy)
    obs = observations(1)[0]
    obs[4] = 1e39  # finite in float64, infinite in the model's float32 input
    assert runtime.act(obs) is None
    assert (runtime.nonfinite_observations, runtime.nonfinite_actions) == (1, 0)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_a_non_finite_network_output_returns_none_and_is_counted(tmp_path: Path) -> None:
    # A linear "network" that overflows float32 for large inputs: finite in, infinite out.
    w = np.full((1, 1), 1e30, np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["obs", "W"], ["action"])], "lin",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 1])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, [1, 1])], [numpy_helper.from_array(w, "W")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    contract = make_contract(
        observation=(ObservationField(name="x", size=1, unit="m"),), action=(ActionField(name="u", size=1, unit="N", low=-1.0, high=1.0),)
    )
    runtime = PolicyRuntime(save(model, tmp_path / "lin.onnx", contract))
    assert runtime.act(np.array([1e-31])) is not None
    assert runtime.act(np.array([1e10])) is None
    assert (runtime.nonfinite_observations, runtime.nonfinite_actions) == (0, 1)


def test_wrong_shapes_and_types_raise_at_the_boundary(policy: Path) -> None:
    runtime = PolicyRuntime(policy)
    with pytest.raises(ValueError, match=r"expected shape \(12,\) or \(1, 12\) \(the contract's position_error 3 \+ velocity 3 .*\), got \(13,\)"):
        runtime.act(np.zeros(13))
    with pytest.raises(ValueError, match=r"got \(2, 12\)"):
        runtime.act(np.zeros((2, 12)))
    with pytest.raises(ValueError, match="dtype complex128 is not a real number type"):
        runtime.act(np.zeros(12, dtype=complex))
    obs = observations(1)[0]
    expected = runtime.act(obs)
    np.testing.assert_array_equal(runtime.act(obs[None]), expected)  # (1, n) is fine
    np.testing.assert_array_equal(runtime.act(list(obs)), expected)  # so is a sequence
    np.testing.assert_allclose(runtime.act(obs.astype(np.float32)), expected, atol=1e-5)


def test_act_fills_out_in_place(policy: Path) -> None:
    runtime = PolicyRuntime(policy)
    obs = observations(1)[0]
    out = np.full(4, np.nan)
    assert runtime.act(obs, out=out) is out
    np.testing.assert_array_equal(out, runtime.act(obs))
    with pytest.raises(ValueError, match=r"out: expected a float64 array of shape \(4,\)"):
        runtime.act(obs, out=np.zeros(4, np.float32))


@pytest.mark.parametrize(
    ("input_type", "output_type", "atol"),
    [(TensorProto.FLOAT16, TensorProto.FLOAT16, 5e-3), (TensorProto.DOUBLE, TensorProto.FLOAT, 1e-5), (TensorProto.FLOAT, TensorProto.DOUBLE, 1e-5)],
    ids=["fp16-in-out", "f64-in-f32-out", "f32-in-f64-out"],
)
def test_half_and_double_inputs_and_outputs(tmp_path: Path, weights: Weights, input_type, output_type, atol: float) -> None:
    path = save(mlp(weights, input_type=input_type, output_type=output_type), tmp_path / "typed.onnx", make_contract())
    runtime = PolicyRuntime(path)
    for obs in observations(20):
        np.testing.assert_allclose(runtime.act(obs), reference_act(weights, make_contract(), obs), atol=atol)
    bad = observations(1)[0]
    bad[0] = np.nan
    assert runtime.act(bad) is None and runtime.nonfinite_observations == 1
    large = np.full(12, 1000.0)  # finite, and its square overflows float16: still acted on
    assert runtime.act(large) is not None


def test_act_without_normalisation_or_scaling(tmp_path: Path, weights: Weights) -> None:
    contract = make_contract(
        observation=(ObservationField(name="state", size=12, unit="1"),),
        action=(ActionField(name="u", size=4, unit="1", low=-0.5, high=0.5),),
    )
    runtime = PolicyRuntime(save(mlp(weights), tmp_path / "plain.onnx", contract))
    for obs in observations(20):
        np.testing.assert_allclose(runtime.act(obs), reference_act(weights, contract, obs), atol=1e-6)


def test_sha256_is_checked_at_load(policy: Path) -> None:
    digest = hashlib.sha256(policy.read_bytes()).hexdigest()
    assert PolicyRuntime(policy, sha256=digest).act(observations(1)[0]) is not None
    with pytest.raises(ValueError, match=f"has sha256 {digest}, expected 0+"):
        PolicyRuntime(policy, sha256="0" * 64)


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.onnx: no such file"):
        PolicyRuntime(tmp_path / "nope.onnx")
