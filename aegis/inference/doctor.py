"""``aegis doctor``: the inference stack here (onnxruntime, its providers) against what each hw_config asks for.

:func:`doctor` returns a JSON-ready dict; :func:`format_doctor` prints it. For each config: the
target, providers, precision and threads it asks for, which of those providers exist here and
which would run, the fallback lines the runtime would log, and its model's contract checked
against the graph and the config (without starting a session).
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aegis.inference.providers import (
    CPU,
    CUDA,
    TENSORRT,
    onnxruntime_info,
    plan_providers,
)

_TARGET_NOTES = {
    "jetson": "Jetson: onnxruntime with CUDA/TensorRT comes from NVIDIA's Jetson builds (PyPI's onnxruntime-gpu is x86_64 only)",
    "mcu": "mcu: the policy runs as exported C (aegis export c); onnxruntime is only used on the host to check it",
}


def doctor(configs: Sequence[str | Path] = ()) -> dict[str, Any]:
    """Versions and providers here, and one entry per hw_config (an unreadable config gives its error, not an exception)."""
    version, available, _ = info = onnxruntime_info()
    try:
        import onnx

        onnx_version: str | None = onnx.__version__
    except ImportError:
        onnx_version = None
    import numpy as np

    return {
        "onnxruntime": version,
        "onnx": onnx_version,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "available_providers": available,
        "configs": [_config_entry(Path(c), info) for c in configs],
    }


def _config_entry(path: Path, info: tuple[str, list[str], list[str]]) -> dict[str, Any]:
    from aegis.config import load_config
    from aegis.config_files import ConfigError

    entry: dict[str, Any] = {"config": str(path)}
    try:
        config = load_config(path)
    except ConfigError as exc:
        return {**entry, "ok": False, "error": str(exc)}
    inference = config.inference
    plan = plan_providers(list(inference.providers), inference.precision, info=info)
    runs_on = plan.providers[0]
    fallbacks = [f"{line}: would run on {runs_on}" for line in plan.missing]
    notes = []
    if config.target in _TARGET_NOTES:
        notes.append(_TARGET_NOTES[config.target])
    if inference.precision == "fp16" and TENSORRT not in plan.providers:
        notes.append("precision fp16: without TensorRT, the model file's own dtype decides (ship an fp16 model for CUDA/CPU)")
    if inference.precision == "int8" and runs_on in (CPU, CUDA):
        notes.append("precision int8: runs the quantized ops the model file holds (onnxruntime.quantization), no provider option")
    entry |= {
        "robot": config.robot.name,
        "robot_kind": config.robot.kind,
        "target": config.target,
        "providers": list(inference.providers),
        "available": {p: p in info[1] for p in inference.providers},
        "runs_on": runs_on,
        "fallbacks": fallbacks,
        "precision": inference.precision,
        "threads": inference.threads,
        "model": str(config.resolve(inference.model)) if inference.model is not None else None,
        "sha256": inference.sha256,
        "notes": notes,
        "contract": None,
    }
    if inference.model is not None:
        entry["contract"] = _contract_entry(config)
    entry["ok"] = not fallbacks and (entry["contract"] is None or entry["contract"]["ok"])
    return entry


def _contract_entry(config: Any) -> dict[str, Any]:
    """The model's contract checked against its graph and the config's robot kind (no session started)."""
    from aegis.inference.checks import (
        ContractMismatch,
        check_contract,
        expectation_from_config,
        graph_specs,
    )
    from aegis.inference.contract import ContractError, load_contract

    try:
        import onnx
    except ImportError:
        return {"ok": False, "source": None, "problems": ["onnx is not installed: cannot read the model's graph"]}
    path = config.resolve(config.inference.model)
    try:
        model = onnx.load(str(path), load_external_data=False)
        loaded = load_contract(path, None, {p.key: p.value for p in model.metadata_props})
        inputs, outputs = graph_specs(model)
        check_contract(loaded.contract, inputs, outputs, expectation_from_config(config), str(path), f"the contract ({loaded.source})")
    except ContractMismatch as exc:
        return {"ok": False, "source": loaded.source, "problems": exc.problems}
    except ContractError as exc:
        return {"ok": False, "source": None, "problems": [str(exc)]}
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError and others for a bad file
        return {"ok": False, "source": None, "problems": [f"{path}: not a readable ONNX model: {exc}"]}
    return {"ok": True, "source": loaded.source, "problems": []}


def format_doctor(report: dict[str, Any]) -> str:
    """The doctor report as text: the machine, then each config with what it asks and what it would get."""
    lines = [
        (f"onnxruntime {report['onnxruntime']}   onnx {report['onnx'] or 'not installed'}   numpy {report['numpy']}   "
        f"python {report['python']}   {report['machine']}"),
        f"providers here: {', '.join(report['available_providers'])}",
    ]
    for entry in report["configs"]:
        if "error" in entry:
            verdict = "config error"
        elif entry["contract"] is not None and not entry["contract"]["ok"]:
            verdict = "contract problems"
        elif entry["fallbacks"]:
            verdict = f"falls back to {entry['runs_on']}"
        else:
            verdict = "ok"
        lines += ["", f"{entry['config']}: {verdict}"]
        if "error" in entry:
            lines += [f"  {line}" for line in entry["error"].splitlines()]
            continue
        asked = ", ".join(f"{p} ({'here' if ok else 'absent'})" for p, ok in entry["available"].items())
        lines += [
            f"  robot {entry['robot']} ({entry['robot_kind']})   target {entry['target']}   precision {entry['precision']}   threads {entry['threads']}",
            f"  providers asked: {asked}; would run on {entry['runs_on']}",
        ]
        lines += [f"  fallback: {line}" for line in entry["fallbacks"]]
        lines += [f"  note: {note}" for note in entry["notes"]]
        contract = entry["contract"]
        if entry["model"] is None:
            lines.append("  model: none (inference.model not set)")
        elif contract["ok"]:
            lines.append(f"  model {entry['model']}: contract from {contract['source']} matches graph and config")
        else:
            lines.append(f"  model {entry['model']}: contract problems")
            lines += [f"    - {p}" for p in contract["problems"]]
    return "\n".join(lines)
