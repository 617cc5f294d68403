"""The observation and action fields aegis can fill: contract field names -> values from odometry and the reference.

A policy's contract names its observation fields; the policy node (and training, which must see
exactly what the node will feed) builds each frame from a :class:`PolicyInput` through this one
table, :data:`OBSERVATION_SOURCES`. A contract naming a field that is not in the table is refused
at load with the list of known fields (:func:`observation_builder`), so a model never runs on an
observation nobody can assemble.

Frames (REP 103): "world" is the odometry frame (ENU); "body" is the robot's heading frame for the
ground robot (x forward, y left, yaw only). Odometry's twist is in the body frame, as
nav_msgs/Odometry carries it; the world-frame velocity is rotated out with the attitude.

Actions go the other way: :data:`ACTION_LAYOUTS` names, per robot kind, the action fields a policy
of that kind must output, in order, with their units; the node turns them into its command message.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from aegis.controllers.quadrotor_model import quaternion_to_matrix
from aegis.msgs import RobotState


@dataclass(frozen=True)
class PolicyInput:
    """What a policy may observe at one tick, in SI units: odometry and the reference sample (world frame)."""

    state: RobotState
    reference_position: np.ndarray
    reference_velocity: np.ndarray
    reference_acceleration: np.ndarray


@dataclass(frozen=True)
class ObservationSource:
    """How to compute one observation field: its size, unit and the function of a PolicyInput."""

    size: int
    unit: str
    description: str
    compute: Callable[[PolicyInput], np.ndarray]


def _world_velocity(s: PolicyInput) -> np.ndarray:
    return quaternion_to_matrix(s.state.orientation) @ s.state.linear_velocity


def _yaw(s: PolicyInput) -> float:
    x, y, z, w = s.state.orientation
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def _to_body_xy(s: PolicyInput, vector: np.ndarray) -> np.ndarray:
    """The horizontal part of a world vector in the robot's heading frame (x forward, y left)."""
    yaw = _yaw(s)
    c, si = math.cos(yaw), math.sin(yaw)
    return np.array([c * vector[0] + si * vector[1], -si * vector[0] + c * vector[1]])


OBSERVATION_SOURCES: dict[str, ObservationSource] = {
    # The quadrotor's tracking observation (world frame): where the reference is, how the robot moves, how the
    # reference moves and turns. The nominal acceleration an expert proposes is a function of these.
    "position_error": ObservationSource(
        3, "m", "reference position - position, world frame", lambda s: s.reference_position - s.state.position
    ),
    "velocity": ObservationSource(3, "m/s", "velocity, world frame", _world_velocity),
    "reference_velocity": ObservationSource(3, "m/s", "reference velocity, world frame", lambda s: s.reference_velocity),
    "reference_acceleration": ObservationSource(
        3, "m/s^2", "reference acceleration, world frame", lambda s: s.reference_acceleration
    ),
    # The ground robot's tracking observation (its heading frame, horizontal): stateless, so a policy needs no
    # memory of the reference's heading; the reference's velocity in the body frame carries the heading error.
    "position_error_body": ObservationSource(
        2, "m", "reference position - position, x forward / y left", lambda s: _to_body_xy(s, s.reference_position - s.state.position)
    ),
    "reference_velocity_body": ObservationSource(
        2, "m/s", "reference velocity, x forward / y left", lambda s: _to_body_xy(s, s.reference_velocity)
    ),
    "reference_acceleration_body": ObservationSource(
        2, "m/s^2", "reference acceleration, x forward / y left", lambda s: _to_body_xy(s, s.reference_acceleration)
    ),
    "body_twist": ObservationSource(
        2,
        "1",
        "measured forward speed (m/s) and turn rate (rad/s)",
        lambda s: np.array([s.state.linear_velocity[0], s.state.angular_velocity[2]]),
    ),
}


@dataclass(frozen=True)
class ActionSpec:
    """One action field a robot kind's policy node reads: name, size and unit."""

    name: str
    size: int
    unit: str


ACTION_LAYOUTS: dict[str, tuple[ActionSpec, ...]] = {
    # Proposed world-frame acceleration, published as the nominal command the safety filter corrects.
    "quadrotor": (ActionSpec("acceleration", 3, "m/s^2"),),
    # Proposed body twist: forward speed and turn rate, published as the nominal twist.
    "diff_drive": (ActionSpec("forward_speed", 1, "m/s"), ActionSpec("turn_rate", 1, "rad/s")),
}

DEFAULT_OBSERVATIONS: dict[str, tuple[str, ...]] = {
    "quadrotor": ("position_error", "velocity", "reference_velocity", "reference_acceleration"),
    # No body_twist: the diff-drive MPC expert does not read the measured twist, and a policy given it learned to
    # copy it (it ended 0.77 m short of the husky_goal goal); the field stays available to other models.
    "diff_drive": ("position_error_body", "reference_velocity_body", "reference_acceleration_body"),
}
"""The observation layout aegis trains each robot kind's tracking policy on (aegis train)."""


class ObservationBuilder:
    """Assembles one observation frame (the contract's fields, in order) from a PolicyInput, into a preallocated array."""

    def __init__(self, fields: Sequence[tuple[str, int]]) -> None:
        self.sources: list[tuple[slice, ObservationSource]] = []
        offset = 0
        for name, size in fields:
            source = OBSERVATION_SOURCES[name]
            self.sources.append((slice(offset, offset + size), source))
            offset += size
        self.frame_size = offset
        self.frame = np.zeros(offset)

    def build(self, policy_input: PolicyInput, out: np.ndarray | None = None) -> np.ndarray:
        """The frame; ``out`` (float64, frame_size) is filled in place when given, else the builder's own buffer."""
        frame = self.frame if out is None else out
        for where, source in self.sources:
            frame[where] = source.compute(policy_input)
        return frame


def layout_problems(
    robot_kind: str, observation: Sequence[tuple[str, int, str]], action: Sequence[tuple[str, int, str]]
) -> list[str]:
    """Why a contract's layouts (name, size, unit per field) cannot drive a ``robot_kind`` policy node; empty: they can."""
    problems = []
    for name, size, unit in observation:
        source = OBSERVATION_SOURCES.get(name)
        if source is None:
            known = ", ".join(sorted(OBSERVATION_SOURCES))
            problems.append(f"observation field {name!r} is not one aegis can fill (known: {known})")
        elif source.size != size or source.unit != unit:
            problems.append(
                f"observation field {name!r}: the contract says size {size} in {unit!r}, aegis fills size {source.size} in {source.unit!r}"
            )
    wanted = ACTION_LAYOUTS.get(robot_kind)
    if wanted is None:
        problems.append(f"no policy action layout for robot kind {robot_kind!r} (known: {', '.join(sorted(ACTION_LAYOUTS))})")
        return problems
    have = [(n, s, u) for n, s, u in action]
    expected = [(a.name, a.size, a.unit) for a in wanted]
    if have != expected:
        problems.append(
            "action layout is "
            + ", ".join(f"{n}[{s}] {u}" for n, s, u in have)
            + f"; a {robot_kind} policy node reads "
            + ", ".join(f"{n}[{s}] {u}" for n, s, u in expected)
        )
    return problems
