"""A depth-sector model's lean ONNX graph: the same weights and answers in fewer, cheaper nodes (the cascade's per-call time).

A depth-sector model as ``torch.onnx.export`` writes it (aegis.training.depth_train) spends most of a
cheap model's call outside its three convolutions: each onnxruntime node costs about a microsecond
however small, and the export adds the bearing channel's Expand/Concat, the shape arithmetic
around them, the per-column sigmoid and softplus on every column and the column repeat before the
sector pooling. :func:`lean_sector_model` rewrites one with the same weights:

* the bearing channel is a constant, so its share of the first convolution is too: where that
  convolution spans the image's height (the cheap model) the share is one row, computed once here
  and added to the image's convolution, which reads one channel instead of two; else (the large
  model's 3x3) the bearing stays a constant second channel, without the export's Expand and its shape arithmetic;
* sigmoid and softplus are increasing, so a sector's nearest range and least sure sigma are those of
  its band's least and largest logits: the sectors are pooled first (one MaxPool over the columns,
  the range logits negated in the last convolution's weights, then a Gather of each sector's first
  column) and the two activations run on 2 x K values, not 2 x W;
* the contract and the sector spec (the file's metadata) are copied as they are.

The answers equal the exported graph's to float rounding (tests/test_depth_lean.py). ``aegis
train-depth`` writes its cheap model this way; the large one stays as exported (large_from_onnx reads
its initializers back by name to make the window model again, and a lean graph saves little of its
time), and the window model (a batch of sector windows with their bearings as input) is left as it is.
``python -m aegis.training.depth_lean --models-dir DIR --out DIR`` writes lean copies of a robot's
cheap and large models, and copies its window model, so that aegis.training.depth_eval can measure them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _bearing_map(weight: np.ndarray, bearing: np.ndarray, pads: list[int]) -> np.ndarray:
    """The bearing channel's share of a convolution's output (C, H', W'): ``weight`` (C, 1, kh, kw), ``bearing`` (H, W), zero padding ``pads``."""
    top, left, bottom, right = pads
    padded = np.pad(bearing.astype(np.float64), ((top, bottom), (left, right)))
    kh, kw = weight.shape[2:]
    out_h, out_w = padded.shape[0] - kh + 1, padded.shape[1] - kw + 1
    out = np.zeros((weight.shape[0], out_h, out_w))
    for dy in range(kh):
        for dx in range(kw):
            out += weight[:, 0, dy, dx, None, None].astype(np.float64) * padded[None, dy : dy + out_h, dx : dx + out_w]
    return out.astype(np.float32)


def _conv_chain(graph: Any, weights: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, list[int]]]:
    """The exported graph's convolutions in order: (weight, bias, pads); each but the last is followed by a Relu (else ValueError)."""
    from onnx import helper

    consumers: dict[str, list[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    convs = [node for node in graph.node if node.op_type == "Conv"]
    chain = []
    for i, node in enumerate(convs):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if any(v != 1 for v in attrs.get("strides", [1, 1])) or any(v != 1 for v in attrs.get("dilations", [1, 1])) or attrs.get("group", 1) != 1:
            raise ValueError(f"convolution {node.name}: strides, dilations or groups other than 1 (not a depth-sector column network)")
        if i < len(convs) - 1 and consumers.get(node.output[0]) != ["Relu"]:
            raise ValueError(f"convolution {node.name} is not followed by a Relu (not a depth-sector column network)")
        chain.append((weights[node.input[1]], weights[node.input[2]], list(attrs.get("pads", [0, 0, 0, 0]))))
    return chain


def _min_sigma(graph: Any, weights: dict[str, np.ndarray]) -> float:
    """The sigma floor the exported graph adds to its softplus (the constant of the Add that reads the Softplus); ValueError if none."""
    from onnx import numpy_helper

    constants = dict(weights)
    for node in graph.node:
        if node.op_type == "Constant":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    softplus = {node.output[0] for node in graph.node if node.op_type == "Softplus"}
    for node in graph.node:
        if node.op_type == "Add" and softplus & set(node.input):
            [other] = [name for name in node.input if name not in softplus]
            if other in constants and constants[other].size == 1:
                return float(constants[other])
    raise ValueError("no constant added to the sigma's softplus (not a depth-sector model from aegis train-depth)")


def lean_sector_model(path: str | Path) -> Any:
    """The lean graph of a depth-sector model file (module docstring) as an onnx ModelProto, its metadata copied; ValueError if not one."""
    import onnx
    from onnx import helper, numpy_helper

    from aegis.inference.depth_model import read_sector_spec

    spec = read_sector_spec(path)
    if spec.window_px is not None:
        raise ValueError(f"{path}: a window model (its bearings are an input): only whole-image sector models have a lean graph here")
    model = onnx.load(str(path))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    if "bearing" not in weights:
        raise ValueError(f"{path}: no bearing initializer (not a depth-sector column network from aegis train-depth)")
    height, columns = spec.height_px // spec.factor, spec.width_px // spec.factor
    band = spec.width_px // spec.sectors
    first = [(s * band) // spec.factor for s in range(spec.sectors)]  # the model's columns each sector's band covers
    span = {((s + 1) * band - 1) // spec.factor - first[s] + 1 for s in range(spec.sectors)}
    if len(span) != 1:
        raise ValueError(f"{path}: the sectors cover unequal numbers of the model's columns ({sorted(span)}): no one pooling window")
    chain = _conv_chain(model.graph, weights)
    (w0, b0, pads0), last = chain[0], chain[-1]
    bearing = weights["bearing"].reshape(height, columns)
    w_last, b_last = last[0].copy(), last[1].copy()
    w_last[0] *= -1.0  # the range logits negated: one MaxPool takes each band's least range logit and largest sigma logit
    b_last[0] *= -1.0
    share = _bearing_map(w0[:, 1:], bearing, pads0)[None]
    fold = share.shape[2] == 1  # the first convolution spans the image's height: its bearing share is one row, cheaper added than convolved
    inits = {
        "image_shape": np.array([1, 1, height, columns], np.int64), "w0": np.ascontiguousarray(w0[:, :1]) if fold else w0, "b0": b0,
        **({"bearing_share": share} if fold else {"bearing": bearing[None, None]}),
        "sector_first": np.array(first, np.int64), "max_range": np.array(spec.max_range_m, np.float32),
        "min_sigma": np.array(_min_sigma(model.graph, weights), np.float32), "pooled_shape": np.array([2, 1, columns], np.int64),
        "out_shape": np.array([1, 2 * spec.sectors], np.int64),
    }
    node = helper.make_node
    nodes = [node("Reshape", ["depth", "image_shape"], ["image"])]
    if fold:
        nodes += [node("Conv", ["image", "w0", "b0"], ["conv0"], pads=pads0), node("Add", ["conv0", "bearing_share"], ["pre0"])]
    else:  # a share as large as the layer's output: an Add of it costs more than the second input channel (the exported graph's way)
        nodes += [node("Concat", ["image", "bearing"], ["image_bearing"], axis=1), node("Conv", ["image_bearing", "w0", "b0"], ["pre0"], pads=pads0)]
    nodes.append(node("Relu", ["pre0"], ["act0"]))
    x = "act0"
    for i, (w, b, pads) in enumerate(chain[1:], start=1):
        last_layer = i == len(chain) - 1
        inits[f"w{i}"], inits[f"b{i}"] = (w_last, b_last) if last_layer else (w, b)
        nodes.append(node("Conv", [x, f"w{i}", f"b{i}"], [f"conv{i}"], pads=pads))
        x = f"conv{i}"
        if not last_layer:
            nodes.append(node("Relu", [x], [f"act{i}"]))
            x = f"act{i}"
    nodes += [
        node("Reshape", [x, "pooled_shape"], ["logits"]),  # (2, 1, columns): the two channels as a batch of 1-D rows
        node("MaxPool", ["logits"], ["pooled"], kernel_shape=[span.pop()]),
        node("Gather", ["pooled", "sector_first"], ["sector_logits"], axis=2),  # (2, 1, K)
        node("Split", ["sector_logits"], ["neg_range_logit", "sigma_logit"], axis=0),
        node("Neg", ["neg_range_logit"], ["range_logit"]), node("Sigmoid", ["range_logit"], ["range_unit"]),
        node("Mul", ["range_unit", "max_range"], ["range"]),
        node("Softplus", ["sigma_logit"], ["sigma_soft"]), node("Add", ["sigma_soft", "min_sigma"], ["sigma"]),
        node("Concat", ["range", "sigma"], ["both"], axis=2), node("Reshape", ["both", "out_shape"], [model.graph.output[0].name]),
    ]
    return rebuilt(model, nodes, inits, model.graph.name or "depth_sectors")


def rebuilt(model: Any, nodes: list[Any], inits: dict[str, np.ndarray], name: str) -> Any:
    """``nodes`` with the initializers ``inits`` (int64 kept, the rest float32) as a checked opset-17 model with ``model``'s
    input, output, producer, IR version and metadata: a lean graph that stands in for ``model``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    initializers = [numpy_helper.from_array(np.asarray(v, dtype=np.int64 if v.dtype == np.int64 else np.float32), k) for k, v in inits.items()]
    input_dims = [d.dim_value or d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    output_dims = [d.dim_value or d.dim_param for d in model.graph.output[0].type.tensor_type.shape.dim]
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info(model.graph.input[0].name, TensorProto.FLOAT, input_dims)],
        [helper.make_tensor_value_info(model.graph.output[0].name, TensorProto.FLOAT, output_dims)], initializers,
    )
    lean = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name=model.producer_name, producer_version=model.producer_version)
    lean.ir_version = model.ir_version
    for prop in model.metadata_props:
        entry = lean.metadata_props.add()
        entry.key, entry.value = prop.key, prop.value
    onnx.checker.check_model(lean)
    return lean


def write_lean_models(models_dir: Path, out_dir: Path, robot: str = "husky") -> dict[str, Path]:
    """Lean copies of ``robot``'s cheap and large models in ``out_dir`` (the window model, and a cheap model with a gain head, which is
    lean already, copied as they are): the written paths."""
    import onnx

    from aegis.inference.depth_model import read_sector_spec

    names = ("cheap", "large", "window")  # as aegis.training.depth_pipeline.model_paths names them (not imported: it imports depth_train, which imports this)
    sources, targets = ({name: folder / f"{robot}_depth_{name}.onnx" for name in names} for folder in (models_dir, out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, source in sources.items():
        if name == "window" or read_sector_spec(source).cascade_gain:  # a cheap model with its gain head: aegis.training.depth_gain wrote it lean
            shutil.copyfile(source, targets[name])
        else:
            onnx.save(lean_sector_model(source), str(targets[name]))
    return targets


def main(argv: list[str] | None = None) -> int:
    from aegis.training.depth_dataset import RIGS

    parser = argparse.ArgumentParser(prog="python -m aegis.training.depth_lean", description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=None, help="folder of ROBOT_depth_{cheap,large,window}.onnx (default: the shipped models)")
    parser.add_argument("--robot", choices=tuple(RIGS), default="husky", help="whose models (default: husky)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the lean models into (not the models' own)")
    args = parser.parse_args(argv)
    from aegis.paths import share_dir

    models_dir = args.models_dir or share_dir() / "models"
    if args.out.resolve() == models_dir.resolve():
        print(f"aegis: error: --out {args.out}: the models' own folder (a shipped model changes only with its card)", file=sys.stderr)
        return 2
    try:
        paths = write_lean_models(models_dir, args.out, args.robot)
    except (ValueError, FileNotFoundError) as exc:
        print(f"aegis: error: {exc}", file=sys.stderr)
        return 2
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
