"""The run commands: `aegis check` (the plan, not run), `aegis sim`, `aegis run`, `aegis eval`; `replay` and `bag` from aegis.runs.bag_cli."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from aegis.cli_options import (
    DEFAULT_SIM_CONFIG,
    UsageError,
    add_backend_options,
    add_dynamics_option,
    add_overlay_option,
    add_overrides,
    duration,
    make_output_folder,
    output_file,
    output_folder,
    positive_int,
    resolve_config_path,
    seed,
    workers,
)
from aegis.config import load_config
from aegis.launch_plan import LaunchPlan, make_plan
from aegis.node import port_topics
from aegis.runs.bag_cli import add_bag_commands
from aegis.runs.plan_options import add_policy_options, load_plan


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add check, sim, run, eval, replay and bag to the `aegis` subparsers."""
    check = sub.add_parser(
        "check",
        help="validate a hw_config and print its launch plan",
        description="Validate a hw_config (schema, node parameters, files, sha256, topic wiring) and print the launch plan.",
    )
    check.add_argument("config", help="hw_config YAML file, or the name of a shipped one (e.g. point_mass_sim)")
    add_overrides(check)
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
        "--duration", type=duration, default=None, help="simulated seconds, at most 3600 (default: the scenario's, else 10)"
    )
    sim.add_argument("--seed", type=seed, default=0, help="seed for every node's randomness, 0 to 2^32-1 (default: 0)")
    sim.add_argument("--gui", action="store_true", help="open the PyBullet GUI (needs a display)")
    sim.add_argument("--no-filter", action="store_true", help="leave the safety filter out: the nominal command goes straight on")
    add_dynamics_option(sim)
    add_overlay_option(sim)
    add_policy_options(sim)
    sim.add_argument(
        "--expert", metavar="NODE_TYPE", default=None,
        help="with --policy: the node type to compare with (default: the model's producer.expert, else the config's own)",
    )
    sim.add_argument("--out", type=output_folder, default=Path("runs/sim"), help="output folder (default: runs/sim)")
    sim.add_argument(
        "--video", type=output_file, default=None, metavar="FILE",
        help="also render the run to FILE (.mp4 or .gif): a chase view and a top view, the filter's interventions marked "
        "(.mp4 needs imageio-ffmpeg: pip install 'aegis[video]')",
    )
    add_overrides(sim)
    sim.set_defaults(handler=_cmd_sim)

    run = sub.add_parser(
        "run",
        help="run the closed loop on the wall clock, one process per process group, joined by DDS",
        description="Run a hw_config's plan in real time: one OS process per `process` group (a node alone is its own), "
        "each group's nodes under the realtime executor, the topics between groups on DDS (ROS 2's wire) on the run's "
        "own domain; the simulator steps at real time in its own process. Ctrl-C or SIGTERM stops every process "
        "cleanly. Records every topic to a rosbag2 (MCAP) bag and writes a summary with each node's timing.",
    )
    run.add_argument("config", nargs="?", default=DEFAULT_SIM_CONFIG, help=f"hw_config (default: {DEFAULT_SIM_CONFIG})")
    run.add_argument("--scenario", help="scenario file, shipped name or family (default: the config's own)")
    run.add_argument("--duration", type=duration, default=None, help="wall seconds, at most 3600 (default: the scenario's, else 10)")
    run.add_argument("--seed", type=seed, default=0, help="seed for every node's randomness, 0 to 2^32-1 (default: 0)")
    run.add_argument("--gui", action="store_true", help="open the PyBullet GUI in the simulator's process (needs a display)")
    run.add_argument("--no-filter", action="store_true", help="leave the safety filter out: the nominal command goes straight on")
    add_dynamics_option(run)
    run.add_argument(
        "--domain-id", type=domain_id, default=None,
        help="DDS domain (ROS_DOMAIN_ID) of the run, 0 to 232 (default: one from the process id, so runs do not cross-talk)",
    )
    run.add_argument(
        "--publish-all", action="store_true",
        help="put every topic on DDS, not only those between process groups, so ROS 2 tools on the domain see them all "
        "(one CDR encoding per message more in the loops)",
    )
    run.add_argument("--out", type=output_folder, default=Path("runs/run"), help="output folder (default: runs/run)")
    add_overrides(run)
    run.set_defaults(handler=_cmd_run)

    evaluate = sub.add_parser(
        "eval",
        help="run N randomized episodes of a scenario in parallel and aggregate them",
        description="Run N randomized episodes (seed, seed+1, ...) of a config's scenario with the plant's domain "
        "randomisation on, in parallel worker processes; print per-campaign aggregates and optionally write JSON.",
    )
    evaluate.add_argument("config", nargs="?", default=DEFAULT_SIM_CONFIG, help=f"hw_config (default: {DEFAULT_SIM_CONFIG})")
    evaluate.add_argument("--scenario", help="scenario file, shipped name or family (adversarial, clutter, gaps, wall, pocket: the robot kind's own) (default: the config's own)")
    evaluate.add_argument("--episodes", type=positive_int, default=10, help="number of episodes (default: 10)")
    evaluate.add_argument("--workers", type=workers, default=None, help="worker processes, or a local Ray instance's CPUs (default: CPU count)")
    add_backend_options(evaluate)
    evaluate.add_argument(
        "--disturbance", choices=("scenario", "adversarial"), default="scenario",
        help="scenario: the scenario's own wind and impulses (default); adversarial: per episode, search the scenario's "
        "disturbances.bounds with CMA-ES for the worst tracking and lowest h, beside random draws of the same bounds "
        "(pip install 'aegis[adversarial]')",
    )
    evaluate.add_argument("--search-budget", type=positive_int, default=None, metavar="N",
                          help="with --disturbance adversarial: CMA-ES episodes per search (default: 24)")
    evaluate.add_argument("--random-draws", type=positive_int, default=None, metavar="N",
                          help="with --disturbance adversarial: random draws per search, compared with and searched from (default: 8)")
    evaluate.add_argument("--seed", type=seed, default=0, help="seed of the first episode (default: 0)")
    evaluate.add_argument("--duration", type=duration, default=None, help="seconds per episode (default: the scenario's)")
    evaluate.add_argument("--json", type=output_file, default=None, metavar="FILE", help="write per-episode rows and aggregates")
    evaluate.add_argument("--no-filter", action="store_true", help="leave the safety filter out (to show what it prevents)")
    add_dynamics_option(evaluate)
    evaluate.add_argument(
        "--privileged-expert", action="store_true",
        help="tell the config's expert (quadrotor_mpc) each episode's true plant: the drawn mass, thrust coefficient and "
        "latencies (aegis.runs.privileged), as aegis train --privileged-expert labels with it",
    )
    add_overlay_option(evaluate)
    add_policy_options(evaluate)
    add_overrides(evaluate)
    evaluate.set_defaults(handler=_cmd_eval)

    add_bag_commands(sub)


