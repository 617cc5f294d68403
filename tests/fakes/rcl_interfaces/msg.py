"""Fake rcl_interfaces.msg: ParameterDescriptor as a plain record of its fields."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ParameterDescriptor:
    name: str = ""
    type: int = 0
    description: str = ""
    additional_constraints: str = ""
    read_only: bool = False
    dynamic_typing: bool = False
