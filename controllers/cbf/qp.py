"""The safety filter's QP, written once: its definition (QpSpec), a solver's answer (QpSolution) and the solver contract.

Every solve path (cvxpy, OSQP direct, cvxpygen, closed form) solves this one problem over the
inputs ``u`` (m) and one shared slack ``s``::

    minimise    (u - u_nom)' W (u - u_nom) + slack_quadratic s^2 + slack_linear s
    subject to  A u + s 1 >= b          (K barrier rows; unused rows: a = 0, b = INACTIVE_ROW_B)
                lower <= u <= upper      (input bounds)
                s >= 0

``W = diag(weights)``. The quadratic slack penalty keeps the problem strictly convex; the linear
one makes it an exact penalty: while the rows can be met within the input bounds and no row's
multiplier exceeds ``slack_linear``, the slack is exactly zero. (A quadratic penalty alone leaves
``s = multiplier / (2 slack_quadratic) > 0`` whenever a row is active, so the barrier condition
would be violated a little every time the filter acts.) With the slack the problem is always
feasible, so a solver that reports anything but success has failed numerically, never because
the constraints conflict.

Default penalties 10 and 100: one active row with a unit gradient (obstacles, walls) has the
multiplier ``2 |du|`` (W = I), so it is met exactly for any correction up to 50 (m/s^2 or m/s),
more than any input box used here allows; several rows wedged against each other can need more,
and then a small slack shows (layer relaxed_qp). Larger penalties slow OSQP's ADMM for nothing:
measured on the benchmark's ticks, 1e4 and 1e3 take 125 iterations (median) where 10 and 100 take 50.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

INACTIVE_ROW_B = -1.0
"""Right-hand side of an unused row (its ``a`` is zero): it reads ``s >= -1``, which ``s >= 0`` always meets."""

FORMULATION_VERSION = 2
"""Bumped whenever the problem above changes, so cached generated code (cvxpygen) is rebuilt."""


@dataclass(frozen=True)
class QpSpec:
    """The fixed part of the filter QP: sizes, weights, slack penalties and input bounds.

    ``weights`` (m,) > 0 is the diagonal of W; ``lower`` and ``upper`` (m,) are finite with
    lower < upper; ``max_rows`` is K, the fixed number of barrier rows.
    """

    weights: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    max_rows: int = 8
    slack_quadratic: float = 10.0
    slack_linear: float = 100.0

    def __post_init__(self) -> None:
        m = len(self.weights)
        if m < 1 or len(self.lower) != m or len(self.upper) != m:
            raise ValueError(f"QpSpec: weights, lower and upper need the same length >= 1, got {len(self.weights)}, {len(self.lower)}, {len(self.upper)}")
        values = (*self.weights, *self.lower, *self.upper, self.slack_quadratic, self.slack_linear)
        if not all(math.isfinite(v) for v in values):
            raise ValueError("QpSpec: weights, bounds and slack penalties must be finite")
        if min(self.weights) <= 0:
            raise ValueError(f"QpSpec.weights must be > 0, got {self.weights}")
        if any(lo >= hi for lo, hi in zip(self.lower, self.upper)):
            raise ValueError(f"QpSpec: lower {self.lower} must be below upper {self.upper} on every input")
        if not (isinstance(self.max_rows, int) and self.max_rows >= 1):
            raise ValueError(f"QpSpec.max_rows must be an int >= 1, got {self.max_rows!r}")
        if self.slack_quadratic <= 0 or self.slack_linear < 0:
            raise ValueError("QpSpec: slack_quadratic must be > 0 and slack_linear >= 0")

    @classmethod
    def create(
        cls,
        weights: Sequence[float] | np.ndarray,
        lower: Sequence[float] | np.ndarray,
        upper: Sequence[float] | np.ndarray,
        max_rows: int = 8,
        slack_quadratic: float = 10.0,
        slack_linear: float = 100.0,
    ) -> QpSpec:
        """A spec from arrays or sequences (converted to tuples of floats)."""
        return cls(_floats(weights), _floats(lower), _floats(upper), int(max_rows), float(slack_quadratic), float(slack_linear))

    @property
    def n_inputs(self) -> int:
        return len(self.weights)

    def digest(self) -> str:
        """A hex digest of everything that defines the problem (and the formulation's version)."""
        text = json.dumps(
            {
                "formulation": FORMULATION_VERSION,
                "weights": self.weights,
                "lower": self.lower,
                "upper": self.upper,
                "max_rows": self.max_rows,
                "slack_quadratic": self.slack_quadratic,
                "slack_linear": self.slack_linear,
            },
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(slots=True)
class QpSolution:
    """A solver's answer: the inputs ``u`` (m,), the slack, the solver's status text, whether it succeeded, its time (s).

    ``solved`` is the solver's own verdict; the filter checks the answer again before using it.
    """

    u: np.ndarray
    slack: float
    status: str
    solved: bool
    solve_time_s: float = 0.0


class QpSolver(Protocol):
    """One solve path. Built once for a QpSpec; ``solve`` per tick, never raising for a numerical failure.

    ``nominal`` (m,), ``a`` (K, m), ``b`` (K,) with K = spec.max_rows. The returned solution may
    share its ``u`` buffer with the next call's: copy it to keep it.
    """

    spec: QpSpec
    name: str

    def solve(self, nominal: np.ndarray, a: np.ndarray, b: np.ndarray) -> QpSolution: ...

    def reset(self) -> None: ...


def _floats(values: Sequence[float] | np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=float).ravel())


def objective(spec: QpSpec, nominal: np.ndarray, u: np.ndarray, slack: float) -> float:
    """The QP's cost at ``(u, slack)`` (the constant ``u_nom' W u_nom`` included), for comparing solutions."""
    du = np.asarray(u, dtype=float) - nominal
    return float(du @ (np.asarray(spec.weights) * du) + spec.slack_quadratic * slack * slack + spec.slack_linear * slack)
