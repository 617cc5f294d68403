"""Execution providers: which of those a deployment asks for exist here, their options (FP16, engine cache), and the fallback lines.

A provider that is asked for and absent is never dropped silently: :func:`plan_providers` returns
a human-readable line for each, and the runtime logs them as warnings and keeps them for
diagnostics. CPUExecutionProvider is always last, so a session can always be made.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
Precision = Literal["fp32", "fp16", "int8"]


@dataclass(frozen=True)
class ProviderPlan:
    """The providers to hand onnxruntime (in order, with options) and one line per provider asked for but absent."""

    requested: tuple[str, ...]
    providers: tuple[str, ...]
    options: tuple[dict[str, Any], ...]
    missing: tuple[str, ...]
    """One line per requested provider that is not available here, before the session says what it used."""


def onnxruntime_info() -> tuple[str, list[str], list[str]]:
    """(version, available providers, every provider name this onnxruntime knows of)."""
    import onnxruntime as ort

    return ort.__version__, list(ort.get_available_providers()), list(ort.get_all_providers())


def default_engine_cache_dir() -> Path:
    """Where TensorRT engines are cached between runs: $AEGIS_TRT_CACHE, else ~/.cache/aegis/tensorrt (XDG_CACHE_HOME honoured)."""
    if os.environ.get("AEGIS_TRT_CACHE"):
        return Path(os.environ["AEGIS_TRT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aegis" / "tensorrt"


def provider_options(provider: str, precision: Precision = "fp32", engine_cache_dir: Path | None = None) -> dict[str, Any]:
    """onnxruntime options for a provider: TensorRT gets FP16/INT8 and a persistent engine and timing cache; CUDA a device.

    On the CPU provider precision is the model's own (ship an fp16 or quantized model); nothing to pass.
    """
    if provider == TENSORRT:
        cache = str(engine_cache_dir or default_engine_cache_dir())
        return {
            "device_id": 0,
            "trt_fp16_enable": precision == "fp16",
            "trt_int8_enable": precision == "int8",
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": cache,
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": cache,
        }
    if provider == CUDA:
        return {"device_id": 0}
    return {}


def plan_providers(
    requested: Sequence[str],
    precision: Precision = "fp32",
    engine_cache_dir: Path | None = None,
    info: tuple[str, list[str], list[str]] | None = None,
) -> ProviderPlan:
    """The providers to use for ``requested``: the available ones in order, then CPU; a line for each that is absent."""
    version, available, known = info or onnxruntime_info()
    if not requested:
        raise ValueError(f"no execution provider requested (give at least {CPU})")
    use: list[str] = []
    missing: list[str] = []
    for name in requested:
        if name in use:
            continue
        if name in available:
            use.append(name)
        elif name in known:
            missing.append(f"{name} was requested but is not available in onnxruntime {version} here (available: {', '.join(available)})")
        else:
            missing.append(f"{name} was requested but is not an execution provider onnxruntime {version} knows")
    if CPU not in use:
        use.append(CPU)
    return ProviderPlan(
        requested=tuple(requested),
        providers=tuple(use),
        options=tuple(provider_options(p, precision, engine_cache_dir) for p in use),
        missing=tuple(missing),
    )


def fallback_lines(plan: ProviderPlan, used: Sequence[str]) -> list[str]:
    """The plan's missing-provider lines completed with what the session actually runs on, plus any provider it dropped itself."""
    running = used[0] if used else CPU
    lines = [f"{line}: running on {running}" for line in plan.missing]
    for name in plan.providers:
        if name not in used and name in plan.requested:
            lines.append(f"{name} is installed but the session could not use it (see onnxruntime's log): running on {running}")
    return lines
