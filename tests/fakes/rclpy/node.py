"""Fake rclpy.node.Node: records publishers, subscriptions, timers and parameters; a settable clock.

``OVERRIDES`` stands for ``--ros-args -p name:=value``: a declared parameter named there takes
that value, as rclpy applies start-up overrides at declaration. ``CREATED`` lists every node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from rclpy.parameter import Parameter

OVERRIDES: dict[str, Any] = {}
CREATED: list[Node] = []


@dataclass
class Publisher:
    msg_type: type
    topic: str
    qos: Any
    published: list[Any] = field(default_factory=list)

    def publish(self, msg: Any) -> None:
        self.published.append(msg)


@dataclass
class Subscription:
    msg_type: type
    topic: str
    callback: Callable[[Any], None]
    qos: Any


@dataclass
class Timer:
    period_s: float
    callback: Callable[[], None]


class Time:
    def __init__(self, nanoseconds: int) -> None:
        self.nanoseconds = nanoseconds


class Clock:
    def __init__(self) -> None:
        self.ns = 0

    def now(self) -> Time:
        return Time(self.ns)


class Logger:
    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def info(self, msg: str) -> None:
        self.records.append(("info", msg))

    def error(self, msg: str) -> None:
        self.records.append(("error", msg))


class Node:
    def __init__(self, node_name: str, *, namespace: str | None = None, parameter_overrides: list[Parameter] | None = None) -> None:
        self.name = node_name
        self.namespace = namespace
        self.parameter_overrides = {p.name: p.value for p in parameter_overrides or []}
        self.publishers: list[Publisher] = []
        self.subscriptions: list[Subscription] = []
        self.timers: list[Timer] = []
        self.descriptors: dict[str, Any] = {}
        self.declared: dict[str, Any] = {}
        self.clock = Clock()
        self.logger = Logger()
        self.destroyed = False
        CREATED.append(self)

    def declare_parameter(self, name: str, value: Any, descriptor: Any) -> Parameter:
        self.declared[name] = value
        self.descriptors[name] = descriptor
        value = OVERRIDES.get(name, value)
        return Parameter(name, value=None if isinstance(value, Parameter.Type) else value)

    def create_publisher(self, msg_type: type, topic: str, qos: Any) -> Publisher:
        self.publishers.append(Publisher(msg_type, topic, qos))
        return self.publishers[-1]

    def create_subscription(self, msg_type: type, topic: str, callback: Callable[[Any], None], qos: Any) -> Subscription:
        self.subscriptions.append(Subscription(msg_type, topic, callback, qos))
        return self.subscriptions[-1]

    def create_timer(self, period_s: float, callback: Callable[[], None]) -> Timer:
        self.timers.append(Timer(period_s, callback))
        return self.timers[-1]

    def get_clock(self) -> Clock:
        return self.clock

    def get_logger(self) -> Logger:
        return self.logger

    def destroy_node(self) -> None:
        self.destroyed = True
