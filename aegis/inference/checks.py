"""Load-time checks of a policy contract: against the ONNX graph's inputs and outputs, and against the deployment.

Every mismatch is refused with a message naming both sides, e.g. ``observation size: model input
'obs' has 154, the contract (policy.onnx metadata) sums to 160 (position 3 + ...)``. All problems
are collected and raised together as one :class:`ContractMismatch`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from aegis.inference.contract import ContractError, PolicyContract

if TYPE_CHECKING:
    import onnx

    from aegis.config import HwConfig

Dim = int | str | None
"""A tensor dimension: a number, a symbolic name (dynamic), or None (unknown)."""

FLOAT_DTYPES = ("float16", "float32", "float64")
"""Input/output element types the runtime feeds and reads."""

_ORT_NAMES = {"float": "float32", "double": "float64"}


class ContractMismatch(ContractError):
    """The contract disagrees with the graph or the deployment; ``problems`` holds one line per mismatch."""

    def __init__(self, where: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = f"{where}: {self.problems[0]}"
        else:
            message = f"{where}: {len(self.problems)} mismatches\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output: name, shape (numbers, symbolic names or None) and numpy dtype name."""

    name: str
    shape: tuple[Dim, ...]
    dtype: str

    def shape_text(self) -> str:
        return "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"


@dataclass(frozen=True)
class GraphBinding:
    """Which graph input and output carry the observation and the action, and the shapes fed and read (batch 1)."""

    input: TensorSpec
    output: TensorSpec
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    notes: tuple[str, ...] = ()


