"""The model commands: `aegis model inspect|physical|quantize|judge` and `aegis doctor` (onnxruntime and each config's inference target)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from aegis.cli_options import (
    UsageError,
    add_backend_options,
    add_dynamics_option,
    duration,
    dynamics_overrides,
    output_file,
    positive_int,
    require_files,
    resolve_config_path,
    seed,
    workers,
)
from aegis.config import load_config
from aegis.config_files import ConfigError, shorten


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add model and doctor to the `aegis` subparsers."""
    model = sub.add_parser("model", help="inspect ONNX policies", description="Inspect ONNX policy models.")
    model_sub = model.add_subparsers(dest="model_command", metavar="MODEL_COMMAND", required=True)
    inspect = model_sub.add_parser(
        "inspect",
        help="a model's graph, ops, parameters, sha256 and its aegis contract",
        description="Print a model's inputs/outputs, opsets, ops, parameter count, sha256 and its contract (from its "
        "metadata or a <model>.aegis.yaml mapping), checked against the graph and, with --config, against a deployment. "
        "Exit code 0 when every check passes, 1 when one fails.",
    )
    inspect.add_argument("model", type=Path, help="ONNX file")
    inspect.add_argument("--mapping", type=Path, default=None, help="contract mapping file (default: <model>.aegis.yaml)")
    inspect.add_argument(
        "--config", default=None,
        help="hw_config to check the deployment against: the model run in place of its nominal command source "
        "(robot kind, control rate, observation and action layout), as `aegis sim --policy` would",
    )
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(handler=_cmd_model_inspect)
    quantize = model_sub.add_parser(
        "quantize",
        help="int8 quantization (dynamic, or static QDQ calibrated on closed-loop frames), contract kept",
        description="Quantize an ONNX policy to int8 with onnxruntime.quantization: dynamic (weights int8), or static in "
        "QDQ format with activation ranges calibrated on the observations the float model meets flying CONFIG's "
        "scenario (randomized episodes). The output carries the model's contract. Judge it with `aegis model judge`.",
    )
    quantize.add_argument("model", type=Path, help="float ONNX policy")
    quantize.add_argument("-o", "--output", type=output_file, required=True, help="quantized ONNX file to write")
    quantize.add_argument("--mode", choices=("dynamic", "static"), default="dynamic", help="default: dynamic")
    quantize.add_argument("--config", default=None, help="static: hw_config whose scenario calibrates (default: the robot kind's sim config)")
    quantize.add_argument("--episodes", type=positive_int, default=4, help="static: calibration episodes (default: 4)")
    quantize.add_argument("--seed", type=seed, default=0, help="static: seed of the first calibration episode (default: 0)")
    quantize.add_argument("--mapping", type=Path, default=None, help="contract mapping file of MODEL (default: <model>.aegis.yaml)")
    quantize.set_defaults(handler=_cmd_model_quantize)
    physical = model_sub.add_parser(
        "physical",
        help="the model with its contract inside the graph: physical observation in, physical clipped action out",
        description="Write MODEL's physical graph: its contract's normalisation folded into the first layer (or Sub/Mul "
        "nodes before it), its action limits, scale and offset appended, the contract kept in the metadata flagged "
        "physical_graph so nothing applies it twice. The graph aegis runs, quantizes and exports; any ONNX runtime can run it.",
    )
    physical.add_argument("model", type=Path, help="ONNX policy with a contract")
    physical.add_argument("-o", "--output", type=Path, required=True, help="physical ONNX file to write")
    physical.add_argument("--mapping", type=Path, default=None, help="contract mapping file of MODEL (default: <model>.aegis.yaml)")
    physical.add_argument("--no-fold", action="store_true", help="keep the normalisation as Sub/Mul nodes (for int8 quantization)")
    physical.set_defaults(handler=_cmd_model_physical)
    judge = model_sub.add_parser(
        "judge",
        help="a quantized policy against its float model, closed loop on the same episodes",
        description="Fly the float and the quantized policy on the same randomized episodes of CONFIG's scenario, under the "
        "filter; print tracking RMSE, collisions and success of each, their per-episode RMSE difference, and the largest "
        "action difference on the observations the float model met.",
    )
    judge.add_argument("float_model", type=Path, help="float ONNX policy")
    judge.add_argument("quantized_model", type=Path, help="its quantization")
    judge.add_argument("config", nargs="?", default=None, help="hw_config (default: the robot kind's sim config)")
    judge.add_argument("--episodes", type=positive_int, default=10, help="episodes per model (default: 10)")
    judge.add_argument("--seed", type=seed, default=0, help="seed of the first episode (default: 0)")
    judge.add_argument("--duration", type=duration, default=None, help="seconds per episode (default: the scenario's)")
    judge.add_argument("--workers", type=workers, default=None, help="worker processes, or a local Ray instance's CPUs (default: CPU count)")
    add_backend_options(judge)
    judge.add_argument("--mapping", type=Path, default=None, help="contract mapping file of the float model")
    judge.add_argument("--json", type=output_file, default=None, metavar="FILE", help="write the judgement as JSON")
    add_dynamics_option(judge)
    judge.set_defaults(handler=_cmd_model_judge)

    doctor = sub.add_parser(
        "doctor",
        help="onnxruntime, its providers, and what each hw_config's inference target needs",
        description="Report the onnxruntime version and providers here, and for each hw_config the providers, target "
        "and precision it asks for and what it would run on.",
    )
    doctor.add_argument("configs", nargs="*", help="hw_configs (default: every shipped one)")
    doctor.set_defaults(handler=_cmd_doctor)



