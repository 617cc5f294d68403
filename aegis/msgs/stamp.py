"""Converts aegis stamps (float seconds) to and from ROS builtin_interfaces/Time and std_msgs/Header.

Executors count time in integer nanoseconds and hand nodes ``stamp = t_ns / 1e9``. Going to ROS,
a stamp becomes ``ns = round(stamp * 1e9)`` split into ``(sec, nanosec)`` with
``0 <= nanosec < 1e9`` (so -0.25 s is sec=-1, nanosec=750000000, as ROS normalises it). Coming
back, ``(sec * 1_000_000_000 + nanosec) / 1_000_000_000`` is one correctly rounded division, so a
stamp made from t_ns round-trips exactly (for any t_ns below 2**51, i.e. about 26 days).
"""

from __future__ import annotations

import math
from typing import Any

from aegis.msgs.ros_types import TypeLookup

NS_PER_S = 1_000_000_000
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def stamp_to_ns(stamp: float) -> int:
    """Nanoseconds of a stamp in seconds, rounded to the nearest; ValueError if not finite."""
    if not math.isfinite(stamp):
        raise ValueError(f"stamp must be finite, got {stamp!r}")
    return round(stamp * 1e9)


def time_to_ros(types: TypeLookup, stamp: float) -> Any:
    """A builtin_interfaces/msg/Time for ``stamp`` seconds; ValueError beyond int32 seconds."""
    sec, nanosec = divmod(stamp_to_ns(stamp), NS_PER_S)
    if not _INT32_MIN <= sec <= _INT32_MAX:
        raise ValueError(f"stamp {stamp!r} s does not fit builtin_interfaces/Time (int32 seconds)")
    return types("builtin_interfaces/msg/Time")(sec=sec, nanosec=nanosec)


def time_from_ros(time: Any) -> float:
    """Seconds of a builtin_interfaces/Time (or Duration)."""
    return (int(time.sec) * NS_PER_S + int(time.nanosec)) / NS_PER_S


def header_to_ros(types: TypeLookup, stamp: float, frame_id: str) -> Any:
    """A std_msgs/msg/Header with this stamp and frame."""
    return types("std_msgs/msg/Header")(stamp=time_to_ros(types, stamp), frame_id=frame_id)


def header_from_ros(header: Any) -> tuple[float, str]:
    """(stamp seconds, frame_id) of a std_msgs/Header."""
    return time_from_ros(header.stamp), str(header.frame_id)
