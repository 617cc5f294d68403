"""One graph in physical units: the contract moved into the ONNX graph equals the contract applied in numpy, on the shipped and on random models.

The reference is :class:`PolicyRuntime` with ``physical_graph=False``: the bare network run by
onnxruntime, the observation normalised and the action scaled and clipped in float64 around it
(the way aegis ran every policy before). The physical graph does the same in float32, fed the
physical observation rounded to float32, so the two differ by float32 rounding of the physical
values: a relative 2^-24 of ``|x * gain|`` (the input in normalised units, observation and offset)
carried through a network whose gain is about 1, times the action scale. The tests allow
:data:`ROUNDINGS` of that; a wrong fold (an offset forgotten, a gain on the wrong axis) is off by
the normalised values themselves, some 10^6 of it.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import helper, numpy_helper

from aegis.inference.action_limits import raw_limits, scaled
from aegis.inference.contract import (
    ActionField,
    ContractError,
    Normalization,
    ObservationField,
    PolicyContract,
    read_contract,
    write_mapping,
)
from aegis.inference.physical_graph import (
    NETWORK_SUFFIX,
    NODE_PREFIX,
    physical_file,
    physical_model,
)
from aegis.inference.runtime import PolicyRuntime
from aegis.inference.stamping import write_contract

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("quadrotor_tracking", "husky_goal")
EPS32 = 2.0**-24
ROUNDINGS = 16
"""Allowed difference in units of the float32 rounding bound (the random models below reach 2.5)."""


def rounding_bound(contract: PolicyContract, x: np.ndarray) -> np.ndarray:
    """Per action element: the float32 rounding of a physical input ``x``, in normalised units, through the network and the scale."""
    offset, gain = contract.observation_affine()
    scale, action_offset, _, _ = contract.action_affine()
    normalised = 1.0 + np.max(np.abs(x * gain)) + np.max(np.abs(offset * gain))
    return np.abs(scale) * EPS32 * normalised + np.abs(action_offset) * EPS32


def observations(contract: PolicyContract, count: int, seed: int) -> np.ndarray:
    """Physical observations about the normalisation's centre: half within 1 std, half up to 10 std away, some 100 std."""
    rng = np.random.default_rng(seed)
    offset, gain = contract.observation_affine()
    spread = rng.choice([1.0, 10.0, 100.0], size=(count, offset.size), p=[0.5, 0.45, 0.05])
    return offset + rng.standard_normal((count, offset.size)) * spread / np.abs(gain)


