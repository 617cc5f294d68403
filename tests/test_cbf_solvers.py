"""The filter QP's solve paths on their own: one DPP formulation, agreement with the reference, the closed form's cases, silence, failures.

Random QPs here are harder than the filter's (eight random rows, often conflicting, so the
slack is used); the paths must still agree with the cvxpy reference (Clarabel at 1e-10) within
TOLERANCE. The cvxpygen tests compile C (about 15 s) and are marked slow.
"""

from __future__ import annotations

import os

import cvxpy as cp
import numpy as np
import pytest

from aegis.controllers.cbf import QpSpec
from aegis.controllers.cbf.closed_form import ClosedFormQp
from aegis.controllers.cbf.cvxpy_solver import CvxpyQp, CvxpyRebuildQp, build_problem
from aegis.controllers.cbf.cvxpygen_solver import (
    CodegenUnavailable,
    CvxpygenQp,
    cache_key,
    missing_build_tools,
)
from aegis.controllers.cbf.osqp_solver import OsqpQp
from aegis.controllers.cbf.qp import INACTIVE_ROW_B, objective

TOLERANCE = 1e-3
"""Largest allowed difference of an input from the reference (the paths run OSQP at 1e-6; measured <= 2e-4 here)."""

SPEC = QpSpec.create(weights=[1.0, 1.0, 2.0], lower=[-8.0, -8.0, -6.0], upper=[8.0, 8.0, 10.0], max_rows=8)


def _random_qps(n: int, seed: int, spec: QpSpec = SPEC) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(nominal, a, b): unit-norm rows, 1 to K of them used, right-hand sides from slack to conflicting."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        used = rng.integers(1, spec.max_rows + 1)
        a = np.zeros((spec.max_rows, spec.n_inputs))
        b = np.full(spec.max_rows, INACTIVE_ROW_B)
        rows = rng.normal(size=(used, spec.n_inputs))
        a[:used] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        b[:used] = rng.normal(scale=4.0, size=used)
        out.append((rng.normal(scale=6.0, size=spec.n_inputs), a, b))
    return out


@pytest.fixture(scope="module")
def qps_and_reference() -> tuple[list, np.ndarray, np.ndarray]:
    qps = _random_qps(300, seed=11)
    reference = CvxpyQp(SPEC)
    us, slacks = [], []
    for nominal, a, b in qps:
        solution = reference.solve(nominal, a, b)
        assert solution.solved, solution.status
        us.append(solution.u.copy())
        slacks.append(solution.slack)
    return qps, np.array(us), np.array(slacks)


def test_one_dpp_formulation_without_helper_variables() -> None:
    problem = build_problem(SPEC).problem
    assert problem.is_dpp()
    data, _, _ = problem.get_problem_data(cp.OSQP)
    assert data["P"].shape == (SPEC.n_inputs + 1, SPEC.n_inputs + 1)  # u and s only


@pytest.mark.parametrize("make", [OsqpQp, ClosedFormQp, CvxpyRebuildQp], ids=["osqp-direct", "closed-form", "cvxpy-rebuild"])
def test_paths_agree_with_the_reference_on_random_qps(make, qps_and_reference) -> None:
    qps, reference_u, reference_slack = qps_and_reference
    solver = make(SPEC)
    count = 60 if make is CvxpyRebuildQp else len(qps)
    for (nominal, a, b), u_ref, s_ref in zip(qps[:count], reference_u, reference_slack):
        solution = solver.solve(nominal, a, b)
        assert solution.solved, solution.status
        np.testing.assert_allclose(solution.u, u_ref, atol=TOLERANCE)
        assert solution.slack == pytest.approx(s_ref, abs=TOLERANCE)
        # Same optimum: the costs agree closely (the reference is the more accurate one).
        assert objective(SPEC, nominal, solution.u, solution.slack) == pytest.approx(objective(SPEC, nominal, u_ref, s_ref), rel=1e-3, abs=1e-3)
    assert (reference_slack > 1e-6).sum() > 30  # the set does exercise the slack


def test_closed_form_passes_a_safe_nominal_through_exactly_without_osqp() -> None:
    solver = ClosedFormQp(SPEC)
    a = np.zeros((8, 3))
    b = np.full(8, INACTIVE_ROW_B)
    a[0], b[0] = (1.0, 0.0, 0.0), -1.0  # x >= -1
    nominal = np.array([0.5, -3.0, 2.0])
    solution = solver.solve(nominal, a, b)
    assert solution.u.tolist() == nominal.tolist() and solution.slack == 0.0
    clipped = solver.solve(np.array([0.5, -30.0, 2.0]), a, b)  # outside the bounds, rows met: the box projection
    assert clipped.u.tolist() == [0.5, -8.0, 2.0]
    assert (solver.closed_form_solves, solver.osqp_solves) == (2, 0)


