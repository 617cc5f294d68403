"""The command-line fronts of the C exports for aegis.cli: `aegis export c MODEL -o DIR` and `aegis export filter-c [CONFIG] -o DIR`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aegis.cli_options import output_folder, positive_int, resolve_config_path, seed
from aegis.export.codegen import PRECISIONS
from aegis.export.filter_config import config_filter  # noqa: F401 - used below, and imported from here by tests



def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add export c and export filter-c to the `aegis` subparsers."""
    export = sub.add_parser("export", help="export a model for another target", description="Export models for targets without Python.")
    export_sub = export.add_subparsers(dest="export_command", metavar="TARGET", required=True)
    export_c = export_sub.add_parser(
        "c",
        help="an ONNX MLP policy as dependency-free C99 (static memory, no malloc), float32 or int8, in physical units",
        description="Write <name>.h and <name>.c for an ONNX MLP (Gemm/MatMul/Add/Relu/Tanh/...): static weights and "
        "buffers, no malloc; unsupported ops are refused with their list. A model with an aegis policy contract is "
        "exported with it: the C takes the physical observation and returns the physical, clipped command, and "
        "<name>.h lists every input and output with its name, unit and range.",
    )
    add_arguments(export_c)
    export_c.set_defaults(handler=run_export)
    export_filter = export_sub.add_parser(
        "filter-c",
        help="a config's safety-filter QP as cvxpygen C (OSQP, static memory); --mcu proves it on an emulated Cortex-M4F",
        description="Write the C of the safety filter's QP (cvxpygen's OSQP code, from the same cvxpy formulation the "
        "filter solves) with an aegis header; --mcu builds it for a Cortex-M4F, solves sample problems under QEMU, "
        "compares with the host and prints flash and RAM.",
    )
    add_filter_arguments(export_filter)
    export_filter.set_defaults(handler=lambda args: run_filter_export(args, resolve_config_path(args.config)))
    export_pil = export_sub.add_parser(
        "pil",
        help="a config's policy and safety filter in one Cortex-M4F image that answers wire frames on its UART (aegis hil --mcu runs it)",
        description="Export the config's policy (aegis export c) and its safety filter's QP (filter-c --solver active-set), "
        "link them with the wire frame's C and a UART main into one image for QEMU mps2-an386, print its flash and RAM "
        "and write OUT/image.json. Needs arm-none-eabi-gcc and newlib.",
    )
    export_pil.add_argument("config", nargs="?", default="quadrotor_sim.yaml", help="hw_config with a policy node and a safety filter (default: quadrotor_sim.yaml)")
    export_pil.add_argument("-o", "--out", type=output_folder, required=True, help="output folder (created): the C, the build, image.json")
    export_pil.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                            help="override a config value (YAML value); repeatable")
    export_pil.set_defaults(handler=lambda args: run_pil_export(args, resolve_config_path(args.config)))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `aegis export c`; the caller sets handler=run_export."""
    parser.add_argument("model", type=Path, help="ONNX model: an MLP of Gemm/MatMul/Add/Relu/Tanh/Sigmoid/Clip/... ops")
    parser.add_argument("-o", "--out", type=output_folder, required=True, help="output folder for <name>.h and <name>.c (created)")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="float32 (default), or int8 weights with per-output-channel scales and float sums")
    parser.add_argument("--name", default="policy", help="C prefix: <name>_infer(), <name>.h (default: policy)")
    parser.add_argument("--mapping", type=Path, default=None,
                        help="contract mapping file for a model without aegis metadata (default: <model>.aegis.yaml beside it)")
    parser.add_argument("--bare", action="store_true",
                        help="export the network alone, in its own units (the caller normalises, scales and clips); "
                        "default: with its contract, physical units in and out")


def run_export(args: argparse.Namespace) -> int:
    """Exports and prints the report; a model or name the export refuses is one line on stderr, exit code 2."""
    from aegis.export.errors import ExportError
    from aegis.export.exporter import export_c

    try:
        report = export_c(args.model, args.out, precision=args.precision, name=args.name, mapping=args.mapping, bare=args.bare)
    except ExportError as exc:
        print(f"aegis: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    return 0


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `aegis export filter-c`; the caller sets a handler calling run_filter_export with the config's path."""
    parser.add_argument("config", nargs="?", default="quadrotor_sim.yaml", help="hw_config whose safety filter's QP is exported (default: quadrotor_sim.yaml)")
    parser.add_argument("-o", "--out", type=output_folder, required=True, help="output folder for <name>_qp.h and cvxpygen's C (created)")
    parser.add_argument("--node", default=None, help="the config's safety-filter node (default: its first)")
    parser.add_argument("--name", default="filter", help="C prefix: <name>_solve(), <name>_qp.h, <name>_cpg_*() (default: filter)")
    parser.add_argument("--solver", choices=("osqp", "active-set"), default="osqp",
                        help="osqp: cvxpygen's OSQP C in double (default); active-set: a dual active-set solve in float for a "
                        "microcontroller's FPU, no cvxpygen needed (<name>_dual.h, <name>_dual.c)")
    parser.add_argument("--mcu", action="store_true",
                        help="also build it for a Cortex-M4F, solve --problems sample problems under QEMU mps2-an386, compare with "
                        "the host (cvxpy reference, osqp-direct, the same C built here) and print flash and RAM; exit 1 if they disagree")
    parser.add_argument("--problems", type=positive_int, default=200, metavar="N", help="sample problems for --mcu (default 200)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the sample problems' states and obstacles (default 0)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a config value (YAML value); repeatable")


