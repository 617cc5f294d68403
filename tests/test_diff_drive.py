"""Differential-drive kinematics and the tracking controller, alone (no simulator): round trips, limits, convergence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aegis.config import HUSKY, DiffDriveConfig
from aegis.controllers.diff_drive import (
    DiffDriveKinematics,
    DiffDriveTracker,
    TrackingGains,
    wrap_angle,
    yaw_of,
)
from aegis.msgs import TwistCommand
from aegis.node import Received
from aegis.nodes.twist_to_wheels import TWIST_TIMEOUT_S, TwistToWheels, TwistToWheelsParams

KIN = DiffDriveKinematics(wheel_radius_m=0.2, track_m=0.8, max_wheel_speed_radps=5.0)


def test_straight_and_spin_have_the_textbook_wheel_speeds() -> None:
    np.testing.assert_allclose(KIN.wheel_speeds(1.0, 0.0), [5.0, 5.0])
    np.testing.assert_allclose(KIN.wheel_speeds(0.0, 1.0), [-2.0, 2.0])  # omega b / 2 / r; left backward, right forward
    np.testing.assert_allclose(KIN.twist(np.array([1.0, 3.0])), (0.4, 0.5))


def test_twist_and_wheel_speeds_round_trip() -> None:
    rng = np.random.default_rng(0)
    for v, omega in rng.uniform(-3.0, 3.0, (200, 2)):
        np.testing.assert_allclose(KIN.twist(KIN.wheel_speeds(v, omega)), (v, omega), atol=1e-12)
        wheels = rng.uniform(-5.0, 5.0, 2)
        np.testing.assert_allclose(KIN.wheel_speeds(*KIN.twist(wheels)), wheels, atol=1e-12)


def test_limit_scales_both_wheels_and_keeps_the_curvature() -> None:
    wheels = KIN.wheel_speeds(2.0, 1.0)  # 8 and 12 rad/s: over 5
    limited = KIN.limited(wheels)
    assert np.max(np.abs(limited)) == pytest.approx(5.0)
    v, omega = KIN.twist(limited)
    assert omega / v == pytest.approx(1.0 / 2.0)  # same path, slower
    np.testing.assert_array_equal(KIN.limited(np.array([1.0, -2.0])), [1.0, -2.0])  # inside: untouched


def test_husky_kinematics_use_the_effective_skid_steer_track() -> None:
    kin = DiffDriveKinematics.from_config(HUSKY.diff_drive)
    params = HUSKY.diff_drive
    assert kin.track_m == pytest.approx(0.5708 * params.wheel_separation_multiplier)
    assert kin.wheel_speeds(1.0, 0.0)[0] == pytest.approx(1.0 / 0.17775)
    assert kin.max_wheel_speed_radps * kin.wheel_radius_m == pytest.approx(1.0, abs=0.001)  # the Husky's 1 m/s


def test_diff_drive_config_refuses_a_wheel_on_both_sides() -> None:
    with pytest.raises(ValueError, match="front_left_wheel"):
        DiffDriveConfig(right_wheel_joints=("front_left_wheel", "front_right_wheel"))


def test_angles() -> None:
    assert wrap_angle(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    assert wrap_angle(-math.pi) == pytest.approx(math.pi)
    assert yaw_of(np.array([0.0, 0.0, math.sin(0.6), math.cos(0.6)])) == pytest.approx(1.2)


def tracker(**gains: float) -> DiffDriveTracker:
    return DiffDriveTracker(KIN, TrackingGains(**gains))


def test_on_the_reference_the_command_is_the_reference_twist() -> None:
    straight = tracker().compute(np.zeros(3), 0.0, np.zeros(3), np.array([0.5, 0.0, 0.0]), np.zeros(3))
    assert (straight.v, straight.omega) == pytest.approx((0.5, 0.0))
    # on a circle of radius 2 m at 0.5 m/s, counter-clockwise: omega_r = v / R = 0.25 rad/s, from the acceleration
    circle = tracker().compute(np.array([2.0, 0.0, 0.0]), math.pi / 2, np.array([2.0, 0.0, 0.0]),
                               np.array([0.0, 0.5, 0.0]), np.array([-0.125, 0.0, 0.0]))
    assert (circle.v, circle.omega) == pytest.approx((0.5, 0.25))
    assert circle.reference_heading == pytest.approx(math.pi / 2)


def test_errors_steer_the_right_way() -> None:
    ref_v = np.array([0.5, 0.0, 0.0])
    left = tracker().compute(np.zeros(3), 0.0, np.array([0.0, 0.2, 0.0]), ref_v, np.zeros(3))
    assert left.omega > 0.0  # the reference is to the left: turn left
    ahead = tracker().compute(np.zeros(3), 0.0, np.array([0.3, 0.0, 0.0]), ref_v, np.zeros(3))
    assert ahead.v > 0.5  # behind the reference: speed up
    turned = tracker().compute(np.zeros(3), -0.5, np.zeros(3), ref_v, np.zeros(3))
    assert turned.omega > 0.0 and turned.v < 0.5  # heading right of the reference: turn left, slow down


def test_limits_hold_for_any_error() -> None:
    gains = TrackingGains(max_speed_mps=0.8, max_turn_rate_radps=1.5)
    rng = np.random.default_rng(1)
    track = DiffDriveTracker(KIN, gains)
    for _ in range(500):
        reference = rng.uniform(-20.0, 20.0, 3)
        velocity = rng.uniform(-3.0, 3.0, 3) * rng.integers(0, 2)  # some at rest: the go-to-point law
        out = track.compute(rng.uniform(-5, 5, 3), rng.uniform(-4, 4), reference, velocity, rng.uniform(-2, 2, 3))
        assert abs(out.v) <= 0.8 + 1e-12 and abs(out.omega) <= 1.5 + 1e-12
        assert np.max(np.abs(out.wheel_speeds)) <= 5.0 + 1e-12
        np.testing.assert_allclose(KIN.twist(out.wheel_speeds), (out.v, out.omega))


def test_go_to_point_drives_forward_or_backward_and_stops_within_the_radius() -> None:
    track = tracker(arrival_radius_m=0.1)
    rest = np.zeros(3)
    ahead = track.compute(np.zeros(3), 0.0, np.array([2.0, 0.0, 0.0]), rest, rest)
    assert ahead.v > 0.0 and ahead.omega == pytest.approx(0.0) and not ahead.arrived
    behind = track.compute(np.zeros(3), 0.0, np.array([-0.5, 0.05, 0.0]), rest, rest)
    assert behind.v < 0.0  # backs up instead of turning around
    there = track.compute(np.zeros(3), 0.0, np.array([0.08, 0.0, 0.0]), rest, rest)
    assert there.arrived and np.array_equal(there.wheel_speeds, [0.0, 0.0])
    nudged = track.compute(np.zeros(3), 0.0, np.array([0.15, 0.0, 0.0]), rest, rest)
    assert nudged.arrived and nudged.v == 0.0  # stays stopped within twice the radius
    pushed = track.compute(np.zeros(3), 0.0, np.array([0.25, 0.0, 0.0]), rest, rest)
    assert not pushed.arrived and pushed.v > 0.0


def unicycle(track: DiffDriveTracker, reference, pose: np.ndarray, duration: float, dt: float = 0.02) -> list[float]:
    """An ideal unicycle under the tracker, each command held for dt and integrated exactly (an arc); position errors."""
    errors = []
    for k in range(int(round(duration / dt))):
        position, velocity, acceleration = reference(k * dt)
        errors.append(float(np.hypot(*(position[:2] - pose[:2]))))
        out = track.compute(np.array([pose[0], pose[1], 0.0]), pose[2], position, velocity, acceleration)
        turn = out.omega * dt
        chord = out.v * dt * (math.sin(turn / 2) / (turn / 2) if abs(turn) > 1e-12 else 1.0)
        pose += [chord * math.cos(pose[2] + turn / 2), chord * math.sin(pose[2] + turn / 2), turn]
    return errors


def test_tracking_converges_on_a_circle_from_an_offset_start() -> None:
    def circle(t: float):
        w, radius = 0.25, 2.0
        c, s = math.cos(w * t), math.sin(w * t)
        return (np.array([radius * c, radius * s, 0.0]), np.array([-radius * w * s, radius * w * c, 0.0]),
                np.array([-radius * w * w * c, -radius * w * w * s, 0.0]))

    errors = unicycle(tracker(), circle, np.array([1.5, -0.4, 0.3]), 30.0)
    assert errors[0] > 0.5 and max(errors[-250:]) < 1e-3


def test_a_reference_at_rest_is_reached_and_held() -> None:
    goal = np.array([3.0, -2.0, 0.0])
    track = tracker(arrival_radius_m=0.05)
    errors = unicycle(track, lambda t: (goal, np.zeros(3), np.zeros(3)), np.array([0.0, 0.0, 2.0]), 20.0)
    assert track.arrived and errors[-1] < 0.05


def twist_node() -> TwistToWheels:
    node = TwistToWheels("teleop", TwistToWheelsParams(max_speed_mps=0.5, max_turn_rate_radps=1.0))
    node.reset(0)
    return node


def test_twist_to_wheels_follows_the_kinematics_within_limits() -> None:
    node, kin = twist_node(), DiffDriveKinematics.from_config(HUSKY.diff_drive)
    twist = TwistCommand(linear=[0.3, 0.2, 0.0], angular=[0.1, 0.0, 0.4])  # y and roll cannot be followed: ignored
    speeds = node.step(0.0, {"twist": Received(twist, 0.0, False)})["command"].velocities
    np.testing.assert_allclose(speeds, kin.wheel_speeds(0.3, 0.4))
    fast = TwistCommand(linear=[3.0, 0.0, 0.0], angular=[0.0, 0.0, -5.0])
    v, omega = kin.twist(node.step(0.0, {"twist": Received(fast, 0.0, False)})["command"].velocities)
    assert (v, omega) == pytest.approx((0.5, -1.0))
    assert node.stale_ticks == 0


@pytest.mark.parametrize("received", [None, Received(TwistCommand(linear=[0.3, 0, 0]), TWIST_TIMEOUT_S + 0.01, True),
                                      Received(TwistCommand(linear=[math.nan, 0, 0]), 0.0, False)],
                         ids=["missing", "stale", "nan"])
def test_twist_to_wheels_without_a_usable_twist_commands_zero(received) -> None:
    node = twist_node()
    speeds = node.step(1.0, {"twist": received})["command"].velocities
    assert np.array_equal(speeds, [0.0, 0.0]) and node.stale_ticks == 1
