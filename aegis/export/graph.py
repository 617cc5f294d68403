"""Reads an ONNX MLP into a Plan: checks every node is a supported op on one chain, folds constants."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aegis.export.errors import ExportError, UnsupportedModelError
from aegis.export.plan import Dense, Elementwise, Op, Plan

if TYPE_CHECKING:
    import onnx

# The ONNX ops (default domain) the C export implements. Constant nodes are folded into constants.
SUPPORTED_OPS: tuple[str, ...] = (
    "Add", "Clip", "Constant", "Div", "Flatten", "Gemm", "Identity", "LeakyRelu",
    "MatMul", "Max", "Min", "Mul", "Relu", "Reshape", "Sigmoid", "Sub", "Tanh",
)
ACTIVATIONS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "LeakyRelu": "leaky_relu", "Clip": "clip"}
FLOAT = 1  # onnx.TensorProto.FLOAT

Dims = list  # list[int | None]: a tensor's shape, None for a symbolic (batch) dimension


def load_plan(model: str | Path | onnx.ModelProto) -> Plan:
    """The Plan of an ONNX model (a path or a loaded ModelProto); raises ExportError when it is no MLP."""
    onnx = _import_onnx()
    if isinstance(model, onnx.ModelProto):
        proto = model
    else:
        try:
            proto = onnx.load(str(model))
        except Exception as exc:  # protobuf's DecodeError and friends: not an ONNX file
            raise ExportError(f"not a readable ONNX model ({type(exc).__name__}: {exc})") from exc
    graph = proto.graph
    _refuse_unsupported(graph)
    constants = _constants(graph)
    vector, dims = _graph_input(graph, constants)
    input_size = int(dims[-1])
    ops: list[Op] = []
    elided: list[str] = []
    for index, node in enumerate(graph.node):
        if node.op_type == "Constant":
            continue
        label = node.name or f"{node.op_type}#{index}"
        _check_chain(node, label, vector, constants)
        dims = _apply(node, label, dims, constants, ops, elided)
        vector = node.output[0]
    if len(graph.output) != 1:
        raise ExportError(f"the graph has {len(graph.output)} outputs ({', '.join(o.name for o in graph.output)}); the C export needs one")
    output = graph.output[0]
    if output.name != vector:
        raise ExportError(f"graph output '{output.name}' is not the end of the op chain (which ends at '{vector}')")
    _check_float(output, "output")
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    producer = f"{proto.producer_name} {proto.producer_version}".strip()
    return Plan(input_size, int(dims[-1]), tuple(ops), tuple(elided), graph.name, int(opset), producer)


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - onnx is a dependency of the export
        raise ExportError("the C export reads models with the onnx package: pip install onnx") from exc
    return onnx


def _refuse_unsupported(graph: Any) -> None:
    unsupported: list[tuple[str, str]] = []
    for index, node in enumerate(graph.node):
        op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        if op not in SUPPORTED_OPS:
            unsupported.append((op, node.name or f"{node.op_type}#{index}"))
    if not unsupported:
        return
    by_op: dict[str, list[str]] = {}
    for op, name in unsupported:
        by_op.setdefault(op, []).append(name)
    listed = "; ".join(f"{op} ({', '.join(repr(n) for n in names)})" for op, names in by_op.items())
    raise UnsupportedModelError(
        f"unsupported ONNX ops for the C export: {listed}. Supported: {', '.join(SUPPORTED_OPS)}",
        tuple(unsupported),
    )


def _constants(graph: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type != "Constant":
            continue
        attribute = {a.name: a for a in node.attribute}
        if "value" in attribute:
            constants[node.output[0]] = numpy_helper.to_array(attribute["value"].t)
        elif "value_float" in attribute:
            constants[node.output[0]] = np.array(attribute["value_float"].f, dtype=np.float32)
        elif "value_floats" in attribute:
            constants[node.output[0]] = np.array(attribute["value_floats"].floats, dtype=np.float32)
        elif "value_int" in attribute:
            constants[node.output[0]] = np.array(attribute["value_int"].i, dtype=np.int64)
        elif "value_ints" in attribute:
            constants[node.output[0]] = np.array(attribute["value_ints"].ints, dtype=np.int64)
        else:
            raise ExportError(f"Constant node '{node.name}' has no tensor, float or int value")
    return constants


def _graph_inputs(graph: Any, constants: dict[str, np.ndarray]) -> list[Any]:
    return [value for value in graph.input if value.name not in constants]  # old exporters list initializers too


def _graph_input(graph: Any, constants: dict[str, np.ndarray]) -> tuple[str, Dims]:
    inputs = _graph_inputs(graph, constants)
    if len(inputs) != 1:
        raise ExportError(f"the graph has {len(inputs)} inputs ({', '.join(v.name for v in inputs)}); the C export needs one")
    value = inputs[0]
    _check_float(value, "input")
    dims: Dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
    if not dims or dims[-1] is None or dims[-1] < 1:
        raise ExportError(f"input '{value.name}' needs a fixed last dimension (the observation size), got shape {_show(dims)}")
    return value.name, dims


def _check_float(value: Any, role: str) -> None:
    elem_type = value.type.tensor_type.elem_type
    if elem_type != FLOAT:
        raise ExportError(f"{role} '{value.name}' has ONNX element type {elem_type}; the C export needs float32 (1)")


def _check_chain(node: Any, label: str, vector: str, constants: dict[str, np.ndarray]) -> None:
    computed = [name for name in node.input if name and name not in constants]
    if computed != [vector]:
        raise ExportError(
            f"{node.op_type} '{label}' reads {computed or 'only constants'}; the C export needs a chain of ops, "
            f"each reading the previous one's output ('{vector}') and constants (no branches or residual connections)"
        )
    if len([name for name in node.output if name]) != 1:
        raise ExportError(f"{node.op_type} '{label}' has {len(node.output)} outputs; the C export needs one")


def _attributes(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _float_constant(constants: dict[str, np.ndarray], name: str, label: str) -> np.ndarray:
    value = constants[name]
    if value.dtype != np.float32:
        raise ExportError(f"'{label}': constant '{name}' is {value.dtype}; the C export needs float32")
    if not np.all(np.isfinite(value)):
        raise ExportError(f"'{label}': constant '{name}' holds inf or NaN")
    return value


def _apply(node: Any, label: str, dims: Dims, constants: dict[str, np.ndarray], ops: list[Op], elided: list[str]) -> Dims:
    """Appends the node's op to `ops` (or to `elided`) and returns the new shape of the chain's tensor."""
    op_type = node.op_type
    n = int(dims[-1])
    if op_type in ("Gemm", "MatMul"):
        dense = _gemm(node, label, n, constants) if op_type == "Gemm" else _matmul(node, label, n, constants)
        ops.append(dense)
        return [*dims[:-1], dense.n_out] if len(dims) > 1 else [dense.n_out]
    if op_type in ("Add", "Sub", "Mul", "Div", "Max", "Min"):
        return _arithmetic(node, label, dims, constants, ops)
    if op_type in ACTIVATIONS:
        ops.append(_activation(node, label, n, constants))
        return dims
    if op_type == "Identity":
        elided.append(label)
        return dims
    if op_type == "Flatten":
        elided.append(label)
        return _flatten(label, dims, int(_attributes(node).get("axis", 1)))
    if op_type == "Reshape":
        elided.append(label)
        return _reshape(node, label, dims, constants)
    raise UnsupportedModelError(f"unsupported ONNX ops for the C export: {op_type} ('{label}')", ((op_type, label),))


def _gemm(node: Any, label: str, n: int, constants: dict[str, np.ndarray]) -> Dense:
    attributes = _attributes(node)
    if attributes.get("transA", 0):
        raise ExportError(f"Gemm '{label}' has transA=1; the C export needs the vector as A (transA=0)")
    if node.input[0] not in constants and node.input[1] in constants:
        b = _float_constant(constants, node.input[1], label)
    else:
        raise ExportError(f"Gemm '{label}' needs the vector as A and a constant B")
    if b.ndim != 2:
        raise ExportError(f"Gemm '{label}': B has shape {list(b.shape)}, expected 2-D")
    weight = b.T if attributes.get("transB", 0) else b
    _check_inputs(label, "Gemm", weight, n)
    alpha = float(np.float32(attributes.get("alpha", 1.0)))
    beta = np.float32(attributes.get("beta", 1.0))
    bias = None
    if len(node.input) > 2 and node.input[2] and beta != 0:
        c = _float_constant(constants, node.input[2], label)
        bias = (beta * _broadcast_vector(c, weight.shape[1], label, "C")).astype(np.float32)
    return Dense((label,), "Gemm", np.ascontiguousarray(weight, dtype=np.float32), bias, alpha)


def _matmul(node: Any, label: str, n: int, constants: dict[str, np.ndarray]) -> Dense:
    if node.input[1] not in constants:
        raise ExportError(f"MatMul '{label}' multiplies a constant by the vector (W @ x); the C export needs x @ W")
    weight = _float_constant(constants, node.input[1], label)
    if weight.ndim != 2:
        raise ExportError(f"MatMul '{label}': the weight has shape {list(weight.shape)}, expected 2-D")
    _check_inputs(label, "MatMul", weight, n)
    return Dense((label,), "MatMul", np.ascontiguousarray(weight, dtype=np.float32), None)


def _check_inputs(label: str, op_type: str, weight: np.ndarray, n: int) -> None:
    if weight.shape[0] != n:
        raise ExportError(f"{op_type} '{label}': the weight takes {weight.shape[0]} inputs but the vector has {n}")


def _broadcast_vector(value: np.ndarray, n: int, label: str, role: str) -> np.ndarray:
    """A constant that broadcasts along one sample's vector of n, as an [n] array."""
    if value.size == 1 or (value.ndim >= 1 and value.shape[-1] == n and value.size == n):
        return np.broadcast_to(value.reshape(-1), (n,)).astype(np.float32)
    raise ExportError(f"'{label}': {role} has shape {list(value.shape)}, which does not broadcast along the vector of {n}")


