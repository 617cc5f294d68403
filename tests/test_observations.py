"""The observation table policies are fed through: frames, field checks and the action layouts per robot kind."""

import math

import numpy as np
import pytest

from aegis.inference.observations import (
    ACTION_LAYOUTS,
    DEFAULT_OBSERVATIONS,
    OBSERVATION_SOURCES,
    ObservationBuilder,
    PolicyInput,
    layout_problems,
)
from aegis.msgs import RobotState


def _facing(yaw: float, **kwargs) -> RobotState:
    return RobotState(orientation=np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]), **kwargs)


def _builder(kind: str) -> ObservationBuilder:
    return ObservationBuilder([(name, OBSERVATION_SOURCES[name].size) for name in DEFAULT_OBSERVATIONS[kind]])


def test_ground_robot_frame_is_in_its_heading_frame():
    state = _facing(math.pi / 2, position=np.array([1.0, 0.0, 0.0]), linear_velocity=np.array([0.4, 0.0, 0.0]),
                    angular_velocity=np.array([0.0, 0.0, 0.3]))
    policy_input = PolicyInput(state, np.array([1.0, 2.0, 0.0]), np.array([-0.5, 0.0, 0.0]), np.zeros(3))
    frame = _builder("diff_drive").build(policy_input)
    # Facing +y: a reference 2 m to the north is 2 m ahead; a reference moving west moves to the robot's left.
    np.testing.assert_allclose(frame, [2.0, 0.0, 0.0, 0.5, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(OBSERVATION_SOURCES["body_twist"].compute(policy_input), [0.4, 0.3])


def test_quadrotor_velocity_is_rotated_into_the_world_frame():
    state = _facing(math.pi, position=np.array([0.0, 0.0, 1.0]), linear_velocity=np.array([1.0, 0.0, 0.0]))
    ref = PolicyInput(state, np.array([1.0, 0.0, 1.5]), np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 0.2]))
    frame = _builder("quadrotor").build(ref)
    np.testing.assert_allclose(frame, [1.0, 0.0, 0.5, -1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.2], atol=1e-12)


def test_builder_fills_a_given_buffer_in_place():
    out = np.full(12, np.nan)
    ref = PolicyInput(RobotState(), np.ones(3), np.zeros(3), np.zeros(3))
    assert _builder("quadrotor").build(ref, out=out) is out
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("kind", sorted(ACTION_LAYOUTS))
def test_default_layouts_are_accepted(kind):
    observation = [(n, OBSERVATION_SOURCES[n].size, OBSERVATION_SOURCES[n].unit) for n in DEFAULT_OBSERVATIONS[kind]]
    action = [(a.name, a.size, a.unit) for a in ACTION_LAYOUTS[kind]]
    assert layout_problems(kind, observation, action) == []


def test_unknown_field_wrong_unit_and_wrong_action_are_named():
    problems = layout_problems(
        "quadrotor",
        [("joint_angles", 12, "rad"), ("velocity", 3, "km/h")],
        [("acceleration", 4, "m/s^2")],
    )
    assert any("'joint_angles' is not one aegis can fill" in p and "position_error" in p for p in problems)
    assert any("'velocity'" in p and "km/h" in p and "m/s" in p for p in problems)
    assert any("acceleration[4]" in p and "acceleration[3]" in p for p in problems)
    assert layout_problems("submarine", [], []) == ["no policy action layout for robot kind 'submarine' (known: diff_drive, quadrotor)"]
