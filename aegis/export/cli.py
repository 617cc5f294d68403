"""`aegis export c MODEL -o DIR`: the command-line front of the C export (add_arguments + run_export for aegis.cli)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aegis.export.codegen import PRECISIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `aegis export c`; the caller sets handler=run_export."""
    parser.add_argument("model", type=Path, help="ONNX model: an MLP of Gemm/MatMul/Add/Relu/Tanh/Sigmoid/Clip/... ops")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder for <name>.h and <name>.c (created)")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="float32 (default), or int8 weights with per-output-channel scales and float sums")
    parser.add_argument("--name", default="policy", help="C prefix: <name>_infer(), <name>.h (default: policy)")


def run_export(args: argparse.Namespace) -> int:
    """Exports and prints the report; a model or name the export refuses is one line on stderr, exit code 2."""
    from aegis.export.errors import ExportError
    from aegis.export.exporter import export_c

    try:
        report = export_c(args.model, args.out, precision=args.precision, name=args.name)
    except ExportError as exc:
        print(f"aegis: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m aegis.export.cli MODEL -o DIR`) until `aegis export c` is wired."""
    parser = argparse.ArgumentParser(prog="aegis export c", description="Export an ONNX MLP policy to dependency-free C99.")
    add_arguments(parser)
    return run_export(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
