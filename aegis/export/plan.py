"""The exporter's view of an MLP: a chain of dense layers and elementwise ops on one float vector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

# Elementwise ops: activations, and arithmetic with a constant (`x op c`, or `c - x` for rsub; max/min: the larger/smaller).
ElementwiseKind = Literal["relu", "leaky_relu", "tanh", "sigmoid", "clip", "add", "sub", "rsub", "mul", "div", "max", "min"]
CONSTANT_KINDS: frozenset[str] = frozenset({"add", "sub", "rsub", "mul", "div", "max", "min"})


@dataclass(frozen=True, eq=False)
class Dense:
    """y = alpha * (x @ weight) + bias, for one sample: weight is [n_in, n_out] float32 (input i to output j)."""

    nodes: tuple[str, ...]  # the ONNX node names folded into this layer (e.g. a MatMul and its Add)
    op_type: str  # "Gemm", "MatMul" or "MatMul+Add"
    weight: np.ndarray
    bias: np.ndarray | None  # [n_out] float32
    alpha: float = 1.0

    @property
    def n_in(self) -> int:
        return int(self.weight.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[1])

    @property
    def parameter_count(self) -> int:
        return int(self.weight.size + (0 if self.bias is None else self.bias.size))


@dataclass(frozen=True, eq=False)
class Elementwise:
    """y[j] = f(x[j]) on a vector of `size`: an activation, or arithmetic with a constant."""

    nodes: tuple[str, ...]
    op_type: str  # the ONNX op type, for comments and reports
    kind: ElementwiseKind
    size: int
    constant: np.ndarray | None = None  # [size] or [1] float32, for the CONSTANT_KINDS
    low: float | None = None  # clip bounds (None: unbounded on that side)
    high: float | None = None
    alpha: float = 0.0  # leaky_relu slope

    @property
    def parameter_count(self) -> int:
        return 0 if self.constant is None else int(self.constant.size)


Op = Dense | Elementwise


@dataclass(frozen=True, eq=False)
class Plan:
    """One ONNX MLP as the C export sees it: input_size floats in, output_size floats out, ops in order."""

    input_size: int
    output_size: int
    ops: tuple[Op, ...]
    elided: tuple[str, ...]  # nodes that do nothing to the per-sample vector (Identity, Flatten, Reshape)
    graph_name: str
    opset: int
    producer: str

    @property
    def parameter_count(self) -> int:
        return sum(op.parameter_count for op in self.ops)

    @property
    def dense_layers(self) -> tuple[Dense, ...]:
        return tuple(op for op in self.ops if isinstance(op, Dense))

    def describe(self) -> str:
        """A one-line summary, e.g. '12 -> Gemm 64 -> Relu -> Gemm 4 -> Tanh -> 4'."""
        parts = [str(self.input_size)]
        for op in self.ops:
            parts.append(f"{op.op_type} {op.n_out}" if isinstance(op, Dense) else op.op_type)
        parts.append(str(self.output_size))
        return " -> ".join(parts)