def _cmd_model_inspect(args: argparse.Namespace) -> int:
    from aegis.inference.inspection import format_inspection, inspect_model

    require_files(("MODEL", args.model), ("--mapping", args.mapping))
    config = resolve_config_path(args.config) if args.config is not None else None
    try:
        report = inspect_model(args.model, mapping=args.mapping)
    except (ValueError, OSError) as exc:
        raise UsageError(f"{args.model}: {exc}") from None
    if config is not None:
        report["deployment_check"] = _deployment_check(config, args.model, args.mapping)
    failed = [name for name, check in (("graph", report["contract_check"]), ("deployment", report.get("deployment_check")))
              if check is not None and not check["ok"]]
    if args.mapping is not None and report["contract"] is None:
        failed.append("contract")
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(format_inspection(report))
        check = report.get("deployment_check")
        if check is not None:
            print(f"deployment check against {check['config']}: " + ("ok" if check["ok"] else "FAILED:"))
            print("\n".join(f"  {line}" for problem in check["problems"] for line in problem.splitlines()))
    if failed:
        first = (report["contract_check"] or {}).get("problems") or (report.get("deployment_check") or {}).get("problems") or []
        why = " ".join(first[0].split()) if first else report["contract_error"] or ""
        print(f"aegis: model inspect: {args.model}: {' and '.join(failed)} check failed: {shorten(why, 200)}", file=sys.stderr)
        return 1
    return 0


def _deployment_check(config: Path, model: Path, mapping: Path | None) -> dict:
    """The model run in place of ``config``'s nominal command source, as `aegis sim --policy` builds it: ok, or the problems."""
    from aegis.inference.contract import ContractError
    from aegis.launch_plan import make_plan
    from aegis.runs.policy_swap import check_policy_nodes, policy_overrides

    try:
        check_policy_nodes(make_plan(load_config(config, policy_overrides(load_config(config), model, mapping))))
    except (ConfigError, ContractError) as exc:
        return {"config": str(config), "ok": False, "problems": [str(exc)]}
    return {"config": str(config), "ok": True, "problems": []}


def _policy_config_path(config: str | None, model: Path, mapping: Path | None) -> Path:
    """``config`` resolved, or the shipped sim config of the model's robot kind."""
    if config is not None:
        return resolve_config_path(config)
    from aegis.inference.contract import read_contract
    from aegis.policy_tools.rollouts import DEFAULT_CONFIGS

    kind = read_contract(model, mapping).robot_kind
    if kind not in DEFAULT_CONFIGS:
        raise UsageError(f"{model}: no shipped sim config for robot kind {kind!r}: give a config")
    return resolve_config_path(DEFAULT_CONFIGS[kind])



