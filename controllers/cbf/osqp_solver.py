"""The filter QP solved by OSQP called directly: matrices set up once, per tick only vectors and matrix values change.

The OSQP problem over ``z = (v, s)`` with the scaled inputs ``v = sqrt(W) u`` (see
aegis.controllers.cbf.qp, and cvxpy_solver for why scaled)::

    minimise  1/2 z' P z + q' z,   P = 2 diag(I, slack_quadratic),   q = (-2 sqrt(W) u_nom, slack_linear)
    subject to l <= M z <= u,      M = [[A W^-1/2, 1], [I, 0], [0, 1]],
               l = (b, sqrt(W) lower, 0),   u = (inf, sqrt(W) upper, inf)

M's sparsity is fixed (every entry of the A block is stored, zeros included), so a tick writes the
new A into the stored values in place and OSQP refactors its small KKT matrix; it warm-starts
from the previous solution.

Silence: osqp 1.1.x prints "Polishing not needed - no active set detected at optimal point" to
stdout, from C, after a solve whose answer has no active constraint, but only when polishing is
on. Polishing is therefore off (``polishing=False``, verbose off); the tolerances are tightened
instead (eps_abs 1e-6, eps_rel 1e-8, rather than the default 1e-3), which keeps the answer within
about 1e-5 of the reference. (This QP would not trigger the message anyway: the slack's
stationarity makes the multipliers of the rows and of ``s >= 0`` sum to at least slack_linear, so
some constraint is always active; polishing stays off so that silence does not rest on that.)
tests/test_cbf_solvers.py and test_cbf_filter.py check with capfd that setup and 100 solves write
nothing to the stdout and stderr file descriptors, and that the check would see osqp's message.

Speed: osqp's Python wrapper builds a namespace of every info field on each ``solve()`` (about
10 µs on a 3-input problem); this path calls the wrapper's pybind11 solver object (``OSQP._solver``,
osqp >= 1.0) for updates and solves, after the public ``OSQP.setup``.
"""

from __future__ import annotations

import time

import numpy as np
import osqp
import scipy.sparse as sp

from aegis.controllers.cbf.qp import INACTIVE_ROW_B, QpSolution, QpSpec

_SOLVED = (int(osqp.SolverStatus.OSQP_SOLVED), int(osqp.SolverStatus.OSQP_SOLVED_INACCURATE))


class OsqpQp:
    """OSQP on the filter QP: set up once for ``spec``; ``solve`` updates q, the A values and l, then solves warm.

    ``tolerance`` is OSQP's eps_abs, and a hundredth of it its eps_rel: the relative test of the dual
    residual scales with |q|, which holds the slack's linear penalty (100), so an equal eps_rel would
    let the inputs be off by 1e-4. ``max_iterations`` is OSQP's max_iter. Termination is
    checked every 10 iterations (OSQP's default 25 makes 25 the least any solve takes; these
    problems take 40-120 iterations, median, depending on the robot and how far apart ticks are).
    """

    name = "osqp-direct"

    def __init__(self, spec: QpSpec, tolerance: float = 1e-6, max_iterations: int = 4000) -> None:
        if not (tolerance > 0 and max_iterations >= 1):
            raise ValueError(f"tolerance must be > 0 and max_iterations >= 1, got {tolerance}, {max_iterations}")
        self.spec = spec
        m, k = spec.n_inputs, spec.max_rows
        self._m, self._k = m, k
        # Solved in the scaled inputs v = sqrt(W) u, in which the cost is |v - v_nom|^2, as the cvxpy
        # formulation (aegis.controllers.cbf.cvxpy_solver) is written: ADMM converges far faster.
        self._sqrt_w = np.sqrt(np.asarray(spec.weights))
        self._column_scale = (1.0 / self._sqrt_w)[:, None]
        p = sp.diags(np.r_[np.full(m, 2.0), 2.0 * spec.slack_quadratic]).tocsc()
        # M column by column: input j holds rows 0..K-1 (A[:, j]) and its bound row K + j; the
        # slack holds rows 0..K-1 (ones) and its own row K + m. Every column has K + 1 entries.
        indices = np.concatenate([np.r_[np.arange(k), k + j] for j in range(m + 1)])
        indptr = np.arange(m + 2) * (k + 1)
        self._m_values = np.ones((m + 1) * (k + 1))
        constraint_matrix = sp.csc_matrix((self._m_values.copy(), indices, indptr), shape=(k + m + 1, m + 1))
        # The A block inside the stored values: column j's first K entries are A[:, j], i.e. a view of A'.
        self._a_transposed = self._m_values[: m * (k + 1)].reshape(m, k + 1)[:, :k]
        self._a_transposed[...] = 0.0
        self._q = np.r_[np.zeros(m), spec.slack_linear]
        self._minus_2_sqrt_w = -2.0 * self._sqrt_w
        self._lower = np.r_[np.full(k, INACTIVE_ROW_B), self._sqrt_w * spec.lower, 0.0]
        upper = np.r_[np.full(k, np.inf), self._sqrt_w * spec.upper, np.inf]
        self._osqp = osqp.OSQP()
        self._osqp.setup(
            p, self._q, constraint_matrix, self._lower, upper,
            verbose=False, polishing=False, warm_starting=True,
            eps_abs=tolerance, eps_rel=0.01 * tolerance, max_iter=int(max_iterations), check_termination=10,
        )
        self._osqp.update(Ax=self._m_values)
        solver = getattr(self._osqp, "_solver", None)
        needed = ("update_data_vec", "update_data_mat", "solve", "warm_start", "info", "solution")
        if solver is None or not all(hasattr(solver, name) for name in needed):
            raise RuntimeError(f"osqp {osqp.__version__}: expected the 1.x Python wrapper (an OSQPSolver at OSQP._solver)")
        self._solver = solver
        self._zero_x, self._zero_y = np.zeros(m + 1), np.zeros(k + m + 1)
        self._solution = QpSolution(np.zeros(m), 0.0, "", False)

    def reset(self) -> None:
        """Forget the warm start: the next solve starts from zero."""
        self._solver.warm_start(self._zero_x, self._zero_y)

    def solve(self, nominal: np.ndarray, a: np.ndarray, b: np.ndarray) -> QpSolution:
        started = time.perf_counter()
        m, k = self._m, self._k
        np.multiply(self._minus_2_sqrt_w, nominal, out=self._q[:m])
        np.multiply(a.T, self._column_scale, out=self._a_transposed)
        self._lower[:k] = b
        solver = self._solver
        solver.update_data_vec(q=self._q, l=self._lower, u=None)
        solver.update_data_mat(P_x=None, P_i=None, A_x=self._m_values, A_i=None)
        solver.solve()
        info = solver.info
        x = solver.solution.x
        out = self._solution
        out.status = info.status
        out.solved = info.status_val in _SOLVED
        np.divide(x[:m], self._sqrt_w, out=out.u)
        out.slack = float(x[m])
        if not (out.solved and np.isfinite(out.slack) and np.isfinite(out.u).all()):
            out.solved = False
            self.reset()  # a failed run leaves iterates that would poison the next warm start
        out.solve_time_s = time.perf_counter() - started
        return out
