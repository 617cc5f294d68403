"""Getting a filtered robot unstuck (aegis.controllers.cbf.deadlock): when it counts as stuck and which way is around."""

from __future__ import annotations

import numpy as np
import pytest

from aegis.controllers.cbf.deadlock import PASSAGE_MARGIN_M, StallMonitor, escape_direction, free_passage

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


# A panel across +x at x = 0 (0.1 m thick) with a window y in [0, 0.45], z in [0.55, 1.0]: posts, lintel and sill.
WINDOW_PANEL = (
    box((0.0, -0.5, 1.25), (0.05, 0.5, 1.25)),  # left of it: y in [-1, 0]
    box((0.0, 0.95, 1.25), (0.05, 0.5, 1.25)),  # right of it: y in [0.45, 1.45]
    box((0.0, 0.225, 1.75), (0.05, 0.225, 0.75)),  # lintel: z in [1.0, 2.5]
    box((0.0, 0.225, 0.275), (0.05, 0.225, 0.275)),  # sill: z in [0, 0.55]
)
BODY = 0.07


def inside_window_with_room(point) -> bool:
    room = BODY + PASSAGE_MARGIN_M
    return room <= point[1] <= 0.45 - room and 0.55 + room <= point[2] <= 1.0 - room


def test_a_free_passage_from_a_window_corner_is_down_and_into_the_opening_and_stops_there():
    """In front of the window's top-left corner (on the line along its edge), the nearest point from which the line
    passes clear is inside the opening: down and to the right, a few centimetres."""
    here = np.array([-0.3, 0.02, 1.0])
    direction, distance = free_passage(here, (1.0, 0.0, 0.0), WINDOW_PANEL, 2, BODY, FLOOR_AND_CEILING)
    assert direction[1] > 0.0 and direction[2] < 0.0 and direction[0] == pytest.approx(0.0, abs=1e-12)
    assert 0.0 < distance < 0.25
    assert inside_window_with_room(here + distance * direction)


def test_from_the_middle_of_the_opening_the_way_straight_on_is_free():
    direction, distance = free_passage((-0.3, 0.225, 0.775), (1.0, 0.0, 0.0), WINDOW_PANEL, 0, BODY, FLOOR_AND_CEILING)
    assert distance == 0.0 and not np.any(direction)


def test_a_wall_without_an_opening_within_reach_has_no_passage_and_no_nominal_has_none_either():
    wall = (box((0.0, 0.0, 1.25), (0.05, 3.0, 1.25)),)  # floor to ceiling, 6 m wide: nothing within 1 m
    assert free_passage((-0.3, 0.0, 1.0), (1.0, 0.0, 0.0), wall, 0, BODY, FLOOR_AND_CEILING) is None
    assert free_passage((-0.3, 0.0, 1.0), (0.0, 0.0, 0.0), WINDOW_PANEL, 0, BODY, FLOOR_AND_CEILING) is None


def test_a_column_from_the_ground_through_the_ceiling_is_passed_beside_it_never_over_or_under():
    column = (box((0.5, 0.0, 1.5), (0.0, 0.0, float("inf")), radius=0.25),)
    direction, distance = free_passage((0.0, 0.03, 1.0), (1.0, 0.0, 0.0), column, 0, BODY, FLOOR_AND_CEILING)
    assert abs(direction[1]) > 0.99 and direction[1] > 0.0  # sideways, to the side it leans to (most room)
    assert 0.25 + BODY + PASSAGE_MARGIN_M - 0.03 <= distance <= 0.25 + BODY + PASSAGE_MARGIN_M + 0.03


def test_where_the_edge_rule_slides_past_a_sliver_along_a_lintel_the_free_passage_goes_down_into_the_window():
    """What lidar planes make of a window's corner (quadrotor_gaps seed 1208): one beam's return on the post's edge, a
    sliver from the ground to just under the flight altitude, and the lintel above. The edge rule looks at the sliver
    alone and steers level past it, along the lintel's face, where the drone stalls again (three escapes, the goal
    missed); the free passage goes down and aside into the opening in one escape."""
    sliver = box((-0.04, -0.02, 0.495), (0.05, 0.0005, 0.495))  # z in [0, 0.99]
    seen = (*WINDOW_PANEL, sliver)
    here = (-0.3, 0.07, 1.0)
    np.testing.assert_allclose(escape_direction(here, (1.0, 0.0, 0.0), sliver, BODY + 0.15, FLOOR_AND_CEILING), [0, 1, 0], atol=1e-12)
    direction, distance = free_passage(here, (1.0, 0.0, 0.0), seen, 4, BODY, FLOOR_AND_CEILING)
    assert direction[2] < 0.0 and inside_window_with_room(np.asarray(here) + distance * direction)


def test_a_passage_beyond_the_vertical_reach_is_not_taken_the_way_round_the_side_is():
    """A low wall ahead (its top 0.3 m above the drone, its ends 0.6 m to each side): over it is nearest, but with level
    lidar planes that see +-0.12 m about the drone's altitude, over it is unseen space (clutter seed 959 climbed 0.475 m
    over a pillar's base and came down onto a sphere); with ``vertical_reach_m`` the passage is round its end."""
    wall = (box((0.0, 0.0, 0.65), (0.05, 0.6, 0.65)),)  # y in [-0.6, 0.6], z in [0, 1.3]
    here, ahead = (-0.3, 0.02, 1.0), (1.0, 0.0, 0.0)
    over, up = free_passage(here, ahead, wall, 0, BODY, FLOOR_AND_CEILING)
    assert over[2] > 0.9 and up < 0.6
    side, aside = free_passage(here, ahead, wall, 0, BODY, FLOOR_AND_CEILING, vertical_reach_m=0.12)
    assert abs(aside * side[2]) <= 0.12 and side[1] > 0.0 and 0.6 + BODY - 0.02 <= aside * abs(side[1]) <= 1.0
