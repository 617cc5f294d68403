"""Validates message dataclass fields: arrays of a fixed shape and dtype, names, scalars, equality."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

Shape = tuple[int | None, ...]
"""An expected array shape; None marks a dimension of any length."""


def _shape_text(shape: Shape) -> str:
    dims = ["n" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


_FLOAT64 = np.dtype(np.float64)


def as_array(owner: str, name: str, value: ArrayLike, shape: Shape, dtype: DTypeLike = np.float64) -> np.ndarray:
    """``value`` as an array of ``dtype`` and ``shape``; ValueError naming ``owner.name`` otherwise."""
    if type(value) is np.ndarray and value.shape == shape and (value.dtype is _FLOAT64 if dtype is np.float64 else value.dtype == dtype):
        return value  # the hot path of the hot path: a float64 array of a fixed shape (a tuple and a dtype compared, ~0.2 us)
    if type(value) is np.ndarray and value.dtype == dtype and len(value.shape) == len(shape):
        if all(want is None or want == got for want, got in zip(shape, value.shape)):
            return value  # the hot path: nodes build messages from arrays that already fit
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{owner}.{name}: cannot convert to a {np.dtype(dtype).name} array ({exc})") from exc
    if arr.ndim != len(shape) or any(want is not None and want != got for want, got in zip(shape, arr.shape)):
        raise ValueError(f"{owner}.{name}: expected shape {_shape_text(shape)}, got {arr.shape}")
    return arr


def as_optional_vector(owner: str, name: str, value: ArrayLike, length: int) -> np.ndarray:
    """A float64 vector that is either empty or has ``length`` entries (JointState's convention)."""
    arr = as_array(owner, name, value, (None,))
    if arr.size not in (0, length):
        raise ValueError(f"{owner}.{name}: expected shape (0,) or ({length},), got {arr.shape}")
    return arr


def as_names(owner: str, name: str, value: Iterable[str]) -> tuple[str, ...]:
    """A tuple of strings; ValueError naming the field if an entry is not a string."""
    if isinstance(value, str):
        raise ValueError(f"{owner}.{name}: expected a sequence of names, got the string {value!r}")
    names = tuple(value)
    for entry in names:
        if not isinstance(entry, str):
            raise ValueError(f"{owner}.{name}: expected str entries, got {entry!r}")
    return names


def as_float32(value: float) -> float:
    """``value`` rounded to float32 precision, as a float32 ROS field carries it."""
    return float(np.float32(value))


def _values_equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")  # NaN: "no value" (a beam with no return), equal to itself
        )
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return messages_equal(a, b)
    if isinstance(a, (list, tuple)):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(_values_equal(x, y) for x, y in zip(a, b))
        )
    if isinstance(a, float) and type(b) is float and math.isnan(a) and math.isnan(b):
        return True  # a float field that says "not known" (NaN) equals itself
    return type(a) is type(b) and a == b


def messages_equal(a: Any, b: Any) -> bool:
    """True if ``a`` and ``b`` are the same message dataclass with equal fields (arrays by value and dtype)."""
    if type(a) is not type(b) or not dataclasses.is_dataclass(a):
        return False
    return all(_values_equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
