"""export_c: an ONNX MLP policy to `<name>.h` and `<name>.c` in physical units, with a report of what was written.

A model with an aegis policy contract (its metadata, or a ``<stem>.aegis.yaml`` mapping file) is
exported as its physical graph (:mod:`aegis.inference.physical_graph`): the C takes the physical
observation and returns the physical, clipped command, the same graph onnxruntime runs in
:class:`~aegis.inference.runtime.PolicyRuntime`. float32 folds the normalisation into the first
layer; int8 keeps it as float ops before the int8 layers (folded, one int8 scale per output would
crush the fields with a small std). A model already physical is exported as it is. ``bare=True``,
or a model without a contract, exports the network alone in its own units.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aegis.export.codegen import (
    PRECISION_NOTES,
    Precision,
    check_name,
    check_precision,
    generate,
)
from aegis.export.errors import ExportError, UnsupportedModelError
from aegis.export.graph import load_plan
from aegis.export.interface import Interface, interface_of
from aegis.export.plan import Plan


@dataclass(frozen=True)
class ExportReport:
    """What export_c wrote and what it holds; weight and activation bytes are the flash and RAM of the policy's data."""

    model: Path
    sha256: str
    name: str
    precision: str
    header: Path
    source: Path
    input_size: int
    output_size: int
    network: str  # e.g. "12 -> Gemm 64 -> Relu -> Gemm 4 -> Tanh -> 4"
    parameter_count: int
    contract: str  # what the C applies of the policy contract, in words
    physical: bool  # the C takes and returns physical units
    weight_bytes: int  # static const arrays: flash
    activation_bytes: int  # static buffers: RAM
    libm: tuple[str, ...]
    plan: Plan

    @property
    def files(self) -> tuple[Path, Path]:
        return (self.header, self.source)

    def lines(self) -> list[str]:
        """The report as printed by `aegis export c`."""
        units = "physical in and out" if self.physical else "the network's own"
        return [
            f"wrote {self.header} and {self.source}",
            f"  model       {self.model} (sha256 {self.sha256})",
            f"  units       {units}: {self.contract}",
            f"  network     {self.network}",
            f"  precision   {self.precision}: {PRECISION_NOTES[self.precision]}",
            f"  parameters  {self.parameter_count}",
            f"  flash       {self.weight_bytes} bytes of weights (static const), plus code",
            f"  RAM         {self.activation_bytes} bytes of activations (static), plus the caller's stack",
            f"  libm        {', '.join(self.libm) or 'none'}",
            (
                f"  API         void {self.name}_infer(const float *input, float *output);"
                f"  /* {self.input_size} floats in, {self.output_size} out{', physical units (see ' + self.header.name + ')' if self.physical else ''} */"
            ),
        ]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_c(
    model_path: str | Path, out_dir: str | Path, precision: Precision = "float32", name: str = "policy",
    mapping: str | Path | None = None, bare: bool = False,
) -> ExportReport:
    """Writes `<name>.h` and `<name>.c` for an ONNX MLP policy into out_dir (created if missing); see the module.

    ``mapping``: the contract's mapping file for a model without metadata (default ``<stem>.aegis.yaml``
    beside it). The same model file gives the same bytes. Raises UnsupportedModelError naming every
    unsupported op (type and node name), or ExportError for any other graph or contract the export
    cannot take; nothing is written then.
    """
    model = Path(model_path)
    if not model.is_file():
        raise ExportError(f"{model}: no such model file")
    check_name(name)
    check_precision(precision)
    sha256 = sha256_of(model)
    try:
        proto = _read(model)
        graph, interface = (proto, None) if bare else _physical(proto, model, mapping, precision)
        plan = load_plan(graph)
        generated = generate(plan, name, precision, sha256, interface)
    except UnsupportedModelError as exc:
        raise UnsupportedModelError(f"{model}: {exc}", exc.unsupported) from None
    except ExportError as exc:
        raise ExportError(f"{model}: {exc}") from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    header, source = out / f"{name}.h", out / f"{name}.c"
    header.write_text(generated.header, encoding="ascii", newline="\n")
    source.write_text(generated.source, encoding="ascii", newline="\n")
    physical = interface is not None and interface.physical
    applied = interface.applied if interface is not None else "none applied (--bare: the network alone)"
    return ExportReport(
        model=model, sha256=sha256, name=name, precision=precision, header=header, source=source,
        input_size=plan.input_size, output_size=plan.output_size, network=plan.describe(),
        parameter_count=plan.parameter_count, contract=applied, physical=physical, weight_bytes=generated.weight_bytes,
        activation_bytes=generated.activation_bytes, libm=generated.libm, plan=plan,
    )


def _read(model: Path) -> Any:
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - onnx is a dependency of the export
        raise ExportError("the C export reads models with the onnx package: pip install onnx") from exc
    try:
        return onnx.load(str(model))
    except Exception as exc:  # protobuf's DecodeError and friends: not an ONNX file
        raise ExportError(f"not a readable ONNX model ({type(exc).__name__}: {exc})") from exc


def _physical(proto: Any, model: Path, mapping: str | Path | None, precision: str) -> tuple[Any, Interface | None]:
    """The graph to export and its interface: the physical graph of the model's contract, or the bare network without one."""
    from aegis.inference.contract import (
        CONTRACT_KEY,
        ContractError,
        load_contract,
        mapping_path_for,
    )
    from aegis.inference.physical_graph import normalisation_folded, physical_model

    metadata = {p.key: p.value for p in proto.metadata_props}
    if CONTRACT_KEY not in metadata and mapping is None and not mapping_path_for(model).is_file():
        return proto, None  # no contract anywhere: the bare network, and the header says so
    try:
        contract = load_contract(model, mapping, metadata).contract
        if contract.physical_graph:
            if precision == "int8" and normalisation_folded(proto, contract):
                raise ExportError(
                    "a physical graph whose normalisation was folded into its first layer cannot go to int8 (one scale per "
                    "output channel would crush the fields with a small std): export the original model"
                )
            return proto, interface_of(contract, "the model's graph applies it (a physical model file)")
        built = physical_model(proto, contract, fold=precision == "float32", where=str(model))
    except ContractError as exc:
        raise ExportError(str(exc)) from None
    return built.model, interface_of(built.contract, built.describe())
