"""``aegis model inspect FILE``: what an ONNX policy is (graph inputs/outputs, opset, ops, parameters, sha256) and its contract.

:func:`inspect_model` returns a JSON-ready dict; :func:`format_inspection` prints it for people.
A model without a contract is still inspected: the dict says where the contract was looked for.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from aegis.config_files import sha256_of
from aegis.inference.checks import ContractMismatch, check_graph, graph_specs
from aegis.inference.contract import (
    METADATA_PREFIX,
    ContractError,
    PolicyContract,
    load_contract,
)


def inspect_model(path: str | Path, mapping: str | Path | None = None) -> dict[str, Any]:
    """Facts about a model file: graph, opsets, ops with counts, parameter count, sha256, metadata, contract and its check."""
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError and others for a bad file
        raise ValueError(f"{path}: not a readable ONNX model: {exc}") from None
    inputs, outputs = graph_specs(model)
    ops = Counter(f"{n.domain}.{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type for n in model.graph.node)
    tensors = list(model.graph.initializer) + [
        a.t for n in model.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"
    ]
    parameters = int(sum(int(np.prod(t.dims)) for t in tensors))
    dtypes = Counter(str(numpy_helper.to_array(t).dtype) for t in tensors) if tensors else Counter()
    result: dict[str, Any] = {
        "file": str(path),
        "size_bytes": path.stat().st_size,
        "sha256": sha256_of(path),
        "ir_version": model.ir_version,
        "producer": {"name": model.producer_name, "version": model.producer_version},
        "opsets": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype} for s in inputs],
        "outputs": [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype} for s in outputs],
        "ops": dict(sorted(ops.items())),
        "parameters": parameters,
        "parameter_dtypes": dict(dtypes),
        "metadata": {p.key: p.value for p in model.metadata_props if not p.key.startswith(METADATA_PREFIX)},
        "contract": None,
        "contract_source": None,
        "contract_error": None,
        "contract_check": None,
    }
    try:
        loaded = load_contract(path, mapping, {p.key: p.value for p in model.metadata_props})
    except ContractError as exc:
        result["contract_error"] = str(exc)
        return result
    result["contract"] = json.loads(loaded.contract.to_json())
    result["contract_source"] = loaded.source
    try:
        binding = check_graph(loaded.contract, inputs, outputs, str(path), f"the contract ({loaded.source})")
        result["contract_check"] = {"ok": True, "problems": [], "notes": list(binding.notes)}
    except ContractMismatch as exc:
        result["contract_check"] = {"ok": False, "problems": exc.problems, "notes": []}
    return result


def format_inspection(info: dict[str, Any]) -> str:
    """The inspection as text: the model, then its contract (or where it was looked for)."""
    lines = [
        f"model      {info['file']}",
        f"size       {info['size_bytes']:,} bytes   sha256 {info['sha256']}",
        f"producer   {_producer(info['producer'])}   ir {info['ir_version']}   opset "
        + ", ".join(f"{d} {v}" for d, v in info["opsets"].items()),
    ]
    for kind in ("inputs", "outputs"):
        for spec in info[kind]:
            shape = "[" + ", ".join("?" if d is None else str(d) for d in spec["shape"]) + "]"
            lines.append(f"{kind[:-1]:<10} {spec['name']}  {spec['dtype']} {shape}")
    lines.append("ops        " + (", ".join(f"{op} x{n}" for op, n in info["ops"].items()) or "none"))
    dtypes = ", ".join(f"{d} {n}" for d, n in info["parameter_dtypes"].items())
    lines.append(f"parameters {info['parameters']:,}" + (f"  (tensors: {dtypes})" if dtypes else ""))
    for key, value in info["metadata"].items():
        lines.append(f"metadata   {key} = {value}")
    if info["contract"] is None:
        lines.append(f"contract   none: {info['contract_error']}")
        return "\n".join(lines)
    contract = PolicyContract.model_validate(info["contract"])
    lines += ["", f"contract   from {info['contract_source']} (schema {contract.schema_version})"]
    lines += _contract_lines(contract)
    check = info["contract_check"]
    if check["ok"]:
        lines.append("graph check ok" + "".join(f"; {note}" for note in check["notes"]))
    else:
        lines.append("graph check FAILED:")
        lines += [f"  - {p}" for p in check["problems"]]
    return "\n".join(lines)


def _contract_lines(c: PolicyContract) -> list[str]:
    lipschitz = f"{c.lipschitz_bound:g}" if c.lipschitz_bound is not None else "unknown"
    lines = [
        f"  robot kind {c.robot_kind}   control rate {c.control_rate_hz:g} Hz   history {c.history_length}   Lipschitz bound {lipschitz}",
    ]
    if c.physical_graph:
        lines.append("  applied in the graph: it takes the physical observation and returns the physical, clipped action (physical_graph)")
    if c.input_name or c.output_name:
        lines.append(f"  graph input {c.input_name or '(the only one)'}   output {c.output_name or '(the only one)'}")
    history = f" x history {c.history_length} = {c.input_size}" if c.history_length > 1 else ""
    lines.append(f"  observation ({c.frame_size}{history}):")
    rows = [("name", "size", "unit", "normalisation")]
    rows += [(f.name, str(f.size), f.unit, f.normalization.describe() if f.normalization else "none") for f in c.observation]
    lines += _table(rows)
    lines.append(f"  action ({c.action_size}): physical = clip(raw * scale + offset, low, high)")
    rows = [("name", "size", "unit", "scale", "offset", "low", "high")]
    rows += [(f.name, str(f.size), f.unit, _values(f.scale), _values(f.offset), _values(f.low), _values(f.high)) for f in c.action]
    lines += _table(rows)
    if c.producer is not None:
        p = c.producer
        extra = "".join(f"   {k} {v}" for k, v in (("command", p.command), ("seed", p.seed), ("expert", p.expert), ("notes", p.notes)) if v not in ("", None))
        lines.append(f"  producer {p.name} {p.version}".rstrip() + extra)
        if p.dynamics:
            ranges = ", ".join(
                f"{k} {v['low']:g}" + ("" if v["low"] == v["high"] else f"..{v['high']:g}")
                for k, v in p.dynamics.items() if isinstance(v, dict)
            )  # fmt: skip
            lines.append(f"  trained under dynamics {p.dynamics.get('set', '?')}: {ranges}")
        if p.overlay:
            lines.append("  trained centred on overlay " + ", ".join(f"{k}={v}" for k, v in p.overlay.items()))
        if p.privileged_expert:
            lines.append("  labelled by a privileged expert (told each training episode's true plant)")
    if c.description:
        lines.append(f"  description {c.description}")
    return lines


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["    " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def _values(values: float | tuple[float, ...]) -> str:
    if isinstance(values, float):
        return f"{values:g}"
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def _producer(producer: dict[str, str]) -> str:
    return f"{producer['name']} {producer['version']}".strip() or "unknown"
