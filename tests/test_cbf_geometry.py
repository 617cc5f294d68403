"""Barrier geometry: distances against the scenario's exact signed distances, gradients and curvature by finite differences.

Spheres and yaw-rotated boxes must match aegis.scenario.geometry.signed_distance exactly; an upright
cylinder is the capsule around it for the filter (infinitely tall when its height is not finite), so
it matches beside the cylinder and is never larger (conservative) above or below it, yet bounded there. Gradient and ``v' H v`` are checked against central
differences at random points outside each obstacle (fixed seed).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from aegis.controllers.cbf import Environment, Neighbours
from aegis.controllers.cbf.environment import (
    box_distance,
    box_distance_planar,
    obstacle_tuple,
)

from aegis.msgs.obstacles import Obstacle
from aegis.scenario.geometry import HalfSpace, signed_distance, yaw_quaternion
from aegis.scenario.schema import ObstacleSpec

SPHERE = ObstacleSpec(shape="sphere", position=(1.0, -0.5, 1.2), size=(0.8, 0.8, 0.8))
CYLINDER = ObstacleSpec(shape="cylinder", position=(-0.7, 0.4, 1.0), size=(0.6, 0.6, 1.4))
BOX = ObstacleSpec(shape="box", position=(0.3, 1.1, 0.9), size=(1.2, 0.5, 0.8), yaw_rad=0.7)


def _points(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform([-2.5, -2.0, -0.5], [2.5, 3.0, 2.5], size=(n, 3))


@pytest.mark.parametrize("obstacle", [SPHERE, BOX], ids=["sphere", "box"])
def test_sphere_and_box_distances_are_the_exact_signed_distance(obstacle: ObstacleSpec) -> None:
    shape = obstacle_tuple(obstacle)
    for point in _points(500, 1):
        h = box_distance(*point, 0.0, 0.0, 0.0, shape)[0]
        assert h == pytest.approx(float(signed_distance(obstacle, point)), abs=1e-12)


def test_cylinder_is_exact_beside_it_and_conservative_above_and_below() -> None:
    shape = obstacle_tuple(CYLINDER)
    half_height = CYLINDER.size[2] / 2
    for point in _points(500, 2):
        h = box_distance(*point, 0.0, 0.0, 0.0, shape)[0]
        exact = float(signed_distance(CYLINDER, point))
        if abs(point[2] - CYLINDER.position[2]) <= half_height and exact >= 0:
            assert h == pytest.approx(exact, abs=1e-12)
        assert h <= exact + 1e-12
    # bounded: on its axis 1 m above the top cap the capsule's distance is 1 m less its radius (a robot may pass over it)
    top = np.array([CYLINDER.position[0], CYLINDER.position[1], CYLINDER.position[2] + half_height + 1.0])
    assert box_distance(*top, 0.0, 0.0, 0.0, shape)[0] == pytest.approx(1.0 - CYLINDER.size[0] / 2)


@pytest.mark.parametrize("obstacle", [SPHERE, CYLINDER, BOX], ids=["sphere", "cylinder", "box"])
def test_gradient_and_curvature_match_finite_differences(obstacle: ObstacleSpec) -> None:
    shape = obstacle_tuple(obstacle)
    rng = np.random.default_rng(3)
    step = 1e-6
    checked = 0
    for point in _points(400, 4):
        h, gx, gy, gz, curvature = box_distance(*point, *(velocity := rng.normal(size=3)), shape)
        if h < 0.05:
            continue  # the barrier is used outside the obstacle; near its surface the pieces meet
        gradient = np.array([gx, gy, gz])
        numeric = np.array([(_h(point + step * e, shape) - _h(point - step * e, shape)) / (2 * step) for e in np.eye(3)])
        np.testing.assert_allclose(gradient, numeric, atol=1e-6)
        # v' H v = d^2/dt^2 h(p + t v) at t = 0.
        second = (_h(point + 1e-4 * velocity, shape) - 2 * h + _h(point - 1e-4 * velocity, shape)) / 1e-8
        if not _near_region_boundary(point, obstacle, 1e-3):
            assert curvature == pytest.approx(second, rel=1e-3, abs=1e-3)
        checked += 1
    assert checked > 200


def _h(point: np.ndarray, shape: tuple) -> float:
    return box_distance(*point, 0.0, 0.0, 0.0, shape)[0]


def _near_region_boundary(point: np.ndarray, obstacle: ObstacleSpec, tolerance: float) -> bool:
    """Whether the point is within ``tolerance`` of a plane where a box's nearest feature changes (face/edge/corner)."""
    if obstacle.shape != "box":
        return False
    c, s = math.cos(obstacle.yaw_rad), math.sin(obstacle.yaw_rad)
    r = point - np.array(obstacle.position)
    local = np.array([c * r[0] + s * r[1], -s * r[0] + c * r[1], r[2]])
    return bool(np.any(np.abs(np.abs(local) - np.array(obstacle.size) / 2) < tolerance))


