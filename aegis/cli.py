"""The `aegis` command line: check a hw_config and its launch plan, run the closed loop, inspect bags.

Bad input (a config, a file, a value) ends with exit code 2 and one line per problem, no traceback.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from aegis import __version__
from aegis.cli_types import positive_float, positive_int
from aegis.config import ConfigError, load_config
from aegis.launch_plan import LaunchPlan, bypass_overrides, make_plan
from aegis.node import port_topics
from aegis.paths import shipped_config

DEFAULT_SIM_CONFIG = "quadrotor_sim.yaml"


BENCHMARKS = (
    (
        "sim",
        "aegis.bench.sim",
        "closed-loop quadrotor sim throughput: executor vs the same nodes stepped inline vs a plain inline loop",
        "Fly the quadrotor config three ways (through the lockstep executor, its nodes stepped by a plain loop, and the "
        "world and cascade called directly) and print time per physics step, steps/s and real-time factor.",
    ),
    (
        "policy",
        "aegis.inference.bench",
        "policy inference per call: onnxruntime run, io_binding, the aegis runtime, numpy, int8, the C export",
        "Per-call latency of an ONNX policy through onnxruntime's run, io_binding, the aegis runtime (normalisation, "
        "scaling, clipping included), a numpy forward pass, onnxruntime's dynamic int8, and the aegis C export "
        "(float32 and int8, built with the host compiler, timed in C).",
    ),
    (
        "mpc",
        "aegis.bench.mpc",
        "MPC solve time per path (OSQP direct, cvxpy with Parameters, cvxpy rebuilt) for each model",
        "Closed-loop MPC ticks per model and solve path: median and p99 per call, iterations, ratio to cvxpy.",
    ),
    (
        "filter",
        "aegis.bench.filter",
        "CBF safety-filter call time per solve path (osqp-direct, closed-form, cvxpygen, cvxpy-param, cvxpy-rebuild)",
        "The whole filter call (rows from the state, solve, checks, report) per solve path: median and p99, and the "
        "speed-up over cvxpy with Parameters.",
    ),
)
"""`aegis bench NAME`: (name, module with add_arguments and run_from_args, help, description)."""


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit code 2."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except (ConfigError, UsageError) as exc:
        print(f"aegis: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aegis: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aegis",
        description="aegis: a real-time robot control stack (MPC, CBF safety filters, ONNX policies) as ROS 2 nodes.",
    )
    parser.add_argument("--version", action="version", version=f"aegis {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser(
        "check",
        help="validate a hw_config and print its launch plan",
        description="Validate a hw_config (schema, node parameters, files, sha256, topic wiring) and print the launch plan.",
    )
    check.add_argument("config", help="hw_config YAML file, or the name of a shipped one (e.g. point_mass_sim)")
    _add_overrides(check)
    check.add_argument("--json", action="store_true", help="print the plan as JSON instead of a table")
    check.add_argument("--no-filter", action="store_true", help="the plan without the safety filters, as sim and eval run it")
    check.set_defaults(handler=_cmd_check)

    sim = sub.add_parser(
        "sim",
        help="run the closed loop in lockstep simulation and record it",
        description="Run a hw_config's node graph in lockstep simulated time, record every topic to a rosbag2 (MCAP) "
        "bag, and write a summary.",
    )
    sim.add_argument("config", nargs="?", default=DEFAULT_SIM_CONFIG, help=f"hw_config (default: {DEFAULT_SIM_CONFIG})")
    sim.add_argument("--scenario", help="scenario file, shipped name or family (adversarial, clutter, gaps, wall, pocket: the robot kind's own) (default: the config's own)")
    sim.add_argument(
        "--duration", type=positive_float, default=None, help="simulated seconds (default: the scenario's, else 10)"
    )
    sim.add_argument("--seed", type=int, default=0, help="seed for every node's randomness (default: 0)")
    sim.add_argument("--gui", action="store_true", help="open the PyBullet GUI (needs a display)")
    sim.add_argument("--no-filter", action="store_true", help="leave the safety filter out: the nominal command goes straight on")
    add_dynamics_option(sim)
    _add_policy_options(sim)
    sim.add_argument(
        "--expert", metavar="NODE_TYPE", default=None,
        help="with --policy: the node type to compare with (default: the model's producer.expert, else the config's own)",
    )
    sim.add_argument("--out", type=Path, default=Path("runs/sim"), help="output folder (default: runs/sim)")
    _add_overrides(sim)
    sim.set_defaults(handler=_cmd_sim)

    evaluate = sub.add_parser(
        "eval",
        help="run N randomized episodes of a scenario in parallel and aggregate them",
        description="Run N randomized episodes (seed, seed+1, ...) of a config's scenario with the plant's domain "
        "randomisation on, in parallel worker processes; print per-campaign aggregates and optionally write JSON.",
    )
    evaluate.add_argument("config", nargs="?", default=DEFAULT_SIM_CONFIG, help=f"hw_config (default: {DEFAULT_SIM_CONFIG})")
    evaluate.add_argument("--scenario", help="scenario file, shipped name or family (adversarial, clutter, gaps, wall, pocket: the robot kind's own) (default: the config's own)")
    evaluate.add_argument("--episodes", type=positive_int, default=10, help="number of episodes (default: 10)")
    evaluate.add_argument("--workers", type=positive_int, default=None, help="worker processes (default: CPU count)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the first episode (default: 0)")
    evaluate.add_argument("--duration", type=positive_float, default=None, help="seconds per episode (default: the scenario's)")
    evaluate.add_argument("--json", type=Path, default=None, metavar="FILE", help="write per-episode rows and aggregates")
    evaluate.add_argument("--no-filter", action="store_true", help="leave the safety filter out (to show what it prevents)")
    add_dynamics_option(evaluate)
    _add_policy_options(evaluate)
    _add_overrides(evaluate)
    evaluate.set_defaults(handler=_cmd_eval)

    bench = sub.add_parser("bench", help="benchmarks that print numbers", description="Benchmarks: print and optionally write rows.")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    for name, module, help_text, description in BENCHMARKS:
        bench_parser = bench_sub.add_parser(name, help=help_text, description=description)
        importlib.import_module(module).add_arguments(bench_parser)
        bench_parser.set_defaults(handler=functools.partial(_cmd_bench, module))

    model = sub.add_parser("model", help="inspect ONNX policies", description="Inspect ONNX policy models.")
    model_sub = model.add_subparsers(dest="model_command", metavar="MODEL_COMMAND", required=True)
    inspect = model_sub.add_parser(
        "inspect",
        help="a model's graph, ops, parameters, sha256 and its aegis contract",
        description="Print a model's inputs/outputs, opsets, ops, parameter count, sha256 and its contract (from its "
        "metadata or a <model>.aegis.yaml mapping), checked against the graph.",
    )
    inspect.add_argument("model", type=Path, help="ONNX file")
    inspect.add_argument("--mapping", type=Path, default=None, help="contract mapping file (default: <model>.aegis.yaml)")
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
    quantize.add_argument("-o", "--output", type=Path, required=True, help="quantized ONNX file to write")
    quantize.add_argument("--mode", choices=("dynamic", "static"), default="dynamic", help="default: dynamic")
    quantize.add_argument("--config", default=None, help="static: hw_config whose scenario calibrates (default: the robot kind's sim config)")
    quantize.add_argument("--episodes", type=positive_int, default=4, help="static: calibration episodes (default: 4)")
    quantize.add_argument("--seed", type=int, default=0, help="static: seed of the first calibration episode (default: 0)")
    quantize.add_argument("--mapping", type=Path, default=None, help="contract mapping file of MODEL (default: <model>.aegis.yaml)")
    quantize.set_defaults(handler=_cmd_model_quantize)
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
    judge.add_argument("--seed", type=int, default=0, help="seed of the first episode (default: 0)")
    judge.add_argument("--duration", type=positive_float, default=None, help="seconds per episode (default: the scenario's)")
    judge.add_argument("--workers", type=positive_int, default=None, help="worker processes (default: CPU count)")
    judge.add_argument("--mapping", type=Path, default=None, help="contract mapping file of the float model")
    judge.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the judgement as JSON")
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

    export = sub.add_parser("export", help="export a model for another target", description="Export models for targets without Python.")
    export_sub = export.add_subparsers(dest="export_command", metavar="TARGET", required=True)
    export_c = export_sub.add_parser(
        "c",
        help="an ONNX MLP policy as dependency-free C99 (static memory, no malloc), float32 or int8",
        description="Write <name>.h and <name>.c for an ONNX MLP (Gemm/MatMul/Add/Relu/Tanh/...): static weights and "
        "buffers, no malloc; unsupported ops are refused with their list.",
    )
    from aegis.export.cli import add_arguments as add_export_arguments

    add_export_arguments(export_c)
    export_c.set_defaults(handler=_cmd_export_c)
    export_filter = export_sub.add_parser(
        "filter-c",
        help="a config's safety-filter QP as cvxpygen C (OSQP, static memory); --mcu proves it on an emulated Cortex-M4F",
        description="Write the C of the safety filter's QP (cvxpygen's OSQP code, from the same cvxpy formulation the "
        "filter solves) with an aegis header; --mcu builds it for a Cortex-M4F, solves sample problems under QEMU, "
        "compares with the host and prints flash and RAM.",
    )
    from aegis.export.cli import add_filter_arguments

    add_filter_arguments(export_filter)
    export_filter.set_defaults(handler=_cmd_export_filter_c)

    train = sub.add_parser(
        "train",
        help="imitate a config's MPC expert: demonstrations, DAgger, Lipschitz-bounded BC, ONNX with its contract",
        description="Train an MLP policy from the MPC expert of CONFIG in randomized lockstep sim (demonstrations, then "
        "DAgger rollouts through the policy node), under a per-layer spectral-norm bound; write it as ONNX with its "
        "contract. Same seed, same file. Needs torch (the [train] extra).",
    )
    from aegis.training.cli import add_arguments as add_train_arguments

    add_train_arguments(train)
    train.set_defaults(handler=_cmd_train)

    replay = sub.add_parser(
        "replay",
        help="feed a bag into some nodes and compare their outputs with the recording",
        description="Replay a recorded bag's inputs into the named nodes of a plan and compare what they publish with "
        "what the bag recorded on the same topics. Exit code 0 when identical, 1 when they differ.",
    )
    replay.add_argument("bag", type=Path, help="bag folder written by `aegis sim`")
    replay.add_argument("config", nargs="?", default=DEFAULT_SIM_CONFIG, help=f"hw_config (default: {DEFAULT_SIM_CONFIG})")
    replay.add_argument("--node", dest="nodes", action="append", required=True, metavar="NAME", help="node to replay; repeatable")
    _add_overrides(replay)
    replay.set_defaults(handler=_cmd_replay)

    bag = sub.add_parser("bag", help="inspect a recorded rosbag2 bag", description="Inspect rosbag2 bags aegis wrote.")
    bag_sub = bag.add_subparsers(dest="bag_command", metavar="BAG_COMMAND", required=True)
    info = bag_sub.add_parser("info", help="topics, types, counts and duration of a bag")
    info.add_argument("bag", type=Path, help="bag folder (holds metadata.yaml)")
    info.set_defaults(handler=_cmd_bag_info)
    return parser


def resolve_config_path(name: str) -> Path:
    """A path as given if it exists, else a shipped hw_config of that name."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = shipped_config(name)
    if shipped.is_file():
        return shipped
    raise UsageError(f"{name}: no such hw_config file (nor a shipped one at {shipped})")


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a config value (YAML value), e.g. --set nodes.controller.params.kp=2.0; repeatable",
    )


