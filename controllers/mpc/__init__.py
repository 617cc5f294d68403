"""Linear and scenario MPC: one problem definition, a fast OSQP path, a cvxpy reference, and the robots' models.

- :mod:`.problem`: :func:`mpc_problem` -> :class:`MpcProblem` (model, horizon, weights, limits).
- :mod:`.qp`: the sparse QP over one flat decision variable, with its per-tick index maps.
- :mod:`.linear`: :class:`LinearMpc`, OSQP set up once, vectors updated and warm-started per tick.
- :mod:`.reference`: :class:`CvxpyMpc` (cvxpy Parameters, DPP), ``solve_rebuilt``, QP-size measurement.
- :mod:`.quadrotor`: 12-state hover MPC (rotor speeds out) and 6-state translational MPC (acceleration out).
- :mod:`.diff_drive`: unicycle tracking MPC linearised along the reference each tick (3 or 4 states).
- :mod:`.scenario`: :class:`ScenarioMpc`, one plan per obstacle hypothesis with a shared first segment.
- :mod:`.qp_solvers`: OSQP and Clarabel behind one interface (the scenario MPC's choice).

cvxpy is imported only by :mod:`.reference` (tests and benchmarks), not by the controllers.
"""

from aegis.controllers.mpc.diff_drive import DiffDriveTrackingMpc, diff_drive_tracking_mpc, unicycle_reference
from aegis.controllers.mpc.linear import LinearMpc, MpcInfo, OsqpSettings
from aegis.controllers.mpc.problem import MpcProblem, mpc_problem
from aegis.controllers.mpc.quadrotor import (
    QuadrotorHoverMpc,
    double_integrator,
    hover_input_box,
    hover_reference,
    quadrotor_hover_mpc,
    translational_mpc,
    translational_reference,
)
from aegis.controllers.mpc.scenario import ScenarioInfo, ScenarioMpc

__all__ = [
    "DiffDriveTrackingMpc",
    "LinearMpc",
    "MpcInfo",
    "MpcProblem",
    "OsqpSettings",
    "QuadrotorHoverMpc",
    "ScenarioInfo",
    "ScenarioMpc",
    "diff_drive_tracking_mpc",
    "double_integrator",
    "hover_input_box",
    "hover_reference",
    "mpc_problem",
    "quadrotor_hover_mpc",
    "translational_mpc",
    "translational_reference",
    "unicycle_reference",
]
