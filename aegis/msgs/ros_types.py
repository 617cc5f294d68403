"""Where ROS 2 message classes come from: rosbags' typestores (tests, logs) or rclpy's packages (robot).

Every conversion in aegis.msgs takes a *type lookup*: a callable mapping a ROS type name such as
"geometry_msgs/msg/Vector3" to its message class. Two flavours exist and the same conversion
code serves both, because it builds messages with keyword arguments naming every field and
reads them by attribute:

- ``rosbags_types("jazzy")`` returns a :class:`RosbagsTypes`: callable as a lookup, and holding
  the rosbags ``typestore`` that serialises to CDR (``typestore.serialize_cdr(msg, name)``).
- ``rclpy_types()`` returns a lookup that imports ``<pkg>.msg`` lazily on the robot.

The two flavours differ in a few value representations, hidden behind the helpers here:
unbounded sequences of numbers are numpy arrays for rosbags but ``array.array`` for rclpy
(whose setters reject numpy arrays there); fixed-size arrays are numpy arrays for both.
"""

from __future__ import annotations

import array
import dataclasses
import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

TypeLookup = Callable[[str], type]
"""Maps a ROS type name ("pkg/msg/Name") to its message class."""

ROSBAGS_DISTROS: dict[str, str] = {"humble": "ROS2_HUMBLE", "jazzy": "ROS2_JAZZY"}
"""Distro name accepted by :func:`rosbags_types` -> rosbags ``Stores`` member name."""

_ARRAY_TYPECODES = {np.dtype(np.float64): "d", np.dtype(np.float32): "f", np.dtype(np.uint8): "B"}


@dataclass(frozen=True)
class RosbagsTypes:
    """A type lookup over one rosbags typestore; call it with a type name to get the class."""

    distro: str
    typestore: Typestore

    def lookup(self, name: str) -> type:
        """The message class of ``name`` ("pkg/msg/Name"); ValueError if this distro lacks it."""
        try:
            return self.typestore.types[name]
        except KeyError:
            raise ValueError(f"ROS type {name!r} is not in the rosbags {self.distro} typestore") from None

    def __call__(self, name: str) -> type:
        return self.lookup(name)


def rosbags_types(distro: str = "jazzy") -> RosbagsTypes:
    """The rosbags typestore of a ROS 2 distro ("humble" or "jazzy") wrapped as a type lookup."""
    if distro not in ROSBAGS_DISTROS:
        allowed = ", ".join(sorted(ROSBAGS_DISTROS))
        raise ValueError(f"unknown ROS 2 distro {distro!r}: allowed are {allowed}")
    return RosbagsTypes(distro=distro, typestore=_typestore(distro))


def warm_codecs(distro: str, ros_types: Iterable[str]) -> int:
    """Build rosbags' CDR codecs for ``ros_types`` now; how many were built. rosbags generates a type's codec on its first
    message (8 to 67 ms for an Odometry or a MarkerArray on the development machine), so a wall-clock run whose first
    tick serialised them fell that far behind at its start; a run calls this before its clock starts."""
    typestore = _typestore(distro)
    built = 0
    for name in sorted(set(ros_types)):
        if name not in typestore.cache:
            typestore.get_msgdef(name)
            built += 1
    return built


@lru_cache(maxsize=None)
def _typestore(distro: str) -> Typestore:
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(getattr(Stores, ROSBAGS_DISTROS[distro]))


def rclpy_types() -> TypeLookup:
    """A type lookup that imports rclpy message classes on first use ("pkg/msg/Name" -> pkg.msg.Name)."""

    @lru_cache(maxsize=None)
    def lookup(name: str) -> type:
        parts = name.split("/")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"ROS type name {name!r} is not of the form 'pkg/msg/Name'")
        package, kind, class_name = parts
        return getattr(importlib.import_module(f"{package}.{kind}"), class_name)

    return lookup


def is_rosbags_class(msg_cls: type) -> bool:
    """True for rosbags message classes (dataclasses), False for rclpy ones."""
    return dataclasses.is_dataclass(msg_cls)


def message_fields(msg_cls: type) -> tuple[str, ...]:
    """The field names of a ROS message class, rosbags or rclpy, without its constants."""
    if is_rosbags_class(msg_cls):
        # rosbags lists constants and __msgtype__ as dataclass fields with defaults; only the
        # message's own fields are required.
        return tuple(
            f.name
            for f in dataclasses.fields(msg_cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
    get_fields = getattr(msg_cls, "get_fields_and_field_types", None)
    if get_fields is None:
        raise TypeError(f"{msg_cls!r} is neither a rosbags nor an rclpy message class")
    return tuple(get_fields())


def build_message(
    msg_cls: type,
    values: Mapping[str, Any],
    optional: Mapping[str, Callable[[], Any]] | None = None,
) -> Any:
    """Instantiate ``msg_cls`` from ``values`` plus those ``optional`` fields this distro's class has.

    ``optional`` maps a field that only some distros define to a factory of its value. A class
    field that neither mapping fills is refused (rosbags classes need every field).
    """
    fields = message_fields(msg_cls)
    kwargs = dict(values)
    for name, factory in (optional or {}).items():
        if name in fields:
            kwargs[name] = factory()
    missing = [name for name in fields if name not in kwargs]
    if missing:
        raise ValueError(f"{msg_cls.__name__}: no value for field(s) {', '.join(missing)}")
    unknown = [name for name in values if name not in fields]
    if unknown:
        raise ValueError(f"{msg_cls.__name__}: has no field(s) {', '.join(unknown)}")
    return msg_cls(**kwargs)


def number_sequence(msg_cls: type, values: ArrayLike, dtype: DTypeLike) -> Any:
    """An unbounded ROS sequence of numbers (float64[], float32[], uint8[]) for a field of ``msg_cls``."""
    arr = np.ascontiguousarray(values, dtype=dtype)
    if is_rosbags_class(msg_cls):
        return arr.reshape(-1)
    return array.array(_ARRAY_TYPECODES[np.dtype(dtype)], arr.tobytes())


def byte_value(msg_cls: type, value: int) -> Any:
    """A ROS ``byte`` field value: an int for rosbags, a 1-byte ``bytes`` for rclpy."""
    return int(value) if is_rosbags_class(msg_cls) else bytes([value])


def read_byte(value: int | bytes) -> int:
    """The integer value of a ROS ``byte`` field as either flavour stores it."""
    return value if isinstance(value, int) else value[0]
