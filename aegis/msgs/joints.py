"""Joint-level messages on sensor_msgs/JointState: WheelSpeeds, MotorSpeeds and JointCommand."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from aegis.msgs.fields import as_array, as_names, as_optional_vector
from aegis.msgs.ros_types import TypeLookup, number_sequence
from aegis.msgs.stamp import header_from_ros, header_to_ros

def joint_state_to_ros(
    types: TypeLookup,
    stamp: float,
    frame_id: str,
    names: tuple[str, ...],
    position: np.ndarray | None = None,
    velocity: np.ndarray | None = None,
    effort: np.ndarray | None = None,
) -> Any:
    """A sensor_msgs/msg/JointState; an omitted or empty array means "not given", as ROS has it."""
    cls = types("sensor_msgs/msg/JointState")

    def sequence(values: np.ndarray | None) -> Any:
        return number_sequence(cls, np.zeros(0) if values is None else values, np.float64)

    return cls(
        header=header_to_ros(types, stamp, frame_id),
        name=list(names),
        position=sequence(position),
        velocity=sequence(velocity),
        effort=sequence(effort),
    )


def _named_velocities(owner: str, names: tuple[str, ...], velocities: np.ndarray) -> np.ndarray:
    return as_array(owner, "velocities", velocities, (len(names),))


@dataclass(slots=True, kw_only=True)
class _NamedVelocities:
    """Shared body of per-name angular velocities (rad/s) carried on JointState.velocity."""

    ROS_TYPE: ClassVar[str] = "sensor_msgs/msg/JointState"

    stamp: float = 0.0
    frame_id: str = "base_link"
    names: tuple[str, ...] = ()
    velocities: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self.stamp = float(self.stamp)
        self.names = as_names(owner, "names", self.names)
        self.velocities = _named_velocities(owner, self.names, self.velocities)

    @classmethod
    def of_typed(cls, stamp: float, frame_id: str, velocities: np.ndarray) -> Any:
        """A message with the class's default names and a float64 ``velocities`` of one entry per name, skipping
        __post_init__'s checks: for a node's every tick; anything else goes through the checked constructor."""
        message = object.__new__(cls)
        message.stamp, message.frame_id, message.names, message.velocities = float(stamp), frame_id, cls.__dataclass_fields__["names"].default, velocities
        return message

    def to_ros(self, types: TypeLookup) -> Any:
        """sensor_msgs/msg/JointState with only velocity filled."""
        return joint_state_to_ros(types, self.stamp, self.frame_id, self.names, velocity=self.velocities)

    @classmethod
    def from_ros(cls, ros_msg: Any) -> Any:
        """From a sensor_msgs/JointState (its velocity field)."""
        stamp, frame_id = header_from_ros(ros_msg.header)
        return cls(
            stamp=stamp,
            frame_id=frame_id,
            names=tuple(ros_msg.name),
            velocities=np.array(ros_msg.velocity, dtype=np.float64),
        )


@dataclass(slots=True, kw_only=True)
class WheelSpeeds(_NamedVelocities):
    """Wheel angular velocities (rad/s), one per name, on JointState.velocity."""

    names: tuple[str, ...] = ("left_wheel", "right_wheel")
    velocities: np.ndarray = field(default_factory=lambda: np.zeros(2))


@dataclass(slots=True, kw_only=True)
class MotorSpeeds(_NamedVelocities):
    """Rotor angular velocities (rad/s) of a multirotor, one per name, on JointState.velocity."""

    names: tuple[str, ...] = ("rotor_0", "rotor_1", "rotor_2", "rotor_3")
    velocities: np.ndarray = field(default_factory=lambda: np.zeros(4))


@dataclass(slots=True, kw_only=True)
class JointCommand:
    """Joint targets: position (rad or m), velocity (rad/s or m/s), effort (N m or N).

    Each array is either empty (not commanded) or one entry per name, as JointState has it.
    """

    ROS_TYPE: ClassVar[str] = "sensor_msgs/msg/JointState"

    stamp: float = 0.0
    frame_id: str = "base_link"
    names: tuple[str, ...] = ()
    position: np.ndarray = field(default_factory=lambda: np.zeros(0))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    effort: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self.stamp = float(self.stamp)
        self.names = as_names(owner, "names", self.names)
        self.position = as_optional_vector(owner, "position", self.position, len(self.names))
        self.velocity = as_optional_vector(owner, "velocity", self.velocity, len(self.names))
        self.effort = as_optional_vector(owner, "effort", self.effort, len(self.names))

    def to_ros(self, types: TypeLookup) -> Any:
        """sensor_msgs/msg/JointState."""
        return joint_state_to_ros(
            types, self.stamp, self.frame_id, self.names, self.position, self.velocity, self.effort
        )

    @classmethod
    def from_ros(cls, ros_msg: Any) -> JointCommand:
        """From a sensor_msgs/JointState."""
        stamp, frame_id = header_from_ros(ros_msg.header)
        return cls(
            stamp=stamp,
            frame_id=frame_id,
            names=tuple(ros_msg.name),
            position=np.array(ros_msg.position, dtype=np.float64),
            velocity=np.array(ros_msg.velocity, dtype=np.float64),
            effort=np.array(ros_msg.effort, dtype=np.float64),
        )
