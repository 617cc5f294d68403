"""Smoke tests of the filter benchmark: rows, keys, numbers, JSON, the printed table and a path that cannot build (tiny runs, no timed asserts)."""

from __future__ import annotations

import io
import json
import math

import pytest

from aegis.controllers.cbf.cvxpygen_solver import CodegenUnavailable
from rich.console import Console

from aegis.bench.filter import (
    ROW_KEYS,
    ROW_NAMES,
    print_report,
    run_filter_benchmark,
    targets,
    write_json,
)

PATHS = ("osqp-direct", "closed-form", "cvxpygen", "cvxpy-param", "cvxpy-rebuild")


def _no_compiler(spec: object) -> object:
    raise CodegenUnavailable("cvxpygen path unavailable: no C compiler on PATH (looked for cc, gcc, clang)")


@pytest.fixture(scope="module", params=["quadrotor", "diff_drive"])
def rows(request) -> list[dict]:
    return run_filter_benchmark(n=40, robot=request.param, slow_ticks=5, solver_factories={"cvxpygen": _no_compiler})


def test_rows_have_the_path_names_keys_and_finite_numbers(rows: list[dict]) -> None:
    assert tuple(ROW_NAMES) == PATHS
    assert [row["name"] for row in rows] == list(PATHS)
    for row in rows:
        assert set(row) == set(ROW_KEYS)
        if row["name"] == "cvxpygen":
            continue
        for key in ("median_us", "p99_us", "mean_us", "speedup_vs_cvxpy_param"):
            assert isinstance(row[key], float) and math.isfinite(row[key]) and row[key] > 0, (row["name"], key)
        assert row["p99_us"] >= row["median_us"]
        assert row["max_deviation"] <= 1e-3  # the paths agree on these ticks too
        assert row["ticks"] == (5 if row["name"].startswith("cvxpy-") else 40)
    by_name = {row["name"]: row for row in rows}
    assert by_name["cvxpy-param"]["speedup_vs_cvxpy_param"] == 1.0
    assert 0.0 <= by_name["closed-form"]["closed_form_share"] <= 1.0


def test_a_path_that_cannot_build_is_a_skipped_row_with_the_reason(rows: list[dict]) -> None:
    row = next(r for r in rows if r["name"] == "cvxpygen")
    assert "no C compiler" in row["skipped"] and row["median_us"] is None
    assert all(t["path"] != "cvxpygen" for t in targets(rows))


def test_targets_are_information_for_each_fast_path(rows: list[dict]) -> None:
    listed = targets(rows)
    assert {(t["target"], t["path"]) for t in listed} == {
        (target, path) for target in ("median", "p99", "speedup vs cvxpy-param") for path in ("osqp-direct", "closed-form")
    }
    assert all(isinstance(t["met"], bool) for t in listed)


def test_json_and_table(rows: list[dict], tmp_path) -> None:
    path = write_json(rows, tmp_path / "out" / "filter.json")
    document = json.loads(path.read_text())
    assert document["benchmark"] == "filter" and [r["name"] for r in document["rows"]] == list(PATHS)
    assert document["robot"] == rows[0]["robot"] and {r["robot"] for r in rows} == {rows[0]["robot"]}
    assert document["targets"] == targets(rows) and "osqp" in document["machine"]
    buffer = io.StringIO()
    print_report(rows, Console(file=buffer, width=400))
    text = buffer.getvalue()
    for name in PATHS:
        assert name in text
    assert f"CBF safety filter, {rows[0]['robot']}" in text
    assert "skipped: cvxpygen path unavailable" in text and "target median <= 25 µs" in text


def test_random_ticks_are_the_other_source() -> None:
    rows = run_filter_benchmark(n=10, paths=("closed-form", "cvxpy-param"), slow_ticks=3, ticks_from="random")
    assert [(r["name"], r["ticks_from"], r["ticks"]) for r in rows] == [("closed-form", "random", 10), ("cvxpy-param", "random", 3)]


def test_unknown_paths_and_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown path"):
        run_filter_benchmark(n=5, paths=("qpoases",))
    with pytest.raises(ValueError, match="must be >= 1"):
        run_filter_benchmark(n=0)
    with pytest.raises(ValueError, match="unknown tick source"):
        run_filter_benchmark(n=5, ticks_from="replay")
