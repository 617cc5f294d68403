"""The training run's time: the wall estimate on W free cores from the stages' CPU seconds (aegis.training.stage_clock), and `aegis bench bc`."""

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


def test_bench_bc_times_behaviour_cloning_per_batch_size_and_refuses_bad_sizes_in_one_line(tmp_path, capsys) -> None:
    pytest.importorskip("torch")
    import json

    from aegis.cli import main

    out = tmp_path / "bc.json"
    assert main(["bench", "bc", "--batch-sizes", "64,128", "--samples", "512", "--epochs", "1", "--repeats", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(r["batch_size"], r["steps_per_epoch"]) for r in rows] == [(64, 8), (128, 4)]
    assert rows[0]["ratio"] == 1.0 and all(r["cpu_ms_per_step"] > 0 for r in rows)
    assert "CPU ms / step" in capsys.readouterr().out
    assert main(["bench", "bc", "--batch-sizes", "64,x"]) == 2
    assert "--batch-sizes '64,x': give sizes separated by commas" in capsys.readouterr().err
