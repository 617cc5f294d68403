"""What PolicyRuntime does once at load: read the model, move its contract into the graph, and the small numpy helpers of its call.

:func:`prepare_graph` reads the ONNX file with ``onnx``, finds its contract, and (unless told
not to) replaces the graph by its physical one (:mod:`aegis.inference.physical_graph`), so that
onnxruntime normalises, scales and clips; the network's raw output is exposed as a second graph
output for the runtime's finiteness check. A file ``onnx`` cannot read is handed to onnxruntime
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
    return PreparedGraph(proto.SerializeToString(), loaded, contract, built, network)


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
