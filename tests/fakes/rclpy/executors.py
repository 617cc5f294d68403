"""Fake rclpy.executors: executors whose spin() runs ``SPIN["spin"]`` (set by a test) instead of waiting."""

from __future__ import annotations

from typing import Any, Callable


class ExternalShutdownException(Exception):
    pass


def _default_spin(executor: Any) -> None:
    raise ExternalShutdownException()


SPIN: dict[str, Callable[[Any], None]] = {"spin": _default_spin}
CREATED: list[Any] = []


class _Executor:
    def __init__(self, num_threads: int | None = None) -> None:
        self.num_threads = num_threads
        self.nodes: list[Any] = []
        self.shut_down = False
        CREATED.append(self)

    def add_node(self, node: Any) -> None:
        self.nodes.append(node)

    def spin(self) -> None:
        SPIN["spin"](self)

    def shutdown(self) -> None:
        self.shut_down = True


class SingleThreadedExecutor(_Executor):
    pass
