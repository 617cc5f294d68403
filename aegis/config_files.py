"""Reading the YAML files aegis is configured by, and reporting what is wrong with them, file and key named.

Shared by hw_configs (:mod:`aegis.config`), scenarios, dynamics sets and policy contract
mappings: one loader that refuses duplicate keys, one ``--set KEY.PATH=VALUE`` override, one
error format (``FILE: key.path: problem``, one line per problem).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


class ConfigError(ValueError):
    """A hw_config, scenario, dynamics set or mapping file is invalid; the message names the file and each bad key."""


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping, refusing duplicate keys."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 - safe loader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def apply_override(raw: dict[str, Any], override: str, path: Path | str = "<overrides>") -> None:
    """Apply one ``a.b.c=value`` override in place; the value is parsed as YAML (``2``, ``[1, 2]``, ``true``).

    A number in the key path picks an existing list entry, from 0 (``obstacles.0.position=[1, 2, 1]``).
    """
    key_path, sep, value_text = override.partition("=")
    if not sep or not key_path or any(not k for k in key_path.split(".")):
        raise ConfigError(f"override {override!r}: expected KEY.PATH=VALUE")
    try:
        value = yaml.safe_load(value_text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {override!r}: value is not valid YAML: {exc}") from None
    keys = key_path.split(".")
    node: Any = raw
    for depth, key in enumerate(keys):
        where = ".".join(keys[: depth + 1])
        if isinstance(node, list):
            if not key.isdecimal() or int(key) >= len(node):
                raise ConfigError(f"{path}: override {override!r}: {where}: no such entry (the list has {len(node)}, from 0)")
            slot: int | str = int(key)
        elif isinstance(node, dict):
            slot = key
        else:
            parent = where.rpartition(".")[0]
            raise ConfigError(f"{path}: override {override!r}: {parent} is a {type(node).__name__}, not a mapping or a list")
        if depth < len(keys) - 1:
            node = node.setdefault(slot, {}) if isinstance(node, dict) else node[slot]
        else:
            node[slot] = value


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pydantic_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """(key path, message) for each error of a ValidationError, in the words config errors use."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "missing required key"
        else:
            msg = err["msg"]
            if "input" in err and not isinstance(err["input"], dict):
                msg += f" (got {err['input']!r})"
        out.append((loc, msg))
    return out


def format_errors(path: Path, errors: list[tuple[str, str]]) -> str:
    """A ConfigError message: ``FILE: key.path: problem``, one line per problem."""
    lines = [f"{path}: {key}: {msg}" for key, msg in errors]
    if len(lines) == 1:
        return lines[0]
    return f"{path}: {len(lines)} problems\n" + "\n".join(f"  {line}" for line in lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node, deep=False):  # noqa: D102 - yaml hook
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
