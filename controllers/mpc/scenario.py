"""Scenario MPC: one plan per obstacle hypothesis, all sharing their first inputs (consensus), obstacles as convexified half-spaces.

For an uncertain obstacle estimate, K hypotheses (e.g. the obstacle's position sampled K ways) each
get their own trajectory (x^i, u^i) of a linear time-invariant :class:`MpcProblem`, and the first
``shared_steps`` inputs are constrained equal across hypotheses:

    minimise    sum_i w_i J(x^i, u^i) + rho sum_{i,j} (s_ij + s_ij^2 / 2)
    subject to  x^i_{k+1} = A x^i_k + B u^i_k,  limits of the problem      (each hypothesis i)
                u^i_k = u^0_k                                              k < shared_steps (consensus)
                n_ijk' (p^i_k - o_ij) + s_ij >= r_ij,   s_ij >= 0             k = 1 .. N (obstacle j of hypothesis i)

Only the shared segment is executed (its first input now), and because every hypothesis' own
obstacles constrain that same segment, it is safe whichever hypothesis is true: the idea of
Zheng, Yang, Zheng, Wang, Ma, "Safe and Real-Time Consistent Planning for Autonomous Vehicles in
Partially Observed Environments via Parallel Consensus Optimization" (arXiv:2409.10310), where
candidate trajectories, one per possible environment configuration, share a consensus segment.

Obstacle avoidance ||p - o|| >= r is not convex; it is convexified around the previous plan p̄
(shifted one step each tick; on the first tick after a reset, the plan that ignores the obstacles):
the half-space n' (p - o) >= r with n the unit vector from o to p̄, tangent to the (inflated) obstacle. The half-space lies outside the ball, so a
plan meeting it avoids the obstacle exactly (conservatively); repeating the solve about the new plan
(``passes``) is sequential convex programming. The slack s_ij (one per hypothesis and obstacle, an
exact L1 penalty rho = ``slack_weight``, plus the same quadratic: without it the slack is an LP part
that slows OSQP down several times) keeps the QP feasible when an estimate jumps onto the robot; it
is zero whenever the hard problem is feasible and rho exceeds the constraint's multiplier, and
``info.max_slack`` reports it.

How it is solved, and why: one joint QP with the consensus as equality rows, not the paper's
parallel consensus ADMM. The joint QP is exact and simple, and with K = 2..4 hypotheses and Python's
GIL, splitting it into per-hypothesis QPs solved in parallel would cost more in coordination than it
saves. The QP is set up once; per tick the obstacle rows' entries and bounds, the reference and x0
change. Solver (``solver``): Clarabel by default, an interior-point method whose 8 to 15 iterations
do not depend on which half-spaces are active (aegis.bench.mpc, 2 hypotheses: median 1.3 ms, p99
2.5 ms); OSQP, warm-started, is faster when little changes (median 0.3 ms) but, solved to the end,
needed 1,000 to 3,500 iterations (20 to 40 ms) when an encounter starts or the robot is held
against both hypotheses.

The work per tick is bounded (``max_iterations``, all of a tick's solves together), and what answers
is explicit (``info.answer``, :data:`Answer`): the solution; else, when the budget ran out, the
solver's last iterate made consistent (inputs clipped, shared inputs averaged, states rolled out
from the measured state through the model) if every plan then keeps its limits and clears its own
hypothesis' obstacles (true distances, within ``feasibility_tolerance``); else the plans last
answered with, one step on, if they still hold; else nothing (NaN, ``ok`` False), and the caller's
backup acts (the safety filter brakes on a non-finite command). Whatever answered, the next tick's
OSQP starts from the last iterate one step on (its inputs shifted, the shared ones averaged, its
states rolled out from the new measured state, so that it meets the dynamics and consensus rows), so a
capped tick's work is not lost: the iterations continue across ticks. Measured with
``aegis bench mpc --models scenario-4x2-k2 --ticks 1800`` (CPU time of the call, a loaded 2-core
machine): OSQP solved to the end, median 0.41 ms and p99 12.7 ms (1,360 iterations); with the
budget of 50, median 0.30 ms and p99 0.82 ms (2.7x), 606 of 1,800 ticks answered by a capped
iterate, one by the shifted plans, none by the backup; Clarabel median 1.3 ms, p99 2.4 ms (docs/campaigns.md).

The file is long (about 500 lines) because the joint QP's set-up, its per-tick updates, the warm
start and the fallback's checks all work on the same index maps and buffers; split, each part would
need the others' internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from aegis.controllers.mpc.linear import OsqpSettings
from aegis.controllers.mpc.problem import MpcProblem
from aegis.controllers.mpc.qp import build_qp, csc_with_positions
from aegis.controllers.mpc.qp_solvers import ClarabelQp, OsqpQp, QpSolver, SolverName

DEFAULT_MAX_ITERATIONS = 50
"""Solver iterations per tick, all of its solves together: about 0.5 ms of OSQP on this QP (2 hypotheses, horizon 20).
At 100 OSQP's CPU-time p99 was 3.9x its median (aegis.bench.mpc, scenario-4x2-k2); at 50, with rho adapted every 20
iterations (:data:`OSQP_SETTINGS`), 2.8x, and no tick of the bench fell back further than the shifted plans. Clarabel
takes 8 to 18 iterations per solve: the cap does not bind it."""

OSQP_SETTINGS = OsqpSettings(eps_abs=1e-3, eps_rel=1e-3, rho=1.0, adaptive_rho_interval=20)
"""The scenario MPC's OSQP settings. At the linear MPC's 1e-4 a third of aegis.bench.mpc's scenario ticks needed over
100 iterations; at 1e-3 (cvxpygen's default; positions in m: plans within about a millimetre) and rho 1 far fewer did.
rho adapts every 20 iterations (25 elsewhere): within the 50-iteration budget at 20 and 40, so a capped tick's iterate
has had two updates; with 25 at the same cap, 18 of aegis.bench.mpc's 1,800 ticks fell back to the backup. With adaptation off (rho fixed at 1), nearly every tick ran to the cap."""

Answer = Literal["solver", "capped", "shifted", "backup"]
"""Which plan a tick's command comes from: ``solver`` the solution; ``capped`` the solver's last iterate when the
iteration budget ran out (made consistent and checked feasible); ``shifted`` the plans last answered with, one step on,
rolled out from the measured state and checked feasible; ``backup`` none (``ok`` False, NaN): the caller's backup acts."""


@dataclass(slots=True)
class ScenarioInfo:
    """One tick: ``x_pred`` (K, N+1, n), ``u_pred`` (K, N, m), ``max_slack`` (m of obstacle violation planned, 0 when safe).

    ``iterations`` and ``solve_time_s`` add up all of the tick's solves; ``answer`` says which plan
    the command comes from (:data:`Answer`).
    """

    ok: bool
    status: str
    iterations: int
    solve_time_s: float
    objective: float
    x_pred: np.ndarray
    u_pred: np.ndarray
    max_slack: float
    answer: Answer = "solver"


class ScenarioMpc:
    """K hypotheses of ``obstacles`` obstacles each, around a time-invariant ``problem`` whose states ``position_indices`` are the position.

    ``shared_steps`` (1..N) inputs are common to all plans; ``weights`` (K,) are the hypotheses'
    probabilities (default uniform); ``slack_weight`` w prices a violation s (m) at w (s + s^2 / 2)
    (None: hard constraints, and an infeasible tick is a failure status). ``max_iterations`` bounds
    the solver iterations of a tick (OSQP: all its solves together; Clarabel: each solve);
    ``feasibility_tolerance`` (the problem's units: m, m/s, ...) is how far a fallback plan may
    miss a limit or an obstacle's radius and still answer.
    """

    def __init__(
        self,
        problem: MpcProblem,
        hypotheses: int,
        obstacles: int,
        position_indices: Sequence[int],
        shared_steps: int = 1,
        *,
        weights: Sequence[float] | None = None,
        slack_weight: float | None = 1e6,
        solver: SolverName = "clarabel",
        settings: OsqpSettings = OSQP_SETTINGS,
        max_iterations: int = DEFAULT_MAX_ITERATIONS,
        feasibility_tolerance: float = 1e-2,
    ) -> None:
        if problem.time_varying:
            raise ValueError("ScenarioMpc needs a time-invariant problem")
        horizon, n, m = problem.horizon, problem.n, problem.m
        if hypotheses < 1 or obstacles < 1:
            raise ValueError(f"need at least one hypothesis and one obstacle, got {hypotheses} and {obstacles}")
        if not 1 <= shared_steps <= horizon:
            raise ValueError(f"shared_steps must be in [1, {horizon}], got {shared_steps}")
        pos = np.asarray(position_indices, dtype=np.int64)
        if pos.ndim != 1 or len(pos) < 1 or np.any(pos < 0) or np.any(pos >= n) or len(set(pos.tolist())) != len(pos):
            raise ValueError(f"position_indices must be distinct state indices in [0, {n}), got {position_indices}")
        w = np.full(hypotheses, 1.0 / hypotheses) if weights is None else np.asarray(weights, dtype=float)
        if w.shape != (hypotheses,) or np.any(w <= 0) or not np.all(np.isfinite(w)):
            raise ValueError(f"weights must be {hypotheses} positive numbers, got {weights}")
        if solver not in ("osqp", "clarabel"):
            raise ValueError(f"solver must be 'osqp' or 'clarabel', got {solver!r}")
        if slack_weight is not None and not slack_weight > 0:
            raise ValueError(f"slack_weight must be > 0 or None, got {slack_weight}")
        if max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {max_iterations}")
        if not feasibility_tolerance >= 0:
            raise ValueError(f"feasibility_tolerance must be >= 0, got {feasibility_tolerance}")
        self.max_iterations = int(max_iterations)
        self.feasibility_tolerance = float(feasibility_tolerance)
        self.problem = problem
        self.hypotheses, self.obstacles, self.shared_steps = hypotheses, obstacles, shared_steps
        self.position_indices = pos
        self.weights = w
        self.slack_weight = None if slack_weight is None else float(slack_weight)
        self.settings = settings
        self.solver = solver
        single = build_qp(problem)
        self._single = single
        k_, j_, d = hypotheses, obstacles, len(pos)
        nz, rows1 = single.n_variables, single.n_rows
        nx = horizon * n
        self._nz, self._nx = nz, nx
        n_var = k_ * nz + k_ * j_
        n_cons = (k_ - 1) * shared_steps * m
        n_obs = k_ * j_ * horizon
        self._row_cons = k_ * rows1
        self._row_obs = self._row_cons + n_cons
        self._row_slack = self._row_obs + n_obs
        n_rows = self._row_slack + k_ * j_

        block = single.constraints.tocoo()
        rows = [block.row + i * rows1 for i in range(k_)]
        cols = [block.col + i * nz for i in range(k_)]
        vals = [block.data for _ in range(k_)]
        for i in range(1, k_):  # consensus: u^i_k - u^0_k = 0
            r = self._row_cons + (i - 1) * shared_steps * m + np.arange(shared_steps * m)
            c = nx + np.arange(shared_steps * m)
            rows += [r, r]
            cols += [i * nz + c, c]
            vals += [np.ones(len(r)), -np.ones(len(r))]
        # obstacle rows (i, j, k): d position entries then the slack
        ii, jj, kk = (g.ravel() for g in np.meshgrid(np.arange(k_), np.arange(j_), np.arange(horizon), indexing="ij"))
        obs_row = self._row_obs + np.arange(n_obs)
        obs_cols = ii[:, None] * nz + kk[:, None] * n + pos[None, :]
        first_obstacle = sum(len(r) for r in rows)
        rows.append(np.repeat(obs_row, d))
        cols.append(obs_cols.ravel())
        vals.append(np.ones(n_obs * d))
        rows.append(obs_row)
        cols.append(k_ * nz + ii * j_ + jj)
        vals.append(np.ones(n_obs))
        rows.append(self._row_slack + np.arange(k_ * j_))  # s >= 0
        cols.append(k_ * nz + np.arange(k_ * j_))
        vals.append(np.ones(k_ * j_))
        matrix, positions = csc_with_positions(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), (n_rows, n_var))
        self._normal_positions = positions[first_obstacle : first_obstacle + n_obs * d]
        self._data = matrix.data.copy()

        slack_hessian = (self.slack_weight if self.slack_weight is not None else 0.0) * sp.eye(k_ * j_)
        hessian = sp.block_diag([wi * single.hessian for wi in w] + [slack_hessian], format="csc")
        self._linear = np.zeros(n_var)
        self._linear[k_ * nz :] = self.slack_weight if self.slack_weight is not None else 0.0
        self._lower = np.zeros(n_rows)
        self._upper = np.zeros(n_rows)
        for i in range(k_):
            self._lower[i * rows1 : (i + 1) * rows1] = single.lower
            self._upper[i * rows1 : (i + 1) * rows1] = single.upper
        self._upper[self._row_obs : self._row_slack] = np.inf
        self._upper[self._row_slack :] = np.inf if self.slack_weight is not None else 0.0  # hard: s = 0
        self._obstacle_lower = self._lower[self._row_obs : self._row_slack]  # a view: set per tick
        self._obstacle_lower.fill(-1.0)  # finite (Clarabel's cone rows are fixed at set-up); rows start 0 >= -1
        self._qp: QpSolver = (
            OsqpQp(hessian, self._linear, matrix, self._lower, self._upper, settings)
            if solver == "osqp"
            else ClarabelQp(hessian, self._linear, matrix, self._lower, self._upper, max_iter=self.max_iterations)
        )

        self._z_shift = np.concatenate([i * nz + single.z_shift for i in range(k_)] + [k_ * nz + np.arange(k_ * j_)])
        self._y_shift = np.concatenate(
            [i * rows1 + single.y_shift for i in range(k_)]
            + [self._row_cons + np.arange(n_cons)]
            + [self._row_obs + (np.arange(k_ * j_)[:, None] * horizon + np.minimum(np.arange(horizon) + 1, horizon - 1)[None, :]).ravel()]
            + [self._row_slack + np.arange(k_ * j_)]
        )
        self._x_guess = np.zeros(n_var)
        self._y_guess = np.zeros(n_rows)
        self._neg_q, self._neg_p, self._neg_r = -2.0 * problem.q, -2.0 * problem.p, -2.0 * problem.r
        self._g = np.zeros(nz)  # one hypothesis' linear cost
        self._nu = horizon * m
        # x_{1..N} = Phi x0 + Gamma u, stored transposed for row vectors: rolls plans out for the warm start and the checks
        phi = np.empty((horizon, n, n))
        gamma = np.zeros((horizon, n, horizon, m))
        for t in range(horizon):
            phi[t] = np.linalg.matrix_power(problem.a, t + 1)
            for j in range(t + 1):
                gamma[t, :, j] = np.linalg.matrix_power(problem.a, t - j) @ problem.b
        self._phi_t = np.ascontiguousarray(phi.reshape(horizon * n, n).T)
        self._gamma_t = np.ascontiguousarray(gamma.reshape(horizon * n, horizon * m).T)
        self._u_min_flat, self._u_max_flat = np.tile(problem.u_min, horizon), np.tile(problem.u_max, horizon)
        self._candidate = np.zeros(n_var)  # a capped iterate made consistent
        self._fallback = np.zeros(n_var)  # the plans last answered with, one step on
        self.reset()

    @property
    def n_variables(self) -> int:
        """Size of the joint QP's decision variable: K flat MPC variables and K J slacks."""
        return self._linear.size

    @property
    def n_rows(self) -> int:
        """Rows of the joint QP's constraint matrix (dynamics and limits per hypothesis, consensus, obstacles, slacks)."""
        return self._lower.size

    def reset(self) -> None:
        """Forget the previous plans: the next solve linearises about the obstacle-free plan and starts from zero."""
        self._plans: np.ndarray | None = None  # (K, N+1, n) of the last solve: the next linearisation point
        self._previous: tuple[np.ndarray, np.ndarray] | None = None  # the last solve's (x, y), solution or capped iterate: the warm start
        self._flown: np.ndarray | None = None  # the plans last answered with: the fallback

    def compute(
        self,
        x0: np.ndarray,
        x_ref: np.ndarray,
        obstacle_centres: np.ndarray,
        obstacle_radii: np.ndarray | float,
        u_ref: np.ndarray | None = None,
        *,
        passes: int = 1,
    ) -> tuple[np.ndarray, ScenarioInfo]:
        """The shared first input from ``x0`` tracking ``x_ref`` ((N+1, n) or (n,)) around obstacles of each hypothesis.

        ``obstacle_centres`` (K, J, d) in the position states' coordinates; ``obstacle_radii`` (K, J),
        (J,) or a scalar, already inflated by the robot's own radius and a margin. ``passes`` > 1
        re-solves, each time convexified about the plans just found (same tick, no shift), within the
        same budget. Never raises on values: failure is ``info.ok == False`` with NaN (``info.answer``
        "backup": the caller's backup is to act).
        """
        problem = self.problem
        horizon, n, m = problem.horizon, problem.n, problem.m
        k_, j_, d = self.hypotheses, self.obstacles, len(self.position_indices)
        x0 = np.asarray(x0, dtype=float)
        xr = np.broadcast_to(np.asarray(x_ref, dtype=float), (horizon + 1, n))
        centres = np.asarray(obstacle_centres, dtype=float)
        radii = np.broadcast_to(np.asarray(obstacle_radii, dtype=float), (k_, j_))
        if centres.shape != (k_, j_, d):
            return self._failure(f"obstacle_centres must be ({k_}, {j_}, {d}), got {centres.shape}")
        finite = np.isfinite(x0).all() and np.isfinite(xr).all() and np.isfinite(centres).all() and np.isfinite(radii).all()
        if u_ref is not None:
            finite = finite and np.isfinite(u_ref).all()
        if not finite:
            return self._failure("non-finite state, reference or obstacle")

        g = self._g  # one hypothesis' linear cost, scaled per hypothesis below
        qx = g[: self._nx].reshape(horizon, n)
        np.matmul(xr[1:horizon], self._neg_q, out=qx[: horizon - 1])
        np.matmul(xr[horizon], self._neg_p, out=qx[horizon - 1])
        qu = g[self._nx : self._nx + self._nu].reshape(horizon, m)
        if u_ref is None:
            qu.fill(0.0)
        else:
            np.matmul(np.broadcast_to(np.asarray(u_ref, dtype=float), (horizon, m)), self._neg_r, out=qu)
        nz = self._nz
        for i in range(k_):
            np.multiply(g, self.weights[i], out=self._linear[i * nz : (i + 1) * nz])
        first = -(problem.a @ x0)
        rows1 = self._single.n_rows
        for i in range(k_):
            self._lower[i * rows1 : i * rows1 + n] = first
            self._upper[i * rows1 : i * rows1 + n] = first

        budget = _Budget(self.max_iterations)
        warm: tuple[np.ndarray, np.ndarray] | None = self._shifted_guess(x0)
        if self._plans is None:
            points, free = self._plan_without_obstacles(xr[1:, self.position_indices], budget)
            if free is not None:  # start from the obstacle-free plan rather than from zero
                warm = free
        else:
            plans = self._plans[:, :, self.position_indices]
            points = np.concatenate([plans[:, 2:], plans[:, -1:]], axis=1)  # shifted one step: x_{k+1} of the last plan
        info: ScenarioInfo | None = None
        status = ""
        for _ in range(max(1, passes)):
            if info is not None and budget.left < 1:
                break  # the budget is spent: the last pass's plans answer
            self._set_obstacle_rows(points, centres, radii, x0[self.position_indices])
            result = self._qp.solve(self._linear, self._lower, self._upper, self._data, warm, max(1, budget.left))
            budget.spend(result.iterations, result.solve_time_s)
            warm = None  # later passes continue from the solution just found
            if result.x is None:  # a failure with nothing to continue from: start cold next tick (the plans flown stay the fallback)
                status = result.status
                self._previous, self._plans = None, None
                break
            self._previous = (result.x, result.y)  # the next tick continues from here, from a capped iterate too
            if result.ok:
                x_pred, u_pred = self._plans_of(result.x, x0)
                answer: Answer = "solver"
                max_slack = float(max(0.0, result.x[k_ * self._nz :].max()))
                self._flown = result.x
            elif self._consistent_plan_holds(result.x, x0, centres, radii):
                x_pred, u_pred = self._plans_of(self._candidate, x0)
                answer, max_slack = "capped", 0.0
                self._flown = self._candidate.copy()
            else:
                status = result.status
                self._plans, _ = self._plans_of(result.x, x0)  # the next tick linearises about it
                break
            self._plans = x_pred
            points = x_pred[:, 1:, self.position_indices]
            info = ScenarioInfo(True, result.status, 0, 0.0, result.objective, x_pred, u_pred, max_slack, answer)
            if answer == "capped":
                break
        if info is None:  # nothing usable from this tick's solves: the plans last answered with, one step on, if they still hold
            if self._flown is not None:
                self._shift(self._flown, x0, self._fallback, agree=False)
                if self._feasible(self._fallback, x0, centres, radii):
                    self._flown = self._fallback.copy()
                    x_pred, u_pred = self._plans_of(self._flown, x0)
                    if self._plans is None:
                        self._plans = x_pred
                    u0 = np.minimum(np.maximum(u_pred[0, 0], problem.u_min), problem.u_max)
                    return u0, ScenarioInfo(
                        True, f"{status}; shifted previous plan", budget.iterations, budget.seconds, float("nan"), x_pred, u_pred, 0.0, "shifted"
                    )
            self._flown = None
            return self._failure(f"{status}; backup", budget.iterations, budget.seconds)
        info.iterations, info.solve_time_s = budget.iterations, budget.seconds
        u0 = np.minimum(np.maximum(info.u_pred[0, 0], problem.u_min), problem.u_max)
        return u0, info

    def _shifted_guess(self, x0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """OSQP's warm start: the last solve's primal one step on (:meth:`_shift`), its duals shifted likewise (zero after a reset)."""
        if self._previous is None:
            self._x_guess.fill(0.0)
            self._y_guess.fill(0.0)
        else:
            self._shift(self._previous[0], x0, self._x_guess)
            np.take(self._previous[1], self._y_shift, out=self._y_guess)
        return self._x_guess, self._y_guess

    def _shift(self, z: np.ndarray, x0: np.ndarray, out: np.ndarray, *, agree: bool = True) -> None:
        """Into ``out``: the plans of ``z`` one step on, inputs shifted (the last one zero), states rolled out from ``x0``; the slacks kept.

        ``agree``: the shared inputs made equal (their weighted mean), so that the result meets the
        joint QP's consensus rows too (a warm start). Without it (the fallback) the plans share one
        input fewer than the QP asks, which leaves each plan as it was, still clear of its obstacles
        if it was, and the first input, the one sent, common to all.
        """
        k_, horizon, m, nz, nx, nu = self.hypotheses, self.problem.horizon, self.problem.m, self._nz, self._nx, self._nu
        previous = z[: k_ * nz].reshape(k_, nz)[:, nx : nx + nu].reshape(k_, horizon, m)
        inputs = out[: k_ * nz].reshape(k_, nz)[:, nx : nx + nu].reshape(k_, horizon, m)
        inputs[:, :-1] = previous[:, 1:]
        inputs[:, -1] = 0.0
        self._roll_out(out, x0, agree=agree)
        out[k_ * nz :] = z[k_ * nz :]

    def _roll_out(self, z: np.ndarray, x0: np.ndarray, *, agree: bool = True) -> None:
        """In place in ``z``: the shared inputs set to their weighted mean (``agree``), then each plan's states from ``x0`` through the model."""
        k_, nz, nx, nu, s = self.hypotheses, self._nz, self._nx, self._nu, self.shared_steps * self.problem.m
        blocks = z[: k_ * nz].reshape(k_, nz)
        if agree:
            blocks[:, nx : nx + s] = self.weights @ blocks[:, nx : nx + s]
        np.matmul(blocks[:, nx : nx + nu], self._gamma_t, out=blocks[:, :nx])
        blocks[:, :nx] += x0 @ self._phi_t

    def _consistent_plan_holds(self, z: np.ndarray, x0: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> bool:
        """Whether a capped iterate, its inputs clipped to their limits, shared ones averaged and plans rolled out from ``x0``, is feasible (it is left in ``_candidate``)."""
        k_, nz, nx, nu = self.hypotheses, self._nz, self._nx, self._nu
        candidate = self._candidate
        candidate[:] = z
        inputs = candidate[: k_ * nz].reshape(k_, nz)[:, nx : nx + nu]
        np.clip(inputs, self._u_min_flat, self._u_max_flat, out=inputs)
        candidate[k_ * nz :] = 0.0  # checked feasible below: no slack used
        self._roll_out(candidate, x0)
        return self._feasible(candidate, x0, centres, radii)

    def _feasible(self, z: np.ndarray, x0: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> bool:
        """Whether the plans in ``z`` keep their limits and clear their own hypothesis' obstacles (true distances), within ``feasibility_tolerance``.

        Inputs and obstacles over the whole horizon (the plans must stay a way out, as the next
        tick's fallback); state limits over the shared steps, the states this tick commits to (a
        capped iterate rolled out through the model drifts past a speed limit late in the horizon by
        about its primal residual, 1e-2 at 100 iterations, which the next ticks re-plan anyway). The
        states a plan shares with the others are in every plan, so they meet every hypothesis' obstacles.
        """
        problem, tol = self.problem, self.feasibility_tolerance
        k_, horizon, n, m, nz, nx, nu = self.hypotheses, problem.horizon, problem.n, problem.m, self._nz, self._nx, self._nu
        blocks = z[: k_ * nz].reshape(k_, nz)
        states = blocks[:, :nx].reshape(k_, horizon, n)
        inputs = blocks[:, nx : nx + nu].reshape(k_, horizon, m)
        if not (np.isfinite(states).all() and np.isfinite(inputs).all()):
            return False
        if np.any(inputs < problem.u_min - tol) or np.any(inputs > problem.u_max + tol):
            return False
        committed = states[:, : self.shared_steps]
        if np.any(committed < problem.x_min - tol) or np.any(committed > problem.x_max + tol):
            return False
        away = states[:, None, :, :][..., self.position_indices] - centres[:, :, None, :]  # (K, J, N, d)
        clear = np.square(np.maximum(radii - tol, 0.0))[:, :, None]
        return bool(np.all(np.einsum("kjnd,kjnd->kjn", away, away) >= clear))

    def _plans_of(self, z: np.ndarray, x0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x_pred (K, N+1, n), u_pred (K, N, m), a copy) of a solution ``z``."""
        k_, horizon, n, m = self.hypotheses, self.problem.horizon, self.problem.n, self.problem.m
        blocks = z[: k_ * self._nz].reshape(k_, self._nz)
        x_pred = np.empty((k_, horizon + 1, n))
        x_pred[:, 0] = x0
        x_pred[:, 1:] = blocks[:, : self._nx].reshape(k_, horizon, n)
        return x_pred, blocks[:, self._nx : self._nx + self._nu].reshape(k_, horizon, m).copy()

    def _plan_without_obstacles(self, fallback: np.ndarray, budget: _Budget) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """(K, N, d) positions of the plan that ignores the obstacles, the first linearisation point (else ``fallback``, the reference), and that plan as a warm start.

        Linearising about a constant setpoint would put every tangent plane on the far side of the
        obstacle; the obstacle-free plan runs from the robot toward the goal, as a plan would. The
        obstacle rows are switched off by zero normals and a bound of -1 (0 >= -1 always holds). It
        is only a linearisation point: it gets half the tick's budget, and a capped iterate will do.
        Its duals go into the warm start too (the obstacle rows', switched off, are zero): without
        them the first obstacle solve took 175 to 500 iterations more (aegis.bench.mpc's encounters).
        """
        self._data[self._normal_positions] = 0.0
        self._obstacle_lower.fill(-1.0)
        self._x_guess.fill(0.0)
        self._y_guess.fill(0.0)
        result = self._qp.solve(self._linear, self._lower, self._upper, self._data, (self._x_guess, self._y_guess), max(1, budget.left // 2))
        budget.spend(result.iterations, result.solve_time_s)
        if result.x is None:
            return np.broadcast_to(fallback, (self.hypotheses, self.problem.horizon, len(self.position_indices))).copy(), None
        x_pred, _ = self._plans_of(result.x, np.zeros(self.problem.n))
        return x_pred[:, 1:, self.position_indices].copy(), (result.x.copy(), result.y.copy())

    def _set_obstacle_rows(self, points: np.ndarray, centres: np.ndarray, radii: np.ndarray, robot: np.ndarray) -> None:
        """Half-space rows n' p + s >= r + n' o about ``points`` (K, N, d) for every (hypothesis, obstacle, step)."""
        away = points[:, None, :, :] - centres[:, :, None, :]  # (K, J, N, d)
        dist = np.sqrt(np.einsum("kjnd,kjnd->kjn", away, away))
        degenerate = dist < 1e-9
        if degenerate.any():  # the point is at the centre: push away from it along robot - centre (or +x)
            fallback = robot[None, None, :] - centres
            norm = np.linalg.norm(fallback, axis=-1, keepdims=True)
            fallback = np.where(norm > 1e-9, fallback / np.maximum(norm, 1e-12), np.eye(len(robot))[0])
            away = np.where(degenerate[..., None], fallback[:, :, None, :], away)
            dist = np.where(degenerate, 1.0, dist)
        normals = away / dist[..., None]
        self._data[self._normal_positions] = normals.ravel()
        bound = radii[:, :, None] + np.einsum("kjnd,kjd->kjn", normals, centres)
        self._obstacle_lower[...] = bound.ravel()

    def _failure(self, status: str, iterations: int = 0, solve_time_s: float = 0.0) -> tuple[np.ndarray, ScenarioInfo]:
        problem = self.problem
        k_, horizon, n, m = self.hypotheses, problem.horizon, problem.n, problem.m
        return np.full(m, np.nan), ScenarioInfo(
            False, status, iterations, solve_time_s, float("nan"),
            np.full((k_, horizon + 1, n), np.nan), np.full((k_, horizon, m), np.nan), float("nan"), "backup",
        )


class _Budget:
    """A tick's iteration budget: the cap, and what its solves have spent (iterations, solver seconds)."""

    __slots__ = ("cap", "iterations", "seconds")

    def __init__(self, cap: int) -> None:
        self.cap, self.iterations, self.seconds = cap, 0, 0.0

    @property
    def left(self) -> int:
        return self.cap - self.iterations

    def spend(self, iterations: int, seconds: float) -> None:
        self.iterations += iterations
        self.seconds += seconds