def test_closed_form_single_row_is_the_weighted_projection() -> None:
    solver = ClosedFormQp(SPEC)
    a = np.zeros((8, 3))
    b = np.full(8, INACTIVE_ROW_B)
    a[0], b[0] = (0.0, 0.6, 0.8), 2.0
    nominal = np.array([1.0, 0.0, 0.0])
    solution = solver.solve(nominal, a, b)
    # u = u_nom + (d / a' W^-1 a) W^-1 a with d = 2, a' W^-1 a = 0.36 + 0.32.
    expected = nominal + (2.0 / 0.68) * np.array([0.0, 0.6, 0.4])
    np.testing.assert_allclose(solution.u, expected, atol=1e-12)
    assert solution.slack == 0.0 and solution.status == "closed form"
    reference = CvxpyQp(SPEC).solve(nominal, a, b)
    np.testing.assert_allclose(solution.u, reference.u, atol=1e-7)


def test_closed_form_slack_branch_matches_the_reference() -> None:
    wide = QpSpec.create(weights=[1.0, 1.0], lower=[-1e3, -1e3], upper=[1e3, 1e3], max_rows=2)
    a = np.array([[1.0, 0.0], [0.0, 0.0]])
    b = np.array([200.0, INACTIVE_ROW_B])  # a multiplier of 400 > slack_linear: the slack takes part
    solution = ClosedFormQp(wide).solve(np.zeros(2), a, b)
    reference = CvxpyQp(wide).solve(np.zeros(2), a, b)
    assert solution.status == "closed form" and solution.slack > 1.0
    np.testing.assert_allclose(solution.u, reference.u, atol=1e-6)
    assert solution.slack == pytest.approx(reference.slack, abs=1e-6)


def test_closed_form_solves_two_active_rows_and_a_binding_bound_exactly() -> None:
    solver = ClosedFormQp(SPEC)
    a = np.zeros((8, 3))
    b = np.full(8, INACTIVE_ROW_B)
    a[0], b[0] = (1.0, 0.0, 0.0), 1.0
    a[1], b[1] = (0.0, 1.0, 0.0), 1.0
    solution = solver.solve(np.zeros(3), a, b)  # two rows active: u = (1, 1, 0)
    assert solution.status == "closed form" and solution.u.tolist() == [1.0, 1.0, 0.0] and solution.slack == 0.0
    nominal = np.array([0.0, 0.0, 20.0])  # beyond the upper bound 10 on the third input, with a row violated
    a[1], b[1] = (0.0, 0.6, 0.8), 9.0  # met at the optimum only with the third input on its bound
    solution = solver.solve(nominal, a, b)
    reference = CvxpyQp(SPEC).solve(nominal, a, b)
    assert solution.status == "closed form" and solution.u[2] == 10.0
    np.testing.assert_allclose(solution.u, reference.u, atol=1e-7)
    assert solver.osqp_solves == 0


def test_closed_form_falls_through_to_osqp_when_its_guesses_run_out() -> None:
    solver = ClosedFormQp(SPEC, max_tries=0)  # no guesses beyond case 2, which two active rows defeat
    a = np.zeros((8, 3))
    b = np.full(8, INACTIVE_ROW_B)
    a[0], b[0] = (1.0, 0.0, 0.0), 1.0
    a[1], b[1] = (0.0, 1.0, 0.0), 1.0
    solution = solver.solve(np.zeros(3), a, b)
    assert solver.osqp_solves == 1 and solution.status.startswith("closed form n/a -> osqp")
    np.testing.assert_allclose(solution.u, [1.0, 1.0, 0.0], atol=1e-4)


def test_closed_form_answers_are_optimal_where_it_answers(qps_and_reference) -> None:
    """Where the closed form answers it is exact: feasible to rounding, and no costlier than the reference."""
    qps, reference_u, reference_slack = qps_and_reference
    solver = ClosedFormQp(SPEC)
    lower, upper = np.array(SPEC.lower), np.array(SPEC.upper)
    for (nominal, a, b), u_ref, s_ref in zip(qps, reference_u, reference_slack):
        solution = solver.solve(nominal, a, b)
        if solution.status != "closed form":
            continue
        assert np.all(a @ solution.u + solution.slack >= b - 1e-9) and solution.slack >= 0.0
        assert np.all(solution.u >= lower - 1e-12) and np.all(solution.u <= upper + 1e-12)
        assert objective(SPEC, nominal, solution.u, solution.slack) <= objective(SPEC, nominal, u_ref, s_ref) + 1e-7
    # two or three rows, bounds, one row with the slack: most are explicit (cases 1 and 2 alone: about a quarter)
    assert solver.closed_form_solves > 0.5 * len(qps)


