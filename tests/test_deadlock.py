"""Getting a filtered robot unstuck (aegis.controllers.cbf.deadlock): when it counts as stuck and which way is around."""

from __future__ import annotations

import numpy as np
import pytest

from aegis.controllers.cbf.deadlock import StallMonitor, escape_direction

FLOOR_AND_CEILING = ((0.0, 0.0, 1.0, -0.1), (0.0, 0.0, -1.0, -3.0))  # n . p >= offset: z >= -0.1, z <= 3


def box(center, half, yaw=0.0, radius=0.0):
    return (*center, np.cos(yaw), np.sin(yaw), *half, radius)


def test_in_front_of_a_window_post_the_way_around_is_into_the_opening():
    post = box((0.0, -0.5, 1.0), (0.05, 0.45, 1.0))  # a post spanning y in [-0.95, -0.05]: the opening is at y > -0.05
    direction = escape_direction((-0.2, -0.03, 1.0), (1.0, 0.0, 0.0), post, 0.22, FLOOR_AND_CEILING)
    np.testing.assert_allclose(direction, [0.0, 1.0, 0.0], atol=1e-12)
    # a post turned by 90 degrees about z (spanning x in [0.05, 0.95]), approached along +y just past its end at x = 0.05
    turned = box((0.5, 0.0, 1.0), (0.05, 0.45, 1.0), yaw=np.pi / 2)
    np.testing.assert_allclose(escape_direction((0.02, -0.2, 1.0), (0.0, 1.0, 0.0), turned, 0.22, FLOOR_AND_CEILING), [-1.0, 0.0, 0.0], atol=1e-12)


def test_square_on_a_face_the_nearest_edge_wins_and_a_way_through_the_floor_is_not_taken():
    wall = box((0.0, 0.0, 1.0), (0.05, 1.0, 0.5))  # y in [-1, 1], z in [0.5, 1.5]
    np.testing.assert_allclose(escape_direction((-0.3, 0.8, 1.0), (1.0, 0.0, 0.0), wall, 0.2, FLOOR_AND_CEILING), [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(escape_direction((-0.3, 0.0, 1.4), (1.0, 0.0, 0.0), wall, 0.2, FLOOR_AND_CEILING), [0, 0, 1], atol=1e-12)
    pillar = box((0.0, 0.0, 1.5), (0.05, 2.0, 1.5))  # from the ground up: under it is through the floor
    direction = escape_direction((-0.3, 0.0, 0.2), (1.0, 0.0, 0.0), pillar, 0.2, FLOOR_AND_CEILING)
    assert direction[2] >= 0.0 and np.linalg.norm(direction) == pytest.approx(1.0)


def test_head_on_at_a_sphere_the_lean_decides_and_exactly_head_on_it_is_the_left():
    sphere = box((1.0, 0.0, 1.0), (0.0, 0.0, 0.0), radius=0.3)
    np.testing.assert_allclose(escape_direction((0.0, -0.02, 1.0), (1.0, 0.0, 0.0), sphere, 0.2, planar=True), [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(escape_direction((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), sphere, 0.2, planar=True), [0, 1, 0], atol=1e-12)


def test_a_stall_is_a_held_back_robot_that_stays_put_for_the_stall_time():
    monitor = StallMonitor(stall_speed_mps=0.05, stall_s=1.0, escape_s=2.0)
    here = np.zeros(3)
    assert not any(monitor.update(t / 50, here + 0.01 * np.sin(t), True) for t in range(50))  # 1 cm of noise: still put
    assert monitor.update(1.0, here, True) and monitor.escaping(1.5) and not monitor.escaping(3.0)
    assert monitor.escapes == 1
    monitor.reset()
    assert not any(monitor.update(t / 50, np.array([0.1 * t / 50, 0, 0]), True) for t in range(100))  # moving 0.1 m/s
    assert not any(monitor.update(t / 50, here, False) for t in range(100))  # not held back: the nominal's own stop


def test_an_upright_cylinder_without_caps_is_passed_sideways_never_over():
    pillar = box((1.0, 0.0, 0.0), (0.0, 0.0, float("inf")), radius=0.2)
    direction = escape_direction((0.0, 0.01, 1.0), (1.0, 0.0, 0.0), pillar, 0.2, FLOOR_AND_CEILING)
    np.testing.assert_allclose(direction, [0.0, 1.0, 0.0], atol=1e-12)
