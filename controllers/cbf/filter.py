"""The CBF safety filter: minimal change to a nominal command under barrier rows and input bounds, with layered fallback.

One call per control tick, :meth:`CbfSafetyFilter.compute`, returns the command to send and a
:class:`FilterReport` (plain values; the safety-filter node turns it into the
aegis.msgs.SafetyFilterReport message), and never raises. The layers, tried in order, the report's
``layer`` naming the one whose command went out:

``qp``
    the QP (aegis.controllers.cbf.qp) solved by the chosen path, its answer checked (finite, within
    the bounds, every row met up to ``check_tolerance``) and its slack <= ``slack_tolerance``: every
    barrier condition holds.
``relaxed_qp``
    the same solve's answer when its slack exceeds ``slack_tolerance``: the rows conflict with one
    another or with the input bounds (a robot cornered, or too fast to brake in time), and the
    command is the one that violates them least (one shared slack, so by the same amount each), at
    a cost of ``slack_quadratic s^2 + slack_linear s``. Why not a second, wider solve: the slack
    already makes the problem feasible by construction, so a second solve could only help after a
    numerical failure, and then the solver-free backup is the layer to trust.
``backup``
    no solver: the model's backup (a double integrator brakes, a unicycle stops), when the solve
    failed (status, non-finite or unchecked answer, an exception), or the nominal command, the
    obstacle or neighbour data, the barrier rows or ``alpha`` are not finite.
``estop``
    the state is not finite (nothing can be computed from it), or the backup's own check fails (its
    command not finite or out of bounds): the model's e-stop command (zeros) goes out and the
    supervisor acts on the layer.

The nominal command itself is never a fallback. Per tick the report carries ``h`` and ``active``
for every candidate row (names: :meth:`CbfSafetyFilter.constraint_names`), the slack, the solver's
status (or the reason for the fallback) and the solve time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from aegis.controllers.cbf.environment import NO_NEIGHBOURS, Environment, Neighbours
from aegis.controllers.cbf.qp import QpSolution, QpSolver, QpSpec
from aegis.controllers.cbf.rows import ConstraintRows, QpRows
from aegis.controllers.cbf.solvers import SolverFactory, make_solver

@dataclass(slots=True)
class FilterReport:
    """What the filter did on one call: the layer whose command went out, whether it changed the nominal command,
    ``h`` and ``active`` per candidate row, the slack, the solver's status (or the fallback's reason) and its time."""

    name: str
    layer: str
    intervened: bool
    h: np.ndarray
    active: np.ndarray
    slack: float
    solver_status: str
    solve_time_s: float


_UNCHANGED_TOLERANCE = 1e-5
"""Relative difference below which the command counts as the nominal one (report.intervened False)."""


class BarrierModel(Protocol):
    """What the filter needs of a robot model (aegis.controllers.cbf.DoubleIntegratorModel, UnicycleLookaheadModel)."""

    state_size: int
    n_inputs: int
    lower: np.ndarray
    upper: np.ndarray
    default_alpha: float

    def default_weights(self) -> np.ndarray: ...

    def fill_rows(self, state: np.ndarray, environment: Environment, neighbours: Neighbours, alpha: float, rows: ConstraintRows) -> None: ...

    def constraint_names(self, environment: Environment, neighbours: Neighbours) -> list[str]: ...

    def backup(self, state: np.ndarray) -> np.ndarray: ...

    def estop_command(self) -> np.ndarray: ...


class CbfSafetyFilter:
    """The filter for ``model``, its QP solved by ``solver`` (a name from aegis.controllers.cbf.SOLVER_NAMES or a factory).

    ``weights`` (m,) is W's diagonal (default: the model's); ``max_rows`` the QP's fixed number of
    barrier rows; ``swap_rounds`` how many times a tick with more candidate rows than that solves again with the
    rows its answer missed swapped in (aegis.controllers.cbf.rows); ``slack_quadratic`` and ``slack_linear`` the slack's penalties; ``slack_tolerance``
    the slack above which the command counts as relaxed; ``check_tolerance`` how far (relative to
    ``1 + |b|``) a solver's answer may miss a row or bound before it is rejected; ``name`` goes on
    the reports. Everything is built here (the solver set up once); compute() only updates.
    """

    def __init__(
        self,
        model: BarrierModel,
        solver: str | SolverFactory = "osqp-direct",
        weights: Sequence[float] | np.ndarray | None = None,
        max_rows: int = 8,
        swap_rounds: int = 0,
        slack_quadratic: float = 10.0,
        slack_linear: float = 100.0,
        slack_tolerance: float = 1e-5,
        check_tolerance: float = 1e-4,
        name: str = "safety_filter",
    ) -> None:
        if not (slack_tolerance > 0 and check_tolerance > 0):
            raise ValueError("slack_tolerance and check_tolerance must be > 0")
        self.model = model
        self.spec = QpSpec.create(model.default_weights() if weights is None else weights, model.lower, model.upper, max_rows, slack_quadratic, slack_linear)
        if self.spec.n_inputs != model.n_inputs:
            raise ValueError(f"weights: expected {model.n_inputs} values, got {self.spec.n_inputs}")
        self.solver: QpSolver = make_solver(solver, self.spec) if isinstance(solver, str) else solver(self.spec)
        if swap_rounds < 0:
            raise ValueError(f"swap_rounds must be >= 0, got {swap_rounds}")
        self.swap_rounds = int(swap_rounds)
        self.missed_ticks = 0
        """Ticks whose answer missed a row left out of the QP (after the swaps, if any): it goes out, its status says
        so. Not the backup: braking ignores every row, and on the campaigns that did worse (docs/campaigns.md)."""
        self.swaps = 0
        """Solves again with left-out rows swapped in, since construction (each one a QP solve more)."""
        self.slack_tolerance = float(slack_tolerance)
        self.check_tolerance = float(check_tolerance)
        self.name = name
        self._lower, self._upper = np.array(self.spec.lower), np.array(self.spec.upper)
        self._lower_values, self._upper_values = list(self.spec.lower), list(self.spec.upper)
        self._lowest = [lo - check_tolerance * (1.0 + abs(lo)) for lo in self.spec.lower]
        self._highest = [hi + check_tolerance * (1.0 + abs(hi)) for hi in self.spec.upper]
        self._rows = ConstraintRows(model.n_inputs)
        self._qp = QpRows(max_rows, model.n_inputs)
        self._ahead_rows = ConstraintRows(model.n_inputs)
        self._ahead_qp = QpRows(max_rows, model.n_inputs)

    def reset(self) -> None:
        """Forget the solver's warm start; the swap count restarts."""
        self.solver.reset()
        self.swaps = self.missed_ticks = 0

    def constraint_names(self, environment: Environment, neighbours: Neighbours = NO_NEIGHBOURS) -> list[str]:
        """What each entry of a report's ``h`` and ``active`` is, for this environment and these neighbours."""
        return self.model.constraint_names(environment, neighbours)

    def compute(
        self,
        state: np.ndarray,
        nominal: np.ndarray,
        environment: Environment,
        neighbours: Neighbours = NO_NEIGHBOURS,
        alpha: float | None = None,
    ) -> tuple[np.ndarray, FilterReport]:
        """The safe command (a new array) and the report, for ``state`` and the ``nominal`` command; never raises.

        ``alpha`` (1/s) is this tick's barrier rate (None: the model's default); see
        aegis.controllers.cbf.adaptive for adapting it online.
        """
        self._rows.clear()
        self._qp.rows_loaded = None
        try:
            return self._filter(state, nominal, environment, neighbours, alpha)
        except Exception as exc:  # noqa: BLE001 - the safety boundary: whatever failed, a fallback layer answers
            return self._fallback(state, nominal, f"error: {type(exc).__name__}: {exc}")

    def rows(
        self, state: np.ndarray, environment: Environment, neighbours: Neighbours = NO_NEIGHBOURS, alpha: float | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The candidate rows (a, b) of :meth:`compute`'s QP for this state, whatever the nominal (copies): the QP's K
        rows as its solver gets them (padded) when there are at most K, else every candidate, of which the QP keeps the
        K nearest to violation for the nominal (aegis.controllers.cbf.rows.QpRows.load). None when it will not solve
        (the state, alpha or the rows not finite). Never raises."""
        model = self.model
        alpha = model.default_alpha if alpha is None else float(alpha)
        if not (_finite_vector(state, model.state_size) and alpha > 0.0 and math.isfinite(alpha) and environment.finite and neighbours.finite):
            return None
        rows = self._ahead_rows
        rows.clear()
        try:
            model.fill_rows(state, environment, neighbours, alpha, rows)
        except Exception:  # noqa: BLE001 - compute's fallback answers it; no rows ahead
            return None
        if not math.isfinite(sum(rows.b) + sum(rows.a)):
            return None
        if len(rows.b) > self._ahead_qp.max_rows:
            return rows.matrix(), np.array(rows.b)
        self._ahead_qp.load(rows, np.zeros(model.n_inputs))
        return self._ahead_qp.a.copy(), self._ahead_qp.b.copy()

    def backup(self, state: np.ndarray, nominal: np.ndarray, reason: str) -> tuple[np.ndarray, FilterReport]:
        """The backup layer's command and report (e-stop if the backup cannot be trusted), chosen by the caller; never raises.

        For a caller that knows its inputs are unusable (obstacles not valid, stale or never
        received): no rows are built from them, so the report carries no ``h``; ``reason`` is its
        status.
        """
        self._rows.clear()
        self._qp.rows_loaded = None
        return self._fallback(state, nominal, reason)

    def _filter(
        self, state: np.ndarray, nominal: np.ndarray, environment: Environment, neighbours: Neighbours, alpha: float | None
    ) -> tuple[np.ndarray, FilterReport]:
        model = self.model
        if not _finite_vector(state, model.state_size):
            return self._estop(f"state not finite (or not a ({model.state_size},) array)", nominal)
        nominal_values = _finite_values(nominal, model.n_inputs)
        if nominal_values is None:
            return self._fallback(state, nominal, f"nominal command not finite (or not a ({model.n_inputs},) array)")
        alpha = model.default_alpha if alpha is None else float(alpha)
        if not (alpha > 0.0 and math.isfinite(alpha)):
            return self._fallback(state, nominal, f"alpha must be finite and > 0, got {alpha}")
        if not (environment.finite and neighbours.finite):
            return self._fallback(state, nominal, "obstacle or neighbour data not finite")
        rows = self._rows
        model.fill_rows(state, environment, neighbours, alpha, rows)
        if not math.isfinite(sum(rows.b) + sum(rows.a)):
            return self._fallback(state, nominal, "barrier rows not finite")
        qp = self._qp
        qp.load(rows, nominal)
        solution = self.solver.solve(nominal, qp.a, qp.b)
        if qp.selected is not None and self.swap_rounds:
            solution = self._solve_with_missed_rows(nominal, solution)
        if not solution.solved:
            return self._fallback(state, nominal, f"{self.solver.name}: {solution.status}")
        # The checks and the report below are plain Python on a few floats (2-4 inputs, <= 8 rows), where
        # numpy's per-call overhead would cost more than the arithmetic; they compute what _surplus and
        # _report compute for the fallback layers, the same operations in the same order.
        values, slack = solution.u.tolist(), solution.slack
        if not (math.isfinite(slack) and slack >= -self.check_tolerance and math.isfinite(sum(values))):
            return self._fallback(state, nominal, f"{self.solver.name}: answer not finite")
        clipped = []
        for x, lowest, highest, lo, hi in zip(values, self._lowest, self._highest, self._lower_values, self._upper_values):
            if not lowest <= x <= highest:
                return self._fallback(state, nominal, f"{self.solver.name}: answer outside the input bounds")
            clipped.append(lo if x < lo else hi if x > hi else x)  # np.minimum(np.maximum(x, lo), hi) on a float
        command = np.array(clipped)
        slack = float(max(slack, 0.0))
        products = (qp.a @ command).tolist() if qp.selected is None else (qp.candidates @ command).tolist()
        kept = None if qp.selected is None else set(qp.selected.tolist())
        tolerance = self.check_tolerance
        active = []
        missed_left_out = 0
        for index, (product, bound) in enumerate(zip(products, rows.b)):
            surplus, allowed = product + slack - bound, tolerance * (1.0 + abs(bound))
            if surplus < -allowed:
                if kept is None or index in kept:
                    return self._fallback(state, nominal, f"{self.solver.name}: answer misses a barrier row")
                missed_left_out += 1
            active.append(surplus <= allowed)
        status = solution.status
        if missed_left_out:
            self.missed_ticks += 1
            status += f" (misses {missed_left_out} of the {len(rows.b) - qp.max_rows} rows left out of the QP)"
        layer = "qp" if slack <= self.slack_tolerance else "relaxed_qp"
        report = FilterReport(
            self.name, layer, _differs(clipped, nominal_values), np.array(rows.h, dtype=float), np.array(active, dtype=bool),
            slack, status, float(solution.solve_time_s),
        )
        return command, report

    def _solve_with_missed_rows(self, nominal: np.ndarray, solution: QpSolution) -> QpSolution:
        """With rows left out of the QP: while the answer misses one of them, swap the missed in (QpRows.swap_in) and
        solve again, at most ``swap_rounds`` times; the caller's check counts an answer that still misses one."""
        qp = self._qp
        for _ in range(self.swap_rounds):
            if not (solution.solved and math.isfinite(solution.slack) and np.all(np.isfinite(solution.u))):
                return solution
            surplus, allowed = self._surplus(solution.u, max(solution.slack, 0.0))
            kept = qp.selected.tolist()
            left_out = set(range(len(surplus))).difference(kept)
            missed = sorted((surplus[i], i) for i in left_out if surplus[i] < -allowed[i])
            if not missed or not qp.swap_in([i for _, i in missed], [surplus[i] for i in kept]):
                return solution
            self.swaps += 1
            solution = self.solver.solve(nominal, qp.a, qp.b)
        return solution

    def _fallback(self, state: np.ndarray, nominal: np.ndarray, reason: str) -> tuple[np.ndarray, FilterReport]:
        """The backup layer, or the e-stop when the backup cannot be trusted."""
        try:
            if not _finite_vector(state, self.model.state_size):
                return self._estop(f"{reason}; state not finite", nominal)
            command = np.asarray(self.model.backup(state), dtype=float)
            if not _finite_vector(command, self.model.n_inputs):
                return self._estop(f"{reason}; backup command not finite", nominal)
            if np.any(command < self._lower) or np.any(command > self._upper):
                return self._estop(f"{reason}; backup command outside the input bounds", nominal)
            try:
                surplus, allowed = self._surplus(command, 0.0)
            except (ValueError, TypeError):  # rows left half-built by whatever failed: no activity to report
                surplus = allowed = None
            return command, self._report("backup", command, nominal, 0.0, reason, 0.0, surplus, allowed)
        except Exception as exc:  # noqa: BLE001 - the backup failing is what the e-stop is for
            return self._estop(f"{reason}; backup failed: {type(exc).__name__}: {exc}", nominal)

    def _estop(self, reason: str, nominal: np.ndarray) -> tuple[np.ndarray, FilterReport]:
        try:
            command = np.asarray(self.model.estop_command(), dtype=float).reshape(self.model.n_inputs)
        except Exception:  # noqa: BLE001 - even a broken model gets a zero command out
            command = np.zeros(self.spec.n_inputs)
        return command, self._report("estop", command, nominal, 0.0, reason, 0.0, None, None)

    def _surplus(self, command: np.ndarray, slack: float) -> tuple[list[float], list[float]]:
        """Per candidate row: by how much ``command`` (with ``slack``) meets it, ``a . u + s - b``, and the tolerance on that."""
        rows, tolerance = self._rows, self.check_tolerance
        if self._qp.rows_loaded is rows and self._qp.selected is None:  # this tick's QP holds the candidates as rows 0..n-1
            products = (self._qp.a @ command).tolist()
        elif self._qp.rows_loaded is rows:  # some were left out: the choice kept every candidate as a matrix
            products = (self._qp.candidates @ command).tolist()
        else:
            products = (rows.matrix() @ command).tolist()
        surplus = [p + slack - b for p, b in zip(products, rows.b)]
        return surplus, [tolerance * (1.0 + abs(b)) for b in rows.b]

    def _report(
        self,
        layer: str,
        command: np.ndarray,
        nominal: np.ndarray,
        slack: float,
        status: str,
        solve_time_s: float,
        surplus: list[float] | None,
        allowed: list[float] | None,
    ) -> FilterReport:
        """The report; a row is active when the command meets it with equality (within tolerance) or misses it."""
        h = np.array(self._rows.h)
        if surplus is None or allowed is None or len(surplus) != len(h):
            active = np.zeros(len(h), dtype=bool)
        else:
            active = np.array([s <= tol for s, tol in zip(surplus, allowed)], dtype=bool)
        return FilterReport(
            name=self.name,
            layer=layer,
            intervened=_changed(command, nominal),
            h=h,
            active=active,
            slack=slack,
            solver_status=status,
            solve_time_s=solve_time_s,
        )


def _differs(command: list[float], nominal: list[float]) -> bool:
    """:func:`_changed` on lists of floats of the same length (the hot path)."""
    for c, n in zip(command, nominal):
        if not abs(c - n) <= _UNCHANGED_TOLERANCE * (1.0 + abs(n)):
            return True
    return False


def _changed(command: np.ndarray, nominal: np.ndarray) -> bool:
    """Whether ``command`` differs from ``nominal`` by more than a solver's rounding (relative 1e-5), or nominal is malformed."""
    try:
        return any(not abs(c - n) <= _UNCHANGED_TOLERANCE * (1.0 + abs(n)) for c, n in zip(command.tolist(), nominal.tolist(), strict=True))
    except (AttributeError, TypeError, ValueError):
        return True


def _finite_vector(values: np.ndarray, size: int) -> bool:
    """Whether ``values`` is a float array of shape (size,) with no NaN or inf (one sum: NaN and inf propagate)."""
    return isinstance(values, np.ndarray) and values.shape == (size,) and math.isfinite(sum(values.tolist()))


def _finite_values(values: np.ndarray, size: int) -> list[float] | None:
    """``values`` as a list of floats when :func:`_finite_vector` holds, else None."""
    if not (isinstance(values, np.ndarray) and values.shape == (size,)):
        return None
    listed = values.tolist()
    return listed if math.isfinite(sum(listed)) else None
