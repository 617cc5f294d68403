"""Two QP solvers behind one small interface, set up once and updated per solve: OSQP (ADMM, warm-started) and Clarabel (interior point).

Both take the problem as OSQP writes it, minimise 1/2 z' P z + q' z subject to l <= A z <= u, with
a fixed sparsity pattern; per solve q, l, u and A's data may change. Which rows are equalities
and which bounds are finite is read from the l, u given at set-up and must not change afterwards
(an equality row stays one; an infinite bound stays infinite).

Why two: OSQP is fast when warm-started and few constraints switch, but its iteration count grows
by orders of magnitude when strongly pulled constraints switch (aegis.bench.mpc's scenario row
measured first solves of 1,000 to 3,500 iterations, 20 to 40 ms). Clarabel takes 8 to 15
iterations whatever the active set, so its time barely moves; it does not warm-start. Neither
prints: OSQP runs with polishing off (osqp 1.1 prints "Polishing not needed" otherwise), Clarabel
with verbose off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import clarabel
import numpy as np
import osqp
import scipy.sparse as sp

from aegis.controllers.mpc.linear import ACCEPTED_STATUS, OsqpSettings

SolverName = Literal["osqp", "clarabel"]

_SOLVED_INACCURATE, _MAX_ITER_REACHED = 2, 7  # osqp.SolverStatus


@dataclass(slots=True)
class QpResult:
    """One solve: ``x`` and ``y`` (primal, dual; None when not ``ok``), the solver's status, iterations and own time.

    ``capped``: the solve stopped at its iteration limit; ``x`` and ``y`` are then its last (finite)
    iterate, not a solution, for the caller to check or to continue from (None if not finite).
    """

    ok: bool
    status: str
    iterations: int
    solve_time_s: float
    objective: float
    x: np.ndarray | None
    y: np.ndarray | None
    capped: bool = False


class QpSolver(Protocol):
    def solve(
        self, q: np.ndarray, lower: np.ndarray, upper: np.ndarray, a_data: np.ndarray, warm: tuple[np.ndarray, np.ndarray] | None, max_iter: int
    ) -> QpResult:
        """Solve with this linear cost, bounds and constraint data (same pattern as at set-up), from ``warm`` (x, y) if given, in at most ``max_iter`` iterations."""


class OsqpQp:
    """OSQP set up once; ``warm`` (x, y) starts the solve there (None: from OSQP's last iterate as it is)."""

    def __init__(
        self, p: sp.csc_matrix, q: np.ndarray, a: sp.csc_matrix, lower: np.ndarray, upper: np.ndarray, settings: OsqpSettings = OsqpSettings()
    ) -> None:
        self._solver = osqp.OSQP()
        self._solver.setup(sp.triu(p, format="csc"), q, a, lower, upper, **settings.options())
        self._max_iter = settings.max_iter

    def solve(
        self, q: np.ndarray, lower: np.ndarray, upper: np.ndarray, a_data: np.ndarray, warm: tuple[np.ndarray, np.ndarray] | None, max_iter: int
    ) -> QpResult:
        self._solver.update(q=q, l=lower, u=upper, Ax=a_data)
        if max_iter != self._max_iter:  # no refactorisation: only the loop's bound changes
            self._solver.update_settings(max_iter=max_iter)
            self._max_iter = max_iter
        if warm is not None:
            self._solver.warm_start(x=warm[0], y=warm[1])
        result = self._solver.solve(raise_error=False)
        info = result.info
        finite = bool(np.isfinite(result.x).all() and np.isfinite(result.y).all())
        # at its limit OSQP calls an iterate within 10x its tolerances "solved inaccurate": that is a capped iterate too
        capped = info.status_val == _MAX_ITER_REACHED or (info.status_val == _SOLVED_INACCURATE and info.iter >= max_iter)
        ok = info.status_val in ACCEPTED_STATUS and finite and not capped
        keep = ok or (capped and finite)
        return QpResult(
            ok, str(info.status), int(info.iter), float(info.run_time), float(info.obj_val), result.x if keep else None, result.y if keep else None, capped
        )


class ClarabelQp:
    """Clarabel set up once (presolve off, so its data can be updated); l <= A z <= u becomes zero and non-negative cones.

    Rows with l == u at set-up are equalities; finite upper bounds give rows A z <= u, finite lower
    bounds -A z <= -l. The map from A's data to the stacked matrix's is computed here, once.
    """

    def __init__(
        self, p: sp.csc_matrix, q: np.ndarray, a: sp.csc_matrix, lower: np.ndarray, upper: np.ndarray, tolerance: float = 1e-7, max_iter: int = 200
    ) -> None:
        a = sp.csc_matrix(a)
        self._eq = np.flatnonzero(lower == upper)
        self._up = np.flatnonzero(np.isfinite(upper) & (lower != upper))
        self._lo = np.flatnonzero(np.isfinite(lower) & (lower != upper))
        rows = np.concatenate([self._eq, self._up, self._lo])
        sign = np.concatenate([np.ones(len(self._eq) + len(self._up)), -np.ones(len(self._lo))])
        select = sp.csr_matrix((sign, (np.arange(len(rows)), rows)), shape=(len(rows), a.shape[0]))
        marker = sp.csc_matrix((np.arange(1, a.nnz + 1, dtype=float), a.indices, a.indptr), shape=a.shape)
        stacked = sp.csc_matrix(select @ marker)
        stacked.sort_indices()
        self._source = np.abs(stacked.data).astype(np.int64) - 1
        self._sign = np.sign(stacked.data)
        self._stacked = stacked
        self._stacked_data = a.data[self._source] * self._sign
        self._b = np.empty(len(rows))
        self._fill_b(lower, upper)
        settings = clarabel.DefaultSettings()
        settings.verbose = False
        settings.presolve_enable = False
        settings.tol_gap_abs = settings.tol_gap_rel = settings.tol_feas = tolerance
        settings.max_iter = max_iter  # fixed here: an interior point method takes 8 to 15 iterations whatever the active set
        cones = [clarabel.ZeroConeT(len(self._eq)), clarabel.NonnegativeConeT(len(self._up) + len(self._lo))]
        matrix = sp.csc_matrix((self._stacked_data, stacked.indices, stacked.indptr), shape=stacked.shape)
        self._solver = clarabel.DefaultSolver(sp.triu(p, format="csc"), q, matrix, self._b, cones, settings)
        self._n_rows = a.shape[0]

    def _fill_b(self, lower: np.ndarray, upper: np.ndarray) -> None:
        ne, nu = len(self._eq), len(self._up)
        np.take(upper, self._eq, out=self._b[:ne])
        np.take(upper, self._up, out=self._b[ne : ne + nu])
        np.negative(np.take(lower, self._lo), out=self._b[ne + nu :])

    def solve(
        self, q: np.ndarray, lower: np.ndarray, upper: np.ndarray, a_data: np.ndarray, warm: tuple[np.ndarray, np.ndarray] | None, max_iter: int
    ) -> QpResult:
        """``warm`` is ignored (Clarabel does not warm-start) and ``max_iter`` too (the set-up's limit holds for every solve)."""
        np.multiply(a_data[self._source], self._sign, out=self._stacked_data)
        self._fill_b(lower, upper)
        if not (np.isfinite(self._b).all() and np.isfinite(self._stacked_data).all() and np.isfinite(q).all()):
            return QpResult(False, "non-finite data", 0, 0.0, float("nan"), None, None)
        self._solver.update(q=q, b=self._b, A=self._stacked_data)
        solution = self._solver.solve()
        status = str(solution.status)
        ok = status in ("Solved", "AlmostSolved")
        x = np.asarray(solution.x) if ok else None
        if x is not None and not np.isfinite(x).all():
            ok, x = False, None
        y = None
        if ok:  # back to OSQP's convention: one multiplier per row of A (upper minus lower)
            z = np.asarray(solution.z)
            y = np.zeros(self._n_rows)
            ne, nu = len(self._eq), len(self._up)
            y[self._eq] = z[:ne]
            y[self._up] += z[ne : ne + nu]
            y[self._lo] -= z[ne + nu :]
        return QpResult(ok, status, int(solution.iterations), float(solution.solve_time), float(solution.obj_val), x, y, status == "MaxIterations")
