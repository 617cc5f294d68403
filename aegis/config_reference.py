"""The configuration reference (docs/config-reference.md), generated from the pydantic schemas that validate the files.

Three kinds of file configure aegis: a hw_config (:class:`aegis.config.HwConfig`, and each node
type's ``Params`` from :data:`aegis.registry.NODE_TYPES`), a scenario
(:class:`aegis.scenario.schema.Scenario`) and a dynamics set (:class:`aegis.sim.dynamics.Dynamics`).
Every field is rendered with its type, default, constraints and description, straight from the
models, so the reference cannot drift from what the loaders accept; tests/test_config_reference.py
fails when the committed file differs from :func:`render`. Regenerate it with::

    python -m aegis.config_reference -o docs/config-reference.md
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from aegis.config import HwConfig
from aegis.node import Node, Port
from aegis.registry import NODE_TYPES, node_class
from aegis.scenario.schema import Scenario
from aegis.sim.dynamics import Dynamics

REGENERATE = "python -m aegis.config_reference -o docs/config-reference.md"
"""The command that writes the committed reference (the test's failure message names it)."""

def render() -> str:
    """The whole reference as Markdown: hw_config, node types, scenario, dynamics set."""
    out = _Writer()
    out.line("# Configuration reference")
    out.line()
    out.line(
        "<!-- Generated from the pydantic schemas by `" + REGENERATE + "`; do not edit by hand "
        "(tests/test_config_reference.py fails when this file and the schemas differ). -->"
    )
    out.line()
    out.line(
        "Every file aegis reads is validated by one of these schemas before anything runs: an unknown key, a wrong "
        "type or a value out of range is refused with the file and the key named, every problem at once. "
        "Types are YAML's: a *number* may be written as an integer, a `[x, y, z]` is a list of three numbers. "
        "Units are SI, frames ENU (world) and FLU (body)."
    )
    out.line()
    out.line("- [hw_config](#hw_config): one deployment, robot x target (`hw_configs/*.yaml`)")
    out.line("- [Node types](#node-types): the `type` of a hw_config node, its ports and its `params`")
    out.line("- [Scenario](#scenario): what a simulated run happens in (`scenarios/*.yaml`)")
    out.line("- [Dynamics set](#dynamics-set): how the simulated plant differs from the nominal one (`dynamics/*.yaml`)")
    out.line()

    out.line("## hw_config")
    out.line()
    out.line(
        "`aegis check CONFIG` validates a file against this schema (and each node's `params` against its type's), "
        "then builds the launch plan. `--set KEY.PATH=VALUE` overrides are applied to the YAML first and validated like "
        "the file. Source: `aegis/config.py`."
    )
    out.line()
    documented: set[type[BaseModel]] = set()
    _models(out, HwConfig, documented)

    out.line("## Node types")
    out.line()
    out.line(
        "The registered node types (`aegis/registry.py`). A hw_config node names one as `type`, sets its `params`, "
        "may remap its ports' topics (`topics: {PORT: /topic}`) and its `rate_hz`. Each type is also a ROS 2 "
        "executable (`ros2 run aegis TYPE`)."
    )
    out.line()
    out.line(", ".join(f"[`{name}`](#{_anchor(name)})" for name in NODE_TYPES))
    out.line()
    params_models: list[type[BaseModel]] = []
    for name in NODE_TYPES:
        _node_type(out, name, node_class(name), documented, params_models)
    nested = [m for params in params_models for m in _nested_models(params) if m not in documented]
    if nested:
        out.line("### Node parameter models")
        out.line()
        out.line("Models that node parameters are built from (the hw_config's own sections are documented above).")
        out.line()
        for model in _unique(nested):
            if model not in documented:
                _models(out, model, documented, level=4)

    out.line("## Scenario")
    out.line()
    out.line(
        "A scenario file (`scenarios/*.yaml`, or a hw_config's `scenario`, or `--scenario FILE|NAME`). "
        "Beyond the schema, the loader checks the geometry: start and goal inside the geofence and clear of "
        "every obstacle. Source: `aegis/scenario/schema.py`, `aegis/scenario/loader.py`."
    )
    out.line()
    _models(out, Scenario, documented)

    out.line("## Dynamics set")
    out.line()
    out.line(
        "A dynamics file (`dynamics/*.yaml`, `--dynamics NAME|FILE`): how the simulated plant differs from the nominal "
        "model its controllers and filter are built on. Each parameter is a value or a `{low, high}` range drawn per "
        "episode seed; scales multiply the robot's nominal parameters and the scenario's own randomisation, latencies "
        "add. What each key means for each robot: `aegis/sim/dynamics.py`."
    )
    out.line()
    _models(out, Dynamics, documented)
    return out.text()


class _Writer:
    def __init__(self) -> None:
        self._lines: list[str] = []

    def line(self, text: str = "") -> None:
        self._lines.append(text)

    def text(self) -> str:
        while self._lines and not self._lines[-1]:
            self._lines.pop()
        return "\n".join(self._lines) + "\n"


def _anchor(text: str) -> str:
    """The anchor GitHub gives a heading of ``text`` (lower case, punctuation dropped, spaces to hyphens)."""
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def _model_anchor(model: type[BaseModel]) -> str:
    return f"model-{model.__module__.rsplit('.', 1)[-1]}-{model.__name__}".lower().replace("_", "-")


def _models(out: _Writer, root: type[BaseModel], documented: set[type[BaseModel]], level: int = 3) -> None:
    """``root`` and every model reachable from its fields not yet documented, depth first, each once."""
    order = [root, *(m for m in _nested_models(root) if m is not root)]
    for model in _unique(order):
        if model in documented:
            continue
        documented.add(model)
        out.line(f'<a id="{_model_anchor(model)}"></a>')
        out.line()
        out.line(f"{'#' * level} `{model.__name__}`")
        out.line()
        doc = inspect.getdoc(model)
        if doc and model.__doc__ is not None and "__doc__" in vars(model):
            out.line(_one_paragraph(doc))
            out.line()
        _fields_table(out, model)


def _fields_table(out: _Writer, model: type[BaseModel]) -> None:
    fields = {name: field for name, field in model.model_fields.items() if not field.exclude}
    if not fields:
        out.line("No fields.")
        out.line()
        return
    out.line("| key | type | default | constraints | description |")
    out.line("| --- | --- | --- | --- | --- |")
    for name, field in fields.items():
        key = field.alias or name
        description = field.description or ""
        if not description and typing.get_origin(field.annotation) is typing.Literal and len(typing.get_args(field.annotation)) == 1:
            description = "names this shape (the union's discriminator)"
        cells = [f"`{key}`", _type(field), _default(field), ", ".join(_constraints(field)), description]
        out.line("| " + " | ".join(_cell(c) for c in cells) + " |")
    out.line()


def _node_type(
    out: _Writer, name: str, cls: type[Node], documented: set[type[BaseModel]], params_models: list[type[BaseModel]]
) -> None:
    out.line(f"### `{name}`")
    out.line()
    doc = inspect.getdoc(cls)
    if doc:
        out.line(_one_paragraph(doc))
        out.line()
    runs = f"on each message on its `{cls.trigger}` input" if cls.trigger else f"at {_number(cls.default_rate_hz)} Hz by default"
    out.line(f"`{NODE_TYPES[name]}`; runs {runs}; parameters: `{cls.Params.__name__}`.")
    out.line()
    for title, ports in (("inputs", cls.inputs), ("outputs", cls.outputs)):
        if not ports:
            continue
        out.line(f"| {title[:-1]} port | message | default topic | staleness bound | description |")
        out.line("| --- | --- | --- | --- | --- |")
        for port in ports:
            out.line("| " + " | ".join(_cell(c) for c in _port_cells(port, cls)) + " |")
        out.line()
    params_models.append(cls.Params)
    _fields_table(out, cls.Params)


def _port_cells(port: Port, cls: type[Node]) -> list[str]:
    if port.many:
        topic = "a list of topics: " + (", ".join(f"`{t}`" for t in port.topic) if port.topic else "none by default")
        if port.one_per:
            topic += f" (one per entry of `{port.one_per}`)"
    else:
        topic = f"`{port.topic}`"
    age = "any" if port.max_age_s is None else f"{_number(port.max_age_s)} s"
    notes = [port.description] if port.description else []
    if port.name in cls.referee_outputs:
        notes.append("a referee output: the launch plan refuses a node that reads it")
    return [f"`{port.name}`", f"`{port.msg_type.__name__}`", topic, age, "; ".join(notes)]


def _nested_models(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """Every model reachable from ``model``'s fields (depth first, itself first)."""
    seen: set[type[BaseModel]] = set()

    def walk(current: type[BaseModel]) -> Iterator[type[BaseModel]]:
        if current in seen:
            return
        seen.add(current)
        yield current
        for field in current.model_fields.values():
            if field.exclude:
                continue
            for found in _models_in(field.annotation):
                yield from walk(found)

    yield from walk(model)


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def _unique(models: list[type[BaseModel]]) -> list[type[BaseModel]]:
    return list(dict.fromkeys(models))


def _type(field: FieldInfo) -> str:
    return _type_name(field.annotation)


def _type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None) or annotation is None:
        return "null"
    if annotation is typing.Any:
        return "any"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[`{annotation.__name__}`](#{_model_anchor(annotation)})"
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " or ".join(f"`{json.dumps(a)}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_type_name(args[0])}"
        names = [_type_name(a) for a in args]
        if len(set(names)) == 1:
            return f"[{names[0]} x {len(names)}]"
        return "[" + ", ".join(names) + "]"
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
    simple = {float: "number", int: "integer", bool: "boolean", str: "string", Path: "path (string)"}
    if annotation in simple:
        return simple[annotation]
    return f"`{getattr(annotation, '__name__', str(annotation))}`"


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        changed = value.model_dump(mode="json", exclude_defaults=True, by_alias=True)
        return "its defaults" if not changed else f"`{json.dumps(changed)}`"
    return f"`{json.dumps(_plain(value))}`"


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    return value


def _constraints(field: FieldInfo) -> list[str]:
    found = _metadata_constraints(field.metadata)
    found += _annotation_constraints(field.annotation, inner=False)
    if field.discriminator:
        found.append(f"one of the shapes, picked by `{field.discriminator}`")
    return list(dict.fromkeys(found))


def _annotation_constraints(annotation: Any, inner: bool) -> list[str]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        own = _metadata_constraints(args[1:])
        return [f"each {c}" if inner else c for c in own] + _annotation_constraints(args[0], inner)
    if origin in (typing.Union, types.UnionType):
        return [c for a in args for c in _annotation_constraints(a, inner)]
    if origin in (tuple, list):
        return [c for a in args if a is not Ellipsis for c in _annotation_constraints(a, inner=True)]
    if origin is dict:
        return [f"key {c}" for c in _annotation_constraints(args[0], inner=False)] + [
            c for c in _annotation_constraints(args[1], inner=True)
        ]
    return []


def _metadata_constraints(metadata: Any) -> list[str]:
    out: list[str] = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            out += _metadata_constraints(item.metadata)
            if item.discriminator:
                out.append(f"one of the shapes, picked by `{item.discriminator}`")
            continue
        for attr, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            if isinstance(item, getattr(annotated_types, attr.capitalize())):
                out.append(f"{symbol} {_number(getattr(item, attr))}")
        if isinstance(item, annotated_types.MinLen):
            out.append(f"at least {item.min_length} long")
        elif isinstance(item, annotated_types.MaxLen):
            out.append(f"at most {item.max_length} long")
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            out.append(f"matches `{pattern}`")
        if getattr(item, "allow_inf_nan", None) is False:
            out.append("finite")
    return out


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _one_paragraph(doc: str) -> str:
    """A docstring's paragraphs as Markdown text (Sphinx roles and RST double backquotes to plain code)."""
    return re.sub(r":\w+:`~?([^`]+)`", r"``\1``", doc).replace("``", "`").strip()


def _cell(text: str) -> str:
    """A table cell: pipes escaped, no line breaks."""
    return " ".join(text.split()).replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aegis.config_reference", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, help="write the reference here (default: print it)")
    args = parser.parse_args(argv)
    text = render()
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
