"""What PolicyRuntime does once at load: read the model, move its contract into the graph, and the small numpy helpers of its call.

:func:`prepare_graph` reads the ONNX file with ``onnx``, finds its contract, and (unless told
not to) replaces the graph by its physical one (:mod:`aegis.inference.physical_graph`), so that
onnxruntime normalises, scales and clips; the network's raw output is exposed as a second graph
output for the runtime's finiteness check, and the action's scale and offset (``Mul`` then ``Add``)
become one ``Gemm`` with a diagonal weight in the runtime's own copy of the graph (one kernel
instead of two: 0.3 µs of a 3.5 µs call on aegis.bench.inference's model; the files, the quantizer
and the C export keep the two ops). A file ``onnx`` cannot read is handed to onnxruntime
as it is, which then says why it cannot either.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aegis.inference.checks import DeploymentExpectation, check_contract, graph_specs
from aegis.inference.contract import LoadedContract, PolicyContract, load_contract
from aegis.inference.physical_graph import NETWORK_SUFFIX, NODE_PREFIX, PhysicalGraph


@dataclass(frozen=True)
class PreparedGraph:
    """The model onnxruntime will load (serialized bytes, or the path when onnx could not read it) and its contract."""

    model: bytes | str
    loaded: LoadedContract | None
    """The contract as found (None: to be read from the session's metadata)."""
    contract: PolicyContract | None
    """The contract the runtime applies (``physical_graph`` true when the graph does it all)."""
    physical: PhysicalGraph | None
    """What was moved into the graph at load (None: nothing, e.g. the file was physical already)."""
    network_output: str | None
    """The graph output added for the network's raw action (None: none)."""
    fused_action: bool = False
    """The action's scale and offset run as one Gemm in the session (see :func:`fuse_action_affine`)."""


def prepare_graph(
    path: Path, mapping: PolicyContract | str | Path | None, physical: bool, expected: DeploymentExpectation | None = None
) -> PreparedGraph:
    """Read ``path``, find its contract, check it against the graph and ``expected`` (every mismatch at once, as
    :func:`~aegis.inference.checks.check_contract` raises them) and, with ``physical``, build its physical graph."""
    try:
        import onnx

        proto = onnx.load(str(path))
    except Exception:  # noqa: BLE001 - not a model onnx reads (DecodeError, ...): onnxruntime reports it below
        return PreparedGraph(str(path), None, None, None, None)
    loaded = load_contract(path, mapping, {p.key: p.value for p in proto.metadata_props})
    contract, built = loaded.contract, None
    check_contract(contract, *graph_specs(proto), expected, where=str(path), contract_source=f"the contract ({loaded.source})")
    if physical and not contract.physical_graph:
        from aegis.inference.physical_graph import physical_model

        built = physical_model(proto, contract, where=str(path))
        proto, contract = built.model, built.contract
    network = _expose_network_output(proto, contract) if contract.physical_graph else None
    fused = fuse_action_affine(proto) if contract.physical_graph else False
    return PreparedGraph(proto.SerializeToString(), loaded, contract, built, network, fused)


def fuse_action_affine(proto: Any) -> bool:
    """Replace the contract's trailing ``Mul`` (scale) and ``Add`` (offset) by one ``Gemm(a, diag(scale), offset)``, in place; whether it did.

    Only for a float32 action of shape (batch, m), m static, whose scale and offset are constants. The same
    products and sums: a_j s_j + o_j for element j, the other products exactly zero (a non-finite
    a_k makes every element NaN instead of one: refused all the same). The Gemm's bias is added after
    the product, as the Add was, so the values are those of the two ops (tests compare them).
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    outputs = {o.name: o for o in graph.output}
    nodes = list(graph.node)
    add = next((n for n in nodes if n.op_type == "Add" and n.name.startswith(NODE_PREFIX) and n.output[0] in outputs), None)
    if add is None:
        return False
    mul = next((n for n in nodes if n.op_type == "Mul" and n.name.startswith(NODE_PREFIX) and n.output[0] == add.input[0]), None)
    if mul is None or sum(add.input[0] in n.input for n in nodes) != 1 or mul.output[0] in outputs:
        return False
    tensor = outputs[add.output[0]].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if tensor.elem_type != TensorProto.FLOAT or len(dims) != 2 or not dims[1]:  # (batch, m): a Gemm takes any batch
        return False
    initializers = {t.name: t for t in graph.initializer}
    if mul.input[1] not in initializers or add.input[1] not in initializers:
        return False
    m = dims[1]
    scale = numpy_helper.to_array(initializers[mul.input[1]])
    offset = numpy_helper.to_array(initializers[add.input[1]])
    if scale.dtype != np.float32 or offset.dtype != np.float32 or scale.size not in (1, m) or offset.size not in (1, m):
        return False
    weight = np.diag(np.broadcast_to(scale.ravel(), (m,))).astype(np.float32)
    bias = np.broadcast_to(offset.ravel(), (m,)).astype(np.float32)
    weight_name, bias_name = f"{NODE_PREFIX}action_diag_scale", f"{NODE_PREFIX}action_offset_vector"
    gemm = helper.make_node("Gemm", [mul.input[0], weight_name, bias_name], [add.output[0]], name=f"{NODE_PREFIX}action_affine")
    position = nodes.index(mul)
    kept = [n for n in nodes if n is not mul and n is not add]
    kept.insert(position, gemm)
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend([numpy_helper.from_array(weight, weight_name), numpy_helper.from_array(bias, bias_name)])
    used = {name for n in graph.node for name in n.input}
    unused = [t for t in graph.initializer if t.name not in used]
    for tensor_proto in unused:  # onnxruntime warns about unused initializers
        graph.initializer.remove(tensor_proto)
    return True


def _expose_network_output(proto: Any, contract: PolicyContract) -> str | None:
    """Add the physical graph's raw network output (``<output>`` + NETWORK_SUFFIX) to its outputs; its name, or None.

    Only where the graph limits the action (a Clip, Max or Min of the contract): a limit turns an infinite raw
    value into a valid-looking one, while a scale and an offset keep it infinite (or NaN) in the action itself.
    """
    if not any(node.name.startswith(NODE_PREFIX) and node.op_type in ("Clip", "Max", "Min") for node in proto.graph.node):
        return None
    outputs = [o.name for o in proto.graph.output]
    action = contract.output_name or (outputs[0] if len(outputs) == 1 else None)
    if action is None:
        return None
    name = action + NETWORK_SUFFIX
    produced = any(name in node.output for node in proto.graph.node)
    described = [v for v in proto.graph.value_info if v.name == name]
    if not produced or not described or name in outputs:
        return None
    proto.graph.output.append(described[0])
    return name


def clip_function() -> Callable[..., Any]:
    """numpy's clip ufunc itself (one C call; ``np.clip`` adds ~1 µs of Python around it), else minimum then maximum."""
    for module in ("numpy._core.umath", "numpy.core.umath"):
        try:
            ufunc = getattr(importlib.import_module(module), "clip", None)
        except ImportError:
            continue
        if isinstance(ufunc, np.ufunc):
            return ufunc
    return lambda a, low, high, out: np.minimum(np.maximum(a, low, out=out), high, out=out)


def finiteness_check(buffer: np.ndarray) -> Callable[[np.ndarray], Any]:
    """f(buffer) that is NaN or inf exactly when an element is not finite: the squared norm (one BLAS call) for float32/64.

    The squared norm also refuses elements above ~1.8e19 (float32) whose square overflows: no policy
    reads or writes such values. float16's range is too short for that (256 squared overflows), so it
    is tested element by element.
    """
    if buffer.dtype in (np.float32, np.float64):
        return buffer.dot
    isfinite = np.isfinite
    return lambda values: 0.0 if isfinite(values).all() else math.inf


def python_normalizer(contract: PolicyContract, x_flat: np.ndarray) -> Callable[[np.ndarray], None] | None:
    """What act() does to a physical observation when the graph does not normalise (None: copy it as it is)."""
    offset, gain = contract.loader_observation_affine()
    if np.all(offset == 0.0) and np.all(gain == 1.0):
        return None
    work, sub, mul, copyto = np.zeros(offset.size), np.subtract, np.multiply, np.copyto

    def normalize(observation: np.ndarray) -> None:  # in float64, then one cast into the input buffer
        sub(observation, offset, out=work)
        mul(work, gain, out=work)
        copyto(x_flat, work)

    return normalize


def python_finisher(contract: PolicyContract, clip: Callable[..., Any]) -> Callable[[np.ndarray], None] | None:
    """What act() does to the float64 action when the graph does not scale and clip it (None: nothing)."""
    scale, offset, low, high = contract.loader_action_affine()
    scaled = not (np.all(scale == 1.0) and np.all(offset == 0.0))
    clipped = bool(np.isfinite(low).any() or np.isfinite(high).any())
    if not (scaled or clipped):
        return None
    mul, add = np.multiply, np.add

    def finish(action: np.ndarray) -> None:
        if scaled:
            mul(action, scale, out=action)
            add(action, offset, out=action)
        if clipped:
            clip(action, low, high, out=action)

    return finish
