"""int8 quantization of an ONNX policy through onnxruntime.quantization, keeping its aegis contract in the output.

``dynamic``: weights int8, activations quantized at run time per call (quantize_dynamic). ``static``:
weights and activations int8 in QDQ format (quantize_static), the activation ranges calibrated
(MinMax) on observation frames the float model met in closed loop (aegis.policy_tools.rollouts), fed
normalised as the runtime feeds them. The contract (from metadata or a mapping file) is written
into the output's metadata with a producer note naming the mode and the float model's sha256.
Whether the quantized model is good enough is judged closed loop (aegis.inference.judge).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

from aegis.inference.contract import PolicyContract, Producer, load_contract
from aegis.inference.stamping import write_contract

Mode = Literal["dynamic", "static"]
MODES: tuple[Mode, ...] = ("dynamic", "static")


def normalised_inputs(contract: PolicyContract, observations: np.ndarray) -> np.ndarray:
    """Model inputs (physical, one row each) as the network sees them: ``(x - offset) * gain``, float32."""
    offset, gain = contract.observation_affine()
    return ((np.asarray(observations, dtype=np.float64) - offset) * gain).astype(np.float32)


class _FrameReader:
    """An onnxruntime CalibrationDataReader over rows of normalised inputs, one batch-1 feed each."""

    def __init__(self, input_name: str, rows: np.ndarray, shape: tuple[int, ...]) -> None:
        self._feeds = iter([{input_name: row.reshape(shape)} for row in rows])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def quantize_policy(
    model: Path, output: Path, mode: Mode, calibration: np.ndarray | None = None, mapping: Path | None = None
) -> PolicyContract:
    """Write the int8 ``mode`` quantization of ``model`` to ``output`` with the contract; returns the contract written.

    ``calibration`` (static only): model inputs in physical units, one row each (history stacked).
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from aegis.config_files import sha256_of
    from aegis.inference.checks import check_graph, graph_specs

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    loaded = load_contract(model, mapping)
    contract = loaded.contract
    proto = onnx.load(str(model))
    binding = check_graph(contract, *graph_specs(proto), where=str(model), contract_source=f"the contract ({loaded.source})")
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        stripped = Path(tmp) / "float.onnx"  # without aegis metadata: the quantizer's output gets the contract afresh
        del proto.metadata_props[:]
        onnx.save(proto, str(Path(tmp) / "raw.onnx"))
        # onnxruntime's pre-processing (graph optimisation, shape inference); symbolic shapes would need sympy
        quant_pre_process(str(Path(tmp) / "raw.onnx"), str(stripped), skip_symbolic_shape=True)
        if mode == "dynamic":
            quantize_dynamic(stripped, output, weight_type=QuantType.QInt8)
        else:
            if calibration is None or len(calibration) == 0:
                raise ValueError("static quantization needs calibration observations (closed-loop frames of the float model)")
            rows = normalised_inputs(contract, calibration)
            if rows.shape[1] != contract.input_size:
                raise ValueError(f"calibration rows have {rows.shape[1]} elements, the contract's input has {contract.input_size}")
            shape = binding.input_shape
            quantize_static(
                stripped, output, _FrameReader(binding.input.name, rows, shape),
                quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
            )
    note = f"int8 {mode} quantization (onnxruntime.quantization) of {model.name} sha256 {sha256_of(model)}"
    producer = contract.producer or Producer(name="aegis model quantize")
    # The float network's Lipschitz bound does not certify the quantized one (a different, piecewise map): not carried over.
    quantized = contract.model_copy(
        update={"producer": producer.model_copy(update={"notes": _joined(producer.notes, note)}), "lipschitz_bound": None}
    )
    write_contract(output, quantized)
    return quantized


def _joined(*parts: Any) -> str:
    return "; ".join(str(p) for p in parts if p)
