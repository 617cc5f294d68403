"""Smoke tests of the MPC benchmark: rows' names and keys, the paths agree, QP sizes, report and JSON (tiny runs, no timed asserts)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from aegis.bench.mpc import MODEL_NAMES, ROW_KEYS, add_arguments, print_report, qp_sizes, run_from_args, run_mpc_benchmark, targets, write_json


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return run_mpc_benchmark(ticks=12, cvxpy_ticks=4, rebuild_ticks=2)


def test_rows_name_their_model_and_path_with_finite_times(rows: list[dict]) -> None:
    names = [row["name"] for row in rows]
    for expected in (
        "linear-4x2-osqp-direct",
        "linear-4x2-cvxpy-param",
        "linear-4x2-cvxpy-rebuild",
        "quadrotor-12x4-osqp-direct",
        "quadrotor-12x4-cvxpy-param",
        "quadrotor-12x4-cvxpy-rebuild",
        "translational-6x3-osqp-direct",
        "diff-drive-3x2-osqp-direct",
        "diff-drive-4x2-osqp-direct",
        "scenario-4x2-k2-clarabel-direct",
        "scenario-4x2-k2-osqp-direct",
    ):
        assert expected in names
    for row in rows:
        assert set(row) == set(ROW_KEYS)
        assert row["name"] == f"{row['model']}-{row['path']}"
        assert math.isfinite(row["median_us"]) and 0 < row["median_us"] <= row["p99_us"] <= row["max_us"]
        assert row["failures"] == 0, row["name"]
        if row["path"].startswith("cvxpy"):
            assert row["max_u0_diff"] < 0.05, row  # the same problems, the same answers (at the fast path's tolerance)
        if row["model"] not in ("scenario-4x2-k2",):
            assert row["speedup_vs_cvxpy_param"] is not None


def test_flat_variable_is_half_the_per_step_qp() -> None:
    for size in qp_sizes():
        assert size["osqp_direct"]["variables"] == size["cvxpy_flat"]["variables"]
        assert size["per_step_over_flat_variables"] > 1.8


def test_targets_are_reported_not_asserted(rows: list[dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert [t["target"] for t in targets(rows)] == ["linear 4x2 N=20 median", "quadrotor 12x4 N=20 median", "quadrotor 12x4 N=20 p99"]
    assert all(isinstance(t["met"], bool) for t in targets(rows))
    print_report(rows)
    out = capsys.readouterr().out
    assert "linear-4x2-osqp-direct" in out and "target quadrotor 12x4 N=20 p99" in out
    document = json.loads(write_json(rows, tmp_path / "out" / "mpc.json", sizes=[]).read_text())
    assert document["rows"] == rows and document["benchmark"] == "mpc"
    assert {"python", "cpus", "osqp"} <= set(document["machine"])


def test_command_line_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--ticks", "5", "--cvxpy-ticks", "2", "--rebuild-ticks", "0", "--models", "linear-4x2", "--json", str(tmp_path / "m.json")])
    rows = run_from_args(args)
    assert [row["name"] for row in rows] == ["linear-4x2-osqp-direct", "linear-4x2-cvxpy-param"]
    assert "QP handed to the solver" in capsys.readouterr().out
    assert json.loads((tmp_path / "m.json").read_text())["qp_sizes"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--models", "bogus"])
    with pytest.raises(ValueError, match="unknown model"):
        run_mpc_benchmark(ticks=2, models=["bogus"])
    assert set(MODEL_NAMES) >= {"linear-4x2", "quadrotor-12x4"}