def _arithmetic(node: Any, label: str, dims: Dims, constants: dict[str, np.ndarray], ops: list[Op]) -> Dims:
    op_type = node.op_type
    n = int(dims[-1])
    vector_first = node.input[0] not in constants
    constant = _float_constant(constants, node.input[1] if vector_first else node.input[0], label)
    if len([name for name in node.input if name]) != 2:
        raise ExportError(f"{op_type} '{label}' has {len(node.input)} inputs; the C export takes the vector and one constant")
    kinds = {"Add": "add", "Mul": "mul", "Sub": "sub" if vector_first else "rsub", "Div": "div" if vector_first else None,
             "Max": "max", "Min": "min"}
    kind = kinds[op_type]
    if kind is None:
        raise ExportError(f"Div '{label}' divides a constant by the vector; the C export supports x / c only")
    vector = _broadcast_vector(constant, n, label, "the constant")
    if constant.size == 1:
        vector = constant.reshape(1).astype(np.float32)
    previous = ops[-1] if ops else None
    if kind == "add" and isinstance(previous, Dense) and previous.bias is None:
        ops[-1] = replace(previous, nodes=(*previous.nodes, label), op_type=f"{previous.op_type}+Add",
                          bias=np.broadcast_to(vector, (n,)).astype(np.float32))
    else:
        ops.append(Elementwise((label,), op_type, kind, n, constant=vector))  # type: ignore[arg-type]
    extra = constant.ndim - len(dims)
    return [*([1] * extra), *dims] if extra > 0 else dims


