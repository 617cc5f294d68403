"""Fixtures shared by the test modules: the stand-in rclpy of tests/fakes (the one seam for what cannot be installed here)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

FAKES = Path(__file__).resolve().parent / "fakes"


@pytest.fixture
def fake_rclpy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Put tests/fakes first on sys.path for one test; forget every fake module afterwards."""
    monkeypatch.syspath_prepend(str(FAKES))
    yield
    for name in [m for m in sys.modules if m.split(".")[0] in ("rclpy", "rcl_interfaces")]:
        del sys.modules[name]
