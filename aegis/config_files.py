"""Reading the YAML files aegis is configured by, and reporting what is wrong with them, file and key named.

Shared by hw_configs (:mod:`aegis.config`), scenarios, dynamics sets and policy contract
mappings: one loader that refuses duplicate keys, one ``--set KEY.PATH=VALUE`` override, one
error format (``FILE: key.path: problem``, one line per problem, each problem once).

The loader refuses what would hang or flood a run before it starts: a file over
:data:`MAX_FILE_BYTES`, bytes that are not UTF-8, YAML nested deeper than :data:`MAX_DEPTH`, and
aliases that expand to more than :data:`MAX_VALUES` values (a "billion laughs" alias bomb: 700
bytes that grow to gigabytes) or that contain themselves. A value echoed in an error is cut to
:data:`MAX_ECHO_CHARS` characters. The number types every schema shares (:data:`Finite`,
:data:`PositiveFinite`, :data:`RateHz`, :data:`DurationS`) refuse inf and NaN and say their bound.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, Field, ValidationError

MAX_FILE_BYTES = 1 << 20
"""The largest YAML file aegis reads (1 MiB: the shipped ones are under 10 kB)."""
MAX_VALUES = 100_000
"""The most values (scalars, lists and mappings, aliases expanded) one YAML document may hold."""
MAX_DEPTH = 64
"""The deepest nesting of lists and mappings one YAML document may have."""
MAX_ECHO_CHARS = 80
"""An input echoed in an error message is cut to this many characters."""

MAX_RATE_HZ = 10_000.0
"""The fastest rate a node may run at (Hz): a 10 kHz loop; faster would not end a simulated second in reasonable time."""
MAX_DURATION_S = 3600.0
"""The longest run (s of simulated time) a scenario or ``--duration`` may ask for: an hour."""

Finite = Annotated[float, Field(allow_inf_nan=False)]
"""A finite number: inf and NaN are refused (every physical and safety value is one)."""
PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFinite = Annotated[float, Field(ge=0, allow_inf_nan=False)]
RateHz = Annotated[float, Field(gt=0, le=MAX_RATE_HZ, allow_inf_nan=False)]
"""A node's rate (Hz): above 0, at most :data:`MAX_RATE_HZ`."""
DurationS = Annotated[float, Field(gt=0, le=MAX_DURATION_S, allow_inf_nan=False)]
"""A run's length (s): above 0, at most :data:`MAX_DURATION_S`."""


class ConfigError(ValueError):
    """A hw_config, scenario, dynamics set or mapping file is invalid; the message names the file and each bad key."""


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping, refusing duplicate keys and the inputs the module doc lists."""
    data = parse_yaml(read_text(path), path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def read_text(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """A text file's contents; ConfigError for a missing or unreadable file, one over ``max_bytes``, or bytes not UTF-8."""
    path = Path(path)
    try:
        if not path.is_file():
            raise ConfigError(f"{path}: no such file" + (" (a folder)" if path.is_dir() else ""))
        size = path.stat().st_size
        if size > max_bytes:
            raise ConfigError(f"{path}: {size:,} bytes, more than the {max_bytes:,} a config file may have")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return decode_utf8(data, path)


