"""A numpy forward pass of a Plan, and the a-priori error bound of its int8 export against the float model."""

from __future__ import annotations

import numpy as np

from aegis.export.plan import Dense, Elementwise, Plan
from aegis.export.quantize import quantize_per_output_channel

# Lipschitz constant of each elementwise kind (for the int8 bound); arithmetic kinds depend on the constant.
_LIPSCHITZ = {"relu": 1.0, "tanh": 1.0, "clip": 1.0, "sigmoid": 0.25, "max": 1.0, "min": 1.0}


def _elementwise(op: Elementwise, x: np.ndarray) -> np.ndarray:
    c = op.constant
    if op.kind == "relu":
        return np.maximum(x, 0.0)
    if op.kind == "leaky_relu":
        return np.where(x >= 0, x, op.alpha * x)
    if op.kind == "tanh":
        return np.tanh(x)
    if op.kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if op.kind == "clip":
        low = -np.inf if op.low is None else op.low
        high = np.inf if op.high is None else op.high
        return np.clip(x, low, high)
    return {"add": lambda: x + c, "sub": lambda: x - c, "rsub": lambda: c - x, "mul": lambda: x * c, "div": lambda: x / c,
            "max": lambda: np.maximum(x, c), "min": lambda: np.minimum(x, c)}[op.kind]()


def _weight(op: Dense, precision: str) -> np.ndarray:
    return quantize_per_output_channel(op.weight).dequantized() if precision == "int8" else op.weight


def forward(plan: Plan, inputs: np.ndarray, precision: str = "float32") -> np.ndarray:
    """The plan on a batch [n, input_size] in float64 with the weights as exported (int8: dequantized)."""
    x = np.asarray(inputs, dtype=np.float64).reshape(-1, plan.input_size)
    for op in plan.ops:
        if isinstance(op, Dense):
            x = op.alpha * (x @ _weight(op, precision).astype(np.float64))
            if op.bias is not None:
                x = x + op.bias
        else:
            x = _elementwise(op, x)
    return x


def int8_error_bound(plan: Plan, inputs: np.ndarray) -> np.ndarray:
    """Per input and output, a bound on |int8 export - float model| in exact arithmetic, [n, output_size].

    Through a dense layer with float weight W and dequantized Wq (error E = Wq - W), the deviation d of
    the vector becomes |alpha| (|Wq|^T d + |E|^T |x|), x being the float model's vector there; an
    elementwise op multiplies d by its Lipschitz constant (relu, tanh, clip 1; sigmoid 1/4; leaky relu
    max(1, |alpha|); max and min with a constant 1; x*c by |c|; x/c by 1/|c|). Float rounding comes on top (about 1e-6 here).
    """
    x = np.asarray(inputs, dtype=np.float64).reshape(-1, plan.input_size)
    deviation = np.zeros_like(x)
    for op in plan.ops:
        if isinstance(op, Dense):
            wq = _weight(op, "int8").astype(np.float64)
            error = np.abs(wq - op.weight.astype(np.float64))
            deviation = abs(op.alpha) * (deviation @ np.abs(wq) + np.abs(x) @ error)
            x = op.alpha * (x @ op.weight.astype(np.float64))
            if op.bias is not None:
                x = x + op.bias
            continue
        if op.kind in _LIPSCHITZ:
            deviation = deviation * _LIPSCHITZ[op.kind]
        elif op.kind == "leaky_relu":
            deviation = deviation * max(1.0, abs(op.alpha))
        elif op.kind == "mul":
            deviation = deviation * np.abs(op.constant)
        elif op.kind == "div":
            deviation = deviation / np.abs(op.constant)
        x = _elementwise(op, x)
    return deviation
