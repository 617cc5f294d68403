"""A node's typed Params as ROS 2 parameters: flat names, ROS-legal types, descriptions, and back again.

ROS 2 parameters hold bool, int, float, str or a flat array of one of those. A Params model is
flattened into such parameters: a nested model (or mapping) becomes dotted names
("limits.max_speed"), a tuple or list of numbers a double array (integers too if all are ints),
None an untyped parameter. Descriptions come from the pydantic ``Field(description=...)`` and
numeric bounds (``ge``, ``gt``, ``le``, ``lt``) become the descriptor's constraint text.

Parameters are declared read-only: the launch plan fixes them and nodes build their controllers
and solvers from them once, at construction, so a later `ros2 param set` could not take effect;
refusing it is honest. Values given at start-up (``--ros-args -p kp:=2.0``, a params file) are
applied at declaration and go back through the Params model (:func:`apply_parameter_values`), so
they are validated exactly like the hw_config.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

ParamValue = Union[bool, int, float, str, tuple[bool, ...], tuple[int, ...], tuple[float, ...], tuple[str, ...], None]


class ParamType(IntEnum):
    """ROS 2 parameter types; the values are rcl_interfaces/msg/ParameterType's constants."""

    NOT_SET = 0
    BOOL = 1
    INTEGER = 2
    DOUBLE = 3
    STRING = 4
    BYTE_ARRAY = 5
    BOOL_ARRAY = 6
    INTEGER_ARRAY = 7
    DOUBLE_ARRAY = 8
    STRING_ARRAY = 9


class ParameterError(ValueError):
    """A Params model has no ROS form, or a start-up parameter value is invalid; names the parameter."""


@dataclass(frozen=True)
class ParamDescriptor:
    """One ROS 2 parameter of a node: what the adapter declares."""

    name: str
    type: ParamType
    value: ParamValue
    description: str
    constraints: str
    read_only: bool = True


_SCALAR_TYPES: tuple[tuple[type, ParamType], ...] = (
    (bool, ParamType.BOOL),  # before int: bool is an int subclass
    (int, ParamType.INTEGER),
    (float, ParamType.DOUBLE),
    (str, ParamType.STRING),
)
_ARRAY_OF = {
    ParamType.BOOL: ParamType.BOOL_ARRAY,
    ParamType.INTEGER: ParamType.INTEGER_ARRAY,
    ParamType.DOUBLE: ParamType.DOUBLE_ARRAY,
    ParamType.STRING: ParamType.STRING_ARRAY,
}


def parameter_descriptors(
    params_cls: type[BaseModel], values: Mapping[str, Any] | None = None
) -> tuple[ParamDescriptor, ...]:
    """The ROS parameters of a Params model, with ``values`` (e.g. a plan's params) or the defaults.

    ``values`` are validated through the model first, so what is declared is what the node gets.
    """
    try:
        model = params_cls.model_validate(dict(values or {}))
    except ValidationError as exc:
        raise ParameterError(f"{params_cls.__name__}: {_error_text(exc)}") from None
    return tuple(_flatten_model(params_cls, model.model_dump(mode="json"), prefix=""))


def apply_parameter_values(
    params_cls: type[BaseModel],
    plan_values: Mapping[str, Any],
    ros_values: Mapping[str, Any],
    node_name: str = "",
) -> dict[str, Any]:
    """Plan params with the values ROS reports for the declared parameters laid over them, validated.

    ``ros_values`` maps flat parameter names to values as rclpy returns them (arrays may be
    ``array.array``; None for an unset parameter, which keeps the plan value). Returns the
    params as plain JSON-like values, ready for ``NodeLaunch.params``.
    """
    try:
        merged = params_cls.model_validate(dict(plan_values)).model_dump(mode="json")
    except ValidationError as exc:
        raise ParameterError(f"{_node(node_name)}: parameters: {_error_text(exc)}") from None
    for name, value in ros_values.items():
        if value is None:
            continue
        keys = name.split(".")
        target = merged
        for key in keys[:-1]:
            child = target.setdefault(key, {})
            if not isinstance(child, dict):
                raise ParameterError(f"{_node(node_name)}: parameter {name}: {key!r} is not a group of parameters")
            target = child
        target[keys[-1]] = value if isinstance(value, (bool, int, float, str)) else list(value)
    try:
        return params_cls.model_validate(merged).model_dump(mode="json")
    except ValidationError as exc:
        raise ParameterError(f"{_node(node_name)}: parameters: {_error_text(exc)}") from None