def test_planar_distance_is_the_3d_one_at_the_obstacle_height_for_upright_shapes() -> None:
    for obstacle in (CYLINDER, BOX):
        shape = obstacle_tuple(obstacle)
        for x, y, _ in _points(200, 5):
            planar = box_distance_planar(x, y, 0.3, -0.2, shape)
            full = box_distance(x, y, obstacle.position[2], 0.3, -0.2, 0.0, shape)
            assert planar[0] == pytest.approx(full[0], abs=1e-12)
            assert planar[1:3] == pytest.approx(full[1:3], abs=1e-12)
            assert planar[3] == pytest.approx(full[4], abs=1e-9)


def test_inside_a_box_the_distance_is_minus_the_depth_to_the_nearest_face() -> None:
    box = ObstacleSpec(shape="box", position=(0.0, 0.0, 0.0), size=(2.0, 1.0, 4.0))
    h, gx, gy, gz, curvature = box_distance(0.1, 0.3, 0.0, 1.0, 1.0, 1.0, obstacle_tuple(box))
    assert h == pytest.approx(-0.2)  # 0.2 m from the +y face, nearer than the others
    assert (gx, gy, gz, curvature) == (0.0, 1.0, 0.0, 0.0)


def test_message_obstacles_take_their_yaw_from_the_quaternion_and_tilted_ones_are_refused() -> None:
    message = Obstacle(id=7, shape="box", position=np.array(BOX.position), size=np.array(BOX.size), orientation=yaw_quaternion(BOX.yaw_rad))
    assert obstacle_tuple(message) == pytest.approx(obstacle_tuple(BOX), abs=1e-12)
    tilted = Obstacle(id=8, shape="box", position=np.zeros(3), size=np.ones(3), orientation=np.array([0.1, 0.0, 0.0, 0.995]))
    with pytest.raises(ValueError, match="tilted"):
        obstacle_tuple(tilted)
    environment = Environment.build([message, SPHERE], [HalfSpace("x_min", (2.0, 0.0, 0.0), -4.0)])
    assert environment.obstacle_names == ("box 7", "sphere 1")
    assert environment.walls == ((1.0, 0.0, 0.0, -2.0),)  # normalised
    assert environment.wall_names == ("wall x_min",)


def test_unknown_shape_is_refused() -> None:
    class Cone:
        shape = "cone"
        position = (0.0, 0.0, 0.0)
        size = (1.0, 1.0, 1.0)

    with pytest.raises(ValueError, match="unknown obstacle shape 'cone'"):
        obstacle_tuple(Cone())


def test_neighbours_check_their_shapes() -> None:
    neighbours = Neighbours(np.zeros((2, 3)), np.ones((2, 3)), 0.2)
    assert len(neighbours) == 2 and neighbours.rows[1] == (0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.2)
    with pytest.raises(ValueError, match="2 positions but 1 velocities"):
        Neighbours(np.zeros((2, 3)), np.zeros((1, 3)), 0.2)
