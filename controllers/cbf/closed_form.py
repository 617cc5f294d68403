"""The filter QP in closed form when at most one barrier row is active and no input bound binds; OSQP otherwise.

With W diagonal the answer is explicit in two cases (see aegis.controllers.cbf.qp for the QP):

1. The nominal command, clipped to the input bounds, meets every row: it is the optimum (the box
   projection is optimal without rows, and it is feasible), with ``s = 0``.
2. Exactly one row ``a' u + s >= b`` is active and no bound binds. With ``d = b - a' u_nom > 0``
   and ``g = a' W^-1 a``, the KKT conditions give ``u = u_nom + (mu / 2) W^-1 a`` with the row's
   multiplier ``mu = 2 d / g`` and ``s = 0`` while ``mu <= slack_linear`` (the linear slack
   penalty is an exact penalty); beyond that the slack takes the rest:
   ``mu = (2 d + slack_linear / slack_quadratic) / (g + 1 / slack_quadratic)``,
   ``s = (mu - slack_linear) / (2 slack_quadratic)``.
   Only a row the nominal violates can be the single active one; each such row's candidate is
   tried, most violated first, and accepted when it is within the bounds and meets every other
   row (then the KKT conditions hold with that row alone active, so it is the unique optimum).

Anything else (two rows active, a bound binding together with a row, a nominal outside the bounds
that also violates a row) falls through to :class:`aegis.controllers.cbf.osqp_solver.OsqpQp`.
The margins of all rows come from one numpy product; the candidate and its checks are plain Python
on floats, which for 2-4 inputs and <= 8 rows is several times faster than numpy's per-call
overhead. ``closed_form_solves`` and ``osqp_solves`` count which way each solve went.
"""

from __future__ import annotations

import math
import time
from operator import mul

import numpy as np

from aegis.controllers.cbf.osqp_solver import OsqpQp
from aegis.controllers.cbf.qp import QpSolution, QpSpec

_FEASIBILITY_TOLERANCE = 1e-12
"""Relative slack allowed when checking a candidate against the other rows and the bounds (rounding only)."""


class ClosedFormQp:
    """The explicit solution where it applies (module doc), OSQP direct where it does not."""

    name = "closed-form"

    def __init__(self, spec: QpSpec, osqp_tolerance: float = 1e-6) -> None:
        self.spec = spec
        self.fallthrough = OsqpQp(spec, tolerance=osqp_tolerance)
        self._inverse_weights = [1.0 / w for w in spec.weights]
        self._lower, self._upper = list(spec.lower), list(spec.upper)
        self._lower_array, self._upper_array = np.array(spec.lower), np.array(spec.upper)
        self._solution = QpSolution(np.zeros(spec.n_inputs), 0.0, "", True)
        self.closed_form_solves = 0
        self.osqp_solves = 0

    def reset(self) -> None:
        self.fallthrough.reset()

    def solve(self, nominal: np.ndarray, a: np.ndarray, b: np.ndarray) -> QpSolution:
        started = time.perf_counter()
        u = self._explicit(nominal, a, b)
        if u is None:
            self.osqp_solves += 1
            solution = self.fallthrough.solve(nominal, a, b)
            solution.status = f"closed form n/a -> osqp {solution.status}"
            return solution
        self.closed_form_solves += 1
        out = self._solution
        out.u[:] = u[:-1]
        out.slack = u[-1]
        out.status = "closed form"
        out.solved = True
        out.solve_time_s = time.perf_counter() - started
        return out

    def _explicit(self, nominal: np.ndarray, a: np.ndarray, b: np.ndarray) -> list[float] | None:
        """(u..., s) by the closed form, or None where it does not apply."""
        clipped = np.minimum(np.maximum(nominal, self._lower_array), self._upper_array)
        shortfalls = (b - a @ clipped).tolist()
        violations = [(shortfall, index) for index, shortfall in enumerate(shortfalls) if shortfall > 0.0]
        start = clipped.tolist()
        if not violations:
            return [*start, 0.0]
        if start != nominal.tolist():
            return None  # a bound binds and a row is violated: more than one constraint may be active
        violations.sort(reverse=True)
        spec, rows, rhs = self.spec, a.tolist(), b.tolist()
        for shortfall, index in violations:
            row = rows[index]
            scaled = list(map(mul, row, self._inverse_weights))  # W^-1 a
            gain = sum(map(mul, row, scaled))  # a' W^-1 a
            if gain > 0.0 and 2.0 * shortfall / gain <= spec.slack_linear:
                half_mu, slack = shortfall / gain, 0.0
            else:
                mu = (2.0 * shortfall + spec.slack_linear / spec.slack_quadratic) / (gain + 1.0 / spec.slack_quadratic)
                half_mu, slack = 0.5 * mu, (mu - spec.slack_linear) / (2.0 * spec.slack_quadratic)
            u = [x + half_mu * s for x, s in zip(start, scaled)]
            if self._feasible(u, slack, rows, rhs, index):
                return [*u, slack]
        return None

    def _feasible(self, u: list[float], slack: float, rows: list[list[float]], rhs: list[float], active: int) -> bool:
        """Whether ``(u, slack)`` is within the bounds and meets every row but ``active`` (which it meets by construction)."""
        for x, lo, hi in zip(u, self._lower, self._upper):
            if not lo - _FEASIBILITY_TOLERANCE * (1.0 + abs(lo)) <= x <= hi + _FEASIBILITY_TOLERANCE * (1.0 + abs(hi)):
                return False
        if not math.isfinite(slack):
            return False
        for index, (row, bound) in enumerate(zip(rows, rhs)):
            if index != active and sum(map(mul, row, u)) + slack < bound - _FEASIBILITY_TOLERANCE * (1.0 + abs(bound)):
                return False
        return True