def add_dynamics_option(parser: argparse.ArgumentParser) -> None:
    """``--dynamics NAME|FILE``: a dynamics perturbation of the simulated plant (aegis.sim.dynamics)."""
    parser.add_argument(
        "--dynamics", default=None, metavar="NAME|FILE",
        help="perturb the simulated plant (mass, motors, latency, noise; aegis.sim.dynamics): a shipped set "
        "(nominal, light, heavy, slow_motors, latency_10ms, noisy, combined, random) or a file; drawn per seed",
    )


def dynamics_overrides(config, dynamics: str | None) -> list[str]:
    """The override giving the plant (the config's first node) ``dynamics``; ConfigError naming a bad set, file or key."""
    from aegis.sim.dynamics import plant_overrides

    return plant_overrides(config, dynamics)


def _add_policy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy", type=Path, default=None, metavar="FILE",
        help="ONNX policy run in the place of the config's nominal command source, under the filter",
    )
    parser.add_argument("--mapping", type=Path, default=None, metavar="YAML", help="with --policy: its contract mapping file")




def _load_plan(args: argparse.Namespace) -> LaunchPlan:
    """The plan of ``args.config`` with ``--set`` overrides and the options' own (``--scenario``, ``--gui``, ``--no-filter``).

    The options' overrides depend only on what the user's config says (robot kind, first node,
    filter wiring), which they do not change: the config is read once to derive them, once more with them.
    """
    path = resolve_config_path(args.config)
    overrides = list(args.overrides)
    config = load_config(path, overrides)
    if getattr(args, "scenario", None):
        from aegis.scenario import resolve_scenario_for

        overrides.append(f"scenario={resolve_scenario_for(args.scenario, config.robot.kind).resolve()}")
    if getattr(args, "gui", False):
        plant = next(iter(config.nodes))  # the first node is the simulator
        overrides.append(f"nodes.{plant}.params.gui=true")
    if getattr(args, "no_filter", False):
        overrides += bypass_overrides(config)
    overrides += dynamics_overrides(config, getattr(args, "dynamics", None))
    args.base_overrides = list(overrides)  # without --policy: what the expert runs with
    if getattr(args, "policy", None) is not None:
        overrides += _policy_overrides(config, args)
    elif getattr(args, "mapping", None) is not None:
        raise UsageError("--mapping is the contract of a --policy model: give --policy FILE too")
    args.effective_overrides = overrides
    plan = make_plan(load_config(path, overrides) if overrides != list(args.overrides) else config)
    if getattr(args, "policy", None) is not None:
        from aegis.policy_swap import check_policy_nodes

        check_policy_nodes(plan)  # a model that does not fit the config is refused here, naming both sides
    return plan