@pytest.mark.parametrize("make", [OsqpQp, ClosedFormQp], ids=["osqp-direct", "closed-form"])
def test_setup_and_100_solves_write_nothing_to_stdout_or_stderr(make, capfd) -> None:
    solver = make(SPEC)
    for nominal, a, b in _random_qps(100, seed=5):
        solver.solve(nominal, a, b)
    # Interior answers (nothing active) are the ones osqp's polishing would announce.
    for _ in range(5):
        solver.solve(np.zeros(3), np.zeros((8, 3)), np.full(8, INACTIVE_ROW_B))
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_the_silence_check_would_catch_osqps_polishing_message(capfd) -> None:
    """The reason polishing is off: with it on, osqp 1.1.x prints from C on a solve with nothing active."""
    import osqp
    import scipy.sparse as sp

    solver = osqp.OSQP()
    solver.setup(sp.csc_matrix(np.eye(1)), np.array([0.0]), sp.csc_matrix(np.eye(1)), np.array([-1.0]), np.array([1.0]), verbose=False, polishing=True)
    solver.solve(raise_error=False)
    out = capfd.readouterr().out
    if osqp.__version__.startswith("1.1"):
        assert "Polishing not needed" in out


def test_a_failed_osqp_solve_is_a_status_not_an_exception() -> None:
    solver = OsqpQp(SPEC, max_iterations=1)
    nominal, a, b = _random_qps(1, seed=3)[0]
    solution = solver.solve(nominal, a, b)
    assert not solution.solved and "maximum iterations" in solution.status
    healthy = OsqpQp(SPEC)
    assert healthy.solve(nominal, a, b).solved


def test_cache_key_names_the_problem() -> None:
    assert cache_key(SPEC) == cache_key(QpSpec.create([1.0, 1.0, 2.0], [-8, -8, -6], [8, 8, 10]))
    assert cache_key(SPEC) != cache_key(QpSpec.create([1.0, 1.0, 2.0], [-8, -8, -6], [8, 8, 10], max_rows=6))
    assert cache_key(SPEC) != cache_key(QpSpec.create([1.0, 1.0, 1.0], [-8, -8, -6], [8, 8, 10]))


def test_cvxpygen_without_a_compiler_is_unavailable_with_the_reason(tmp_path, monkeypatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("CC", raising=False)
    assert "compiler" in (missing_build_tools() or "")
    with pytest.raises(CodegenUnavailable, match="no C compiler"):
        CvxpygenQp(SPEC, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_spec_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="below upper"):
        QpSpec.create([1.0], [1.0], [0.0])
    with pytest.raises(ValueError, match="weights must be > 0"):
        QpSpec.create([0.0], [-1.0], [1.0])
    with pytest.raises(ValueError, match="same length"):
        QpSpec.create([1.0, 1.0], [-1.0], [1.0])


# --- cvxpygen: generated, compiled, cached ------------------------------------------------------


@pytest.fixture(scope="module")
def cvxpygen_cache(tmp_path_factory) -> str:
    reason = missing_build_tools()
    if reason is not None:
        pytest.skip(f"cvxpygen cannot build here: {reason}")
    return str(tmp_path_factory.mktemp("cvxpygen"))


@pytest.mark.slow
def test_cvxpygen_builds_once_caches_and_agrees_with_the_reference(cvxpygen_cache: str, qps_and_reference, capfd) -> None:
    solver = CvxpygenQp(SPEC, cache_dir=cvxpygen_cache)  # generates and compiles (quietly)
    assert solver.build_dir.is_dir() and solver.build_dir.name == cache_key(SPEC)
    capfd.readouterr()
    qps, reference_u, reference_slack = qps_and_reference
    for (nominal, a, b), u_ref, s_ref in zip(qps, reference_u, reference_slack):
        solution = solver.solve(nominal, a, b)
        assert solution.solved, solution.status
        np.testing.assert_allclose(solution.u, u_ref, atol=TOLERANCE)
        assert solution.slack == pytest.approx(s_ref, abs=TOLERANCE)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""  # 300 solves, silent
    mtime = os.path.getmtime(solver.build_dir)
    again = CvxpygenQp(SPEC, cache_dir=cvxpygen_cache)  # loads, does not rebuild
    assert os.path.getmtime(again.build_dir) == mtime
    nominal, a, b = qps[0]
    np.testing.assert_allclose(again.solve(nominal, a, b).u, reference_u[0], atol=TOLERANCE)