class DeploymentExpectation(BaseModel):
    """What the deployment expects of the policy; None leaves a point unchecked. ``source`` names it in messages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = "the deployment"
    robot_kind: str | None = None
    control_rate_hz: float | None = Field(None, gt=0)
    observation_names: tuple[str, ...] | None = None
    action_names: tuple[str, ...] | None = None
    units: dict[str, str] = Field(default_factory=dict, description="field name -> expected unit, in either layout")


def expectation_from_config(
    config: HwConfig,
    control_rate_hz: float | None = None,
    observation_names: Sequence[str] | None = None,
    action_names: Sequence[str] | None = None,
    units: Mapping[str, str] | None = None,
) -> DeploymentExpectation:
    """What a hw_config expects: its robot kind, plus the rate and names the policy node will use (when given)."""
    name = config.source.name if config.source is not None else "<hw_config>"
    return DeploymentExpectation(
        source=f"hw_config {name}",
        robot_kind=config.robot.kind,
        control_rate_hz=control_rate_hz,
        observation_names=tuple(observation_names) if observation_names is not None else None,
        action_names=tuple(action_names) if action_names is not None else None,
        units=dict(units or {}),
    )


def graph_specs(model: onnx.ModelProto) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The graph's inputs (initializers excluded) and outputs, from an onnx ModelProto."""
    from onnx import helper

    def spec(value: Any) -> TensorSpec:
        tensor = value.type.tensor_type
        dims: list[Dim] = []
        for d in tensor.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param if d.HasField("dim_param") else None))
        try:
            dtype = str(helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        except (KeyError, ValueError, TypeError):
            dtype = f"onnx elem_type {tensor.elem_type}"
        return TensorSpec(value.name, tuple(dims), dtype)

    initializers = {t.name for t in model.graph.initializer}
    inputs = [spec(v) for v in model.graph.input if v.name not in initializers]
    return inputs, [spec(v) for v in model.graph.output]


def session_specs(session: Any) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The inputs and outputs of an onnxruntime InferenceSession."""

    def spec(arg: Any) -> TensorSpec:
        shape = tuple(d if isinstance(d, (int, str)) or d is None else str(d) for d in (arg.shape or ()))
        inner = arg.type[len("tensor(") : -1] if arg.type.startswith("tensor(") else arg.type
        return TensorSpec(arg.name, shape, _ORT_NAMES.get(inner, inner))

    return [spec(a) for a in session.get_inputs()], [spec(a) for a in session.get_outputs()]


def check_graph(
    contract: PolicyContract,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    where: str = "model",
    contract_source: str = "the contract",
) -> GraphBinding:
    """Check the contract against the graph: which input/output, their dtypes, ranks, batch and sizes; raise ContractMismatch listing all."""
    problems: list[str] = []
    notes: list[str] = []
    src = contract_source
    chosen_in = _choose("input", inputs, contract.input_name, src, problems)
    chosen_out = _choose("output", outputs, contract.output_name, src, problems)
    in_shape = out_shape = None
    if chosen_in is not None:
        expected = (
            f"the observation layout of {src} sums to {contract.input_size} ({contract.observation_layout()}"
            + (f" = {contract.frame_size}, x history_length {contract.history_length})" if contract.history_length > 1 else ")")
        )
        in_shape = _check_tensor("input", chosen_in, contract.input_size, "observation size", expected, problems, notes)
    if chosen_out is not None:
        expected = f"the action layout of {src} sums to {contract.action_size} ({contract.action_layout()})"
        out_shape = _check_tensor("output", chosen_out, contract.action_size, "action size", expected, problems, notes)
    if problems:
        raise ContractMismatch(where, problems)
    assert chosen_in is not None and chosen_out is not None and in_shape is not None and out_shape is not None
    return GraphBinding(chosen_in, chosen_out, in_shape, out_shape, tuple(notes))


def check_deployment(contract: PolicyContract, expected: DeploymentExpectation, contract_source: str = "the contract") -> list[str]:
    """The mismatches between the contract and what the deployment expects (empty: none), each naming both sides."""
    problems: list[str] = []
    src, dep = contract_source, expected.source
    if expected.robot_kind is not None and expected.robot_kind != contract.robot_kind:
        problems.append(f"robot kind: {dep} has robot kind {expected.robot_kind!r}, {src} has robot_kind {contract.robot_kind!r}")
    if expected.control_rate_hz is not None and not math.isclose(expected.control_rate_hz, contract.control_rate_hz, rel_tol=1e-9):
        problems.append(
            f"control rate: {dep} runs the policy at {expected.control_rate_hz:g} Hz, {src} has control_rate_hz {contract.control_rate_hz:g} Hz"
        )
    for which, wanted, have in (
        ("observation", expected.observation_names, contract.observation_names),
        ("action", expected.action_names, contract.action_names),
    ):
        if wanted is not None and tuple(wanted) != have:
            problems.append(f"{which} names: {dep} expects [{', '.join(wanted)}], {src} has [{', '.join(have)}]{_first_difference(wanted, have)}")
    fields = {f.name: ("observation", f.unit) for f in contract.observation} | {f.name: ("action", f.unit) for f in contract.action}
    for name, unit in expected.units.items():
        if name not in fields:
            problems.append(f"unit of {name!r}: {dep} expects {unit!r}, {src} has no field {name!r}")
        elif fields[name][1] != unit:
            problems.append(f"unit of {fields[name][0]} {name!r}: {dep} expects {unit!r}, {src} has {fields[name][1]!r}")
    return problems


def check_contract(
    contract: PolicyContract,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    expected: DeploymentExpectation | None = None,
    where: str = "model",
    contract_source: str = "the contract",
) -> GraphBinding:
    """Both checks at once; one ContractMismatch lists every problem of either."""
    problems: list[str] = []
    binding = None
    try:
        binding = check_graph(contract, inputs, outputs, where, contract_source)
    except ContractMismatch as exc:
        problems += exc.problems
    if expected is not None:
        problems += check_deployment(contract, expected, contract_source)
    if problems:
        raise ContractMismatch(where, problems)
    assert binding is not None
    return binding


def _choose(kind: str, specs: Sequence[TensorSpec], wanted: str | None, src: str, problems: list[str]) -> TensorSpec | None:
    names = ", ".join(repr(s.name) for s in specs) or "none"
    key = f"{kind}_name"
    if wanted is not None:
        for spec in specs:
            if spec.name == wanted:
                return spec
        problems.append(f"{kind}: {src} names {key} {wanted!r}, the model's {kind}s are {names}")
        return None
    if len(specs) == 1:
        return specs[0]
    problems.append(f"{kind}: the model has {len(specs)} {kind}s ({names}), {src} gives no {key} to pick one")
    return None


def _check_tensor(
    kind: str, spec: TensorSpec, size: int, what: str, expected: str, problems: list[str], notes: list[str]
) -> tuple[int, ...] | None:
    label = f"model {kind} {spec.name!r}"
    ok = True
    if spec.dtype not in FLOAT_DTYPES:
        problems.append(f"dtype: {label} is {spec.dtype}, the runtime exchanges floating point ({', '.join(FLOAT_DTYPES)})")
        ok = False
    if len(spec.shape) not in (1, 2):
        problems.append(f"shape: {label} has shape {spec.shape_text()}, the runtime needs [{size}] or [batch, {size}]")
        return None
    if len(spec.shape) == 2:
        batch = spec.shape[0]
        if isinstance(batch, int) and batch != 1:
            problems.append(f"batch: {label} has shape {spec.shape_text()} with batch fixed at {batch}, the runtime runs one observation (batch 1)")
            ok = False
        elif not isinstance(batch, int):
            notes.append(f"{label}: dynamic batch {batch!r}, run with batch 1")
    features = spec.shape[-1]
    if isinstance(features, int):
        if features != size:
            problems.append(f"{what}: {label} has {features}, {expected}")
            ok = False
    else:
        notes.append(f"{label}: dynamic size {features!r}, run with the contract's {size}")
    if not ok:
        return None
    return (1, size) if len(spec.shape) == 2 else (size,)


def _first_difference(wanted: Sequence[str], have: Sequence[str]) -> str:
    for i, (a, b) in enumerate(zip(wanted, have)):
        if a != b:
            return f" (first difference at position {i}: {a!r} vs {b!r})"
    return f" ({len(wanted)} vs {len(have)} fields)"
