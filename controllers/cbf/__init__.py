"""CBF safety filters: barrier rows from robot models and surroundings, one QP with several solve paths, layered fallback.

- :class:`CbfSafetyFilter` (filter.py): ``compute(state, nominal, environment, neighbours, alpha)``
  -> (safe command, FilterReport), never raising; layers qp -> relaxed_qp -> backup -> estop.
- Models: :class:`DoubleIntegratorModel` (3-D acceleration, higher-order CBFs; the quadrotor's
  outer loop) and :class:`UnicycleLookaheadModel` ((v, omega) through a look-ahead point; a diff-drive).
- Surroundings: :class:`Environment` (obstacles and geofence walls, built once per message) and
  :class:`Neighbours` (other robots as moving spheres, per tick).
- The QP (qp.py) and its solve paths by name (:data:`SOLVER_NAMES`): osqp-direct, closed-form,
  cvxpygen, cvxpy-param (the reference), cvxpy-rebuild.
- :func:`adaptive_alpha`, :func:`closing_speed`, :func:`obstacle_density`: the online barrier rate.
"""

from aegis.controllers.cbf.adaptive import (
    adaptive_alpha,
    closing_speed,
    obstacle_density,
)
from aegis.controllers.cbf.double_integrator import DoubleIntegratorModel
from aegis.controllers.cbf.environment import NO_NEIGHBOURS, Environment, Neighbours
from aegis.controllers.cbf.filter import BarrierModel, CbfSafetyFilter, FilterReport
from aegis.controllers.cbf.qp import QpSolution, QpSolver, QpSpec
from aegis.controllers.cbf.solvers import SOLVER_NAMES, make_solver
from aegis.controllers.cbf.unicycle import UnicycleLookaheadModel

__all__ = [
    "NO_NEIGHBOURS",
    "SOLVER_NAMES",
    "BarrierModel",
    "CbfSafetyFilter",
    "FilterReport",
    "DoubleIntegratorModel",
    "Environment",
    "Neighbours",
    "QpSolution",
    "QpSolver",
    "QpSpec",
    "UnicycleLookaheadModel",
    "adaptive_alpha",
    "closing_speed",
    "make_solver",
    "obstacle_density",
]