def _policy_overrides(config, args: argparse.Namespace) -> list[str]:
    """The overrides putting ``--policy`` in the nominal command source's place; UsageError naming a missing file."""
    from aegis.policy_swap import policy_overrides

    for option, file in (("--policy", args.policy), ("--mapping", args.mapping)):
        if file is not None and not file.is_file():
            raise UsageError(f"{option} {file}: no such file")
    return policy_overrides(config, args.policy, args.mapping)


def _cmd_check(args: argparse.Namespace) -> int:
    path = resolve_config_path(args.config)
    plan = _load_plan(args)  # with --no-filter's overrides; a plan that goes around a filter is refused (exit 2)
    from aegis.policy_swap import check_policy_nodes

    check_policy_nodes(plan)  # a policy model that does not fit the config is a config error too
    if args.json:
        print(json.dumps(plan_as_dict(plan), indent=2))
        return 0
    console = Console()
    console.print(f"[green]ok[/green] {path}: robot {plan.robot}, target {plan.target}, executor {plan.executor}, "
                  f"ROS 2 {plan.ros_distro}{', use_sim_time' if plan.use_sim_time else ''}")
    table = Table(title="launch plan")
    for column in ("process", "node", "type", "rate", "subscribes", "publishes"):
        table.add_column(column)
    for process, nodes in plan.processes.items():
        for node in nodes:
            table.add_row(
                process,
                node.name,
                node.type_name,
                f"{node.rate_hz:g} Hz" if node.rate_hz else f"on {node.trigger}",
                "\n".join(f"{t} ({node.msg_types[p]})" for p, ts in node.inputs.items() for t in port_topics(ts)),
                "\n".join(f"{t} ({node.msg_types[p]})" for p, ts in node.outputs.items() for t in port_topics(ts)),
            )
    console.print(table)
    for warning in plan.warnings:
        console.print(f"[yellow]warning[/yellow]: {warning}")
    return 0


