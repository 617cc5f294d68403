"""The filter QP solved explicitly by guessing its active constraints and checking the guess (KKT); OSQP otherwise.

With W diagonal the answer is explicit once the active constraints are known (see
aegis.controllers.cbf.qp for the QP), and a guess of them is cheap to check:

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
3. Otherwise (two or more rows active, bounds binding together with rows, a nominal outside the
   bounds), a guided search over active sets, :meth:`ClosedFormQp._active_set` solving each guess
   explicitly: the rows' multipliers from their equations (a system as small as the set; the slack only with
   a single row, as in 2.), the inputs the candidate pushes beyond a bound fixed there and solved
   again, a fixed bound whose multiplier pulls the wrong way released. The first guess is the last
   answer's active set (OSQP's too, read back from its answer to OSQP's tolerance) when the nominal
   violates one of its rows (in a control loop the active set rarely changes from one tick to the
   next; a row can be active without the nominal violating it, pushed into by another's
   correction); then, from
   each violated row (most violated first), that row alone: a candidate that misses a row gets that row added
   (when the set already has as many rows as free inputs, the row whose multiplier would reach zero
   first is dropped, as in Goldfarb and Idnani's dual method); a row whose multiplier comes out
   negative is dropped. At most ``max_tries`` guesses, none twice. A candidate is accepted only when
   every KKT condition holds: within the bounds, every other row met, the rows' multipliers >= 0
   (and <= slack_linear in sum without slack), each fixed bound's multiplier of the right sign. The
   QP is strictly convex, so a KKT point is the optimum, exactly (up to rounding: the checks allow
   1e-12 relative, and a bound's multiplier 1e-9 of the wrong sign where it is degenerate).

Where no guess passes (several rows with the slack, guesses run out), the solve falls through to
:class:`aegis.controllers.cbf.osqp_solver.OsqpQp`. On the benchmark's ticks (aegis.bench.filter) that
is none of 2000 closed-loop ticks, quadrotor or diff-drive, 1 of 2000 with the quadrotor's plant model
(``--robot quadrotor_lagged``; 17 before OSQP's active set seeded the next guess and a partly violated last set was
tried), and 18 and 10 of 2000 independent random states; with cases 1 and 2 alone it was 387 and 280, and 1066 and 215. Cases 1 and 2 run first and
unchanged, so where they answer, the answer is the same to the bit. The margins of all rows come from one numpy
product; the candidates and their checks are plain Python on floats, which for 2-4 inputs and
<= 8 rows is several times faster than numpy's per-call overhead. ``closed_form_solves`` and
``osqp_solves`` count which way each solve went.
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

_MULTIPLIER_TOLERANCE = 1e-9
"""Relative amount by which a fixed bound's multiplier may have the wrong sign: where a row and a bound meet with
the bound's multiplier zero (degenerate), rounding decides its sign; holding the bound then moves the answer by
rounding only."""


class ClosedFormQp:
    """The explicit solution where it applies (module doc), OSQP direct where it does not.

    ``max_tries`` bounds the active-set guesses of case 3 per solve (each costs a few µs; OSQP takes over after).
    """

    name = "closed-form"

    def __init__(self, spec: QpSpec, osqp_tolerance: float = 1e-6, max_tries: int = 8) -> None:
        self.spec = spec
        self.fallthrough = OsqpQp(spec, tolerance=osqp_tolerance)
        self._osqp_tolerance = float(osqp_tolerance)
        self.max_tries = int(max_tries)
        self._weights = list(spec.weights)
        self._inverse_weights = [1.0 / w for w in spec.weights]
        self._lower, self._upper = list(spec.lower), list(spec.upper)
        self._lowest = [lo - _FEASIBILITY_TOLERANCE * (1.0 + abs(lo)) for lo in spec.lower]
        self._highest = [hi + _FEASIBILITY_TOLERANCE * (1.0 + abs(hi)) for hi in spec.upper]
        self._solution = QpSolution(np.zeros(spec.n_inputs), 0.0, "", True)
        self.closed_form_solves = 0
        self.osqp_solves = 0
        self._last: tuple[tuple[int, ...], dict[int, float]] | None = None
        """The active rows and fixed bounds of the last explicit answer: case 3's first guess."""

    def reset(self) -> None:
        """Forget the warm starts: OSQP's, and the last active set."""
        self.fallthrough.reset()
        self._last = None

    def solve(self, nominal: np.ndarray, a: np.ndarray, b: np.ndarray) -> QpSolution:
        started = time.perf_counter()
        u = self._explicit(nominal, a, b)
        if u is None:
            self.osqp_solves += 1
            solution = self.fallthrough.solve(nominal, a, b)
            solution.status = f"closed form n/a -> osqp {solution.status}"
            if solution.solved:
                self._last = self._active_set_of(solution, a, b)
            return solution
        self.closed_form_solves += 1
        out = self._solution
        out.u[:] = u[:-1]
        out.slack = u[-1]
        out.status = "closed form"
        out.solved = True
        out.solve_time_s = time.perf_counter() - started
        return out

    def _active_set_of(self, solution: QpSolution, a: np.ndarray, b: np.ndarray) -> tuple[tuple[int, ...], dict[int, float]] | None:
        """The rows OSQP's answer meets with equality and the bounds it sits on (both to OSQP's tolerance): case 3's
        first guess on the next tick, so that a run of ticks with the same active set costs one OSQP solve, not one each."""
        u = solution.u.tolist()
        tolerance = 10.0 * self._osqp_tolerance
        surplus = (a @ solution.u + solution.slack - b).tolist()
        active = tuple(k for k, (s, bound) in enumerate(zip(surplus, b.tolist())) if s <= tolerance * (1.0 + abs(bound)))
        fixed = {
            j: bound
            for j, (x, lo, hi) in enumerate(zip(u, self._lower, self._upper))
            for bound in (lo, hi)
            if abs(x - bound) <= tolerance * (1.0 + abs(bound))
        }
        return (active, fixed) if active else None

    def _explicit(self, nominal: np.ndarray, a: np.ndarray, b: np.ndarray) -> list[float] | None:
        """(u..., s) by the closed form, or None where it does not apply."""
        values = nominal.tolist()
        start = [lo if x < lo else hi if x > hi else x for x, lo, hi in zip(values, self._lower, self._upper)]  # the box projection
        inside = start == values
        shortfalls = (b - a @ (nominal if inside else np.array(start))).tolist()
        violations = [(shortfall, index) for index, shortfall in enumerate(shortfalls) if shortfall > 0.0]
        if not violations:
            return [*start, 0.0]
        violations.sort(reverse=True)
        rows, rhs = a.tolist(), b.tolist()
        missed_by: dict[int, tuple[int, ...] | None] = {}
        if inside:  # case 2: each violated row alone, no bound binding
            spec = self.spec
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
                missed = self._missed(u, slack, rows, rhs, (index,))
                if missed == ():
                    self._last = ((index,), {})
                    return [*u, slack]
                missed_by[index] = missed
        residuals = shortfalls if inside else (b - a @ nominal).tolist()  # b - a' u_nom per row
        floors = [bound - _FEASIBILITY_TOLERANCE * (1.0 + abs(bound)) for bound in rhs]
        return self._active_sets(values, a, rows, floors, residuals, violations, missed_by)

    def _active_sets(self, nominal: list[float], a: np.ndarray, rows: list[list[float]], floors: list[float], residuals: list[float],
                     violations: list[tuple[float, int]], missed_by: dict[int, tuple[int, ...] | None]) -> list[float] | None:
        """Case 3 of the module doc: first the last answer's active set (if still violated), then from each violated row (most violated
        first) the guesses :meth:`_active_set` points to: the row alone (or, when case 2 tried it, with the row its
        candidate missed most: ``missed_by``), then rows added and dropped as the candidates say; at most ``max_tries``
        guesses in all, none twice."""
        tries, tried = 0, set()
        seeds = [((index,), {}) for _, index in violations]
        last = self._last
        if last is not None and last[0] != seeds[0][0] and any(residuals[i] > 0.0 for i in last[0]):
            seeds.insert(0, last)  # the last answer's active set first while the nominal still violates one of its rows: in a loop it rarely changes
        for active, fixed in seeds:
            missed = missed_by.get(active[0]) if len(active) == 1 else None
            if missed:  # case 2's candidate of this row was within the bounds and missed these rows
                active = (active[0], missed[0])
            while active:
                key = (tuple(sorted(active)), tuple(sorted(fixed.items())))
                if key in tried:
                    break
                if tries == self.max_tries:
                    return None
                tries += 1
                tried.add(key)
                found = self._active_set(active, nominal, a, rows, floors, residuals, fixed)
                if fixed and not isinstance(found, list) and found[:2] == (None, None) and tries < self.max_tries:
                    tries += 1  # the bounds carried over were wrong for this set: again without them
                    found = self._active_set(active, nominal, a, rows, floors, residuals, {})
                if isinstance(found, list):
                    return found
                add, drop, fixed = found  # the next guess starts from the bounds this one found binding
                if add is None and drop is None:
                    break
                active = tuple(row for row in active if row != drop) + (() if add is None else (add,))
        return None

    def _missed(self, u: list[float], slack: float, rows: list[list[float]], rhs: list[float], active: tuple[int, ...]) -> tuple[int, ...] | None:
        """None when ``u`` is outside the bounds or ``slack`` not finite; else the rows other than ``active`` that
        ``(u, slack)`` misses, most missed first (empty: a feasible candidate). Rounding allowed: 1e-12 relative."""
        for x, lowest, highest in zip(u, self._lowest, self._highest):
            if not lowest <= x <= highest:
                return None
        if not math.isfinite(slack):
            return None
        missed = []
        for k, (row, bound) in enumerate(zip(rows, rhs)):
            met, floor = sum(map(mul, row, u)) + slack, bound - _FEASIBILITY_TOLERANCE * (1.0 + abs(bound))
            if met < floor and k not in active:
                missed.append((floor - met, k))
        missed.sort(reverse=True)
        return tuple(k for _, k in missed)

    def _active_set(self, active: tuple[int, ...], nominal: list[float], a: np.ndarray, rows: list[list[float]], floors: list[float],
                    residuals: list[float], fixed: dict[int, float]) -> list[float] | tuple[int | None, int | None, dict[int, float]]:
        """(u..., s) with the rows ``active`` active and the bounds that bind, starting from the bounds ``fixed``
        (input -> bound), when it meets every KKT condition; else the next guess as (row to add, row to drop, the
        bounds that bound here): add the row the candidate misses most (dropping the row whose multiplier would reach
        zero first when there are as many rows as free inputs), drop a row whose multiplier is negative; no row to
        add or drop when there is nothing to go on.

        ``u = u_nom + W^-1 A_R' mu / 2`` on the free inputs and the bound on the fixed ones, ``mu`` from the active rows'
        equations ``A_R u + s = b_R`` (``s`` > 0 only with a single row, as in case 2). An input the candidate puts beyond
        a bound is fixed there and the rest solved again.
        """
        spec, inverse_weights, lower, upper = self.spec, self._inverse_weights, self._lower, self._upper
        m, count = len(nominal), len(active)
        chosen = [rows[i] for i in active]
        fixed = dict(fixed) if count <= m - len(fixed) else {}  # input -> the bound it is held at
        for _ in range(2 * m + 2):  # fix the inputs a candidate puts beyond a bound, release a bound that pulls
            if fixed:
                scaled = [[row[j] * inverse_weights[j] if j not in fixed else 0.0 for j in range(m)] for row in chosen]
                shortfalls = [residuals[i] - sum((bound - nominal[j]) * row[j] for j, bound in fixed.items()) for i, row in zip(active, chosen)]
            else:
                scaled = [list(map(mul, row, inverse_weights)) for row in chosen]  # W^-1 a
                shortfalls = [residuals[i] for i in active]
            slack = 0.0
            if count == 1:
                shortfall, gain = shortfalls[0], sum(map(mul, chosen[0], scaled[0]))  # a' W^-1 a over the free inputs
                gram = [[gain]]
                if not shortfall > 0.0:
                    return None, None, fixed
                if gain > 0.0 and 2.0 * shortfall / gain <= spec.slack_linear:
                    halves = [shortfall / gain]
                else:
                    mu = (2.0 * shortfall + spec.slack_linear / spec.slack_quadratic) / (gain + 1.0 / spec.slack_quadratic)
                    halves, slack = [0.5 * mu], (mu - spec.slack_linear) / (2.0 * spec.slack_quadratic)
                half = halves[0]
                u = [x + half * s for x, s in zip(nominal, scaled[0])]
                for j, bound in fixed.items():
                    u[j] = bound
            else:
                if count > m - len(fixed):
                    return None, None, fixed  # more active rows than free inputs: not a case solved here
                gram = [[sum(map(mul, row, other)) for other in scaled] for row in chosen]  # A_R W^-1 A_R', free inputs
                halves = _solve_small(gram, shortfalls)
                if halves is None or 2.0 * sum(halves) > spec.slack_linear:
                    return None, None, fixed  # dependent rows, or the slack would have to take part
                if min(halves) < 0.0:  # that row should not be active
                    return None, active[halves.index(min(halves))], fixed
                u = [fixed.get(j, x + sum(half * s[j] for half, s in zip(halves, scaled))) for j, x in enumerate(nominal)]
            overshoot, beyond = 0.0, -1  # fix the input furthest beyond its bound, then solve again
            for j, (x, lowest, highest) in enumerate(zip(u, self._lowest, self._highest)):
                if not lowest <= x <= highest and j not in fixed:
                    excess = x - upper[j] if x > upper[j] else lower[j] - x
                    if excess > overshoot:
                        overshoot, beyond = excess, j
            if beyond >= 0:
                fixed[beyond] = upper[beyond] if u[beyond] > upper[beyond] else lower[beyond]
                continue
            pulling = None
            for j, bound in fixed.items():  # a fixed bound's multiplier must push the right way: A_R' mu - 2 W (u - u_nom)
                pull = 2.0 * self._weights[j] * (bound - nominal[j])
                push = 2.0 * sum(half * row[j] for half, row in zip(halves, chosen)) - pull
                allowed = _MULTIPLIER_TOLERANCE * (1.0 + abs(pull))
                if (push < -allowed) if bound == upper[j] else (push > allowed):
                    pulling = j
                    break
            if pulling is None:
                break
            del fixed[pulling]
        else:
            return None, None, fixed
        if not math.isfinite(slack):
            return None, None, fixed
        missed = [(floor - met - slack, k) for k, (met, floor) in enumerate(zip((a @ u).tolist(), floors))  # u is within the bounds
                  if met + slack < floor and k not in active]
        if not missed:
            self._last = (active, fixed)
            return [*u, slack]
        add = max(missed)[1]  # the row missed most
        if count < m - len(fixed):
            return add, None, fixed
        # As many rows as free inputs: adding a row must drop one. As the new row's multiplier grows, the others'
        # change by -z per unit (A_R W^-1 A_R' z = A_R W^-1 a_new); the first to reach zero goes (Goldfarb-Idnani).
        if slack > 0.0:
            return None, None, fixed
        new_row = rows[add]
        z = _solve_small(gram, [sum(row[j] * inverse_weights[j] * new_row[j] for j in range(m) if j not in fixed) for row in chosen])
        ratios = [(half / step, row) for half, step, row in zip(halves, z or (), active) if step > 0.0]
        return (add, min(ratios)[1], fixed) if ratios else (None, None, fixed)


