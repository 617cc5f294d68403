"""Fixtures shared by the test modules: the stand-in rclpy of tests/fakes (the one seam for what cannot be installed here).

Also how `make test` spreads the tests over the cores (pytest-xdist, ``-n auto --dist loadgroup``): a test that
uses a fixture wider than one test (a firmware build, a colcon install, a trained model) joins its module's group,
which one worker runs, so the fixture is built once; every other test goes to whichever worker is free.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_SCOPES = ("class", "module", "package", "session")

FAKES = Path(__file__).resolve().parent / "fakes"


@pytest.fixture
def fake_rclpy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Put tests/fakes first on sys.path for one test; forget every fake module afterwards."""
    monkeypatch.syspath_prepend(str(FAKES))
    yield
    for name in [m for m in sys.modules if m.split(".")[0] in ("rclpy", "rcl_interfaces")]:
        del sys.modules[name]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        definitions = getattr(item, "_fixtureinfo", None)
        if definitions is None:
            continue
        if any(defs and defs[-1].scope in SHARED_SCOPES and defs[-1].baseid  # baseid "": pytest's own, e.g. tmp_path_factory
               for defs in definitions.name2fixturedefs.values()):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
