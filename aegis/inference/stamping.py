"""Stamping a policy contract into an ONNX model's metadata, after checking it against the model's graph."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aegis.inference.checks import check_graph, graph_specs
from aegis.inference.contract import CONTRACT_KEY, METADATA_PREFIX, SCHEMA_VERSION, VERSION_KEY, PolicyContract

if TYPE_CHECKING:
    import onnx


def write_contract(
    model: str | Path | onnx.ModelProto, contract: PolicyContract, output: str | Path | None = None, check: bool = True
) -> onnx.ModelProto:
    """Store ``contract`` in a model's metadata_props (replacing any ``aegis.*`` keys); returns the model.

    ``model`` is a ModelProto (changed in place) or a file (rewritten, or written to ``output``).
    With ``check`` the contract is first checked against the graph's input and output shapes
    (:func:`aegis.inference.checks.check_graph`), so a contract that does not fit is never stamped.
    Writing metadata changes the file's sha256: take it after this.
    """
    import onnx

    path = None if isinstance(model, onnx.ModelProto) else Path(model)
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(path))
    if check:
        inputs, outputs = graph_specs(proto)
        check_graph(contract, inputs, outputs, where=str(path) if path else proto.graph.name or "model", contract_source="the contract")
    kept = [(p.key, p.value) for p in proto.metadata_props if not p.key.startswith(METADATA_PREFIX)]
    del proto.metadata_props[:]
    for key, value in (*kept, (CONTRACT_KEY, contract.to_json()), (VERSION_KEY, str(SCHEMA_VERSION))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    if path is not None or output is not None:
        onnx.save(proto, str(output if output is not None else path))
    return proto
