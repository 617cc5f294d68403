"""Small MLP policies as ONNX graphs: build one from numpy weights (Gemm + activations), and evaluate such a graph in numpy.

Used by the policy benchmark (its default model, and its ``numpy`` row) and by tests. Needs ``onnx``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

ACTIVATIONS = ("Relu", "Tanh", "Sigmoid", "Identity")
_NUMPY_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Relu": lambda x: np.maximum(x, 0, out=x),
    "Tanh": lambda x: np.tanh(x, out=x),
    "Sigmoid": lambda x: np.divide(1.0, 1.0 + np.exp(-x), out=x),
    "Identity": lambda x: x,
}


def random_mlp_weights(sizes: Sequence[int], seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(W, b) per layer, W of shape (out, in) in float32, scaled 1/sqrt(in) so activations stay O(1)."""
    rng = np.random.default_rng(seed)
    return [
        (
            (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32),
            (0.1 * rng.standard_normal(n_out)).astype(np.float32),
        )
        for n_in, n_out in itertools.pairwise(sizes)
    ]


def mlp_model(
    weights: Sequence[tuple[np.ndarray, np.ndarray]],
    hidden_activation: str = "Relu",
    output_activation: str = "Tanh",
    input_name: str = "obs",
    output_name: str = "action",
    batch: int | str = "batch",
    opset: int = 17,
) -> onnx.ModelProto:
    """An MLP graph: per layer ``Gemm(x, W, b, transB=1)`` then the activation (``output_activation`` after the last)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    for name in (hidden_activation, output_activation):
        if name not in ACTIVATIONS:
            raise ValueError(f"activation {name!r} is not one of {', '.join(ACTIVATIONS)}")
    nodes, initializers, previous = [], [], input_name
    for i, (w, b) in enumerate(weights):
        last = i == len(weights) - 1
        initializers += [numpy_helper.from_array(np.asarray(w, np.float32), f"W{i}"), numpy_helper.from_array(np.asarray(b, np.float32), f"b{i}")]
        nodes.append(helper.make_node("Gemm", [previous, f"W{i}", f"b{i}"], [f"z{i}"], transB=1))
        previous = output_name if last else f"h{i}"
        nodes.append(helper.make_node(output_activation if last else hidden_activation, [f"z{i}"], [previous]))
    n_in, n_out = weights[0][0].shape[1], weights[-1][0].shape[0]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, n_in])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, n_out])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="aegis.inference.mlp")
    model.ir_version = min(model.ir_version, 9)  # readable by onnxruntime releases older than this onnx
    onnx.checker.check_model(model)
    return model


def numpy_forward(model: onnx.ModelProto) -> Callable[[np.ndarray], np.ndarray]:
    """A numpy function computing a Gemm/MatMul/Add + activation chain (one input, one output) as onnxruntime does, in float32.

    Raises ValueError naming the unsupported ops of any other graph.
    """
    from onnx import helper, numpy_helper

    supported = {"Gemm", "MatMul", "Add", *ACTIVATIONS}
    unsupported = sorted({n.op_type for n in model.graph.node} - supported)
    if unsupported:
        raise ValueError(f"numpy_forward supports {', '.join(sorted(supported))}; the graph also has {', '.join(unsupported)}")
    constants = {t.name: numpy_helper.to_array(t).astype(np.float32) for t in model.graph.initializer}
    steps: list[Callable[[np.ndarray], np.ndarray]] = []
    previous = model.graph.input[0].name
    for node in model.graph.node:
        if node.input[0] != previous or any(name not in constants for name in node.input[1:]):
            raise ValueError(f"numpy_forward needs a chain of ops on constants; node {node.name or node.op_type} is not one")
        previous = node.output[0]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Gemm":
            w = constants[node.input[1]]
            w = w.T if attrs.get("transB", 0) else w
            w = np.ascontiguousarray(w * attrs.get("alpha", 1.0), dtype=np.float32)
            if len(node.input) > 2:
                b = (constants[node.input[2]] * attrs.get("beta", 1.0)).astype(np.float32)
            else:
                b = np.zeros(w.shape[1], np.float32)
            if attrs.get("transA", 0):
                raise ValueError("numpy_forward: Gemm with transA is not supported")
            steps.append(lambda x, w=w, b=b: x @ w + b)
        elif node.op_type == "MatMul":
            w = constants[node.input[1]]
            steps.append(lambda x, w=w: x @ w)
        elif node.op_type == "Add":
            b = constants[node.input[1]]
            steps.append(lambda x, b=b: np.add(x, b, out=x))
        else:
            steps.append(_NUMPY_ACTIVATIONS[node.op_type])

    def forward(x: np.ndarray) -> np.ndarray:
        y = np.asarray(x, dtype=np.float32)
        for step in steps:
            y = step(y)
        return y

    return forward