def run_filter_export(args: argparse.Namespace, config_path: Path) -> int:
    """Exports the config's filter QP and prints the report; with --mcu checks it under QEMU (exit 1 when it disagrees).

    A config without a safety filter, cvxpygen or a tool missing: one line on stderr, exit code 2.
    """
    from aegis.export.errors import ExportError, ToolchainError
    from aegis.export.filter_dual import export_filter_dual
    from aegis.export.filter_qp import export_filter_qp

    try:
        found = config_filter(config_path, args.overrides, args.node)
        exporter = export_filter_dual if args.solver == "active-set" else export_filter_qp
        export = exporter(found["filter"].spec, args.out, args.name)
    except ExportError as exc:
        print(f"aegis: error: {exc}", file=sys.stderr)
        return 2
    print(f"{config_path}: the QP of safety-filter node {found['node']!r} ({type(found['filter'].model).__name__})")
    print("\n".join(export.lines()))
    if not args.mcu:
        return 0
    from aegis.export.filter_check import check_filter_qp
    from aegis.export.filter_dual_check import check_filter_dual
    from aegis.export.filter_samples import sample_problems
    from aegis.export.mcu import missing_tools

    absent = missing_tools()
    if absent:
        print(f"aegis: error: --mcu needs {', '.join(absent)} (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)", file=sys.stderr)
        return 2
    problems = sample_problems(found["filter"].model, export.spec, found["walls"], args.problems, args.seed, found["region"])
    try:
        check = (check_filter_dual if args.solver == "active-set" else check_filter_qp)(export, problems, args.out / "build")  # type: ignore[arg-type]
    except ToolchainError as exc:
        print(f"aegis: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(check.lines()))
    return 0 if check.agrees() else 1


def run_pil_export(args: argparse.Namespace, config_path: Path) -> int:
    """Builds the config's PIL image and prints its sizes; no policy or filter, or a missing tool: one line, exit code 2."""
    from aegis.export.errors import ExportError, ToolchainError
    from aegis.export.mcu import missing_tools
    from aegis.export.pil import config_pil_image

    absent = [tool for tool in missing_tools() if tool != "qemu-system-arm"]
    if absent:
        print(f"aegis: error: export pil needs {', '.join(absent)} (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi)", file=sys.stderr)
        return 2
    try:
        image = config_pil_image(config_path, args.overrides, args.out)
    except (ExportError, ToolchainError) as exc:
        print(f"aegis: error: {exc}", file=sys.stderr)
        return 2
    print(f"{config_path}: policy node {image['policy_node']!r} ({image['model']}) and safety filter {image['filter_node']!r} "
          "(float active-set QP) in one Cortex-M4F image")
    print(f"  image   {args.out / Path(image['elf']).relative_to(args.out.resolve())}")
    print(f"  flash   {image['flash_bytes']} B (text {image['text_bytes']} + data {image['data_bytes']}); "
          f"RAM {image['ram_bytes']} B (data {image['data_bytes']} + bss {image['bss_bytes']}) + stack")
    print(f"  wrote   {args.out / 'image.json'}")
    return 0
