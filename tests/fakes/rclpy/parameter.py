"""Fake rclpy.parameter: Parameter with its Type enum, typed from its value as rclpy does."""

from __future__ import annotations

from enum import Enum
from typing import Any


class Parameter:
    class Type(Enum):
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

    def __init__(self, name: str, type_: Parameter.Type | None = None, value: Any = None) -> None:
        self.name = name
        self.type_ = type_
        self.value = value
