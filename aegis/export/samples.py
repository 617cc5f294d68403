"""Sample ONNX MLPs built with onnx.helper from seeded numpy weights, for the export's tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

OPSET = 17


def _linear(rng: np.random.Generator, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """torch.nn.Linear's default init: weight [n_out, n_in] and bias uniform in +-1/sqrt(n_in)."""
    bound = 1.0 / np.sqrt(n_in)
    weight = rng.uniform(-bound, bound, size=(n_out, n_in)).astype(np.float32)
    bias = rng.uniform(-bound, bound, size=n_out).astype(np.float32)
    return weight, bias


def _save(graph: object, path: Path, producer: str) -> Path:
    from onnx import checker, helper, save

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=producer)
    model.ir_version = 8  # readable by every onnxruntime >= 1.10
    checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(model, str(path))
    return path


def mlp_gemm(path: str | Path, sizes: tuple[int, ...] = (12, 64, 64, 4), seed: int = 0,
             hidden: str = "Relu", final: str | None = "Tanh") -> Path:
    """Gemm(transB=1) -> hidden -> ... -> Gemm -> final, input [batch, sizes[0]]: what torch.onnx emits for 2-D input."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, initializers = [], []
    vector = "obs"
    layers = len(sizes) - 1
    for k in range(layers):
        weight, bias = _linear(rng, sizes[k], sizes[k + 1])
        initializers += [numpy_helper.from_array(weight, f"fc{k}.weight"), numpy_helper.from_array(bias, f"fc{k}.bias")]
        out = f"/fc{k}/Gemm_output_0"
        nodes.append(helper.make_node("Gemm", [vector, f"fc{k}.weight", f"fc{k}.bias"], [out], name=f"/fc{k}/Gemm",
                                      alpha=1.0, beta=1.0, transB=1))
        vector = out
        activation = hidden if k < layers - 1 else final
        if activation:
            out = f"/act{k}/{activation}_output_0"
            nodes.append(helper.make_node(activation, [vector], [out], name=f"/act{k}/{activation}"))
            vector = out
    nodes.append(helper.make_node("Identity", [vector], ["action"], name="/output/Identity"))
    graph = helper.make_graph(
        nodes, "mlp_gemm",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", sizes[0]])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", sizes[-1]])],
        initializers,
    )
    return _save(graph, Path(path), "aegis.export.samples")


def mlp_matmul_add(path: str | Path, sizes: tuple[int, ...] = (12, 64, 64, 4), seed: int = 1) -> Path:
    """MatMul(x, W^T) then Add(bias, .) per layer, Relu between, input [batch, 1, n]: torch.onnx's Linear on 3-D input."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, initializers = [], []
    vector = "input"
    layers = len(sizes) - 1
    for k in range(layers):
        weight, bias = _linear(rng, sizes[k], sizes[k + 1])
        w_name = f"onnx::MatMul_{100 + k}"
        initializers += [numpy_helper.from_array(np.ascontiguousarray(weight.T), w_name),
                         numpy_helper.from_array(bias, f"net.{2 * k}.bias")]
        matmul = f"/net/net.{2 * k}/MatMul_output_0"
        nodes.append(helper.make_node("MatMul", [vector, w_name], [matmul], name=f"/net/net.{2 * k}/MatMul"))
        added = "output" if k == layers - 1 else f"/net/net.{2 * k}/Add_output_0"
        nodes.append(helper.make_node("Add", [f"net.{2 * k}.bias", matmul], [added], name=f"/net/net.{2 * k}/Add"))
        vector = added
        if k < layers - 1:
            out = f"/net/net.{2 * k + 1}/Relu_output_0"
            nodes.append(helper.make_node("Relu", [vector], [out], name=f"/net/net.{2 * k + 1}/Relu"))
            vector = out
    graph = helper.make_graph(
        nodes, "main_graph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, sizes[0]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1, sizes[-1]])],
        initializers,
    )
    return _save(graph, Path(path), "pytorch")


def mlp_mixed(path: str | Path, seed: int = 2) -> Path:
    """Every supported op once: normalisation (Sub, Div), Flatten, Gemm with alpha/beta/transB=0, LeakyRelu,
    Reshape (shape from a Constant node), Sigmoid, Mul, Clip with min/max inputs, Identity; 10 -> 32 -> 6."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w0, b0 = _linear(rng, 10, 32)
    w1, b1 = _linear(rng, 32, 6)
    constants = {
        "mean": rng.normal(size=10).astype(np.float32),
        "std": rng.uniform(0.5, 2.0, size=10).astype(np.float32),
        "w0": np.ascontiguousarray(w0.T),  # [10, 32], used with transB=0
        "b0": b0.reshape(1, 32),
        "w1": w1,  # [6, 32], transB=1
        "b1": b1,
        "gain": rng.uniform(0.5, 3.0, size=6).astype(np.float32),
        "low": np.array(0.1, dtype=np.float32),
        "high": np.array(1.5, dtype=np.float32),
    }
    shape = helper.make_tensor("shape_value", TensorProto.INT64, [2], [-1, 32])
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["centred"], name="normalise/Sub"),
        helper.make_node("Div", ["centred", "std"], ["scaled"], name="normalise/Div"),
        helper.make_node("Flatten", ["scaled"], ["flat"], name="Flatten", axis=1),
        helper.make_node("Gemm", ["flat", "w0", "b0"], ["h0"], name="hidden/Gemm", alpha=0.5, beta=2.0),
        helper.make_node("LeakyRelu", ["h0"], ["a0"], name="hidden/LeakyRelu", alpha=0.1),
        helper.make_node("Constant", [], ["shape"], name="shape/Constant", value=shape),
        helper.make_node("Reshape", ["a0", "shape"], ["r0"], name="Reshape"),
        helper.make_node("Gemm", ["r0", "w1", "b1"], ["h1"], name="head/Gemm", transB=1),
        helper.make_node("Sigmoid", ["h1"], ["s1"], name="head/Sigmoid"),
        helper.make_node("Mul", ["s1", "gain"], ["g1"], name="head/Mul"),
        helper.make_node("Clip", ["g1", "low", "high"], ["c1"], name="head/Clip"),
        helper.make_node("Identity", ["c1"], ["y"], name="Identity"),
    ]
    graph = helper.make_graph(
        nodes, "mixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 6])],
        [numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    return _save(graph, Path(path), "aegis.export.samples")


def random_inputs(count: int, size: int, seed: int = 0) -> np.ndarray:
    """count x size float32 observations, standard normal, from a fixed seed."""
    return np.random.default_rng(seed).standard_normal((count, size)).astype(np.float32)
