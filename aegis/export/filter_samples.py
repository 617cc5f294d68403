"""Sample problems of the safety filter's QP, built from random states and obstacles by the filter's own row code.

Each problem is one tick the filter could see: random obstacles (spheres, upright cylinders, yawed
boxes) inside the deployment's geofence, a random state outside every margin (h > 0) and a random
nominal command (about half of them need a correction, some lie beyond the input bounds). The
rows come from the robot model's ``fill_rows`` (obstacles, geofence walls, speed limit) and the QP's
K rows from :class:`aegis.controllers.cbf.rows.QpRows` (the K nearest to violation when there are
more), exactly as :class:`aegis.controllers.cbf.CbfSafetyFilter` builds them every tick.
:func:`solve_on_host` answers them with a host solve path (cvxpy-param, osqp-direct) to compare with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aegis.controllers.cbf import NO_NEIGHBOURS, DoubleIntegratorModel, Environment, UnicycleLookaheadModel, make_solver
from aegis.controllers.cbf.filter import BarrierModel
from aegis.controllers.cbf.qp import QpSpec
from aegis.controllers.cbf.rows import ConstraintRows, QpRows

DEFAULT_REGION = ((-3.0, -3.0, 0.0), (3.0, 3.0, 2.5))
"""Where obstacles and states are drawn when the deployment has no geofence (m, min and max corners)."""


@dataclass(frozen=True)
class QpProblems:
    """n problems of one QpSpec: ``nominal`` (n, m), ``a`` (n, K, m), ``b`` (n, K); ``candidates`` (n,) rows before the K were kept."""

    nominal: np.ndarray
    a: np.ndarray
    b: np.ndarray
    candidates: np.ndarray

    def __len__(self) -> int:
        return len(self.nominal)


def sample_problems(model: BarrierModel, spec: QpSpec, walls: Sequence[object] = (), count: int = 200, seed: int = 0,
                    region: tuple[Sequence[float], Sequence[float]] | None = None) -> QpProblems:
    """``count`` problems (module doc) for ``model`` and ``spec``, obstacles and states drawn in ``region`` (default: the walls' box)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if not isinstance(model, (DoubleIntegratorModel, UnicycleLookaheadModel)):
        raise ValueError(f"sample_problems draws states for DoubleIntegratorModel and UnicycleLookaheadModel, not {type(model).__name__}")
    from aegis.scenario.schema import ObstacleSpec

    rng = np.random.default_rng(seed)
    low, high = (np.asarray(corner, dtype=float) for corner in (region or DEFAULT_REGION))
    rows, qp = ConstraintRows(model.n_inputs), QpRows(spec.max_rows, model.n_inputs)
    lower, upper = np.asarray(spec.lower), np.asarray(spec.upper)
    centre, span = 0.5 * (lower + upper), upper - lower
    nominals, a, b, candidates = [], [], [], []
    while len(nominals) < count:
        obstacles = []
        for _ in range(int(rng.integers(3, 6))):
            shape = ("sphere", "cylinder", "box")[int(rng.integers(3))]
            width = float(rng.uniform(0.3, 1.2))
            size = {"sphere": (width, width, width), "cylinder": (width, width, float(high[2] - low[2])),
                    "box": (width, float(rng.uniform(0.3, 1.2)), float(rng.uniform(0.3, 1.2)))}[shape]
            obstacles.append(ObstacleSpec(shape=shape, position=tuple(rng.uniform(low, high)), size=size,
                                          yaw_rad=float(rng.uniform(-math.pi, math.pi)) if shape == "box" else 0.0))
        environment = Environment.build(obstacles, walls)
        for _ in range(100):  # a state outside every margin, in this environment
            state = _random_state(model, rng, low, high)
            model.fill_rows(state, environment, NO_NEIGHBOURS, model.default_alpha, rows)
            if min(rows.h, default=1.0) > 0.0:
                break
        else:
            continue  # the obstacles leave no room: draw others
        nominal = centre + rng.normal(scale=0.4 * span, size=model.n_inputs)
        qp.load(rows, nominal)
        nominals.append(nominal)
        a.append(qp.a.copy())
        b.append(qp.b.copy())
        candidates.append(len(rows))
    return QpProblems(np.array(nominals), np.array(a), np.array(b), np.array(candidates))


def _random_state(model: BarrierModel, rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    if isinstance(model, DoubleIntegratorModel):
        direction = rng.normal(size=3)
        speed = rng.uniform(0.0, model.max_speed or 2.0)
        state = np.r_[rng.uniform(low, high), speed * direction / np.linalg.norm(direction)]
        if model.state_size == 12:  # a plant model with a lag: an achieved acceleration and a bias estimate too
            state = np.r_[state, rng.uniform(-3.0, 3.0, 3), rng.uniform(-0.3, 0.3, 3)]
        return state
    return np.r_[rng.uniform(low[:2], high[:2]), rng.uniform(-math.pi, math.pi)]


def solve_on_host(problems: QpProblems, spec: QpSpec, path: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(u (n, m), slack (n,), statuses) of every problem through the host solve path ``path`` (aegis.controllers.cbf.SOLVER_NAMES)."""
    solver = make_solver(path, spec)
    u, slack, statuses = np.empty_like(problems.nominal), np.empty(len(problems)), []
    for k in range(len(problems)):
        solution = solver.solve(problems.nominal[k], problems.a[k], problems.b[k])
        u[k], slack[k] = solution.u, solution.slack if solution.solved else math.nan
        statuses.append(solution.status)
    return u, slack, statuses
