"""Fake rclpy.qos: the policy enums and a QoSProfile that keeps what it was given."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class HistoryPolicy(Enum):
    KEEP_LAST = 1
    KEEP_ALL = 2


class ReliabilityPolicy(Enum):
    RELIABLE = 1
    BEST_EFFORT = 2


class DurabilityPolicy(Enum):
    TRANSIENT_LOCAL = 1
    VOLATILE = 2


@dataclass
class QoSProfile:
    history: HistoryPolicy
    depth: int
    reliability: ReliabilityPolicy
    durability: DurabilityPolicy