def _cmd_model_quantize(args: argparse.Namespace) -> int:
    from aegis.inference.contract import ContractError
    from aegis.inference.quantize import quantize_policy

    require_files(("MODEL", args.model), ("--mapping", args.mapping))
    try:
        calibration = None
        if args.mode == "static":
            from aegis.policy_tools.rollouts import (
                policy_campaign,
                record_policy_inputs,
            )

            config = _policy_config_path(args.config, args.model, args.mapping)
            campaign = policy_campaign(config, args.model, args.episodes, args.seed, mapping=args.mapping)
            calibration = record_policy_inputs(campaign)
            print(f"calibration: {len(calibration)} closed-loop frames from {args.episodes} episodes of {config.name}, seeds {args.seed}..{args.seed + args.episodes - 1}")
        quantize_policy(args.model, args.output, args.mode, calibration, args.mapping)
    except ContractError as exc:
        raise UsageError(str(exc)) from None
    from aegis.config_files import sha256_of

    print(f"wrote {args.output} (int8 {args.mode}, {args.output.stat().st_size:,} bytes, sha256 {sha256_of(args.output)})")
    return 0


def _cmd_model_physical(args: argparse.Namespace) -> int:
    from aegis.config_files import sha256_of
    from aegis.inference.contract import ContractError
    from aegis.inference.physical_graph import physical_file

    require_files(("MODEL", args.model), ("--mapping", args.mapping))
    try:
        built = physical_file(args.model, args.output, args.mapping, fold=not args.no_fold)
    except ContractError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {args.output} (sha256 {sha256_of(args.output)}): {built.describe()}")
    return 0


def _cmd_model_judge(args: argparse.Namespace) -> int:
    from aegis.inference.contract import ContractError
    from aegis.policy_tools.judge import judge_quantized
    from aegis.runs.backends import backend_from_args

    require_files(("FLOAT", args.float_model), ("QUANTIZED", args.quantized_model), ("--mapping", args.mapping))
    backend = backend_from_args(args, args.episodes)
    try:
        config = _policy_config_path(args.config, args.float_model, args.mapping)
        overrides = dynamics_overrides(load_config(config), args.dynamics)
        result = judge_quantized(
            config, args.float_model, args.quantized_model, args.episodes, args.seed, args.duration, backend.workers, args.mapping,
            overrides, backend,
        )
    except ContractError as exc:
        raise UsageError(str(exc)) from None
    print_judgement(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        Console().print(f"wrote {args.json}")
    return 0


def print_judgement(result: dict) -> None:
    names = (Path(result["float_model"]).name, Path(result["quantized_model"]).name)
    episodes = result["float"]["episodes"]
    table = Table(title=f"aegis model judge: {episodes} episodes of {Path(result['config']).name}, seeds {result['seed']}..{result['seed'] + episodes - 1}")
    table.add_column("metric")
    for name in names:
        table.add_column(name, justify="right")
    float_agg, quant_agg = result["float"], result["quantized"]
    table.add_row("success rate", *(f"{a['success_rate'] * 100:.1f} %" for a in (float_agg, quant_agg)))
    table.add_row("collisions (total / episodes with one)", *(f"{a['collisions']} / {a['episodes_with_collision']}" for a in (float_agg, quant_agg)))
    table.add_row("crashes", *(str(a["crashes"]) for a in (float_agg, quant_agg)))
    if float_agg["tracking_rmse_m"] is not None:
        table.add_row("tracking RMSE mean / worst", *(f"{a['tracking_rmse_m']['mean'] * 100:.2f} / {a['tracking_rmse_m']['max'] * 100:.2f} cm" for a in (float_agg, quant_agg)))
    if float_agg["safety_filter"]:
        table.add_row("safety filter: min barrier h", *("-" if a["min_barrier"] is None else f"{a['min_barrier']:.4f}" for a in (float_agg, quant_agg)))
    Console().print(table)
    if result["max_abs_rmse_difference_m"] is not None:
        print(f"largest per-episode |RMSE difference|: {result['max_abs_rmse_difference_m'] * 100:.3f} cm")
    if result["max_action_difference"] is not None:
        pairs = ", ".join(f"{n} {d:.4g}" for n, d in zip(result["action_elements"], result["max_action_difference"]))
        print(f"largest action difference on {result['frames_compared']} closed-loop frames of the float model: {pairs}")


def _cmd_doctor(args: argparse.Namespace) -> int:
    from aegis.inference.doctor import doctor, format_doctor
    from aegis.paths import share_dir

    configs = [resolve_config_path(c) for c in args.configs] or sorted((share_dir() / "hw_configs").glob("*.yaml"))
    print(format_doctor(doctor(configs)))
    return 0
