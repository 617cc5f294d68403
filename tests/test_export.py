"""C export of ONNX MLPs: deterministic C99, refusals that name the op, and the host build equal to onnxruntime."""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from aegis.export import ExportError, UnsupportedModelError, export_c, samples
from aegis.export.cli import add_arguments, run_export
from aegis.export.reference import forward, int8_error_bound
from aegis.export.toolchain import host_cc

N_INPUTS = 2000
FLOAT_TOLERANCE = 1e-5  # max abs error of the float32 C against onnxruntime
ROUNDING = 1e-5  # float rounding on top of the exact-arithmetic int8 bound

MODELS = {  # name -> (builder, input size)
    "mlp_gemm": (samples.mlp_gemm, 12),  # 12-64-64-4, Gemm-Relu-Gemm-Relu-Gemm-Tanh
    "mlp_matmul_add": (samples.mlp_matmul_add, 12),  # torch.onnx's MatMul + Add(bias, .) on [batch, 1, 12]
    "mlp_mixed": (samples.mlp_mixed, 10),  # every supported op once
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {name: build(folder / f"{name}.onnx") for name, (build, _) in MODELS.items()}


def onnxruntime_outputs(model: Path, inputs: np.ndarray) -> np.ndarray:
    """The float model on each row of inputs, through onnxruntime, as [n, output_size]."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    info = session.get_inputs()[0]
    shaped = inputs.reshape([inputs.shape[0], *([1] * (len(info.shape) - 2)), inputs.shape[1]])
    return session.run(None, {info.name: shaped})[0].reshape(inputs.shape[0], -1)


def _chain_model(path: Path, nodes: list, initializers: list, n_in: int, n_out: int, output: str = "y") -> Path:
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", n_out])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def _weights(n_in: int, n_out: int) -> list:
    rng = np.random.default_rng(5)
    return [numpy_helper.from_array(rng.normal(size=(n_in, n_out)).astype(np.float32), "w"),
            numpy_helper.from_array(rng.normal(size=n_out).astype(np.float32), "b")]


# --- the generated C -------------------------------------------------------------------------------------------


def test_the_same_model_gives_the_same_bytes_wherever_it_lies(models: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "renamed.onnx"
    copy.parent.mkdir()
    shutil.copy(models["mlp_gemm"], copy)
    first = export_c(models["mlp_gemm"], tmp_path / "a")
    second = export_c(copy, tmp_path / "b")
    for a, b in zip(first.files, second.files):
        assert a.read_bytes() == b.read_bytes(), a.name
    sha256 = hashlib.sha256(models["mlp_gemm"].read_bytes()).hexdigest()
    assert first.sha256 == sha256
    assert f"Model sha256: {sha256}" in first.source.read_text()
    assert f"Model sha256: {sha256}" in first.header.read_text()


def test_header_declares_the_api_and_the_sizes(models: dict[str, Path], tmp_path: Path) -> None:
    report = export_c(models["mlp_gemm"], tmp_path, name="quad_policy")
    header = report.header.read_text()
    assert report.header.name == "quad_policy.h" and report.source.name == "quad_policy.c"
    assert "void quad_policy_infer(const float *input, float *output);" in header
    assert "#define QUAD_POLICY_INPUT_SIZE 12" in header
    assert "#define QUAD_POLICY_OUTPUT_SIZE 4" in header
    assert "#define QUAD_POLICY_PARAMETER_COUNT 5252" in header
    assert report.parameter_count == 12 * 64 + 64 + 64 * 64 + 64 + 64 * 4 + 4
    assert report.weight_bytes == 4 * report.parameter_count
    assert report.activation_bytes == 4 * (64 + 64)
    assert report.network == "12 -> Gemm 64 -> Relu -> Gemm 64 -> Relu -> Gemm 4 -> Tanh -> 4"


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_the_source_is_dependency_free_c(models: dict[str, Path], tmp_path: Path, precision: str) -> None:
    report = export_c(models["mlp_gemm"], tmp_path, precision=precision)
    source = report.source.read_text()
    includes = set(re.findall(r"#include\s+[<\"]([^>\"]+)", source))
    assert includes <= {"policy.h", "math.h", "stdint.h"}
    code = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)
    assert not re.search(r"\b(malloc|calloc|realloc|free|printf|double)\b", code)
    assert report.libm == ("tanhf",)
    if precision == "int8":
        assert "static const int8_t policy_w0[12][64]" in source
        assert report.weight_bytes == 5252 - 132 + 4 * (132 + 132)  # int8 weights; float biases and scales
    else:
        assert "static const float policy_w0[12][64]" in source


def test_export_without_libm_needs_no_math_header(models: dict[str, Path], tmp_path: Path) -> None:
    report = export_c(models["mlp_matmul_add"], tmp_path)
    assert report.libm == ()
    assert "#include <math.h>" not in report.source.read_text()
    assert report.network == "12 -> MatMul+Add 64 -> Relu -> MatMul+Add 64 -> Relu -> MatMul+Add 4 -> 4"


# --- refusals ----------------------------------------------------------------------------------------------------


def test_unsupported_ops_are_refused_with_their_types_and_node_names(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="/fc/Gemm"),
        helper.make_node("Elu", ["h"], ["e1"], name="/act/Elu"),
        helper.make_node("Elu", ["e1"], ["e2"], name="/act/Elu_1"),
        helper.make_node("Softmax", ["e2"], ["y"], name="/head/Softmax"),
    ]
    model = _chain_model(tmp_path / "softmax.onnx", nodes, _weights(3, 5), 3, 5)
    out = tmp_path / "out"
    with pytest.raises(UnsupportedModelError) as refused:
        export_c(model, out)
    message = str(refused.value)
    assert "Elu ('/act/Elu', '/act/Elu_1')" in message
    assert "Softmax ('/head/Softmax')" in message
    assert "\n" not in message
    assert refused.value.unsupported == (("Elu", "/act/Elu"), ("Elu", "/act/Elu_1"), ("Softmax", "/head/Softmax"))
    assert not out.exists()


def test_a_residual_connection_is_refused(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="/fc/Gemm"),
        helper.make_node("Add", ["h", "x"], ["y"], name="/skip/Add"),
    ]
    model = _chain_model(tmp_path / "residual.onnx", nodes, _weights(4, 4), 4, 4)
    with pytest.raises(ExportError, match=r"Add '/skip/Add' reads .*residual"):
        export_c(model, tmp_path / "out")


def test_a_reshape_that_mixes_samples_is_refused(tmp_path: Path) -> None:
    shape = numpy_helper.from_array(np.array([2, -1], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="/fc/Gemm"),
        helper.make_node("Reshape", ["h", "shape"], ["y"], name="/fold/Reshape"),
    ]
    model = _chain_model(tmp_path / "reshape.onnx", nodes, [*_weights(4, 6), shape], 4, 3)
    with pytest.raises(ExportError, match=r"Reshape '/fold/Reshape' to \[2, -1\] changes the per-sample vector of 6"):
        export_c(model, tmp_path / "out")


def test_a_bad_name_a_bad_precision_and_a_missing_file_are_refused(models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="'2fast' is not usable as a C identifier"):
        export_c(models["mlp_gemm"], tmp_path, name="2fast")
    with pytest.raises(ExportError, match="precision 'int4' is not one of float32, int8"):
        export_c(models["mlp_gemm"], tmp_path, precision="int4")  # type: ignore[arg-type]
    with pytest.raises(ExportError, match="no such model file"):
        export_c(tmp_path / "missing.onnx", tmp_path)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not a model")
    with pytest.raises(ExportError, match="garbage.onnx: not a readable ONNX model"):
        export_c(garbage, tmp_path)


# --- the CLI -----------------------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="aegis export c")
    add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_prints_the_report(models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_export(_cli([str(models["mlp_gemm"]), "-o", str(tmp_path), "--precision", "int8", "--name", "pol"])) == 0
    printed = capsys.readouterr().out
    assert f"wrote {tmp_path / 'pol.h'} and {tmp_path / 'pol.c'}" in printed
    assert "parameters  5252" in printed
    assert "flash       6176 bytes of weights" in printed
    assert "RAM         512 bytes of activations" in printed


def test_cli_refuses_an_unsupported_model_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nodes = [helper.make_node("Softmax", ["x"], ["y"], name="/head/Softmax")]
    model = _chain_model(tmp_path / "softmax.onnx", nodes, [], 3, 3)
    assert run_export(_cli([str(model), "-o", str(tmp_path / "out")])) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"aegis: error: {model}: unsupported ONNX ops for the C export: Softmax ('/head/Softmax')")


# --- the host build, compared with onnxruntime ---------------------------------------------------------------------

needs_cc = pytest.mark.skipif(host_cc() is None, reason="no host C compiler (looked for $CC, cc, gcc, clang)")


@needs_cc
@pytest.mark.parametrize("model_name", list(MODELS))
def test_float32_c_on_the_host_equals_onnxruntime(models: dict[str, Path], tmp_path: Path, model_name: str) -> None:
    from aegis.export.host import build_host

    inputs = samples.random_inputs(N_INPUTS, MODELS[model_name][1], seed=42)
    report = export_c(models[model_name], tmp_path)
    outputs = build_host(report).infer(inputs)
    expected = onnxruntime_outputs(models[model_name], inputs)
    error = float(np.max(np.abs(outputs - expected)))
    print(f"{model_name} float32: max abs error vs onnxruntime over {N_INPUTS} inputs = {error:.3g}")
    assert outputs.shape == expected.shape
    assert error <= FLOAT_TOLERANCE


@needs_cc
@pytest.mark.parametrize("model_name", list(MODELS))
def test_int8_c_on_the_host_stays_within_its_quantization_bound(models: dict[str, Path], tmp_path: Path, model_name: str) -> None:
    from aegis.export.host import build_host

    inputs = samples.random_inputs(N_INPUTS, MODELS[model_name][1], seed=42)
    report = export_c(models[model_name], tmp_path, precision="int8")
    outputs = build_host(report).infer(inputs)
    float_model = onnxruntime_outputs(models[model_name], inputs)
    bound = int8_error_bound(report.plan, inputs)
    error = np.abs(outputs - float_model)
    print(f"{model_name} int8: max abs error vs the float model = {error.max():.3g} (bound max {bound.max():.3g})")
    assert np.all(error <= bound + ROUNDING)
    # and the C computes exactly the int8 scheme: the dequantized weights in float64 agree to rounding
    assert np.max(np.abs(outputs - forward(report.plan, inputs, "int8"))) <= ROUNDING


@needs_cc
def test_host_timing_runs_in_c(models: dict[str, Path], tmp_path: Path) -> None:
    from aegis.export.host import build_host

    policy = build_host(export_c(models["mlp_gemm"], tmp_path))
    seconds = policy.seconds_per_inference(samples.random_inputs(64, 12), runs=1, min_seconds=0.001)
    assert 0.0 < seconds < 1.0  # a number, not a speed assertion (bench/ measures speed)


def _edge_model(path: Path, case: str) -> tuple[Path, int]:
    """Small graphs at the corners of the supported set; returns (model, input size)."""
    rng = np.random.default_rng(11)

    def weight(*shape: int) -> np.ndarray:
        return (0.3 * rng.normal(size=shape)).astype(np.float32)

    input_shape: list = ["batch", 5]
    opset = 17
    if case == "identity_only":
        nodes, constants = [helper.make_node("Identity", ["x"], ["y"], name="id")], {}
    elif case == "dense_dense":  # no activation between; transB=0, beta=0 drops C
        nodes = [helper.make_node("Gemm", ["x", "w0"], ["h"], name="g0"),
                 helper.make_node("Gemm", ["h", "w1", "c"], ["y"], name="g1", beta=0.0)]
        constants = {"w0": weight(5, 7), "w1": weight(7, 3), "c": weight(3)}
    elif case == "vector_input":  # 1-D input, constant - x, Clip with only max, Add after Clip (not a bias)
        input_shape = [5]
        nodes = [helper.make_node("Sub", ["k", "x"], ["a"], name="rsub"),
                 helper.make_node("MatMul", ["a", "w0"], ["h"], name="mm"),
                 helper.make_node("Clip", ["h", "", "hi"], ["c"], name="clip"),
                 helper.make_node("Add", ["c", "b"], ["y"], name="add")]
        constants = {"k": weight(5), "w0": weight(5, 4), "hi": np.array(0.3, np.float32), "b": weight(4)}
    else:  # "clip_attributes": opset 7 Clip with min/max attributes, Add of a scalar fused as the bias
        opset = 7
        nodes = [helper.make_node("MatMul", ["x", "w0"], ["h"], name="mm"),
                 helper.make_node("Add", ["h", "s"], ["a"], name="add"),
                 helper.make_node("Clip", ["a"], ["y"], name="clip", min=-0.5, max=0.7)]
        constants = {"w0": weight(5, 7), "s": weight(1)}
    graph = helper.make_graph(
        nodes, case, [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path, 5


@needs_cc
@pytest.mark.parametrize("case", ["identity_only", "dense_dense", "vector_input", "clip_attributes"])
def test_corner_graphs_on_the_host_equal_onnxruntime(tmp_path: Path, case: str) -> None:
    from aegis.export.host import build_host

    model, size = _edge_model(tmp_path / f"{case}.onnx", case)
    inputs = samples.random_inputs(200, size, seed=3)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    if len(session.get_inputs()[0].shape) == 1:
        expected = np.stack([session.run(None, {"x": row})[0] for row in inputs])
    else:
        expected = session.run(None, {"x": inputs})[0]
    outputs = build_host(export_c(model, tmp_path / "c")).infer(inputs)
    assert np.max(np.abs(outputs - expected)) <= FLOAT_TOLERANCE


# --- physical units: the policy's contract in the C ---------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
SHIPPED = {name: REPO / "models" / f"{name}.onnx" for name in ("quadrotor_tracking", "husky_goal")}
EPS32 = 2.0**-24


def physical_observations(contract, count: int, seed: int) -> np.ndarray:
    """About the normalisation's centre: half within 1 std, the rest 10 or 100 std away (far outside the training data)."""
    rng = np.random.default_rng(seed)
    offset, gain = contract.observation_affine()
    spread = rng.choice([1.0, 10.0, 100.0], size=(count, offset.size), p=[0.5, 0.4, 0.1])
    return (offset + rng.standard_normal((count, offset.size)) * spread / np.abs(gain)).astype(np.float32)


def float32_rounding(contract, inputs: np.ndarray) -> np.ndarray:
    """Per row and action element: float32 rounding of the input in normalised units, through the network and the scale."""
    offset, gain = contract.observation_affine()
    scale, action_offset, _, _ = contract.action_affine()
    normalised = 1.0 + np.max(np.abs(inputs * gain), axis=1, keepdims=True) + np.max(np.abs(offset * gain))
    return np.abs(scale) * EPS32 * normalised + np.abs(action_offset) * EPS32


def runtime_actions(model: Path, inputs: np.ndarray, **kwargs) -> np.ndarray:
    from aegis.inference.runtime import PolicyRuntime

    runtime = PolicyRuntime(model, **kwargs)
    return np.array([runtime.act(row.astype(np.float64)) for row in inputs])


def test_the_header_documents_every_input_and_output_of_the_contract(tmp_path: Path) -> None:
    from aegis.inference.contract import read_contract

    contract = read_contract(SHIPPED["quadrotor_tracking"])
    report = export_c(SHIPPED["quadrotor_tracking"], tmp_path)
    header, source = report.header.read_text(), report.source.read_text()
    assert report.physical and "physical in and out" in "\n".join(report.lines())
    assert "Units:        PHYSICAL" in header and "#define POLICY_PHYSICAL_UNITS 1" in header
    names = [f"{f.name}[{k}]" for f in contract.observation for k in range(f.size)]
    units = [f.unit for f in contract.observation for _ in range(f.size)]
    gain = contract.observation_affine()[1]
    for i, (name, unit) in enumerate(zip(names, units)):  # one comment line per input: index, name, unit, normalisation
        line = next(line for line in header.splitlines() if line.startswith(f" *   [{i:>2}] {name} "))
        assert f" {unit} " in line and f"/ {1 / gain[i]:.6g}" in line
    for j in range(3):
        assert re.search(rf"\[ {j}\] acceleration\[{j}\]\s+m/s\^2\s+network output x 10, clipped to \[-8, 8\]", header)
    assert "#define POLICY_IN_VELOCITY 3 /* 3 x m/s */" in header and "#define POLICY_OUT_ACCELERATION_SIZE 3" in header
    assert "extern const char *const policy_input_units[POLICY_INPUT_SIZE];" in header
    table = re.search(r"policy_input_names\[POLICY_INPUT_SIZE\] = \{(.*?)\};", source, re.DOTALL).group(1)
    assert re.findall(r'"([^"]*)"', table) == names
    table = re.search(r"policy_input_units\[POLICY_INPUT_SIZE\] = \{(.*?)\};", source, re.DOTALL).group(1)
    assert re.findall(r'"([^"]*)"', table) == units
    bare = export_c(SHIPPED["quadrotor_tracking"], tmp_path / "bare", bare=True)
    assert not bare.physical and "#define POLICY_PHYSICAL_UNITS 0" in bare.header.read_text()
    assert "the network's own" in bare.header.read_text() and "policy_input_names" not in bare.header.read_text()


@needs_cc
@pytest.mark.parametrize("name", list(SHIPPED))
def test_float32_c_in_physical_units_on_the_host_equals_the_runtime(tmp_path: Path, name: str) -> None:
    from aegis.export.host import build_host
    from aegis.inference.contract import read_contract

    contract = read_contract(SHIPPED[name])
    inputs = physical_observations(contract, N_INPUTS, seed=5)
    report = export_c(SHIPPED[name], tmp_path / "c")
    host = build_host(report)
    outputs = host.infer(inputs).astype(np.float64)
    expected = runtime_actions(SHIPPED[name], inputs)  # the aegis runtime: onnxruntime on the same physical graph
    _, _, low, high = contract.action_affine()
    ratio = np.abs(outputs - expected) / float32_rounding(contract, inputs)
    print(f"{name} float32 C vs the runtime over {N_INPUTS} physical observations: worst {ratio.max():.2f} float32 roundings, "
          f"{np.mean((expected == low) | (expected == high)):.0%} of the elements at a limit")
    assert ratio.max() <= 4  # summation order only (onnxruntime's Gemm blocks its sums)
    assert np.all(outputs >= low) and np.all(outputs <= high)
    at_limit = (expected == low) | (expected == high)
    assert at_limit.any() and np.array_equal(outputs[at_limit], expected[at_limit])  # clipped: the very same float
    # the input check the header declares
    check = host._lib.policy_input_is_finite
    check.argtypes, check.restype = [ctypes.POINTER(ctypes.c_float)], ctypes.c_int
    row = np.ascontiguousarray(inputs[0])
    assert check(row.ctypes.data_as(ctypes.POINTER(ctypes.c_float))) == 1
    for bad in (np.nan, np.inf, -np.inf):
        broken = row.copy()
        broken[-1] = bad
        assert check(broken.ctypes.data_as(ctypes.POINTER(ctypes.c_float))) == 0


@needs_cc
def test_int8_c_in_physical_units_stays_within_its_bound_of_the_runtime(tmp_path: Path) -> None:
    from aegis.export.host import build_host
    from aegis.inference.contract import read_contract

    model = SHIPPED["quadrotor_tracking"]
    contract = read_contract(model)
    inputs = physical_observations(contract, N_INPUTS, seed=6)
    report = export_c(model, tmp_path / "c", precision="int8")
    assert report.network.startswith("12 -> Sub -> Mul -> Gemm 64")  # the normalisation in float, before the int8 layers
    outputs = build_host(report).infer(inputs).astype(np.float64)
    error = np.abs(outputs - runtime_actions(model, inputs))
    bound = int8_error_bound(report.plan, inputs)
    print(f"quadrotor int8 C vs the runtime: max {error.max():.3g} m/s^2 (bound max {bound.max():.3g})")
    assert np.all(error <= bound + 8 * float32_rounding(contract, inputs))


@needs_cc
def test_a_physical_model_file_is_exported_as_it_is_not_normalised_twice(tmp_path: Path) -> None:
    from aegis.export.host import build_host
    from aegis.inference.contract import read_contract
    from aegis.inference.physical_graph import physical_file

    physical = tmp_path / "quadrotor_physical.onnx"
    physical_file(SHIPPED["quadrotor_tracking"], physical)
    first, second = export_c(SHIPPED["quadrotor_tracking"], tmp_path / "a"), export_c(physical, tmp_path / "b")
    assert second.physical and second.contract == "the model's graph applies it (a physical model file)"
    assert second.network == first.network  # no second normalisation, no second Clip/Mul
    code = [re.sub(r"sha256: [0-9a-f]{64}|SHA256 \"[0-9a-f]{64}\"|In the C: [^\n]*", "", r.source.read_text()) for r in (first, second)]
    assert code[0] == code[1]  # the same weights, ops and tables: only the file's sha256 differs
    inputs = physical_observations(read_contract(physical), 200, 7)
    np.testing.assert_array_equal(build_host(second).infer(inputs), build_host(first).infer(inputs))
    with pytest.raises(ExportError, match="folded into its first layer cannot go to int8"):
        export_c(physical, tmp_path / "c", precision="int8")


def test_a_contract_in_a_mapping_file_is_exported_too(tmp_path: Path) -> None:
    from aegis.inference.contract import read_contract, write_mapping

    model = onnx.load(str(SHIPPED["husky_goal"]))
    del model.metadata_props[:]
    path = tmp_path / "husky.onnx"
    onnx.save(model, str(path))
    assert not export_c(path, tmp_path / "bare").physical  # no contract anywhere: the bare network
    (tmp_path / "contracts").mkdir()
    mapping = write_mapping(read_contract(SHIPPED["husky_goal"]), tmp_path / "contracts" / "husky.yaml")
    report = export_c(path, tmp_path / "c", mapping=mapping)
    assert report.physical and re.search(r"\[ 1\] turn_rate\s+rad/s\s+network output x 2.5, clipped to \[-2, 2\]", report.header.read_text())
