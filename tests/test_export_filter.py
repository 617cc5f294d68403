"""Filter QP export (cvxpygen C): the files and API it writes, the sample problems, and the host build equal to cvxpy.

The Cortex-M4F run under QEMU is in test_export_filter_mcu.py (slow).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from aegis.cli import main
from aegis.controllers.cbf import DoubleIntegratorModel
from aegis.controllers.cbf.qp import INACTIVE_ROW_B, QpSpec
from aegis.export.errors import ToolchainError
from aegis.export.filter_check import AGREEMENT, parse_answers
from aegis.export.filter_samples import sample_problems, solve_on_host
from aegis.export.toolchain import host_cc
from aegis.scenario.geometry import geofence_walls
from aegis.scenario.schema import Geofence

needs_cvxpygen = pytest.mark.skipif(importlib.util.find_spec("cvxpygen") is None, reason="cvxpygen is not installed")

MODEL = DoubleIntegratorModel(max_acceleration=8.0, robot_radius=0.07, max_speed=2.0, alpha=2.0, speed_alpha=1.0)
SPEC = QpSpec.create(MODEL.default_weights(), MODEL.lower, MODEL.upper, max_rows=8)
GEOFENCE = Geofence(min_m=(-4.0, -4.0, -0.1), max_m=(4.0, 4.0, 3.0))
WALLS = geofence_walls(GEOFENCE)
REGION = (GEOFENCE.min_m, GEOFENCE.max_m)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    if importlib.util.find_spec("cvxpygen") is None:
        pytest.skip("cvxpygen is not installed")
    from aegis.export.filter_qp import export_filter_qp

    return export_filter_qp(SPEC, tmp_path_factory.mktemp("filter_qp"), name="quad")


def test_sample_problems_are_the_filters_rows_reproducibly() -> None:
    problems = sample_problems(MODEL, SPEC, WALLS, count=100, seed=3, region=REGION)
    again = sample_problems(MODEL, SPEC, WALLS, count=100, seed=3, region=REGION)
    assert problems.a.shape == (100, 8, 3) and problems.b.shape == (100, 8) and problems.nominal.shape == (100, 3)
    np.testing.assert_array_equal(problems.a, again.a)
    np.testing.assert_array_equal(problems.b, again.b)
    # obstacles (3-5), six geofence walls and the speed limit: more candidates than K, so the QP keeps the nearest 8
    assert problems.candidates.min() >= 10 and np.all(problems.candidates > SPEC.max_rows)
    assert np.all(np.any(problems.a != 0.0, axis=2)), "every kept row is a real barrier row"
    # some nominals need a correction, some do not (the reference changes them by more than rounding)
    u, slack, statuses = solve_on_host(problems, SPEC, "cvxpy-param")
    changed = np.any(np.abs(u - problems.nominal) > 1e-6, axis=1)
    assert 0 < changed.sum() < len(problems)
    assert all(status == "optimal" for status in statuses)


def test_unused_rows_are_padded_as_the_filter_pads_them() -> None:
    problems = sample_problems(MODEL, SPEC, (), count=50, seed=1, region=REGION)  # no walls: 4-6 rows
    assert problems.candidates.max() < SPEC.max_rows
    for a, b, n in zip(problems.a, problems.b, problems.candidates):
        assert np.all(a[n:] == 0.0) and np.all(b[n:] == INACTIVE_ROW_B)


@needs_cvxpygen
def test_the_export_writes_the_solver_and_an_api_header(exported) -> None:
    header = exported.header.read_text()
    assert exported.header.name == "quad_qp.h"
    assert "int quad_solve(const double *nominal, const double *a, const double *b, double *u, double *slack)" in header
    assert "#define QUAD_QP_INPUTS 3" in header and "#define QUAD_QP_ROWS 8" in header
    assert "quad_cpg_set_solver_eps_abs(" in header  # the host path's settings, not cvxpygen's 1e-3 defaults
    names = {path.name for path in exported.sources}
    assert {"cpg_solve.c", "cpg_workspace.c", "workspace.c", "osqp_api.c", "qdldl.c"} <= names
    assert "cpg_example.c" not in names  # it has a main()
    assert all(path.is_file() for path in exported.sources)
    assert any("eps_abs 1e-06" in line for line in exported.lines())


@needs_cvxpygen
@pytest.mark.skipif(host_cc() is None, reason="no host C compiler (looked for $CC, cc, gcc, clang)")
def test_the_host_build_agrees_with_cvxpy_and_osqp(exported, tmp_path: Path) -> None:
    from aegis.export.filter_check import run_on_host

    problems = sample_problems(MODEL, SPEC, WALLS, count=100, seed=5, region=REGION)
    answers = run_on_host(exported, problems, tmp_path)
    assert answers.solved.all() and set(answers.statuses) == {"solved"}
    for path in ("cvxpy-param", "osqp-direct"):
        u, slack, _ = solve_on_host(problems, SPEC, path)
        np.testing.assert_allclose(answers.u, u, atol=AGREEMENT, rtol=0)
        np.testing.assert_allclose(answers.slack, slack, atol=AGREEMENT, rtol=0)


def test_missing_answers_are_an_error_not_zeros() -> None:
    line = "qp 0 1 50 3ff0000000000000 0000000000000000 0000000000000000 0000000000000000 solved"
    answers = parse_answers(line, 1, 3)
    assert answers.u.tolist() == [[1.0, 0.0, 0.0]] and answers.iterations.tolist() == [50] and answers.statuses == ("solved",)
    with pytest.raises(ToolchainError, match="1 of 2 answers"):
        parse_answers(line, 2, 3)


def test_a_config_without_a_safety_filter_is_refused_by_name(tmp_path: Path, capsys) -> None:
    assert main(["export", "filter-c", "point_mass_sim", "-o", str(tmp_path / "out")]) == 2
    assert "point_mass_sim.yaml: it has no safety-filter node" in capsys.readouterr().err
    assert main(["export", "filter-c", "quadrotor_oracle_sim", "--node", "nope", "-o", str(tmp_path / "out")]) == 2
    assert "no safety-filter node 'nope' (its safety-filter nodes: filter)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@needs_cvxpygen
def test_the_command_exports_the_configs_filter(tmp_path: Path, capsys) -> None:
    assert main(["export", "filter-c", "husky_oracle_sim", "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "safety-filter node 'filter' (UnicycleLookaheadModel)" in out
    assert "2 inputs, 8 barrier rows" in out
    assert (tmp_path / "out" / "filter_qp.h").is_file()