def _flatten_model(model_cls: type[BaseModel], dumped: Mapping[str, Any], prefix: str) -> list[ParamDescriptor]:
    out: list[ParamDescriptor] = []
    for field_name, info in model_cls.model_fields.items():
        name = f"{prefix}{field_name}"
        value = dumped[field_name]
        nested = _model_class(info.annotation)
        if isinstance(value, dict):
            if nested is not None:
                out += _flatten_model(nested, value, prefix=f"{name}.")
            else:
                out += _flatten_mapping(name, value, info)
        else:
            out.append(_leaf(name, value, info.annotation, info))
    return out


def _flatten_mapping(name: str, value: Mapping[str, Any], info: FieldInfo) -> list[ParamDescriptor]:
    out: list[ParamDescriptor] = []
    for key, item in value.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ParameterError(f"parameter {name}: key {key!r} cannot be part of a ROS parameter name")
        if isinstance(item, dict):
            out += _flatten_mapping(f"{name}.{key}", item, info)
        else:
            out.append(_leaf(f"{name}.{key}", item, None, info))
    return out


def _leaf(name: str, value: Any, annotation: Any, info: FieldInfo) -> ParamDescriptor:
    param_type, ros_value = _ros_typed(name, value, annotation)
    return ParamDescriptor(
        name=name,
        type=param_type,
        value=ros_value,
        description=info.description or "",
        constraints=_constraints(info),
    )


def _ros_typed(name: str, value: Any, annotation: Any) -> tuple[ParamType, ParamValue]:
    if value is None:
        return ParamType.NOT_SET, None
    scalar = _scalar_type(value)
    if scalar is not None:
        return scalar, value
    if isinstance(value, (list, tuple)):
        if any(isinstance(item, (list, tuple, dict)) for item in value):
            raise ParameterError(f"parameter {name}: nested sequences have no ROS parameter type (flatten it)")
        kinds = {_scalar_type(item) for item in value}
        if not kinds:
            kinds = {_element_type(name, annotation)}
        if kinds <= {ParamType.INTEGER, ParamType.DOUBLE} and ParamType.DOUBLE in kinds:
            return ParamType.DOUBLE_ARRAY, tuple(float(item) for item in value)
        if len(kinds) == 1 and None not in kinds:
            (kind,) = kinds
            return _ARRAY_OF[kind], tuple(value)
        raise ParameterError(f"parameter {name}: a ROS array holds one type, got {value!r}")
    raise ParameterError(f"parameter {name}: {type(value).__name__} has no ROS parameter type (got {value!r})")


def _scalar_type(value: Any) -> ParamType | None:
    for py_type, param_type in _SCALAR_TYPES:
        if isinstance(value, py_type):
            return param_type
    return None


def _element_type(name: str, annotation: Any) -> ParamType:
    """The ROS element type of an empty sequence, from its annotation (list[float], tuple[str, ...])."""
    args = [a for a in typing.get_args(_strip_optional(annotation)) if a is not Ellipsis]
    element = _strip_optional(args[0]) if args else None
    for py_type, param_type in _SCALAR_TYPES:
        if element is py_type:
            return param_type
    raise ParameterError(f"parameter {name}: cannot tell the ROS array type of an empty {annotation!r}")


def _strip_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _strip_optional(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _strip_optional(args[0])
    return annotation


def _model_class(annotation: Any) -> type[BaseModel] | None:
    candidate = _strip_optional(annotation)
    if isinstance(candidate, type) and issubclass(candidate, BaseModel):
        return candidate
    return None


_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def _constraints(info: FieldInfo) -> str:
    """Numeric bounds of a field as text ("> 0", ">= 0, <= 1") and a Literal's choices."""
    parts = []
    for item in info.metadata:
        for attr, symbol in _BOUNDS:
            bound = getattr(item, attr, None)
            if bound is not None:
                parts.append(f"{symbol} {bound}")
    annotation = _strip_optional(info.annotation)
    if typing.get_origin(annotation) is typing.Literal:
        parts.append("one of: " + ", ".join(str(choice) for choice in typing.get_args(annotation)))
    return ", ".join(parts)


def _node(node_name: str) -> str:
    return f"node {node_name!r}" if node_name else "node"


def _error_text(exc: ValidationError) -> str:
    messages = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"])
        msg = "unknown parameter" if err["type"] == "extra_forbidden" else err["msg"]
        got = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
        messages.append(f"{loc}: {msg}{got}")
    return "; ".join(messages)