def decode_utf8(data: bytes, where: Path | str) -> str:
    """``data`` as UTF-8 text; ConfigError naming the line and the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{where}: line {line}: byte 0x{data[exc.start]:02x} is not UTF-8 (save the file as UTF-8)") from None


PARSED_MEMO_SIZE = 256
"""Documents :func:`parse_yaml` remembers by their text (a training run or campaign reads the same scenarios hundreds of times)."""
_parsed: dict[str, Any] = {}


def parse_yaml(text: str, where: Path | str) -> Any:
    """One YAML document, refusing duplicate keys, deep nesting and alias bombs; ConfigError in one line naming ``where``.

    A text parsed before is not parsed again: a copy of what it gave is returned (callers may change it).
    PyYAML's pure-Python loader takes milliseconds per file, a deep copy tens of microseconds.
    """
    if text in _parsed:
        return copy.deepcopy(_parsed[text])
    data = _parse_yaml(text, where)
    if len(_parsed) >= PARSED_MEMO_SIZE:
        _parsed.pop(next(iter(_parsed)))  # the oldest
    _parsed[text] = copy.deepcopy(data)
    return data


def _parse_yaml(text: str, where: Path | str) -> Any:
    loader = None
    try:
        loader = _UniqueKeyLoader(text)
        return loader.get_single_data()
    except yaml.reader.ReaderError as exc:  # a control character: YAML takes printable text only
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise ConfigError(f"{where}: line {line}: character #x{exc.character:04x} is not allowed in YAML (a control character)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise ConfigError(f"{where}: {at}not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {shorten(' '.join(str(exc).split()))}") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested deeper than the {MAX_DEPTH} levels a config may have") from None
    finally:
        if loader is not None:
            loader.dispose()


def apply_override(
    raw: dict[str, Any], override: str, path: Path | str = "<overrides>", named: Mapping[str, str] | None = None
) -> None:
    """Apply one ``a.b.c=value`` override in place; the value is parsed as YAML (``2``, ``[1, 2]``, ``true``).

    A number in the key path picks an existing list entry, from 0 (``obstacles.0.position=[1, 2, 1]``).
    ``named`` maps the key paths whose entries the file names itself to what an entry is called (a
    hw_config's ``{"nodes": "node"}``): an override reaches into an existing entry there, never makes
    a new one (a misspelled node name would otherwise become a new node without a type, blamed on
    the file); a new entry starts with its type (``nodes.x.type=pid``) or is given whole
    (``nodes.x={type: pid}``).
    """
    shown = shorten(override)
    key_path, sep, value_text = override.partition("=")
    if not sep or not key_path or any(not k for k in key_path.split(".")):
        raise ConfigError(f"override {shown!r}: expected KEY.PATH=VALUE")
    value = parse_yaml(value_text, f"override {shown!r}: value")
    keys = key_path.split(".")
    named = named or {}
    node: Any = raw
    for depth, key in enumerate(keys):
        where = ".".join(keys[: depth + 1])
        if isinstance(node, list):
            if not key.isdecimal() or int(key) >= len(node):
                raise ConfigError(f"{path}: override {shown!r}: {where}: no such entry (the list has {len(node)}, from 0)")
            slot: int | str = int(key)
        elif isinstance(node, dict):
            slot = key
            parent = where.rpartition(".")[0]
            if parent in named and key not in node and depth < len(keys) - 1 and keys[depth + 1 :] != ["type"]:
                have = ", ".join(map(str, node)) or "none"
                raise ConfigError(
                    f"{path}: override {shown!r}: {where}: there is no {named[parent]} {shorten(key)!r} in the config "
                    f"({parent}: {have}){did_you_mean(key, map(str, node))}"
                )
        else:
            parent = where.rpartition(".")[0]
            raise ConfigError(f"{path}: override {shown!r}: {parent} is a {type(node).__name__}, not a mapping or a list")
        if depth < len(keys) - 1:
            node = node.setdefault(slot, {}) if isinstance(node, dict) else node[slot]
        else:
            node[slot] = value


def safe_resolve(path: Path) -> Path:
    """``path.resolve()``, or the absolute path where it cannot be resolved (a symlink loop): the file check reports it."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # Python < 3.13 raises RuntimeError on a symlink loop
        return path.absolute()


def file_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable file (missing, a folder, a symlink loop, unreadable), or None."""
    try:
        if path.is_file():
            with path.open("rb"):
                return None
        if path.is_dir():
            return f"{path} is a folder, not a file"
        if path.is_symlink():
            try:
                path.resolve(strict=True)
            except (OSError, RuntimeError):
                return f"{path} is a symlink that leads nowhere (a loop or a missing target)"
        return f"file not found: {path}"
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"


def urdf_problem(path: Path) -> str | None:
    """Why ``path`` is not a URDF file PyBullet can be given (missing, a symlink loop, not XML, not a <robot>), or None.

    Checked before PyBullet sees the file: it crashes, or loads nothing, on what it cannot parse.
    """
    import xml.etree.ElementTree as ElementTree

    problem = file_problem(path)
    if problem:
        return problem
    try:
        with path.open("rb") as handle:
            _, root = next(ElementTree.iterparse(handle, events=("start",)))
    except (ElementTree.ParseError, StopIteration) as exc:
        return f"{path} is not a URDF file (not XML: {shorten(str(exc) or 'empty')})"
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    if root.tag != "robot":
        return f"{path} is not a URDF file: its root element is <{shorten(root.tag)}>, not <robot>"
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shorten(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters (with how much was left out), so an echoed input never floods a message."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the choice closest to ``word`` (difflib), or ``""`` when none is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def pydantic_errors(exc: ValidationError, model: type[BaseModel] | None = None) -> list[tuple[str, str]]:
    """(key path, message) for each error of a ValidationError, in the words config errors use.

    Echoed inputs are cut short; given the ``model`` validated, an unknown key is matched against
    the keys of its place (``did you mean``).
    """
    out = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            if model is not None:
                msg += did_you_mean(str(err["loc"][-1]), _keys_at(model, err["loc"][:-1]))
        elif err["type"] == "missing":
            msg = "missing required key"
        elif err["type"] == "value_error":  # a validator's own words, which name what is wrong
            msg = err["msg"].removeprefix("Value error, ")
        else:
            msg = err["msg"]
            if "input" in err and not isinstance(err["input"], dict):
                msg += f" (got {_echo(err['input'])})"
        out.append((loc, msg))
    return out


def format_errors(path: Path, errors: list[tuple[str, str]]) -> str:
    """A ConfigError message: ``FILE: key.path: problem``, one line per problem, each problem once."""
    errors = list(dict.fromkeys(errors))
    lines = [f"{path}: {key}: {msg}" for key, msg in errors]
    if len(lines) == 1:
        return lines[0]
    return f"{path}: {len(lines)} problems\n" + "\n".join(f"  {line}" for line in lines)


def _echo(value: Any) -> str:
    """repr of an input, cut short; a container is described by its size rather than printed (its repr can be huge)."""
    if isinstance(value, (list, tuple, set, dict)) and len(value) > 16:
        return f"a {type(value).__name__} of {len(value):,} entries"
    try:
        return shorten(repr(value))
    except RecursionError:
        return f"a {type(value).__name__} that contains itself"


def _keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys a model accepts at ``loc`` (through nested models, dicts, lists and unions), [] where unknown."""
    candidates: list[Any] = [model]
    for part in loc:
        following = []
        for kind in candidates:
            for inner in _unwrapped(kind):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    field = inner.model_fields.get(str(part))
                    if field is None:
                        field = next((f for f in inner.model_fields.values() if f.alias == part), None)
                    if field is not None:
                        following.append(field.annotation)
                    elif str(part) in _tags(inner):  # a tagged union's member named in the path
                        following.append(inner)
                elif typing.get_origin(inner) in (dict, list, tuple):
                    args = [a for a in typing.get_args(inner) if a is not Ellipsis]
                    following.append(args[-1] if args else Any)
        candidates = following
    keys: list[str] = []
    for kind in candidates:
        for inner in _unwrapped(kind):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                keys += [f.alias or name for name, f in inner.model_fields.items() if name != "source"]
    return keys


def _unwrapped(kind: Any) -> list[Any]:
    """The types a field annotation may hold: Annotated and Optional/Union taken apart."""
    origin = typing.get_origin(kind)
    if origin is Annotated:
        return _unwrapped(typing.get_args(kind)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(kind) for t in _unwrapped(arg)]
    return [kind]


def _tags(model: type[BaseModel]) -> set[str]:
    """The values of a model's Literal fields (a tagged union's tag, which pydantic puts in the error's path)."""
    tags = set()
    for field in model.model_fields.values():
        if typing.get_origin(field.annotation) is typing.Literal:
            tags |= {str(v) for v in typing.get_args(field.annotation)}
    return tags


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (YAML would keep the last silently), unhashable keys,
    deep nesting, and aliases that expand past :data:`MAX_VALUES` values or contain themselves."""

    def get_single_node(self):  # noqa: D102 - yaml hook: check the node graph before anything is built from it
        node = super().get_single_node()
        if node is not None:
            _check_expansion(node)
        return node

    def construct_mapping(self, node, deep=False):  # noqa: D102 - yaml hook
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, f"a key must be a name or a number, not a {type(key).__name__}", key_node.start_mark
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {shorten(repr(key))}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph that expands (every alias copied out) to more than MAX_VALUES nodes, nests deeper than
    MAX_DEPTH, or holds an alias of a node inside itself; linear in the file's own nodes, never in the expansion."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, finished = stack.pop()
        children = _children(node)
        if finished:
            open_nodes.discard(id(node))
            sizes[id(node)] = size = 1 + sum(sizes[id(child)] for child in children)
            if size > MAX_VALUES:
                raise yaml.MarkedYAMLError(
                    problem=f"this value holds more than {MAX_VALUES:,} values once its aliases are expanded "
                    "(an alias bomb?): refused rather than built",
                    problem_mark=node.start_mark,
                )
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_nodes:
            raise yaml.MarkedYAMLError(problem="an alias refers to the value it is part of", problem_mark=node.start_mark)
        if depth > MAX_DEPTH:
            raise yaml.MarkedYAMLError(problem=f"nested deeper than {MAX_DEPTH} levels", problem_mark=node.start_mark)
        open_nodes.add(id(node))
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