def _cmd_check(args: argparse.Namespace) -> int:
    path = resolve_config_path(args.config)
    plan = load_plan(args)  # with --no-filter's overrides; a plan that goes around a filter is refused (exit 2)
    from aegis.runs.policy_swap import check_policy_nodes

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
    if plan.external_topics:
        console.print(f"published outside the plan (ros.external_topics): {', '.join(plan.external_topics)}")
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
    from aegis.runs.sim_run import print_summary, run_sim

    if args.video is not None:
        from aegis.runs.video_files import check_video_path

        check_video_path(args.video)  # an unknown ending or a missing encoder is refused before the run
    plan = load_plan(args, simulated=True)
    if args.policy is not None:
        if args.video is not None:
            raise UsageError("--video renders one run; --policy makes two (the policy's and the expert's): leave one out")
        return _sim_policy_and_expert(args, plan)
    if args.expert is not None:
        raise UsageError("--expert is what a --policy is compared with: give --policy FILE too")
    make_output_folder("--out", args.out)
    try:
        summary = run_sim(plan, duration_s=args.duration, seed=args.seed, out_dir=args.out, show_progress=True, video=args.video)
    except (FileExistsError, RuntimeError) as exc:  # a non-bag --out folder; no display for --gui
        raise UsageError(str(exc)) from None
    print_summary(summary)
    return _diverged_exit(summary)


def domain_id(text: str) -> int:
    """A DDS domain id: 0 to 232, as ROS 2 allows."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a domain id is an integer from 0 to 232, got {text}") from None
    if not 0 <= value <= 232:
        raise argparse.ArgumentTypeError(f"a domain id is from 0 to 232, got {text}")
    return value


def _cmd_run(args: argparse.Namespace) -> int:
    import threading

    from aegis.executors.realtime import stop_on_signals
    from aegis.runs.sim_run import print_summary
    from aegis.runs.wall_run import GroupFailed, check_runnable, default_domain_id, run_wall
    from aegis.transport import DdsUnavailable, require_cyclonedds

    plan = load_plan(args)
    try:
        check_runnable(plan)
    except ValueError as exc:
        raise UsageError(f"{args.config}: {exc}") from None
    try:
        require_cyclonedds()
    except DdsUnavailable as exc:
        raise UsageError(str(exc)) from None
    make_output_folder("--out", args.out)
    domain = args.domain_id if args.domain_id is not None else default_domain_id()
    console = Console(stderr=True)
    with stop_on_signals(threading.Event()) as stop:
        try:
            summary = run_wall(
                plan, resolve_config_path(args.config), args.effective_overrides, args.duration, args.seed, args.out, domain, stop,
                say=lambda text: console.print(text, highlight=False), publish="all" if args.publish_all else "boundary",
            )  # fmt: skip
        except GroupFailed as exc:
            print(f"aegis: run failed: {exc}", file=sys.stderr)
            return 1
        except FileExistsError as exc:
            raise UsageError(str(exc)) from None
    print_summary(summary)
    return _diverged_exit(summary)


def _diverged_exit(summary: dict) -> int:
    """1 (and why, on stderr) when a run's true state went non-finite: the simulation diverged and its numbers mean nothing."""
    robots = summary.get("robots", {})
    diverged = [name for name, row in robots.items() if row.get("non_finite_state")] if robots else []
    if not (summary.get("non_finite_state") or diverged):
        return 0
    who = f" (robots {', '.join(diverged)})" if diverged else ""
    print(f"aegis: the run diverged: the true state went non-finite (inf or NaN){who}; outcome crash in "
          f"{Path(summary['bag']).parent / 'summary.json'}", file=sys.stderr)
    return 1


