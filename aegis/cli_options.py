"""What every `aegis` subcommand shares: argument types, hw_config lookup, the --set and --dynamics options.

Each capability owns its subcommands (an ``add_commands(subparsers)`` in its ``cli`` module);
:mod:`aegis.cli` only assembles them. This module imports the core alone (and the simulator's
dynamics sets lazily for ``--dynamics``), so a node executable can use it without the CLI's tables.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from aegis.paths import shipped_config

DEFAULT_SIM_CONFIG = "quadrotor_sim.yaml"


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit code 2."""


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def resolve_config_path(name: str) -> Path:
    """A path as given if it exists, else a shipped hw_config of that name."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = shipped_config(name)
    if shipped.is_file():
        return shipped
    raise UsageError(f"{name}: no such hw_config file (nor a shipped one at {shipped})")


def require_files(*files: tuple[str, Path | None]) -> None:
    """UsageError naming the first (option, file) pair whose file is given and missing."""
    for option, file in files:
        if file is not None and not file.is_file():
            raise UsageError(f"{option} {file}: no such file")


def add_overrides(parser: argparse.ArgumentParser) -> None:
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
