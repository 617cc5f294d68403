"""The solve paths of the filter QP by name, the names the benchmark rows carry."""

from __future__ import annotations

from collections.abc import Callable

from aegis.controllers.cbf.qp import QpSolver, QpSpec

SOLVER_NAMES = ("osqp-direct", "closed-form", "cvxpygen", "cvxpy-param", "cvxpy-rebuild")
"""osqp-direct: OSQP with matrix updates; closed-form: explicit where one row is active, else OSQP;
cvxpygen: generated C (may be unavailable: CodegenUnavailable); cvxpy-param: the reference (cvxpy
with Parameters, Clarabel); cvxpy-rebuild: a cvxpy problem rebuilt every tick (benchmark only)."""

SolverFactory = Callable[[QpSpec], QpSolver]


def make_solver(name: str, spec: QpSpec) -> QpSolver:
    """The solver called ``name`` (one of :data:`SOLVER_NAMES`) for ``spec``, built now.

    ValueError for an unknown name; aegis.controllers.cbf.cvxpygen_solver.CodegenUnavailable when
    ``cvxpygen`` cannot be built here (it is built into the default cache on first use).
    """
    if name == "osqp-direct":
        from aegis.controllers.cbf.osqp_solver import OsqpQp

        return OsqpQp(spec)
    if name == "closed-form":
        from aegis.controllers.cbf.closed_form import ClosedFormQp

        return ClosedFormQp(spec)
    if name == "cvxpygen":
        from aegis.controllers.cbf.cvxpygen_solver import CvxpygenQp

        return CvxpygenQp(spec)
    if name == "cvxpy-param":
        from aegis.controllers.cbf.cvxpy_solver import CvxpyQp

        return CvxpyQp(spec)
    if name == "cvxpy-rebuild":
        from aegis.controllers.cbf.cvxpy_solver import CvxpyRebuildQp

        return CvxpyRebuildQp(spec)
    raise ValueError(f"unknown solver {name!r} (known: {', '.join(SOLVER_NAMES)})")
