"""What every `aegis` subcommand shares: argument types, hw_config lookup, the --set and --dynamics options.

Each capability owns its subcommands (an ``add_commands(subparsers)`` in its ``cli`` module);
:mod:`aegis.cli` only assembles them. This module imports the core alone (and the simulator's
dynamics sets lazily for ``--dynamics``), so a node executable can use it without the CLI's tables.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from aegis.config_files import MAX_DURATION_S, did_you_mean
from aegis.paths import share_dir, shipped_config

DEFAULT_SIM_CONFIG = "quadrotor_sim.yaml"
MAX_SEED = 2**32 - 1
"""The largest --seed (an unsigned 32-bit number, as most simulators and learning tools take)."""
MAX_COUNT = 100_000
"""The most episodes (or other repetitions) one command runs."""
MAX_NAME_BYTES = 255
"""The longest file or folder name most file systems take (bytes)."""


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit code 2."""


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text[:40]!r}") from None


def positive_int(text: str) -> int:
    """A count: 1 to MAX_COUNT."""
    value = _int(text)
    if not 1 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_COUNT}, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_COUNT}, got {text}")
    return value


MAX_WORKERS = 256
"""The most worker processes a campaign starts."""


def workers(text: str) -> int:
    """A number of worker processes: 1 to MAX_WORKERS."""
    value = _int(text)
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_WORKERS}, got {text}")
    return value


def seed(text: str) -> int:
    """A random seed: 0 to MAX_SEED."""
    value = _int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is from 0 to {MAX_SEED}, got {text}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text[:40]!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def duration(text: str) -> float:
    """A run's length in simulated seconds: above 0, at most MAX_DURATION_S."""
    value = positive_float(text)
    if value > MAX_DURATION_S:
        raise argparse.ArgumentTypeError(f"at most {MAX_DURATION_S:g} s (an hour), got {text}")
    return value


def output_folder(text: str) -> Path:
    """A folder a command writes into (created when it runs): refused now if it could not be (a file on the way,
    a name too long, no permission to write where it would go)."""
    path = Path(text)
    problem = _output_problem(path) or (f"{path} is a file, not a folder" if _lexical(path).is_file() else None)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return path


def output_file(text: str) -> Path:
    """A file a command writes (its folder created when it runs): refused now if it could not be written."""
    path = Path(text)
    problem = _output_problem(path)
    if problem is None:
        on_the_way = {Path(os.path.normpath(p)) for p in path.absolute().parent.parents} | {_lexical(path.parent)}
        if path.name in ("", "..") or _lexical(path).is_dir() or _lexical(path) in on_the_way:  # a/b/../b is a folder made
            problem = f"{path} is a folder, not a file"
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return path


def _lexical(path: Path) -> Path:
    """``path`` absolute with its ``..`` taken out as the folders a command makes will take them (``a/new/../b`` is ``a/b``)."""
    return Path(os.path.normpath(path.absolute()))


def _output_problem(path: Path) -> str | None:
    """Why ``path`` cannot be written (a name over MAX_NAME_BYTES, a file where a folder must be, no write
    permission in the first folder that exists on the way, a path the system refuses to look at), or None."""
    try:
        return _output_path_problem(path)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"


def _output_path_problem(path: Path) -> str | None:
    if not str(path) or "\x00" in str(path):
        return "an empty path" if not str(path) else "a path cannot hold a NUL byte"
    for part in path.parts:
        if len(os.fsencode(part)) > MAX_NAME_BYTES:
            return f"a name of {len(os.fsencode(part))} bytes in {str(path)[:60]}...: at most {MAX_NAME_BYTES}"
    prefix = Path(path.absolute().anchor)
    for part in path.absolute().parts[1:-1]:  # each folder on the way, as the system walks it
        prefix = prefix / part
        if prefix.exists() and not prefix.is_dir():
            return f"{prefix} is a file: {path} cannot be made under it"
    target = ancestor = _lexical(path)
    while not ancestor.exists():
        if ancestor.is_symlink():
            return f"{ancestor} is a symlink that leads nowhere"
        ancestor = ancestor.parent
    if ancestor != target and not ancestor.is_dir():
        return f"{ancestor} is a file: {path} cannot be made under it"
    folder = ancestor if ancestor.is_dir() else ancestor.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot write in {folder} (permission denied)"
    return None


