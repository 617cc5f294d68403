"""The filter in closed loop (pure numpy integration, no PyBullet): nominal controllers driving straight at obstacles.

With the filter the barrier never goes below -1e-3 (the clearance to the obstacle minus the
robot's radius, measured exactly with aegis.scenario.geometry); without it the same runs collide,
which shows that the filter is what keeps them clear. Double integrators integrate exactly under
a zero-order hold at 100 Hz; the unicycle integrates its kinematics at 100 Hz.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from aegis.controllers.cbf import (
    CbfSafetyFilter,
    DoubleIntegratorModel,
    Environment,
    Neighbours,
    UnicycleLookaheadModel,
    adaptive_alpha,
    closing_speed,
    obstacle_density,
)

from aegis.scenario.geometry import clearance, geofence_walls
from aegis.scenario.schema import Geofence, ObstacleSpec

DT = 0.01
RADIUS = 0.15
QUADROTOR = DoubleIntegratorModel(max_acceleration=8.0, robot_radius=RADIUS, max_speed=2.0, alpha=2.0)


def _fly_at(obstacles: list[ObstacleSpec], start: np.ndarray, velocity: np.ndarray, use_filter: bool, seconds: float = 6.0, adaptive: bool = False) -> tuple[float, set[str]]:
    """(lowest barrier value, layers seen) of a double integrator whose nominal command holds ``velocity``."""
    environment = Environment.build(obstacles)
    safety_filter = CbfSafetyFilter(QUADROTOR, "closed-form")
    p, v = start.astype(float), np.zeros(3)
    lowest, layers = math.inf, set()
    for _ in range(round(seconds / DT)):
        nominal = 4.0 * (velocity - v)  # a velocity-holding controller: straight on, whatever is ahead
        if use_filter:
            alpha = adaptive_alpha(2.0, closing_speed(p, v, environment), obstacle_density(p, environment)) if adaptive else None
            command, report = safety_filter.compute(np.r_[p, v], nominal, environment, alpha=alpha)
            layers.add(report.layer)
        else:
            command = np.clip(nominal, QUADROTOR.lower, QUADROTOR.upper)
        p = p + v * DT + 0.5 * command * DT * DT
        v = v + command * DT
        lowest = min(lowest, clearance(obstacles, p) - RADIUS)
    return lowest, layers


SCENES = {
    "sphere head-on": ([ObstacleSpec(shape="sphere", position=(3.0, 0.0, 1.0), size=(1.0, 1.0, 1.0))], (0.0, 0.0, 1.0), (1.5, 0.0, 0.0)),
    "sphere off-centre": ([ObstacleSpec(shape="sphere", position=(3.0, 0.2, 1.0), size=(1.0, 1.0, 1.0))], (0.0, 0.0, 1.0), (2.0, 0.0, 0.0)),
    "cylinder": ([ObstacleSpec(shape="cylinder", position=(2.5, 0.1, 1.0), size=(0.6, 0.6, 3.0))], (0.0, 0.0, 1.0), (1.8, 0.0, 0.0)),
    "yawed box diagonally": ([ObstacleSpec(shape="box", position=(2.0, 2.0, 1.0), size=(1.0, 0.6, 3.0), yaw_rad=0.4)], (0.0, 0.0, 1.0), (1.2, 1.2, 0.0)),
    "descending onto a box": ([ObstacleSpec(shape="box", position=(0.0, 0.0, 0.25), size=(2.0, 2.0, 0.5))], (0.1, 0.0, 2.0), (0.0, 0.0, -1.5)),
}


@pytest.mark.parametrize("scene", SCENES, ids=list(SCENES))
def test_the_filter_keeps_a_double_integrator_clear_and_without_it_collides(scene: str) -> None:
    obstacles, start, velocity = SCENES[scene]
    with_filter, layers = _fly_at(obstacles, np.array(start), np.array(velocity), use_filter=True)
    without_filter, _ = _fly_at(obstacles, np.array(start), np.array(velocity), use_filter=False)
    assert with_filter >= -1e-3, f"{scene}: barrier reached {with_filter:.4f}"
    assert layers <= {"qp", "relaxed_qp"}
    assert without_filter < -0.1, f"{scene}: the unfiltered run should collide, its clearance was {without_filter:.3f}"


def test_the_adaptive_rate_keeps_it_clear_too() -> None:
    obstacles, start, velocity = SCENES["sphere head-on"]
    lowest, _ = _fly_at(obstacles, np.array(start), np.array(velocity), use_filter=True, adaptive=True)
    assert lowest >= -1e-3


def test_a_geofence_wall_holds() -> None:
    walls = geofence_walls(Geofence(min_m=(-3.0, -3.0, 0.0), max_m=(3.0, 3.0, 2.5)))
    environment = Environment.build(walls=walls)
    safety_filter = CbfSafetyFilter(QUADROTOR, "osqp-direct")
    p, v = np.array([0.0, 0.0, 1.0]), np.zeros(3)
    highest = -math.inf
    for _ in range(600):
        nominal = 4.0 * (np.array([2.0, 0.0, 1.0]) - v)  # out through x = 3 while climbing to the ceiling
        command, _ = safety_filter.compute(np.r_[p, v], nominal, environment)
        p, v = p + v * DT + 0.5 * command * DT * DT, v + command * DT
        highest = max(highest, p[0] + RADIUS - 3.0, p[2] + RADIUS - 2.5)
    assert highest <= 1e-3


def test_the_unicycle_stays_clear_of_a_cylinder_and_without_the_filter_hits_it() -> None:
    cylinder = [ObstacleSpec(shape="cylinder", position=(3.0, 0.05, 0.5), size=(0.6, 0.6, 1.0))]
    environment = Environment.build(cylinder)
    model = UnicycleLookaheadModel(lookahead_distance=0.2, robot_radius=0.3, max_speed=1.0, max_turn_rate=2.0, alpha=1.0)
    results = {}
    for use_filter in (True, False):
        safety_filter = CbfSafetyFilter(model, "closed-form")
        state = np.zeros(3)
        lowest = math.inf
        for _ in range(1000):
            nominal = np.array([0.8, 0.0])  # straight ahead at 0.8 m/s
            command = safety_filter.compute(state, nominal, environment)[0] if use_filter else nominal
            x, y, theta = state
            state = np.array([x + DT * command[0] * math.cos(theta), y + DT * command[0] * math.sin(theta), theta + DT * command[1]])
            lowest = min(lowest, clearance(cylinder, np.array([state[0], state[1], 0.5])) - model.robot_radius)
        results[use_filter] = lowest
    assert results[True] >= -1e-3
    assert results[False] < -0.1


def test_four_quadrotors_swapping_corners_filter_each_other_reciprocally() -> None:
    """Each robot filters against the other three (moving spheres, half the responsibility each): no pair ever touches."""
    starts = np.array([[2.0, 0.0, 1.0], [0.0, 2.0, 1.0], [-2.0, 0.0, 1.0], [0.0, -2.0, 1.0]])
    goals = -starts + np.array([0.0, 0.0, 2.0])  # opposite corners: all paths cross in the middle
    starts = starts + np.array([[0.0, 0.03, 0.0], [-0.03, 0.0, 0.0], [0.0, -0.02, 0.01], [0.02, 0.0, -0.01]])  # break the symmetry
    environment = Environment()

    def fly(use_filter: bool) -> tuple[float, float]:
        filters = [CbfSafetyFilter(QUADROTOR, "closed-form") for _ in starts]
        p, v = starts.copy(), np.zeros_like(starts)
        closest = math.inf
        for _ in range(800):
            commands = []
            for i, safety_filter in enumerate(filters):
                nominal = np.clip(2.0 * (goals[i] - p[i]), -1.5, 1.5) * 2.0 - 2.0 * v[i]
                others = [j for j in range(len(starts)) if j != i]
                neighbours = Neighbours(p[others], v[others], RADIUS)
                commands.append(safety_filter.compute(np.r_[p[i], v[i]], nominal, environment, neighbours)[0] if use_filter else np.clip(nominal, -8.0, 8.0))
            command = np.array(commands)
            p, v = p + v * DT + 0.5 * command * DT * DT, v + command * DT
            gaps = [np.linalg.norm(p[i] - p[j]) - 2 * RADIUS for i in range(4) for j in range(i + 1, 4)]
            closest = min(closest, min(gaps))
        return closest, float(np.max(np.linalg.norm(p - goals, axis=1)))

    closest, _ = fly(use_filter=True)
    assert closest >= -1e-3
    unfiltered, _ = fly(use_filter=False)
    assert unfiltered < -0.05
