"""cyclonedds IDL types built at run time from the rosbags message definitions, named as ROS 2 names them on DDS.

A DDS topic needs a type: its name (matched against every remote reader and writer) and its
XTypes description (sent in discovery, so a peer that checks types can). :func:`idl_type` makes
a cyclonedds ``IdlStruct`` for any message of a rosbags typestore, recursively for the nested
ones, each with the ROS 2 DDS name (``std_msgs::msg::dds_::Header_``) and the field types of the
definition: ``float64`` -> ``float64``, ``string<=N`` -> a bounded string, ``T[N]`` -> an
array, ``T[]``/``T[<=N]`` -> a (bounded) sequence, ``byte`` -> ``octet``, ``char`` -> ``uint8``
(as rosidl maps them). Extensibility is ``final``, which is cyclone's default and what the
IDL that rosidl generates for ROS 2 messages amounts to: in XCDR1 a final struct is its
members in order, aligned, with nothing around them.

The transport does not serialise through these classes (rosbags does, see
:mod:`aegis.transport.dds`); tests use them as a second, independent encoder of the same
definitions, and they must agree byte for byte with rosbags.
"""

from __future__ import annotations

import keyword
from functools import lru_cache
from typing import Any

from aegis.msgs.ros_types import RosbagsTypes, rosbags_types
from aegis.transport.ros_names import dds_type_name


def idl_type(types: RosbagsTypes, ros_type: str) -> type:
    """The cyclonedds IdlStruct of ROS message ``ros_type`` in ``types``' distro (built once, then cached)."""
    return _idl_type(types.distro, ros_type)


@lru_cache(maxsize=None)
def _idl_type(distro: str, ros_type: str) -> type:
    from cyclonedds.idl import make_idl_struct

    typestore = rosbags_types(distro).typestore
    try:
        _constants, fields = typestore.fielddefs[ros_type]
    except KeyError:
        raise ValueError(f"ROS type {ros_type!r} is not in the rosbags {distro} typestore") from None
    annotations: dict[str, Any] = {}
    for name, description in fields:
        if keyword.iskeyword(name):
            raise ValueError(f"{ros_type}: field {name!r} is a Python keyword; no IDL class can hold it")
        annotations[name] = _field_type(distro, ros_type, name, description)
    class_name = ros_type.rsplit("/", 1)[-1] + "_"
    return make_idl_struct(class_name, dds_type_name(ros_type), annotations)


def _field_type(distro: str, owner: str, field: str, description: tuple[Any, Any]) -> Any:
    from cyclonedds.idl import types as idl
    from rosbags.typesys.store import Nodetype

    kind, detail = description
    if kind == Nodetype.BASE:
        name, bound = detail
        if name == "string":
            return idl.bounded_str[bound] if bound else str
        primitive = _PRIMITIVES.get(name)
        if primitive is None:
            raise ValueError(f"{owner}.{field}: ROS type {name!r} has no IDL mapping here")
        return getattr(idl, primitive) if primitive != "bool" else bool
    if kind == Nodetype.NAME:
        return _idl_type(distro, detail)
    if kind == Nodetype.ARRAY:
        inner, length = detail
        return idl.array[_field_type(distro, owner, field, inner), length]
    if kind == Nodetype.SEQUENCE:
        inner, bound = detail
        element = _field_type(distro, owner, field, inner)
        return idl.sequence[element, bound] if bound else idl.sequence[element]
    raise ValueError(f"{owner}.{field}: unknown rosbags field kind {kind!r}")


_PRIMITIVES = {
    "bool": "bool",
    "byte": "byte",
    "char": "uint8",
    "int8": "int8",
    "uint8": "uint8",
    "int16": "int16",
    "uint16": "uint16",
    "int32": "int32",
    "uint32": "uint32",
    "int64": "int64",
    "uint64": "uint64",
    "float32": "float32",
    "float64": "float64",
}
"""rosbags' name of a ROS primitive -> the cyclonedds.idl.types name (rosidl's IDL mapping)."""
