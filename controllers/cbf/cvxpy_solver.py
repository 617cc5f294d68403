"""The filter QP in cvxpy: with Parameters (DPP), the readable reference, and rebuilt from constants every tick.

:func:`build_problem` is the one written-down formulation (see aegis.controllers.cbf.qp); the
cvxpygen path generates its C code from this same problem. Two choices in how it is written:

- The variable is the scaled input ``v = sqrt(W) u`` (``u = v / sqrt(W)`` in the rows and bounds),
  so the cost is ``|v - sqrt(W) u_nom|^2``: equal weights on every variable. The optimum is the
  same; a first-order solver (OSQP, in the generated code too) converges much faster on it when the
  weights differ (the unicycle's are 1 and l^2 = 0.04: on the benchmark's states it otherwise ran
  into OSQP's 4000 iterations).
- The cost is ``v' v - 2 (sqrt(W) u_nom)' v`` rather than ``sum_squares(v - sqrt(W) u_nom)``: same
  minimiser, but the latter makes cvxpy add a helper variable per input (7 variables instead of 4
  for three inputs), which every generated solver would then carry.

The reference solver is Clarabel (interior point, silent) with its tolerances tightened to 1e-10
(:data:`REFERENCE_SETTINGS`): at its defaults (1e-8) an interior-point answer stays about 1e-4
inside a row that is barely met, which is more than the fast paths' own error. OSQP through cvxpy
would print "Polishing not needed" on every solve (cvxpy turns polishing on).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import numpy as np

from aegis.controllers.cbf.qp import QpSolution, QpSpec

REFERENCE_SOLVER = "CLARABEL"
REFERENCE_SETTINGS = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10, "tol_ktratio": 1e-8}
"""Clarabel's tolerances for the reference (its defaults are 1e-8, 1e-8, 1e-8, 1e-6)."""
_SOLVED = ("optimal", "optimal_inaccurate")


def _formulation(spec: QpSpec, v: cp.Variable, s: cp.Variable, nominal: Any, a: Any, b: Any) -> cp.Problem:
    """The QP over the scaled inputs ``v`` and the slack ``s``, with data ``nominal``, ``a``, ``b`` (Parameters or constants)."""
    sqrt_w = np.sqrt(np.asarray(spec.weights))
    u = cp.multiply(1.0 / sqrt_w, v)
    cost = cp.quad_form(v, np.eye(spec.n_inputs)) - 2.0 * cp.multiply(sqrt_w, nominal) @ v + spec.slack_quadratic * cp.square(s) + spec.slack_linear * s
    constraints = [a @ u + s >= b, v >= sqrt_w * np.asarray(spec.lower), v <= sqrt_w * np.asarray(spec.upper), s >= 0.0]
    return cp.Problem(cp.Minimize(cost), constraints)


@dataclass(frozen=True)
class CvxpyProblem:
    """The parametrised problem and its handles: variables ``v`` (m, scaled inputs) and ``s``, parameters ``nominal`` (m), ``a`` (K, m), ``b`` (K).

    ``input_scale`` is sqrt(W): the inputs are ``v / input_scale``.
    """

    problem: cp.Problem
    v: cp.Variable
    s: cp.Variable
    nominal: cp.Parameter
    a: cp.Parameter
    b: cp.Parameter
    input_scale: np.ndarray


def build_problem(spec: QpSpec) -> CvxpyProblem:
    """The filter QP with Parameters named ``u_nom``, ``A``, ``b`` (DPP: solved repeatedly without re-canonicalising)."""
    m, k = spec.n_inputs, spec.max_rows
    v, s = cp.Variable(m, name="v"), cp.Variable(name="s")
    nominal, a, b = cp.Parameter(m, name="u_nom"), cp.Parameter((k, m), name="A"), cp.Parameter(k, name="b")
    problem = _formulation(spec, v, s, nominal, a, b)
    if not problem.is_dpp():
        raise AssertionError("the filter QP must be DPP")  # a formulation bug, caught by the tests
    nominal.value, a.value, b.value = np.zeros(m), np.zeros((k, m)), np.zeros(k)
    return CvxpyProblem(problem, v, s, nominal, a, b, np.sqrt(np.asarray(spec.weights)))


class CvxpyQp:
    """The reference path: the Parameter problem, built once; per tick the parameters are set and cvxpy solves it."""

    name = "cvxpy-param"

    def __init__(self, spec: QpSpec, solver: str = REFERENCE_SOLVER) -> None:
        self.spec = spec
        self.solver = solver
        self.problem = build_problem(spec)
        self._solution = QpSolution(np.zeros(spec.n_inputs), 0.0, "", False)

    def reset(self) -> None:
        """Nothing carried between solves."""

    def solve(self, nominal: np.ndarray, a: np.ndarray, b: np.ndarray) -> QpSolution:
        p = self.problem
        p.nominal.value, p.a.value, p.b.value = nominal, a, b
        return _solve(p.problem, p.v, p.s, p.input_scale, self.solver, self._solution)


class CvxpyRebuildQp:
    """The naive path, for the benchmark: a new cvxpy problem from constants on every tick (canonicalised each time)."""

    name = "cvxpy-rebuild"

    def __init__(self, spec: QpSpec, solver: str = REFERENCE_SOLVER) -> None:
        self.spec = spec
        self.solver = solver
        self._input_scale = np.sqrt(np.asarray(spec.weights))
        self._solution = QpSolution(np.zeros(spec.n_inputs), 0.0, "", False)

    def reset(self) -> None:
        """Nothing carried between solves."""

    def solve(self, nominal: np.ndarray, a: np.ndarray, b: np.ndarray) -> QpSolution:
        v, s = cp.Variable(self.spec.n_inputs), cp.Variable()
        problem = _formulation(self.spec, v, s, np.array(nominal), np.array(a), np.array(b))
        return _solve(problem, v, s, self._input_scale, self.solver, self._solution)


def _solve(problem: cp.Problem, v: cp.Variable, s: cp.Variable, input_scale: np.ndarray, solver: str, out: QpSolution) -> QpSolution:
    started = time.perf_counter()
    try:
        problem.solve(solver=solver, **(REFERENCE_SETTINGS if solver == REFERENCE_SOLVER else {}))
        status = str(problem.status)
    except (cp.error.SolverError, ValueError, ArithmeticError) as exc:
        status = f"solver error: {exc}"
    out.solve_time_s = time.perf_counter() - started
    out.status = status
    out.solved = status in _SOLVED and v.value is not None
    if out.solved:
        out.u = np.array(v.value, dtype=float) / input_scale
        out.slack = float(s.value)
    else:
        out.u = np.full(len(out.u), np.nan)
        out.slack = np.nan
    return out