def graph_actions(model: onnx.ModelProto, inputs: np.ndarray) -> np.ndarray:
    """The physical graph on float32 inputs, one row at a time, through onnxruntime."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    info = session.get_inputs()[0]
    shape = [1] * (len(info.shape) - 1) + [inputs.shape[1]]
    outputs = [session.run([session.get_outputs()[0].name], {info.name: row.astype(np.float32).reshape(shape)})[0] for row in inputs]
    return np.array(outputs, dtype=np.float64).reshape(len(inputs), -1)


def reference_actions(path: Path, inputs: np.ndarray, mapping: Path | None = None) -> np.ndarray:
    """The contract applied in numpy around the bare network (float64 observation)."""
    runtime = PolicyRuntime(path, contract=mapping, physical_graph=False, warmup_calls=1)
    return np.array([runtime.act(row) for row in inputs])


def assert_equal_to_rounding(contract: PolicyContract, inputs: np.ndarray, got: np.ndarray, expected: np.ndarray) -> float:
    """Every action within ROUNDINGS of the float32 bound of its row, and inside the limits; returns the worst ratio."""
    _, _, low, high = contract.action_affine()
    assert np.all(got >= low) and np.all(got <= high)  # float32 limits rounded inwards: inside even as float64
    ratios = np.array([np.max(np.abs(g - e) / rounding_bound(contract, x)) for x, g, e in zip(inputs, got, expected)])
    assert ratios.max() <= ROUNDINGS, f"worst difference {ratios.max():.1f} float32 roundings (row {ratios.argmax()})"
    return float(ratios.max())


# --- the shipped models ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fold", [True, False], ids=["folded", "prepended"])
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_physical_graph_equals_the_contract_in_numpy(name: str, fold: bool) -> None:
    path = REPO / "models" / f"{name}.onnx"
    contract = read_contract(path)
    built = physical_model(onnx.load(str(path)), contract, fold=fold)
    assert (built.folded_into is not None) == fold  # both shipped models start with a Gemm on the observation
    inputs = observations(contract, 3000, seed=1)
    got, expected = graph_actions(built.model, inputs), reference_actions(path, inputs)
    worst = assert_equal_to_rounding(contract, inputs, got, expected)
    _, _, low, high = contract.action_affine()
    assert np.any(expected == low) and np.any(expected == high)  # far observations drive the actions into both limits
    assert np.all(got[expected == low] == low[np.nonzero(expected == low)[1]])  # and the graph clips them to the same values
    assert np.any((expected > low) & (expected < high))
    print(f"{name} ({'folded' if fold else 'prepended'}): worst difference {worst:.2f} float32 roundings; {built.describe()}")


@pytest.mark.parametrize("name", SHIPPED)
def test_the_runtime_runs_the_physical_graph_and_acts_like_the_contract_in_numpy(name: str) -> None:
    path = REPO / "models" / f"{name}.onnx"
    runtime = PolicyRuntime(path)
    assert runtime.physical is not None and runtime.graph_contract.physical_graph and not runtime.contract.physical_graph
    assert runtime.network_output == "action" + NETWORK_SUFFIX
    assert "moved there at load" in runtime.diagnostics()["contract_applied"]
    inputs = observations(runtime.contract, 1000, seed=2)
    got = np.array([runtime.act(row) for row in inputs])
    assert_equal_to_rounding(runtime.contract, inputs, got, reference_actions(path, inputs))


def test_the_runtime_fuses_the_actions_scale_and_offset_into_one_gemm_with_the_same_values(tmp_path: Path) -> None:
    """The session's graph has one Gemm where the physical file has Mul then Add; its actions are the file's, bit for bit.

    The benchmark's model: an action with a scale and an offset (thrust) and no limit the tanh can reach (so no Clip).
    """
    from aegis.bench.inference import default_model
    from aegis.inference.runtime_setup import prepare_graph

    path = default_model(tmp_path)
    prepared = prepare_graph(path, None, True)
    contract_ops = [node.op_type for node in onnx.load_from_string(prepared.model).graph.node if node.name.startswith(NODE_PREFIX)]
    physical = physical_model(onnx.load(str(path)), read_contract(path)).model
    file_ops = [node.op_type for node in physical.graph.node if node.name.startswith(NODE_PREFIX)]
    assert prepared.fused_action and file_ops == ["Mul", "Add"] and contract_ops == ["Gemm"]
    runtime = PolicyRuntime(path)
    assert runtime.action_fused and "one Gemm" in runtime.contract_applied
    inputs = observations(runtime.contract, 2000, seed=4)
    np.testing.assert_array_equal([runtime.act(row) for row in inputs], graph_actions(physical, inputs))
    quadrotor = PolicyRuntime(REPO / "models" / "quadrotor_tracking.onnx")  # Clip then Mul, no offset: nothing to fuse
    assert not quadrotor.action_fused and "one Gemm" not in quadrotor.contract_applied


# --- random models and contracts -------------------------------------------------------------------------------


def random_policy(seed: int) -> tuple[onnx.ModelProto, PolicyContract]:
    """A random MLP (Gemm, or MatMul + Add on a 1-D input; tanh, sigmoid or linear out) with a random contract.

    Normalisations of wildly different scales (std 1e-3 to 1e3, offsets up to 20 std, negative
    gains), history of 1 or 2 frames, action scales of either sign from 0.01 to 100, offsets, and
    limits that are per element, one-sided or absent.
    """
    rng = np.random.default_rng(seed)
    fields = []
    for k in range(int(rng.integers(1, 4))):
        size = int(rng.integers(1, 5))
        magnitude = 10.0 ** rng.uniform(-3, 3, size)
        style = int(rng.integers(0, 3))
        if style == 0:
            norm = Normalization(mean=tuple(rng.normal(size=size) * magnitude * rng.uniform(0, 20)), std=tuple(magnitude))
        elif style == 1:
            norm = Normalization(offset=tuple(rng.normal(size=size) * magnitude), scale=tuple(rng.choice([-1.0, 1.0], size) / magnitude))
        else:
            norm = None
        fields.append(ObservationField(name=f"obs{k}", size=size, unit="1", normalization=norm))
    actions = []
    for k in range(int(rng.integers(1, 3))):
        size = int(rng.integers(1, 4))
        scale = rng.choice([-1.0, 1.0], size) * 10.0 ** rng.uniform(-2, 2, size)
        offset = rng.normal(size=size) * np.abs(scale)
        width = np.abs(scale) * rng.uniform(0.2, 1.5, size)
        low = np.where(rng.random(size) < 0.2, -np.inf, offset - width)
        high = np.where(rng.random(size) < 0.2, np.inf, offset + width * rng.uniform(0.5, 1.5, size))
        actions.append(ActionField(name=f"act{k}", size=size, unit="1", scale=tuple(scale), offset=tuple(offset), low=tuple(low), high=tuple(high)))
    contract = PolicyContract(robot_kind="test", control_rate_hz=50.0, history_length=int(rng.integers(1, 3)),
                              observation=tuple(fields), action=tuple(actions))  # fmt: skip
    op, last = ("Gemm", "MatMul")[seed % 2], ("Tanh", "Sigmoid", "Identity")[seed % 3]
    sizes = (contract.input_size, int(rng.integers(4, 32)), int(rng.integers(4, 32)), contract.action_size)
    nodes, initializers, previous = [], [], "obs"
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        w = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
        b = (0.1 * rng.standard_normal(n_out)).astype(np.float32)
        if op == "Gemm":
            initializers += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
            nodes.append(helper.make_node("Gemm", [previous, f"W{i}", f"b{i}"], [f"z{i}"], transB=1))
        else:  # torch.onnx's Linear: MatMul by W^T, then Add(bias, .)
            initializers += [numpy_helper.from_array(np.ascontiguousarray(w.T), f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
            nodes += [helper.make_node("MatMul", [previous, f"W{i}"], [f"m{i}"]), helper.make_node("Add", [f"b{i}", f"m{i}"], [f"z{i}"])]
        previous = "action" if i == len(sizes) - 2 else f"h{i}"
        nodes.append(helper.make_node(last if previous == "action" else "Relu", [f"z{i}"], [previous]))
    shape_in, shape_out = (["batch", sizes[0]], ["batch", sizes[-1]]) if op == "Gemm" else ([sizes[0]], [sizes[-1]])
    graph = helper.make_graph(nodes, "random", [helper.make_tensor_value_info("obs", onnx.TensorProto.FLOAT, shape_in)],
                              [helper.make_tensor_value_info("action", onnx.TensorProto.FLOAT, shape_out)], initializers)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model, contract


@pytest.mark.parametrize("seed", range(24))
def test_random_models_physical_graph_equals_the_contract_in_numpy(tmp_path: Path, seed: int) -> None:
    model, contract = random_policy(seed)
    path = tmp_path / "policy.onnx"
    onnx.save(model, str(path))
    mapping = write_mapping(contract, tmp_path / "policy.aegis.yaml")  # a model without metadata: the mapping file beside it
    inputs = observations(contract, 300, seed=seed + 100)
    expected = reference_actions(path, inputs)
    for fold in (True, False):
        built = physical_model(model, contract, fold=fold)
        assert all(name.startswith(NODE_PREFIX) for name in built.added_nodes)
        assert_equal_to_rounding(contract, inputs, graph_actions(built.model, inputs), expected)
    runtime = PolicyRuntime(path, warmup_calls=1)  # the mapping file beside it; the contract moved into the graph at load
    assert runtime.loaded.path == mapping and runtime.physical is not None
    assert_equal_to_rounding(contract, inputs, np.array([runtime.act(row) for row in inputs]), expected)


# --- never applied twice ---------------------------------------------------------------------------------------


def test_a_physical_model_is_flagged_and_never_normalised_twice(tmp_path: Path) -> None:
    source = REPO / "models" / "quadrotor_tracking.onnx"
    path = tmp_path / "quadrotor_physical.onnx"
    built = physical_file(source, path)
    flagged = read_contract(path)
    assert flagged.physical_graph and flagged == read_contract(source).model_copy(update={"physical_graph": True})
    assert json.loads(flagged.to_json())["physical_graph"] is True
    assert "physical_graph" not in json.loads(read_contract(source).to_json())  # an ordinary contract reads in an older aegis
    again = physical_model(built.model, flagged)  # applying it again changes nothing
    assert again.model.SerializeToString() == built.model.SerializeToString() and again.added_nodes == ()
    inputs = observations(flagged, 300, seed=3)
    original = PolicyRuntime(source)
    expected = [original.act(row) for row in inputs]
    for physical_graph in (True, False):  # the flag, not the option, decides: nothing is applied in numpy either way
        runtime = PolicyRuntime(path, physical_graph=physical_graph)
        assert runtime.physical is None and runtime.contract.physical_graph
        assert runtime.contract_applied.startswith("in the graph (the model file is physical)")
        assert runtime.network_output == "action" + NETWORK_SUFFIX  # still checked for finiteness
        np.testing.assert_array_equal([runtime.act(row) for row in inputs], expected)
    write_mapping(read_contract(source), path.with_name("quadrotor_physical.aegis.yaml"))  # the old contract beside it
    with pytest.raises(ContractError, match="differing: physical_graph"):
        PolicyRuntime(path)


def test_the_network_output_is_still_checked_behind_the_limits(tmp_path: Path) -> None:
    # A linear "network" that overflows float32 for large inputs; the limits would turn its inf into a valid-looking 1.0.
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["obs", "W"], ["action"])], "lin",
        [helper.make_tensor_value_info("obs", onnx.TensorProto.FLOAT, [1, 1])],
        [helper.make_tensor_value_info("action", onnx.TensorProto.FLOAT, [1, 1])],
        [numpy_helper.from_array(np.full((1, 1), 1e30, np.float32), "W")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    contract = PolicyContract(robot_kind="test", control_rate_hz=10.0, observation=(ObservationField(name="x", size=1, unit="m"),),
                              action=(ActionField(name="u", size=1, unit="N", low=-1.0, high=1.0),))  # fmt: skip
    write_contract(model, contract)
    path = tmp_path / "lin.onnx"
    onnx.save(model, str(path))
    built = physical_model(model, contract)
    assert float(graph_actions(built.model, np.array([[1e10]]))[0, 0]) == 1.0  # the graph alone clips the inf
    runtime = PolicyRuntime(path)
    assert runtime.act(np.array([1e-31])) is not None
    assert runtime.act(np.array([1e10])) is None and runtime.nonfinite_actions == 1


# --- the limits, moved before the scale ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_raw_limits_keep_the_scaled_action_inside_its_limits(dtype: type) -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    scale = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-3, 3, n)
    offset = rng.normal(size=n) * 10.0 ** rng.uniform(-3, 3, n)
    low = offset - np.abs(scale) * rng.uniform(0, 2, n)
    high = low + np.abs(scale) * rng.uniform(0, 2, n)
    limits = raw_limits(scale, offset, low, high, np.dtype(dtype))
    assert limits.low is not None and limits.high is not None and limits.low.dtype == dtype
    t = np.dtype(dtype).type
    first = np.asarray(low, dtype=dtype)
    first = np.where(first < low, np.nextafter(first, t(np.inf)), first)
    held = first <= high  # some float of the type lies in [low, high] (not so for a few narrow ones: the nearest is used there)
    assert held.mean() > 0.999
    raw = np.concatenate([rng.uniform(limits.low - 1, limits.high + 1, (50, n)), [limits.low, limits.high]]).astype(dtype)
    physical = scaled(np.clip(raw, limits.low, limits.high), scale, offset, np.dtype(dtype)).astype(np.float64)
    assert np.all((physical >= low) & (physical <= high) | ~held)
    # and tight: one float step outwards leaves the limits
    for bound, outwards in ((limits.low, -np.inf), (limits.high, np.inf)):
        beyond = scaled(np.nextafter(bound, t(outwards)), scale, offset, np.dtype(dtype)).astype(np.float64)
        assert np.all((beyond < low) | (beyond > high) | ~held)


def test_raw_limits_drop_what_a_tanh_cannot_reach_and_share_what_they_can() -> None:
    quadrotor = raw_limits(np.full(3, 10.0), np.zeros(3), np.full(3, -8.0), np.full(3, 8.0), np.dtype(np.float32), (-1.0, 1.0))
    assert quadrotor.uniform and quadrotor.scalar_low == -quadrotor.scalar_high and 0.79 < quadrotor.scalar_high < 0.81
    inside = raw_limits(np.array([0.2, 3.0]), np.array([0.265, 0.0]), np.array([0.0, -3.0]), np.array([0.6, 3.0]), np.dtype(np.float32), (-1.0, 1.0))
    assert not inside.needed  # 0.2 tanh + 0.265 stays in [0, 0.6], 3 tanh in [-3, 3]: no op at all
    one_sided = raw_limits(np.array([1.0, 1.0]), np.zeros(2), np.array([-0.5, -np.inf]), np.array([np.inf, np.inf]), np.dtype(np.float32))
    assert one_sided.high is None and one_sided.low is not None and not one_sided.uniform  # the unlimited element reads -FLT_MAX
    assert one_sided.low[1] == np.finfo(np.float32).min


# --- int8: the physical graph quantized, its normalisation kept in float ---------------------------------------


def _disparate(tmp_path: Path) -> tuple[Path, PolicyContract]:
    """The shipped quadrotor network under a contract whose fields differ wildly in scale (std 1e-3 to 1e3, means 1e3 std away)."""
    source = REPO / "models" / "quadrotor_tracking.onnx"
    contract = read_contract(source)
    fields = list(contract.observation)
    fields[0] = fields[0].model_copy(update={"normalization": Normalization(mean=(1000.0, -5.0, 250.0), std=(0.01, 100.0, 0.5))})
    fields[1] = fields[1].model_copy(update={"normalization": Normalization(mean=(0.0, 0.0, 0.0), std=(1e-3, 1e3, 1.0))})
    contract = contract.model_copy(update={"observation": tuple(fields)})
    model = onnx.load(str(source))
    write_contract(model, contract)
    path = tmp_path / "disparate.onnx"
    onnx.save(model, str(path))
    return path, contract


@pytest.mark.parametrize("case", ["shipped", "disparate-scales"])
def test_int8_quantizes_the_physical_graph_with_its_normalisation_in_float(tmp_path: Path, case: str) -> None:
    from aegis.inference.quantize import quantize_policy

    if case == "shipped":
        path, contract = REPO / "models" / "quadrotor_tracking.onnx", read_contract(REPO / "models" / "quadrotor_tracking.onnx")
    else:
        path, contract = _disparate(tmp_path)
    output = tmp_path / "int8.onnx"
    written = quantize_policy(path, output, "dynamic")
    assert written.physical_graph and read_contract(output) == written
    nodes = onnx.load(str(output)).graph.node
    normalisation = [n.op_type for n in nodes if n.name.startswith(NODE_PREFIX) and n.op_type in ("Sub", "Mul")][:2]
    assert normalisation == ["Sub", "Mul"] and nodes[0].op_type == "Sub"  # float nodes first, reading the physical input
    assert any(n.op_type in ("MatMulInteger", "DynamicQuantizeLinear") for n in nodes)
    offset, gain = contract.observation_affine()
    inputs = offset + np.random.default_rng(4).standard_normal((2000, offset.size)) / np.abs(gain)  # like the training data
    float_actions = reference_actions(path, inputs)
    quantized = PolicyRuntime(output)
    assert quantized.physical is None and quantized.network_output == "action" + NETWORK_SUFFIX
    difference = np.abs(np.array([quantized.act(row) for row in inputs]) - float_actions)
    before = np.abs(_bare_network_quantized(path, contract, tmp_path, inputs) - float_actions)
    print(f"{case}: int8 dynamic vs float: max {difference.max():.4f} mean {difference.mean():.4f} "
          f"(the bare network quantized, contract in numpy: max {before.max():.4f} mean {before.mean():.4f})")
    # as good as quantizing the bare network and normalising in numpy (measured with int8 weights on a VNNI CPU: both
    # 0.1995 / 0.0232 on the shipped model; a folded normalisation gave 0.35 / 0.045 there, and 16 / 8.4 with the disparate
    # scales; int8 weights on an AVX2 CPU without VNNI saturated to 0.49, hence uint8 weights: DYNAMIC_WEIGHT_TYPE)
    assert difference.max() <= 1.1 * before.max() and difference.mean() <= 1.1 * before.mean()
    assert difference.max() < 0.3 and difference.mean() < 0.03


def _bare_network_quantized(path: Path, contract: PolicyContract, folder: Path, inputs: np.ndarray) -> np.ndarray:
    """The way before: the bare network quantized (dynamic), its contract applied in numpy around it."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from aegis.inference.quantize import DYNAMIC_WEIGHT_TYPE

    model = onnx.load(str(path))
    del model.metadata_props[:]
    raw, prepared, quantized = folder / "bare.onnx", folder / "bare_prepared.onnx", folder / "bare_int8.onnx"
    onnx.save(model, str(raw))
    quant_pre_process(str(raw), str(prepared), skip_symbolic_shape=True)
    quantize_dynamic(prepared, quantized, weight_type=getattr(QuantType, DYNAMIC_WEIGHT_TYPE))  # as quantize_policy does
    write_contract(quantized, contract)
    runtime = PolicyRuntime(quantized, physical_graph=False)
    return np.array([runtime.act(row) for row in inputs])


def test_a_physical_graph_with_a_folded_normalisation_is_not_quantized(tmp_path: Path) -> None:
    from aegis.inference.quantize import quantize_policy

    folded = tmp_path / "folded.onnx"
    physical_file(REPO / "models" / "quadrotor_tracking.onnx", folded)
    with pytest.raises(ContractError, match="folded into its first layer"):
        quantize_policy(folded, tmp_path / "int8.onnx", "dynamic")
    prepended = tmp_path / "prepended.onnx"
    physical_file(REPO / "models" / "quadrotor_tracking.onnx", prepended, fold=False)
    assert quantize_policy(prepended, tmp_path / "int8.onnx", "dynamic").physical_graph


def test_the_model_physical_command_writes_the_graph_and_inspect_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from aegis.cli import main

    output = tmp_path / "husky_physical.onnx"
    assert main(["model", "physical", str(REPO / "models" / "husky_goal.onnx"), "-o", str(output), "--no-fold"]) == 0
    assert "normalisation as Sub/Mul before the network; Clip then Mul after the network" in capsys.readouterr().out
    assert read_contract(output).physical_graph
    assert main(["model", "inspect", str(output)]) == 0
    assert "applied in the graph: it takes the physical observation" in capsys.readouterr().out