def resolve_config_path(name: str) -> Path:
    """A path as given if it exists, else a shipped hw_config of that name; UsageError with the closest name otherwise."""
    path = Path(name)
    if is_file(path):
        return path
    shipped = shipped_config(name)
    if is_file(shipped):
        return shipped
    names = sorted(p.stem for p in (share_dir() / "hw_configs").glob("*.yaml"))
    raise UsageError(f"{name}: no such hw_config file, nor a shipped one{did_you_mean(Path(name).stem, names)} (shipped: {', '.join(names)})")


def make_output_folder(option: str, path: Path) -> None:
    """Create an output folder now; UsageError naming the option and the system's reason when it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot create the folder: {exc.strerror or exc}") from None


def require_files(*files: tuple[str, Path | None]) -> None:
    """UsageError naming the first (option, file) pair whose file is given and missing."""
    for option, file in files:
        if file is not None and not is_file(file):
            raise UsageError(f"{option} {file}: no such file")


def is_file(path: Path) -> bool:
    """``path.is_file()``, False (not an OSError) for a name too long or a path the system refuses."""
    try:
        return path.is_file()
    except OSError:
        return False


def add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a config value (YAML value), e.g. --set nodes.controller.params.kp=2.0; repeatable",
    )


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """``--backend local|ray`` and ``--address ADDR``: where episodes run (aegis.runs.backends)."""
    parser.add_argument(
        "--backend", choices=("local", "ray"), default="local",
        help="where the episodes run: local (a process pool, the default) or ray (a Ray cluster; pip install 'aegis[cluster]')",
    )
    parser.add_argument(
        "--address", default=None, metavar="ADDR",
        help="with --backend ray: a running cluster's head (HOST:PORT, ray://HOST:PORT or auto) "
        "(default: start a local Ray instance with --workers CPUs)",
    )


def add_dynamics_option(parser: argparse.ArgumentParser) -> None:
    """``--dynamics NAME|FILE``: a dynamics perturbation of the simulated plant (aegis.sim.dynamics)."""
    parser.add_argument(
        "--dynamics", default=None, metavar="NAME|FILE",
        help="perturb the simulated plant (mass, motors, latency, noise; aegis.sim.dynamics): a shipped set "
        "(nominal, light, heavy, slow_motors, latency_10ms, noisy, combined, random) or a file; drawn per seed",
    )


def add_overlay_option(parser: argparse.ArgumentParser) -> None:
    """``--overlay FILE``: a hw_config fragment (what `aegis sysid` writes) laid over the config before any ``--set``."""
    parser.add_argument(
        "--overlay", type=Path, default=None, metavar="FILE",
        help="a hw_config fragment laid over the config key by key before --set (e.g. what `aegis sysid` identified)",
    )


def overlay_overrides(path: Path | None) -> list[str]:
    """An overlay file's keys as ``KEY.PATH=VALUE`` overrides (none for None); UsageError for a missing file,
    ConfigError naming the file for one that is not a YAML mapping."""
    if path is None:
        return []
    require_files(("--overlay", path))
    from aegis.config_files import read_yaml_mapping

    return [f"{key}={json.dumps(value)}" for key, value in flatten_mapping(read_yaml_mapping(path))]


def flatten_mapping(fragment: dict, prefix: str = "") -> list[tuple[str, object]]:
    """A nested mapping as (dotted key path, value) pairs; lists, scalars and empty mappings are values."""
    pairs: list[tuple[str, object]] = []
    for key, value in fragment.items():
        if isinstance(value, dict) and value:
            pairs += flatten_mapping(value, f"{prefix}{key}.")
        else:
            pairs.append((f"{prefix}{key}", value))
    return pairs


def dynamics_overrides(config, dynamics: str | None) -> list[str]:
    """The override giving the plant (the config's first node) ``dynamics``; ConfigError naming a bad set, file or key."""
    from aegis.sim.dynamics import plant_overrides

    return plant_overrides(config, dynamics)
