"""The training run's time table: the wall estimate on W free cores from the stages' CPU seconds (aegis.training.stage_clock)."""

from __future__ import annotations

import pytest

from aegis.training.stage_clock import StageTime, critical_path_s


def test_the_estimate_takes_per_stage_the_longer_of_the_main_process_and_all_the_stage_s_cpu_spread_over_the_cores() -> None:
    stages = [
        StageTime("set-up", 0.1, 0.0, 0.5),
        StageTime("expert demonstrations", 0.3, 30.0, 77.0),  # (0.3 + 30) / 2: the main process shares the cores too
        StageTime("training 0 beside the held-out episodes", 6.0, 4.0, 31.0),  # the main process's 6 > (6 + 4) / 2
        StageTime("training 1", 5.0, 0.0, 11.0),
    ]
    assert critical_path_s(stages, 2) == pytest.approx(0.1 + 15.15 + 6.0 + 5.0)
    assert critical_path_s(stages, 1) == pytest.approx(0.1 + 30.3 + 10.0 + 5.0)  # no more than all of it one after another
    assert critical_path_s(stages, 30) == pytest.approx(0.1 + 30.3 / 30 + 6.0 + 5.0)
    assert critical_path_s([], 2) == 0.0
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        critical_path_s(stages, 0)