def _solve_small(matrix: list[list[float]], rhs: list[float]) -> list[float] | None:
    """x with ``matrix x = rhs`` for a small symmetric positive semi-definite system; None when it is (nearly) singular.

    1x1 directly, 2x2 and 3x3 by Cramer's rule (a determinant below 1e-9 of the product of the diagonal counts as singular),
    larger by Gaussian elimination with partial pivoting (a pivot below 1e-9 of the largest diagonal entry).
    """
    n = len(rhs)
    if n == 1:
        return [rhs[0] / matrix[0][0]] if matrix[0][0] > 0.0 else None
    if n == 2:
        (a, b), (c, d) = matrix
        determinant = a * d - b * c
        if not determinant > 1e-9 * a * d:
            return None
        return [(d * rhs[0] - b * rhs[1]) / determinant, (a * rhs[1] - c * rhs[0]) / determinant]
    if n == 3:
        (a, b, c), (d, e, f), (g, h, i) = matrix
        co1, co2, co3 = e * i - f * h, f * g - d * i, d * h - e * g
        determinant = a * co1 + b * co2 + c * co3
        if not determinant > 1e-9 * a * e * i:
            return None
        x, y, z = rhs
        return [
            (x * co1 + y * (c * h - b * i) + z * (b * f - c * e)) / determinant,
            (x * co2 + y * (a * i - c * g) + z * (c * d - a * f)) / determinant,
            (x * co3 + y * (b * g - a * h) + z * (a * e - b * d)) / determinant,
        ]
    rows = [[*row, value] for row, value in zip(matrix, rhs)]
    floor = 1e-9 * max(abs(matrix[k][k]) for k in range(n))
    for col in range(n):
        pivot = max(range(col, n), key=lambda k: abs(rows[k][col]))
        if not abs(rows[pivot][col]) > floor:
            return None
        rows[col], rows[pivot] = rows[pivot], rows[col]
        head = rows[col]
        for k in range(col + 1, n):
            factor = rows[k][col] / head[col]
            if factor:
                rows[k] = [x - factor * y for x, y in zip(rows[k], head)]
    solution = [0.0] * n
    for k in range(n - 1, -1, -1):
        solution[k] = (rows[k][n] - sum(rows[k][j] * solution[j] for j in range(k + 1, n))) / rows[k][k]
    return solution
