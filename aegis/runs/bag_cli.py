"""The bag commands: `aegis replay BAG` (feed a recording into nodes and compare) and `aegis bag info BAG`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from aegis.cli_options import DEFAULT_SIM_CONFIG, UsageError, add_overrides, is_file
from aegis.runs.plan_options import load_plan


def add_bag_commands(sub: argparse._SubParsersAction) -> None:
    """Add `replay` and `bag info` to the command line's subparsers."""
    replay = sub.add_parser(
        "replay",
        help="feed a bag into some nodes and compare their outputs with the recording",
        description="Replay a recorded bag's inputs into the named nodes of a plan and compare what they publish with "
        "what the bag recorded on the same topics: each message's time and every field but the wall-clock measurements "
        "(solve times, latencies), which differ between any two runs. Exit code 0 when identical, 1 when they differ "
        "(the first difference named: topic, time and field).",
    )
    replay.add_argument("bag", type=Path, help="bag folder written by `aegis sim`")
    replay.add_argument("config", nargs="?", default=DEFAULT_SIM_CONFIG, help=f"hw_config (default: {DEFAULT_SIM_CONFIG})")
    replay.add_argument("--node", dest="nodes", action="append", required=True, metavar="NAME", help="node to replay; repeatable")
    add_overrides(replay)
    replay.set_defaults(handler=_cmd_replay)

    bag = sub.add_parser("bag", help="inspect a recorded rosbag2 bag", description="Inspect rosbag2 bags aegis wrote.")
    bag_sub = bag.add_subparsers(dest="bag_command", metavar="BAG_COMMAND", required=True)
    info = bag_sub.add_parser("info", help="topics, types, counts and duration of a bag")
    info.add_argument("bag", type=Path, help="bag folder (holds metadata.yaml)")
    info.set_defaults(handler=_cmd_bag_info)


def _require_bag(path: Path) -> None:
    if not is_file(path / "metadata.yaml"):
        raise UsageError(f"{path}: not a rosbag2 bag folder (no metadata.yaml)")


def _cmd_replay(args: argparse.Namespace) -> int:
    from aegis.runs.bag import BagError
    from aegis.runs.replay import replay_and_compare

    _require_bag(args.bag)
    try:
        comparisons = replay_and_compare(load_plan(args), args.bag, args.nodes)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    except BagError as exc:
        raise UsageError(str(exc)) from None
    table = Table(title=f"replay of {', '.join(args.nodes)} against {args.bag}")
    for column in ("topic", "recorded", "replayed", "same times", "max |difference|", "verdict"):
        table.add_column(column)
    for c in comparisons:
        verdict = "[green]identical[/green]" if c.identical else "[red]differs[/red]"
        table.add_row(c.topic, str(c.recorded), str(c.replayed), "yes" if c.same_times else "no", f"{c.max_abs_difference:.3g}", verdict)
    Console().print(table)
    differing = [c for c in comparisons if not c.identical]
    if differing:
        print(f"differs: {differing[0].topic} {differing[0].first_difference}", file=sys.stderr)
        return 1
    return 0


def _cmd_bag_info(args: argparse.Namespace) -> int:
    from aegis.runs.bag import BagError, bag_info

    _require_bag(args.bag)
    try:
        info = bag_info(args.bag)
    except BagError as exc:
        raise UsageError(str(exc)) from None
    console = Console()
    console.print(f"{args.bag}: {info['messages']} messages over {info['duration_s']:.3f} s, storage {info['storage']}")
    table = Table()
    for column in ("topic", "ROS 2 type", "aegis type", "count"):
        table.add_column(column)
    for topic in info["topics"]:
        table.add_row(topic["topic"], topic["ros_type"], topic["aegis_type"] or "-", str(topic["count"]))
    console.print(table)
    return 0
