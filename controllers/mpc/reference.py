"""The readable cvxpy reference of an :class:`MpcProblem` (Parameters, DPP), and the QP-size measurement of two formulations.

:class:`CvxpyMpc` writes the problem as the module doc of :mod:`aegis.controllers.mpc.problem`
states it, over ONE flat cvxpy Variable z = [x_1..x_N, u_0..u_{N-1}] with slices per step, and with
the measured state, the reference and (time-varying problems) the per-step model as Parameters, so
cvxpy compiles it once (DPP) and each tick only sets values. The fast path
(:class:`aegis.controllers.mpc.linear.LinearMpc`) must agree with it (tests/test_mpc_linear.py).
:func:`solve_rebuilt` builds the same formulation from constants and solves it once: what "cvxpy
rebuilt every tick" costs.

Why one flat variable: the tracking cost written per step, sum_squares(W^1/2 (x_k - r_k)) with a
Variable per step, makes cvxpy introduce a helper variable and an equality row for every residual,
which roughly doubles the QP that reaches the solver. Here the cost is expanded instead:
(z - r)' W (z - r) = z' W z - 2 (W r)' z + const, a quad_form of the Variable itself (no helper)
plus a Parameter-linear term. :func:`per_step_problem` builds the per-step formulation only to
measure the difference with :func:`qp_size`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cvxpy as cp
import numpy as np
import scipy.linalg
import scipy.sparse as sp

from aegis.controllers.mpc.linear import MpcInfo
from aegis.controllers.mpc.problem import MpcProblem

Value = Any  # a cvxpy Parameter or a numpy array: the formulation is the same for both


def formulate(
    problem: MpcProblem,
    z: cp.Variable,
    x0: Value,
    reference: Value,
    a: Sequence[Value],
    b: Sequence[Value],
    c: Sequence[Value],
    a0_x0: Value | None = None,
) -> cp.Problem:
    """The MPC over the flat ``z``: ``reference`` = [r_1..r_N, s_0..s_{N-1}] stacked; (a, b, c) per step.

    ``a0_x0`` replaces ``a[0] @ x0`` when both are Parameters (their product is not DPP).
    """
    n, m, horizon = problem.n, problem.m, problem.horizon
    nx, nxu = horizon * n, horizon * (n + m)

    def x(k: int) -> cp.Expression:  # x_k for k = 1 .. N
        return z[(k - 1) * n : k * n]

    def u(k: int) -> cp.Expression:
        return z[nx + k * m : nx + (k + 1) * m]

    weight = sp.csc_matrix(scipy.linalg.block_diag(*([problem.q] * (horizon - 1) + [problem.p] + [problem.r] * horizon)))
    cost = cp.quad_form(z, cp.psd_wrap(weight)) - 2.0 * reference @ (weight @ z)
    first = a0_x0 if a0_x0 is not None else a[0] @ x0
    constraints = [x(1) == first + b[0] @ u(0) + c[0]]
    constraints += [x(k + 1) == a[k] @ x(k) + b[k] @ u(k) + c[k] for k in range(1, horizon)]
    u_all = z[nx:nxu]
    for bound, sign in ((problem.u_min, 1.0), (problem.u_max, -1.0)):
        tiled = np.tile(bound, horizon)
        finite = np.flatnonzero(np.isfinite(tiled))
        if len(finite):
            constraints.append(sign * u_all[finite] >= sign * tiled[finite])
    for bound, sign in ((problem.x_min, 1.0), (problem.x_max, -1.0)):
        limited = np.flatnonzero(np.isfinite(bound))
        if len(limited):
            index = (np.arange(horizon)[:, None] * n + limited[None, :]).ravel()
            constraints.append(sign * z[index] >= sign * np.tile(bound[limited], horizon))
    return cp.Problem(cp.Minimize(cost), constraints)


class CvxpyMpc:
    """:class:`MpcProblem` in cvxpy with Parameters; ``compute`` has LinearMpc's signature and result.

    ``solver`` is any cvxpy QP solver name (default CLARABEL, an interior-point method: the accurate
    reference); ``solver_options`` go to ``Problem.solve``.
    """

    def __init__(self, problem: MpcProblem, solver: str = cp.CLARABEL, solver_options: dict[str, Any] | None = None) -> None:
        self.problem = problem
        self.solver = solver
        self.solver_options = dict(solver_options or {})
        n, m, horizon = problem.n, problem.m, problem.horizon
        self._n, self._m, self._horizon = n, m, horizon
        self.z = cp.Variable(horizon * (n + m), name="z")
        self.x0 = cp.Parameter(n, name="x0", value=np.zeros(n))
        self.reference = cp.Parameter(horizon * (n + m), name="reference", value=np.zeros(horizon * (n + m)))
        self.a0_x0: cp.Parameter | None = None
        if problem.time_varying:
            self.a = [cp.Parameter((n, n), name=f"a{k}", value=problem.a) for k in range(horizon)]
            self.b = [cp.Parameter((n, m), name=f"b{k}", value=problem.b) for k in range(horizon)]
            self.c = [cp.Parameter(n, name=f"c{k}", value=np.zeros(n)) for k in range(horizon)]
            self.a0_x0 = cp.Parameter(n, name="a0_x0", value=np.zeros(n))
            a, b, c = self.a, self.b, self.c
        else:
            a, b, c = [problem.a] * horizon, [problem.b] * horizon, [np.zeros(n)] * horizon
        self.cvxpy_problem = formulate(problem, self.z, self.x0, self.reference, a, b, c, self.a0_x0)
        if not self.cvxpy_problem.is_dpp():
            raise AssertionError("the reference formulation must be DPP")

    def reset(self) -> None:
        """Nothing to clear (kept for the controller contract)."""

    def set_dynamics(self, a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None) -> None:
        """Per-step model, as :meth:`LinearMpc.set_dynamics`."""
        if not self.problem.time_varying:
            raise ValueError("set_dynamics needs a problem built with time_varying=True")
        for k in range(self._horizon):
            self.a[k].value = a[k]
            self.b[k].value = b[k]
            self.c[k].value = np.zeros(self._n) if c is None else c[k]

    def compute(self, x0: np.ndarray, x_ref: np.ndarray, u_ref: np.ndarray | None = None) -> tuple[np.ndarray, MpcInfo]:
        """As :meth:`LinearMpc.compute` (solve time: the solver's own, as cvxpy reports it)."""
        self.x0.value = np.asarray(x0, dtype=float)
        self.reference.value = stacked_reference(self.problem, x_ref, u_ref)
        if self.a0_x0 is not None:
            self.a0_x0.value = self.a[0].value @ self.x0.value
        return _solve(self.cvxpy_problem, self.z, self.problem, self.x0.value, self.solver, self.solver_options)


def solve_rebuilt(
    problem: MpcProblem,
    x0: np.ndarray,
    x_ref: np.ndarray,
    u_ref: np.ndarray | None = None,
    dynamics: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None,
    solver: str = cp.CLARABEL,
    solver_options: dict[str, Any] | None = None,
) -> tuple[np.ndarray, MpcInfo]:
    """Build the formulation from constants and solve it once (``dynamics``: per-step (A, B, c) of a time-varying problem)."""
    n, m, horizon = problem.n, problem.m, problem.horizon
    if dynamics is None:
        a, b, c = [problem.a] * horizon, [problem.b] * horizon, [np.zeros(n)] * horizon
    else:
        a, b = list(dynamics[0]), list(dynamics[1])
        c = [np.zeros(n)] * horizon if dynamics[2] is None else list(dynamics[2])
    z = cp.Variable(horizon * (n + m))
    x0 = np.asarray(x0, dtype=float)
    built = formulate(problem, z, x0, stacked_reference(problem, x_ref, u_ref), a, b, c)
    return _solve(built, z, problem, x0, solver, dict(solver_options or {}))


def stacked_reference(problem: MpcProblem, x_ref: np.ndarray, u_ref: np.ndarray | None) -> np.ndarray:
    """[r_1..r_N, s_0..s_{N-1}] from x_ref ((N+1, n) or (n,)) and u_ref ((N, m), (m,) or None: zero)."""
    n, m, horizon = problem.n, problem.m, problem.horizon
    xr = np.broadcast_to(np.asarray(x_ref, dtype=float), (horizon + 1, n))
    ur = np.zeros((horizon, m)) if u_ref is None else np.broadcast_to(np.asarray(u_ref, dtype=float), (horizon, m))
    return np.concatenate([xr[1:].ravel(), ur.ravel()])


def _solve(problem_cp: cp.Problem, z: cp.Variable, problem: MpcProblem, x0: np.ndarray, solver: str, options: dict[str, Any]) -> tuple[np.ndarray, MpcInfo]:
    n, m, horizon = problem.n, problem.m, problem.horizon
    try:
        problem_cp.solve(solver=solver, **options)
    except cp.error.SolverError as error:
        return _failure(problem, f"solver error: {error}")
    status = problem_cp.status
    if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or z.value is None:
        return _failure(problem, str(status))
    values = np.asarray(z.value)
    x_pred = np.vstack([x0, values[: horizon * n].reshape(horizon, n)])
    u_pred = values[horizon * n :].reshape(horizon, m)
    stats = problem_cp.solver_stats
    return u_pred[0].copy(), MpcInfo(
        True, str(status), int(stats.num_iters or 0), float(stats.solve_time or 0.0), float(problem_cp.value), x_pred, u_pred
    )


def _failure(problem: MpcProblem, status: str) -> tuple[np.ndarray, MpcInfo]:
    n, m, horizon = problem.n, problem.m, problem.horizon
    return np.full(m, np.nan), MpcInfo(
        False, status, 0, 0.0, float("nan"), np.full((horizon + 1, n), np.nan), np.full((horizon, m), np.nan)
    )


def per_step_problem(problem: MpcProblem) -> cp.Problem:
    """The same (time-invariant) MPC written the common per-step way: a Variable per x_k and u_k, sum_squares residuals. For measuring only."""
    n, m, horizon = problem.n, problem.m, problem.horizon
    x = [cp.Variable(n) for _ in range(horizon + 1)]
    u = [cp.Variable(m) for _ in range(horizon)]
    x0 = cp.Parameter(n, value=np.zeros(n))
    r = [cp.Parameter(n, value=np.zeros(n)) for _ in range(horizon + 1)]
    s = [cp.Parameter(m, value=np.zeros(m)) for _ in range(horizon)]
    q_half, r_half, p_half = (_square_root(w) for w in (problem.q, problem.r, problem.p))
    cost = cp.sum_squares(p_half @ (x[horizon] - r[horizon]))
    constraints = [x[0] == x0]
    u_lo, u_hi = np.isfinite(problem.u_min), np.isfinite(problem.u_max)
    x_lo, x_hi = np.isfinite(problem.x_min), np.isfinite(problem.x_max)
    for k in range(horizon):
        cost += cp.sum_squares(q_half @ (x[k] - r[k])) + cp.sum_squares(r_half @ (u[k] - s[k]))
        constraints.append(x[k + 1] == problem.a @ x[k] + problem.b @ u[k])
        if u_lo.any():
            constraints.append(u[k][np.flatnonzero(u_lo)] >= problem.u_min[u_lo])
        if u_hi.any():
            constraints.append(u[k][np.flatnonzero(u_hi)] <= problem.u_max[u_hi])
        if x_lo.any():
            constraints.append(x[k + 1][np.flatnonzero(x_lo)] >= problem.x_min[x_lo])
        if x_hi.any():
            constraints.append(x[k + 1][np.flatnonzero(x_hi)] <= problem.x_max[x_hi])
    return cp.Problem(cp.Minimize(cost), constraints)


def qp_size(problem: cp.Problem) -> dict[str, int]:
    """The QP cvxpy hands to OSQP: variables, equality and inequality rows, non-zeros of P and of the constraint matrix."""
    data, _, _ = problem.get_problem_data(cp.OSQP)
    return {
        "variables": int(data["n_var"]),
        "equalities": int(data["n_eq"]),
        "inequalities": int(data["n_ineq"]),
        "nnz_P": int(data["P"].nnz),
        "nnz_constraints": int(data["A"].nnz + data["F"].nnz),
    }


def _square_root(weight: np.ndarray) -> np.ndarray:
    """W^(1/2) of a symmetric positive semi-definite matrix (so that ||W^(1/2) e||^2 = e' W e)."""
    values, vectors = np.linalg.eigh(weight)
    return (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T
