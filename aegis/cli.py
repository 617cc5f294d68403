"""The `aegis` command line: assembles the subcommands each capability owns and runs the one asked for.

Each capability's ``cli`` module adds its commands (``add_commands(subparsers)``, each with a
``handler``): :mod:`aegis.runs.cli` (check, sim, eval, replay, bag), :mod:`aegis.bench.cli`
(bench), :mod:`aegis.policy_tools.cli` (model, doctor), :mod:`aegis.export.cli` (export) and
:mod:`aegis.training.cli` (train) and :mod:`aegis.sysid.cli` (sysid); shared options are in :mod:`aegis.cli_options`. Bad input (a
config, a file, a value) ends with exit code 2 and one line per problem, no traceback; so does a
file the system refuses to read or write (a permission, a full disk), named with the system's reason.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from aegis import __version__
from aegis.cli_options import UsageError
from aegis.config_files import ConfigError

COMMAND_MODULES = (
    "aegis.runs.cli", "aegis.runs.hil_cli", "aegis.bench.cli", "aegis.policy_tools.cli", "aegis.export.cli", "aegis.training.cli",
    "aegis.training.depth_cli", "aegis.sysid.cli",
)
"""The modules whose ``add_commands`` make up `aegis`, in the order `aegis --help` lists them."""


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
    except OSError as exc:  # a file or folder the system refuses (permission, no space, name too long): its words
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"aegis: error: {where}{exc.strerror or exc}", file=sys.stderr)
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
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
