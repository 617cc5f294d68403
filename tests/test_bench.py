"""Smoke tests of the sim benchmark: the rows' names, keys and numbers, the JSON and the script (tiny runs, no timed asserts)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("pybullet")

from aegis.bench.sim import ROW_KEYS, ROW_NAMES, executor_overhead, print_report, run_sim_benchmark, targets, write_json  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return run_sim_benchmark(duration_s=0.2, repeats=1)


def test_rows_have_the_names_keys_and_finite_positive_numbers(rows: list[dict]) -> None:
    assert [row["name"] for row in rows] == list(ROW_NAMES)
    for row in rows:
        assert set(row) == set(ROW_KEYS)
        for key in ("median_us", "p99_us", "steps_per_s", "real_time_factor"):
            assert isinstance(row[key], float) and math.isfinite(row[key]) and row[key] > 0, (row["name"], key, row[key])
        assert row["p99_us"] >= row["median_us"]
        assert math.isfinite(row["overhead_vs_inline"])
        assert row["physics_steps"] == 48  # 0.2 s at 240 Hz
        assert row["repeats"] == 1 and row["duration_s"] == 0.2
    inline = rows[ROW_NAMES.index("inline")]
    assert inline["overhead_vs_inline"] == 0.0
    assert executor_overhead(rows) == rows[ROW_NAMES.index("executor")]["overhead_vs_inline"]


def test_every_loop_flies_the_same_flight(rows: list[dict]) -> None:
    """The comparison is fair only if the plain loops do the executor's work: same physics, same commands, same end."""
    executor = rows[ROW_NAMES.index("executor")]["final_position_m"]
    for row in rows:
        assert row["final_position_m"] == pytest.approx(executor, abs=1e-9), row["name"]


def test_targets_are_reported_not_asserted(rows: list[dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert [t["target"] for t in targets(rows)] == ["physics steps/s", "real-time factor", "executor overhead"]
    assert all(isinstance(t["met"], bool) for t in targets(rows))
    print_report(rows)
    out = capsys.readouterr().out
    assert "executor" in out and "inline" in out and "target executor overhead" in out
    path = write_json(rows, tmp_path / "out" / "bench.json")
    document = json.loads(path.read_text())
    assert document["rows"] == rows
    assert document["executor_overhead"] == executor_overhead(rows)
    assert {"python", "cpus"} <= set(document["machine"])


def test_aegis_bench_sim_prints_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from aegis.cli import main

    assert main(["bench", "sim", "--duration", "0.1", "--repeats", "1", "--json", str(tmp_path / "sim.json")]) == 0
    assert "steps/s" in capsys.readouterr().out
    assert [row["name"] for row in json.loads((tmp_path / "sim.json").read_text())["rows"]] == list(ROW_NAMES)


def test_a_plan_that_is_not_a_quadrotor_loop_is_refused_naming_the_file() -> None:
    config = REPO / "hw_configs" / "point_mass_sim.yaml"
    with pytest.raises(ValueError, match="point_mass_sim.yaml"):
        run_sim_benchmark(duration_s=0.1, repeats=1, config=config)