def _sim_policy_and_expert(args: argparse.Namespace, policy_plan: LaunchPlan) -> int:
    """`aegis sim --policy`: the policy's run, then the expert's on the same scenario and seed, compared."""
    from aegis.runs.policy_compare import compare_with_expert, print_comparison
    from aegis.runs.policy_swap import expert_overrides, expert_type

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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from aegis.runs.backends import backend_from_args
    from aegis.runs.evaluation import Campaign, run_campaign

    backend = backend_from_args(args, args.episodes)  # --address without --backend ray is refused before anything runs
    plan = load_plan(args, simulated=True)  # validates config, overrides and scenario before any worker starts
    from aegis.runs.swarm import swarm_layout

    if swarm_layout(plan) is not None:
        raise UsageError(
            f"{args.config}: a swarm config (several robots, one simulator): aegis eval does not run swarm configs yet; "
            "run one episode with aegis sim"
        )
    search = _adversarial_search(args, plan)
    campaign = Campaign(
        resolve_config_path(args.config), tuple(args.effective_overrides), args.episodes, args.seed, args.duration, search,
        privileged_expert=args.privileged_expert,
    )
    if campaign.privileged_expert:
        from aegis.runs.privileged import expert_node

        expert_node(plan, str(args.config))  # a config without such an expert: refused in one line before anything runs
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

        result = run_campaign(campaign, on_episode=advance, backend=backend)
    print_campaign(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        Console().print(f"wrote {args.json}")
    return 0


def _adversarial_search(args: argparse.Namespace, plan: LaunchPlan):
    """The search budget of ``--disturbance adversarial`` (None without it); UsageError when there is nothing to search or no cma."""
    from aegis.runs.adversarial import SearchBudget, import_cma
    from aegis.runs.plan_run import load_plan_scenario

    if args.disturbance != "adversarial":
        if args.search_budget is not None or args.random_draws is not None:
            raise UsageError("--search-budget and --random-draws size an adversarial search: give --disturbance adversarial too")
        return None
    try:
        import_cma()
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    scenario = load_plan_scenario(plan)
    if scenario is None or (scenario.disturbances.bounds.wind_mps == 0.0 and (
            scenario.disturbances.bounds.impulse_force_n == 0.0 or scenario.disturbances.bounds.impulses == 0)):
        where = f"scenario {scenario.source or scenario.name}" if scenario is not None else f"{args.config} (no scenario)"
        raise UsageError(f"{where}: disturbances.bounds gives nothing to search (wind_mps and impulse_force_n are 0): "
                         "--disturbance adversarial needs them")
    default = SearchBudget()
    return SearchBudget(args.search_budget or default.budget, args.random_draws or default.random_draws)


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
    if agg.get("perception"):
        from aegis.runs.perception import perception_rows

        for label, text in perception_rows(agg["perception"]):
            table.add_row(label, text)
    adversarial = agg.get("adversarial")
    if adversarial is not None:
        def shown(value, scale=1.0, unit=""):
            return "-" if value is None else f"{value * scale:.4g}{unit}"

        table.add_row(f"adversarial ({adversarial['episodes_per_search']} episodes per search): worst RMSE / random's",
                      f"{shown(adversarial['worst_rmse_m'], 100, ' cm')} / {shown(adversarial['random_worst_rmse_m'], 100, ' cm')}")
        table.add_row("adversarial: lowest h / random's", f"{shown(adversarial['lowest_h'])} / {shown(adversarial['random_lowest_h'])}")
        table.add_row("adversarial: failing episodes / random's", f"{adversarial['failures']} / {adversarial['random_failures']}")
    Console().print(table)
