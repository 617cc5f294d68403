"""The hw_config's realtime section: its keys are validated with the key named, and the realtime executor reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from aegis.config import load_config
from aegis.config_files import ConfigError
from aegis.executors.realtime import RealtimeExecutor
from aegis.node import Node

CONFIG = Path(__file__).resolve().parent.parent / "hw_configs" / "quadrotor_oracle_sim.yaml"
REALTIME = "realtime.executor=realtime"


def test_the_settings_load_with_the_realtime_executor() -> None:
    config = load_config(
        CONFIG,
        [REALTIME, "realtime.priority=80", "realtime.cpu_affinity=[0]", "realtime.lock_memory=true", "realtime.deadline_miss_limit=3"],
    )
    realtime = config.realtime
    assert (realtime.priority, realtime.cpu_affinity, realtime.lock_memory, realtime.deadline_miss_limit) == (80, [0], True, 3)
    assert load_config(CONFIG).realtime.priority is None  # the shipped config: default scheduler, nothing requested


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("realtime.priority=0", "realtime.priority: Input should be greater than or equal to 1"),
        ("realtime.priority=100", "realtime.priority: Input should be less than or equal to 99"),
        ("realtime.priority=true", "realtime.priority: Input should be a valid integer"),
        ("realtime.priority=high", "realtime.priority"),
        ("realtime.cpu_affinity=[]", "realtime.cpu_affinity: List should have at least 1 item"),
        ("realtime.cpu_affinity=[-1]", "realtime.cpu_affinity.0: Input should be greater than or equal to 0"),
        ("realtime.deadline_miss_limit=-1", "realtime.deadline_miss_limit: Input should be greater than or equal to 0"),
        ("realtime.lock_memory=sometimes", "realtime.lock_memory"),
        ("realtime.nice=5", "realtime.nice: unknown key"),
    ],
)
def test_an_invalid_or_unknown_key_is_refused_with_its_name(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(CONFIG, [REALTIME, override])


@pytest.mark.parametrize("override", ["realtime.priority=80", "realtime.cpu_affinity=[0]", "realtime.lock_memory=true", "realtime.deadline_miss_limit=0"])
def test_a_setting_under_another_executor_is_refused_not_ignored(override: str) -> None:
    key = override.split("=")[0].split(".")[1]
    with pytest.raises(ConfigError, match=f"{key}: read by the realtime executor only, and executor is 'lockstep'"):
        load_config(CONFIG, [override])


class Idle(Node):
    type_name = "idle"

    def step(self, now, inputs):
        return {}


def test_the_executor_applies_the_section() -> None:
    """The OS settings are asked for when the run starts (CPU 4096 exists nowhere: refused, reported, the run goes on)."""
    config = load_config(CONFIG, [REALTIME, "realtime.cpu_affinity=[4096]"])
    executor = RealtimeExecutor([Idle("node", rate_hz=100.0)], settings=config.realtime)
    executor.reset(0)
    stats = executor.run(0.03)
    assert stats.settings["cpu_affinity"].startswith("refused: CPU(s) 4096 not available")
    assert stats.steps["node"] >= 2