def _activation(node: Any, label: str, n: int, constants: dict[str, np.ndarray]) -> Elementwise:
    op_type = node.op_type
    kind = ACTIVATIONS[op_type]
    attributes = _attributes(node)
    if op_type == "LeakyRelu":
        return Elementwise((label,), op_type, "leaky_relu", n, alpha=float(np.float32(attributes.get("alpha", 0.01))))
    if op_type == "Clip":
        low, high = attributes.get("min"), attributes.get("max")  # opset < 11
        for position in (1, 2):
            if len(node.input) > position and node.input[position]:
                bound = _float_constant(constants, node.input[position], label)
                if bound.size != 1:
                    raise ExportError(f"Clip '{label}': bound '{node.input[position]}' is not a scalar")
                if position == 1:
                    low = float(bound.reshape(()))
                else:
                    high = float(bound.reshape(()))
        return Elementwise((label,), op_type, "clip", n,
                           low=None if low is None else float(np.float32(low)),
                           high=None if high is None else float(np.float32(high)))
    return Elementwise((label,), op_type, kind, n)  # type: ignore[arg-type]


def _flatten(label: str, dims: Dims, axis: int) -> Dims:
    rank = len(dims)
    axis = axis + rank if axis < 0 else axis
    kept = dims[axis:-1] if axis < rank else None
    leading = dims[:axis]
    if axis == rank or kept is None or any(d != 1 for d in kept) or (axis == 0 and rank > 1 and any(d != 1 for d in dims[:-1])):
        raise ExportError(f"Flatten '{label}' (axis={axis}) of shape {_show(dims)} changes the per-sample vector of {dims[-1]}")
    batch = None if any(d is None for d in leading) else int(np.prod(leading, dtype=np.int64))
    return [batch, dims[-1]]


def _reshape(node: Any, label: str, dims: Dims, constants: dict[str, np.ndarray]) -> Dims:
    if node.input[1] not in constants:
        raise ExportError(f"Reshape '{label}' takes its shape from a computed tensor; the C export needs a constant shape")
    target = [int(t) for t in constants[node.input[1]].reshape(-1)]
    n = int(dims[-1])
    allow_zero = bool(_attributes(node).get("allowzero", 0))
    resolved = [dims[i] if (t == 0 and not allow_zero and i < len(dims)) else t for i, t in enumerate(target)]
    old_leading, new_leading = dims[:-1], resolved[:-1]
    if resolved and resolved[-1] == n and all(d is None or d == -1 or d >= 1 for d in new_leading):
        return [None if d in (None, -1) else d for d in new_leading] + [n]
    if resolved and resolved[-1] == -1 and all(d == 1 for d in new_leading) and all(d == 1 for d in old_leading):
        return [*new_leading, n]
    raise ExportError(
        f"Reshape '{label}' to {target} changes the per-sample vector of {n} "
        "(the C export supports reshapes that keep the last dimension)"
    )


def _show(dims: Dims) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
