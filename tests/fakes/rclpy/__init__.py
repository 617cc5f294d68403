"""Fake rclpy for tests (see tests/fakes/README.md): init/try_shutdown recorded, nothing else.

The thinnest seam for what cannot exist here: only the calls aegis.nodes.ros_adapter makes.
"""

from __future__ import annotations

from typing import Any

STATE: dict[str, Any] = {"init_args": None, "shutdown": False}


def init(args: list[str] | None = None) -> None:
    STATE["init_args"] = list(args or [])
    STATE["shutdown"] = False


def try_shutdown() -> None:
    STATE["shutdown"] = True