def plan_as_dict(plan: LaunchPlan) -> dict:
    from dataclasses import asdict

    return {
        **asdict(plan),
        "scenario": None if plan.scenario is None else str(plan.scenario),  # a Path: JSON has no such type
        "processes": {name: [n.name for n in nodes] for name, nodes in plan.processes.items()},
    }


def _cmd_sim(args: argparse.Namespace) -> int:
    from aegis.sim_run import print_summary, run_sim

    plan = _load_plan(args)
    if args.policy is not None:
        return _sim_policy_and_expert(args, plan)
    if args.expert is not None:
        raise UsageError("--expert is what a --policy is compared with: give --policy FILE too")
    try:
        summary = run_sim(plan, duration_s=args.duration, seed=args.seed, out_dir=args.out, show_progress=True)
    except (FileExistsError, RuntimeError) as exc:  # a non-bag --out folder; no display for --gui
        raise UsageError(str(exc)) from None
    print_summary(summary)
    return 0


def _sim_policy_and_expert(args: argparse.Namespace, policy_plan: LaunchPlan) -> int:
    """`aegis sim --policy`: the policy's run, then the expert's on the same scenario and seed, compared."""
    from aegis.policy_compare import compare_with_expert, print_comparison
    from aegis.policy_swap import expert_overrides, expert_type

    path = resolve_config_path(args.config)
    config = load_config(path, args.overrides)  # the filter still in: it locates the nominal command source
    try:
        expert = expert_type(config, args.policy, args.mapping, args.expert)
    except KeyError as exc:  # an unknown --expert
        raise UsageError(f"--expert: {exc}") from None
    expert_plan = make_plan(load_config(path, [*args.base_overrides, *expert_overrides(config, expert)]))
    try:
        result = compare_with_expert(policy_plan, expert_plan, args.policy, expert, args.duration, args.seed, args.out, show_progress=True)
    except (FileExistsError, RuntimeError) as exc:
        raise UsageError(str(exc)) from None
    print_comparison(result)
    Console().print(f"wrote {args.out / 'summary.json'}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import os

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from aegis.evaluation import Campaign, run_campaign

    _load_plan(args)  # validates config, overrides and scenario before any worker starts
    campaign = Campaign(resolve_config_path(args.config), tuple(args.effective_overrides), args.episodes, args.seed, args.duration)
    workers = min(args.workers or os.cpu_count() or 1, args.episodes)
    columns = (
        TextColumn("episodes"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[collisions]} collisions, {task.fields[crashes]} crashes"), TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("eval", total=args.episodes, collisions=0, crashes=0)
        seen = {"collisions": 0, "crashes": 0}

        def advance(row: dict) -> None:
            seen["collisions"] += row["collisions"]
            seen["crashes"] += row["crashes"]
            progress.update(task, advance=1, collisions=seen["collisions"], crashes=seen["crashes"])

        result = run_campaign(campaign, workers=workers, on_episode=advance)
    print_campaign(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        Console().print(f"wrote {args.json}")
    return 0


def print_campaign(result: dict) -> None:
    agg = result["aggregate"]
    table = Table(title=f"aegis eval: {agg['episodes']} episodes of {Path(result['scenario']).stem if result['scenario'] else result['config']}, seeds {result['seed']}..{result['seed'] + agg['episodes'] - 1}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("success rate", f"{agg['success_rate'] * 100:.1f} %")
    table.add_row("collisions (total / episodes with one)", f"{agg['collisions']} / {agg['episodes_with_collision']}")
    table.add_row("crashes", str(agg["crashes"]))
    table.add_row("outcomes", ", ".join(f"{name} {count}" for name, count in agg["outcomes"].items() if count) or "-")
    if agg["min_clearance_m"] is not None:
        table.add_row("min clearance (worst episode)", f"{agg['min_clearance_m']:.3f} m")
    if agg["tracking_rmse_m"] is not None:
        table.add_row("tracking RMSE mean / worst", f"{agg['tracking_rmse_m']['mean'] * 100:.2f} / {agg['tracking_rmse_m']['max'] * 100:.2f} cm")
    table.add_row("command timeouts", str(agg["command_timeouts"]))
    if agg["safety_filter"]:
        barrier = "-" if agg["min_barrier"] is None else f"{agg['min_barrier']:.4f}"
        table.add_row("safety filter: min barrier h", barrier)
        table.add_row("safety filter: interventions / fallbacks", f"{agg['filter_interventions']} / {agg['fallbacks']} ticks")
    else:
        table.add_row("safety filter", "off")
    if agg.get("policy_no_nominal_ticks") is not None:
        table.add_row("policy: ticks without a nominal", str(agg["policy_no_nominal_ticks"]))
    Console().print(table)


def _cmd_bench(module: str, args: argparse.Namespace) -> int:
    importlib.import_module(module).run_from_args(args)
    return 0


def _cmd_model_inspect(args: argparse.Namespace) -> int:
    from aegis.inference.inspection import format_inspection, inspect_model

    if not args.model.is_file():
        raise UsageError(f"{args.model}: no such model file")
    try:
        report = inspect_model(args.model, mapping=args.mapping)
    except (ValueError, OSError) as exc:
        raise UsageError(f"{args.model}: {exc}") from None
    print(json.dumps(report, indent=2, default=str) if args.json else format_inspection(report))
    return 0


def _policy_config_path(config: str | None, model: Path, mapping: Path | None) -> Path:
    """``config`` resolved, or the shipped sim config of the model's robot kind."""
    if config is not None:
        return resolve_config_path(config)
    from aegis.inference.contract import read_contract
    from aegis.policy_rollouts import DEFAULT_CONFIGS

    kind = read_contract(model, mapping).robot_kind
    if kind not in DEFAULT_CONFIGS:
        raise UsageError(f"{model}: no shipped sim config for robot kind {kind!r}: give a config")
    return resolve_config_path(DEFAULT_CONFIGS[kind])


def _model_files(*files: tuple[str, Path | None]) -> None:
    for option, file in files:
        if file is not None and not file.is_file():
            raise UsageError(f"{option} {file}: no such file")


def _cmd_model_quantize(args: argparse.Namespace) -> int:
    from aegis.inference.contract import ContractError
    from aegis.inference.quantize import quantize_policy

    _model_files(("MODEL", args.model), ("--mapping", args.mapping))
    try:
        calibration = None
        if args.mode == "static":
            from aegis.policy_rollouts import policy_campaign, record_policy_inputs

            config = _policy_config_path(args.config, args.model, args.mapping)
            campaign = policy_campaign(config, args.model, args.episodes, args.seed, mapping=args.mapping)
            calibration = record_policy_inputs(campaign)
            print(f"calibration: {len(calibration)} closed-loop frames from {args.episodes} episodes of {config.name}, seeds {args.seed}..{args.seed + args.episodes - 1}")
        quantize_policy(args.model, args.output, args.mode, calibration, args.mapping)
    except ContractError as exc:
        raise UsageError(str(exc)) from None
    from aegis.config import sha256_of

    print(f"wrote {args.output} (int8 {args.mode}, {args.output.stat().st_size:,} bytes, sha256 {sha256_of(args.output)})")
    return 0


def _cmd_model_judge(args: argparse.Namespace) -> int:
    import os

    from aegis.inference.contract import ContractError
    from aegis.policy_judge import judge_quantized

    _model_files(("FLOAT", args.float_model), ("QUANTIZED", args.quantized_model), ("--mapping", args.mapping))
    workers = min(args.workers or os.cpu_count() or 1, args.episodes)
    try:
        config = _policy_config_path(args.config, args.float_model, args.mapping)
        overrides = dynamics_overrides(load_config(config), args.dynamics)
        result = judge_quantized(
            config, args.float_model, args.quantized_model, args.episodes, args.seed, args.duration, workers, args.mapping, overrides
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


def _cmd_export_c(args: argparse.Namespace) -> int:
    from aegis.export.cli import run_export

    return run_export(args)


def _cmd_export_filter_c(args: argparse.Namespace) -> int:
    from aegis.export.cli import run_filter_export

    return run_filter_export(args, resolve_config_path(args.config))


def _cmd_train(args: argparse.Namespace) -> int:
    from aegis.training.cli import run_from_args

    return run_from_args(args, resolve_config_path(args.config))


def _require_bag(path: Path) -> None:
    if not (path / "metadata.yaml").is_file():
        raise UsageError(f"{path}: not a rosbag2 bag folder (no metadata.yaml)")


def _cmd_replay(args: argparse.Namespace) -> int:
    from aegis.replay import replay_and_compare

    _require_bag(args.bag)
    try:
        comparisons = replay_and_compare(_load_plan(args), args.bag, args.nodes)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    table = Table(title=f"replay of {', '.join(args.nodes)} against {args.bag}")
    for column in ("topic", "recorded", "replayed", "same times", "max |difference|", "verdict"):
        table.add_column(column)
    for c in comparisons:
        verdict = "[green]identical[/green]" if c.identical else "[red]differs[/red]"
        table.add_row(c.topic, str(c.recorded), str(c.replayed), "yes" if c.same_times else "no", f"{c.max_abs_difference:.3g}", verdict)
    Console().print(table)
    return 0 if all(c.identical for c in comparisons) else 1


def _cmd_bag_info(args: argparse.Namespace) -> int:
    from aegis.bag import bag_info

    _require_bag(args.bag)
    info = bag_info(args.bag)
    console = Console()
    console.print(f"{args.bag}: {info['messages']} messages over {info['duration_s']:.3f} s, storage {info['storage']}")
    table = Table()
    for column in ("topic", "ROS 2 type", "aegis type", "count"):
        table.add_column(column)
    for topic in info["topics"]:
        table.add_row(topic["topic"], topic["ros_type"], topic["aegis_type"] or "-", str(topic["count"]))
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
