"""The plan a run command runs: its hw_config with --overlay, --set, --scenario, --gui, --no-filter, --dynamics and --policy applied."""

from __future__ import annotations

import argparse
from pathlib import Path

from aegis.cli_options import UsageError, dynamics_overrides, overlay_overrides, require_files, resolve_config_path
from aegis.config import load_config
from aegis.config_files import ConfigError
from aegis.launch_plan import LaunchPlan, bypass_overrides, make_plan


def add_policy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy", type=Path, default=None, metavar="FILE",
        help="ONNX policy run in the place of the config's nominal command source, under the filter",
    )
    parser.add_argument("--mapping", type=Path, default=None, metavar="YAML", help="with --policy: its contract mapping file")


def load_plan(args: argparse.Namespace, simulated: bool = False) -> LaunchPlan:
    """The plan of ``args.config`` with ``--overlay``, ``--set`` overrides and the options' own (``--scenario``, ``--gui``, ``--no-filter``).

    The overlay's keys go first into ``args.overrides`` (so everything later, workers and experts, runs with them).

    The options' overrides depend only on what the user's config says (robot kind, first node,
    filter wiring), which they do not change: the config is read once to derive them, once more with them.
    Sets ``args.base_overrides`` (without ``--policy``: what an expert runs with) and ``args.effective_overrides``.
    ``simulated`` (aegis sim, eval): a deployment config, whose inputs a real robot's driver publishes
    (``ros.external_topics``), is refused: nothing in a simulated run would stand in for the driver.
    """
    path = resolve_config_path(args.config)
    overlay = getattr(args, "overlay", None)
    if overlay is not None and not getattr(args, "overlay_applied", False):
        keys = overlay_overrides(overlay)
        try:
            load_config(path, keys)
        except ConfigError as exc:  # the overlay's own problem, named with its file
            raise ConfigError(f"--overlay {overlay}: {exc}") from None
        args.overrides = keys + list(args.overrides)  # before --set: an explicit --set wins
        args.overlay_applied = True
    overrides = list(args.overrides)
    config = load_config(path, overrides)
    if simulated and config.ros.external_topics:
        raise UsageError(
            f"{args.config}: a deployment config for a real robot: its driver publishes {', '.join(config.ros.external_topics)} "
            "(ros.external_topics) and no simulator stands in for it here; run it with "
            f"`ros2 launch aegis robot.launch.py hw_config:={path.name}`, or simulate a *_sim config"
        )
    if getattr(args, "scenario", None):
        from aegis.scenario import resolve_scenario_for

        overrides.append(f"scenario={resolve_scenario_for(args.scenario, config.robot.kind).resolve()}")
    if getattr(args, "gui", False):
        plant = next(iter(config.nodes))  # the first node is the simulator
        overrides.append(f"nodes.{plant}.params.gui=true")
    if getattr(args, "no_filter", False):
        overrides += bypass_overrides(config)
    overrides += dynamics_overrides(config, getattr(args, "dynamics", None))
    args.base_overrides = list(overrides)
    if getattr(args, "policy", None) is not None:
        overrides += _policy_overrides(config, args)
    elif getattr(args, "mapping", None) is not None:
        raise UsageError("--mapping is the contract of a --policy model: give --policy FILE too")
    args.effective_overrides = overrides
    plan = make_plan(load_config(path, overrides) if overrides != list(args.overrides) else config)
    if getattr(args, "policy", None) is not None:
        from aegis.runs.policy_swap import check_policy_nodes

        check_policy_nodes(plan)  # a model that does not fit the config is refused here, naming both sides
    return plan


def _policy_overrides(config, args: argparse.Namespace) -> list[str]:
    """The overrides putting ``--policy`` in the nominal command source's place; UsageError naming a missing file."""
    from aegis.runs.policy_swap import policy_overrides

    require_files(("--policy", args.policy), ("--mapping", args.mapping))
    return policy_overrides(config, args.policy, args.mapping)
