"""Linear MPC solved by OSQP called directly: the QP is set up once, each tick updates only vectors and warm-starts.

:class:`LinearMpc` solves the problem of :mod:`aegis.controllers.mpc.problem` over one flat decision
variable (:mod:`aegis.controllers.mpc.qp`). Per tick, ``compute(x0, x_ref, u_ref)`` writes the linear
cost g (from the reference) and the bounds of the first dynamics rows (from x0) into preallocated
arrays, hands them to OSQP in one ``update``, warm-starts from the previous solution shifted by one
step, solves, and returns the first input with an :class:`MpcInfo`. A time-varying model also gets
new A_k / B_k entries through :meth:`LinearMpc.set_dynamics` (OSQP then refactors its KKT matrix).

It never raises inside the loop: a non-finite input or a solver failure comes back as
``info.ok == False`` with the status, and ``u0`` filled with NaN, so the caller picks its fallback
(the supervisor also refuses NaN). Polishing is off: osqp 1.1 prints "Polishing not needed" on
stdout from C whenever it skips a polish, and ``verbose=False`` does not silence it; with polishing
off the solve writes nothing, and the tolerances below give the accuracy instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import osqp

from aegis.controllers.mpc.problem import MpcProblem
from aegis.controllers.mpc.qp import SparseMpcQp, build_qp

ACCEPTED_STATUS = (1, 2)
"""OSQP status values whose solution is used: solved, solved inaccurate (within OSQP's looser eps_*_inacc)."""

_INFEASIBLE = (3, 4)  # OSQP_PRIMAL_INFEASIBLE(_INACCURATE)

WarmStart = Literal["shift", "previous", "cold"]
"""How each solve starts: the previous solution shifted one step ahead (default), OSQP's last iterate as it is, or zero."""


@dataclass(frozen=True)
class OsqpSettings:
    """OSQP settings of the fast path (osqp >= 1.0 names). Deterministic: rho adapts on an iteration count, not a clock."""

    eps_abs: float = 1e-4
    eps_rel: float = 1e-4
    max_iter: int = 4000
    check_termination: int = 5
    """test convergence every this many iterations (OSQP's default 25 wastes most of a warm start)"""
    adaptive_rho_interval: int = 25
    rho: float = 0.1
    sigma: float = 1e-6
    alpha: float = 1.6
    scaling: int = 10
    time_limit_s: float = 0.0
    """0: none"""

    def options(self) -> dict[str, float | int | bool]:
        """The keyword arguments of ``osqp.OSQP.setup``."""
        options: dict[str, float | int | bool] = asdict(self)
        time_limit = options.pop("time_limit_s")
        if time_limit > 0:
            options["time_limit"] = time_limit
        options.update(verbose=False, polishing=False, warm_starting=True, adaptive_rho=True)
        return options


@dataclass(slots=True)
class MpcInfo:
    """What one solve did. ``x_pred`` (N+1, n) starts at x0; ``u_pred`` (N, m). NaN-filled when not ``ok``."""

    ok: bool
    status: str
    iterations: int
    solve_time_s: float
    """OSQP's own run time (setup excluded, update and solve included)"""
    objective: float
    """the MPC cost less its constant part (the reference's own cost)"""
    x_pred: np.ndarray
    u_pred: np.ndarray
    relaxed: bool = False
    """the state limits could not be met from this state and were dropped for this tick (inputs still limited)"""


class LinearMpc:
    """The fast path of one :class:`MpcProblem`: OSQP set up once; ``compute`` per tick.

    Attributes: ``problem``, ``qp`` (the :class:`SparseMpcQp`), ``settings``, ``warm_start``
    (:data:`WarmStart`; after a failure or :meth:`reset` the next solve starts from zero whatever it is).

    ``relax_state_limits``: when the state limits cannot be met from the measured state (a gust
    past the speed limit, a real tilt past the model's), the tick is solved again without them
    (a second OSQP, set up here, input limits kept) and ``info.relaxed`` is set: a command that
    pulls back, reported, instead of a failure. Hard limits stay exact whenever they are feasible,
    which a soft (slack) formulation gives only for a large enough penalty, and that penalty made
    OSQP run into its iteration limit whenever the slack was active (measured; not kept).
    """

    def __init__(
        self, problem: MpcProblem, settings: OsqpSettings = OsqpSettings(), *, warm_start: WarmStart = "shift", relax_state_limits: bool = False
    ) -> None:
        if warm_start not in ("shift", "previous", "cold"):
            raise ValueError(f"warm_start must be 'shift', 'previous' or 'cold', got {warm_start!r}")
        self.problem = problem
        self.settings = settings
        self.warm_start: WarmStart = warm_start
        self.qp: SparseMpcQp = build_qp(problem)
        n, m, horizon = problem.n, problem.m, problem.horizon
        self._n, self._m, self._horizon = n, m, horizon
        self._nx = horizon * n
        self._nu = horizon * m
        self._linear = np.zeros(self.qp.n_variables)
        self._lower = self.qp.lower.copy()
        self._upper = self.qp.upper.copy()
        self._neg_q = -2.0 * problem.q
        self._neg_p = -2.0 * problem.p
        self._neg_r = -2.0 * problem.r
        self._a0 = problem.a.copy()
        self._offsets = np.zeros((horizon, n))
        self._first_row = np.empty(n)
        self._c_data = self.qp.constraints.data.copy()
        self._dynamics_finite = True
        self._x_guess = np.zeros(self.qp.n_variables)
        self._y_guess = np.zeros(self.qp.n_rows)
        self._solver = osqp.OSQP()
        self._solver.setup(self.qp.hessian, self._linear, self.qp.constraints, self._lower, self._upper, **settings.options())
        self._relaxed: LinearMpc | None = None
        if relax_state_limits and len(problem.constrained_states):
            self._relaxed = LinearMpc(problem.without_state_limits(), settings, warm_start=warm_start)
        self.reset()

    def reset(self) -> None:
        """Forget the previous solution: the next solve starts cold (from zero)."""
        self._previous: tuple[np.ndarray, np.ndarray] | None = None
        self._restart = True
        if self._relaxed is not None:
            self._relaxed.reset()

    def set_dynamics(self, a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None) -> None:
        """New per-step model A_k (N, n, n), B_k (N, n, m) and offsets c_k (N, n) (None: zero); time-varying problems only.

        A_0 and c enter the bounds of the next :meth:`compute`; A_1.. and B_k are written into the
        constraint matrix (OSQP refactors). Raises ValueError on a wrong shape (a set-up error,
        not a loop failure); non-finite entries make the next compute fail with a status.
        """
        if not self.problem.time_varying:
            raise ValueError("set_dynamics needs a problem built with time_varying=True")
        n, m, horizon = self._n, self._m, self._horizon
        if a.shape != (horizon, n, n) or b.shape != (horizon, n, m) or (c is not None and c.shape != (horizon, n)):
            raise ValueError(
                f"expected a ({horizon}, {n}, {n}), b ({horizon}, {n}, {m}), c ({horizon}, {n}); "
                f"got {a.shape}, {b.shape}, {None if c is None else c.shape}"
            )
        data = self._c_data
        if horizon > 1:
            data[self.qp.a_positions] = a[1:]
        data[self.qp.b_positions] = b
        self._a0[...] = a[0]
        if c is None:
            self._offsets.fill(0.0)
        else:
            self._offsets[...] = c
        self._dynamics_finite = bool(np.isfinite(data).all() and np.isfinite(self._a0).all() and np.isfinite(self._offsets).all())
        if self._dynamics_finite:
            self._solver.update(Ax=data)
        if self._relaxed is not None:
            self._relaxed.set_dynamics(a, b, c)

    def compute(self, x0: np.ndarray, x_ref: np.ndarray, u_ref: np.ndarray | None = None) -> tuple[np.ndarray, MpcInfo]:
        """The first input of the optimal plan from state ``x0`` (n,) tracking ``x_ref`` ((N+1, n) or (n,) held).

        ``u_ref`` ((N, m) or (m,) held; None: zero) is the input the cost pulls toward. Never raises
        on values (shapes are the caller's contract): failure is ``info.ok == False``.
        """
        n, horizon, nx = self._n, self._horizon, self._nx
        x0 = np.asarray(x0, dtype=float)
        xr = np.asarray(x_ref, dtype=float)
        if xr.ndim == 1:
            xr = np.broadcast_to(xr, (horizon + 1, n))
        if not (np.isfinite(x0).all() and np.isfinite(xr).all()) or not self._dynamics_finite:
            return self._failure("non-finite state, reference or model")
        linear = self._linear
        qx = linear[:nx].reshape(horizon, n)
        np.matmul(xr[1:horizon], self._neg_q, out=qx[: horizon - 1])
        np.matmul(xr[horizon], self._neg_p, out=qx[horizon - 1])
        qu = linear[nx : nx + self._nu].reshape(horizon, self._m)
        if u_ref is None:
            qu.fill(0.0)
        else:
            ur = np.asarray(u_ref, dtype=float)
            if not np.isfinite(ur).all():
                return self._failure("non-finite input reference")
            np.matmul(np.broadcast_to(ur, (horizon, self._m)), self._neg_r, out=qu)
        first = self._first_row
        np.matmul(self._a0, x0, out=first)
        first += self._offsets[0]
        np.negative(first, out=first)
        lower, upper = self._lower, self._upper
        lower[:n] = first
        upper[:n] = first
        if self.problem.time_varying:  # a time-invariant model has no offsets: those rows stay 0
            np.negative(self._offsets[1:].ravel(), out=lower[n:nx])
            upper[n:nx] = lower[n:nx]
        solver = self._solver
        solver.update(q=linear, l=lower, u=upper)
        if self._previous is not None and self.warm_start == "shift":
            x_prev, y_prev = self._previous
            np.take(x_prev, self.qp.z_shift, out=self._x_guess)
            np.take(y_prev, self.qp.y_shift, out=self._y_guess)
            solver.warm_start(x=self._x_guess, y=self._y_guess)
        elif self._restart or self.warm_start == "cold":
            self._x_guess.fill(0.0)
            self._y_guess.fill(0.0)
            solver.warm_start(x=self._x_guess, y=self._y_guess)
        self._restart = False
        result = solver.solve(raise_error=False)
        info = result.info
        z = result.x
        ok = info.status_val in ACCEPTED_STATUS and bool(np.isfinite(z).all())
        if not ok:
            self._previous = None
            self._restart = True
            if self._relaxed is not None and info.status_val in _INFEASIBLE:
                u0, relaxed = self._relaxed.compute(x0, x_ref, u_ref)
                relaxed.status = f"{relaxed.status}, state limits dropped ({info.status} with them)"
                relaxed.iterations += int(info.iter)
                relaxed.solve_time_s += float(info.run_time)
                relaxed.relaxed = True
                return u0, relaxed
            return self._failure(str(info.status), int(info.iter), float(info.run_time))
        self._previous = (z, result.y)
        x_pred = np.empty((horizon + 1, n))
        x_pred[0] = x0
        x_pred[1:] = z[:nx].reshape(horizon, n)
        u_pred = z[nx : nx + self._nu].reshape(horizon, self._m)
        u0 = np.minimum(np.maximum(u_pred[0], self.problem.u_min), self.problem.u_max)
        return u0, MpcInfo(True, str(info.status), int(info.iter), float(info.run_time), float(info.obj_val), x_pred, u_pred)

    def _failure(self, status: str, iterations: int = 0, solve_time_s: float = 0.0) -> tuple[np.ndarray, MpcInfo]:
        n, m, horizon = self._n, self._m, self._horizon
        nan = np.full(m, np.nan)
        return nan, MpcInfo(
            False, status, iterations, solve_time_s, float("nan"), np.full((horizon + 1, n), np.nan), np.full((horizon, m), np.nan)
        )
