"""export_c: an ONNX MLP file to `<name>.h` and `<name>.c`, with a report of what was written."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from aegis.export.codegen import (
    PRECISION_NOTES,
    Precision,
    check_name,
    check_precision,
    generate,
)
from aegis.export.errors import ExportError, UnsupportedModelError
from aegis.export.graph import load_plan
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
    weight_bytes: int  # static const arrays: flash
    activation_bytes: int  # static buffers: RAM
    libm: tuple[str, ...]
    plan: Plan

    @property
    def files(self) -> tuple[Path, Path]:
        return (self.header, self.source)

    def lines(self) -> list[str]:
        """The report as printed by `aegis export c`."""
        return [
            f"wrote {self.header} and {self.source}",
            f"  model       {self.model} (sha256 {self.sha256})",
            f"  network     {self.network}",
            f"  precision   {self.precision}: {PRECISION_NOTES[self.precision]}",
            f"  parameters  {self.parameter_count}",
            f"  flash       {self.weight_bytes} bytes of weights (static const), plus code",
            f"  RAM         {self.activation_bytes} bytes of activations (static), plus the caller's stack",
            f"  libm        {', '.join(self.libm) or 'none'}",
            (
                f"  API         void {self.name}_infer(const float *input, float *output);"
                f"  /* {self.input_size} floats in, {self.output_size} out */"
            ),
        ]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_c(model_path: str | Path, out_dir: str | Path, precision: Precision = "float32", name: str = "policy") -> ExportReport:
    """Writes `<name>.h` and `<name>.c` for an ONNX MLP into out_dir (created if missing).

    The same model file gives the same bytes. Raises UnsupportedModelError naming every unsupported op
    (type and node name), or ExportError for any other graph the export cannot take; nothing is written then.
    """
    model = Path(model_path)
    if not model.is_file():
        raise ExportError(f"{model}: no such model file")
    check_name(name)
    check_precision(precision)
    sha256 = sha256_of(model)
    try:
        plan = load_plan(model)
        generated = generate(plan, name, precision, sha256)
    except UnsupportedModelError as exc:
        raise UnsupportedModelError(f"{model}: {exc}", exc.unsupported) from None
    except ExportError as exc:
        raise ExportError(f"{model}: {exc}") from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    header, source = out / f"{name}.h", out / f"{name}.c"
    header.write_text(generated.header, encoding="ascii", newline="\n")
    source.write_text(generated.source, encoding="ascii", newline="\n")
    return ExportReport(
        model=model, sha256=sha256, name=name, precision=precision, header=header, source=source,
        input_size=plan.input_size, output_size=plan.output_size, network=plan.describe(),
        parameter_count=plan.parameter_count, weight_bytes=generated.weight_bytes,
        activation_bytes=generated.activation_bytes, libm=generated.libm, plan=plan,
    )
