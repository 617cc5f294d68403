"""int8 quantization of an ONNX policy's physical graph through onnxruntime.quantization, the contract inside it and kept in float.

The model quantized is the policy's physical graph (:mod:`aegis.inference.physical_graph`), so the
int8 file takes the physical observation and returns the physical, clipped action, like every
other graph aegis runs. Its normalisation stays as ``Sub``/``Mul`` nodes before the network rather
than folded into the first layer, and every node the contract adds is excluded from quantization:
folded, the first layer's weights would mix columns scaled by each field's 1/std, and int8 (one
scale per output channel, and the activation quantized per tensor) would crush the small ones.
On the shipped quadrotor policy (dynamic mode, 2,000 observations about the training mean, against
the float model) the folded graph quantized differs by up to 0.35 m/s² (mean 0.045); kept in float,
by up to 0.20 (mean 0.023), exactly as the bare network quantized with the contract applied in
numpy did. With fields of very different scales (std 0.01 beside std 100) folding gave errors the
size of the whole action range; kept in float, the same 0.20.

``dynamic``: weights int8, activations quantized at run time per call (quantize_dynamic). ``static``:
weights and activations int8 in QDQ format (quantize_static), the activation ranges calibrated
(MinMax) on physical observations the float model met in closed loop (aegis.policy_tools.rollouts).
The contract (from metadata or a mapping file) is written into the output's metadata, flagged
``physical_graph``, with a producer note naming the mode and the float model's sha256. Whether the
quantized model is good enough is judged closed loop (aegis.policy_tools.judge).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

from aegis.inference.contract import (
    ContractError,
    PolicyContract,
    Producer,
    load_contract,
)
from aegis.inference.physical_graph import (
    NODE_PREFIX,
    normalisation_folded,
    physical_model,
)
from aegis.inference.stamping import write_contract

DYNAMIC_WEIGHT_TYPE = "QUInt8"
"""onnxruntime's QuantType for the weights of a ``dynamic`` quantization: uint8, not int8. With int8 weights (u8s8)
onnxruntime's x86 kernels on CPUs without VNNI (AVX2: vpmaddubsw) saturate int16 sums: on such a CPU (AMD EPYC, AVX2)
the shipped policy's int8 actions came out up to 0.49 from the float model's (mean 0.024), where a VNNI CPU gave 0.20;
with uint8 weights 0.17 (mean 0.022) on the AVX2 CPU (tests/test_physical_graph.py prints both)."""
STATIC_WEIGHT_TYPE = "QUInt8"
"""The same for ``static`` (QDQ, uint8 activations): with int8 activations and weights the shipped policy judged on this AVX2
CPU 0.53 cm of RMSE and 2.0 m/s^2 of action off the float model (0.024 cm and 0.17 on a VNNI CPU): docs/policies-and-training.md."""

Mode = Literal["dynamic", "static"]
MODES: tuple[Mode, ...] = ("dynamic", "static")


class _FrameReader:
    """An onnxruntime CalibrationDataReader over rows of physical observations, one batch-1 feed each."""

    def __init__(self, input_name: str, rows: np.ndarray, shape: tuple[int, ...]) -> None:
        self._feeds = iter([{input_name: row.reshape(shape)} for row in rows])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def quantize_policy(
    model: Path, output: Path, mode: Mode, calibration: np.ndarray | None = None, mapping: Path | None = None
) -> PolicyContract:
    """Write the int8 ``mode`` quantization of ``model``'s physical graph to ``output`` with the contract; returns the contract written.

    ``calibration`` (static only): model inputs in physical units, one row each (history stacked).
    A model that is physical already is quantized as it is, unless its normalisation was folded into
    its first layer: then it is refused (quantize the original model).
    """
    import onnx
    from onnxruntime.quantization import (
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from aegis.config_files import sha256_of
    from aegis.inference.checks import check_graph, graph_specs

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    loaded = load_contract(model, mapping)
    contract = loaded.contract
    proto = onnx.load(str(model))
    binding = check_graph(contract, *graph_specs(proto), where=str(model), contract_source=f"the contract ({loaded.source})")
    if normalisation_folded(proto, contract):
        raise ContractError(
            f"{model}: a physical graph whose normalisation was folded into its first layer: int8 would quantize the "
            "folded weights and crush the fields with a small scale; quantize the original model (aegis quantizes its "
            "physical graph with the normalisation kept in float)"
        )
    if contract.physical_graph:
        physical = contract
    else:
        built = physical_model(proto, contract, fold=False, where=str(model))
        proto, physical = built.model, built.contract
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        stripped = Path(tmp) / "float.onnx"  # without aegis metadata: the quantizer's output gets the contract afresh
        del proto.metadata_props[:]
        onnx.save(proto, str(Path(tmp) / "raw.onnx"))
        # onnxruntime's pre-processing (graph optimisation, shape inference); symbolic shapes would need sympy
        quant_pre_process(str(Path(tmp) / "raw.onnx"), str(stripped), skip_symbolic_shape=True)
        in_float = [node.name for node in onnx.load(str(stripped)).graph.node if node.name.startswith(NODE_PREFIX)]
        if mode == "dynamic":
            quantize_dynamic(stripped, output, weight_type=getattr(QuantType, DYNAMIC_WEIGHT_TYPE), nodes_to_exclude=in_float)
        else:
            if calibration is None or len(calibration) == 0:
                raise ValueError("static quantization needs calibration observations (closed-loop frames of the float model)")
            rows = np.asarray(calibration, dtype=np.float32)
            if rows.ndim != 2 or rows.shape[1] != contract.input_size:
                raise ValueError(f"calibration rows have {rows.shape[-1]} elements, the contract's input has {contract.input_size}")
            quantize_static(
                stripped, output, _FrameReader(binding.input.name, rows, binding.input_shape),
                quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=getattr(QuantType, STATIC_WEIGHT_TYPE), per_channel=True,
                nodes_to_exclude=in_float,
            )
    note = f"int8 {mode} quantization (onnxruntime.quantization) of {model.name} sha256 {sha256_of(model)}"
    producer = physical.producer or Producer(name="aegis model quantize")
    # The float network's Lipschitz bound does not certify the quantized one (a different, piecewise map): not carried over.
    quantized = physical.model_copy(
        update={"producer": producer.model_copy(update={"notes": _joined(producer.notes, note)}), "lipschitz_bound": None}
    )
    write_contract(output, quantized)
    return quantized


def _joined(*parts: Any) -> str:
    return "; ".join(str(p) for p in parts if p)
