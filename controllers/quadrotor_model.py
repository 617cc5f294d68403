"""Quadrotor model helpers: X-configuration motor mixing, motor speeds <-> thrust and torques, motor lag, hover speed.

Pure numpy, shared by the simulator (which turns motor speeds into forces) and the controllers
(which turn forces back into motor speeds), so both use one layout and one set of coefficients.

Layout (FLU body frame: x forward, y left, z up; rotors at ``arm_length`` from the centre on the
diagonals, as the Crazyflie 2.x "X" and gym-pybullet-drones' cf2x):

    rotor 3 (front left, CW)    rotor 0 (front right, CCW)
                        \\  x ^  /
                         \\   | /
                     y <---- +
                         /     \\
    rotor 2 (back left, CCW)    rotor 1 (back right, CW)

A rotor turning counter-clockwise seen from above (angular velocity along +z, "CCW") drags the
body clockwise: its reaction torque on the body is ``-km w^2`` about z; a CW rotor gives ``+km w^2``.
Each rotor pushes ``kf w^2`` along body +z. Quaternions are (x, y, z, w), ROS's order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from aegis.rotations import matrix_to_quaternion, quaternion_to_matrix, yaw_quaternion  # noqa: F401  (the model's users import them from here too)

GRAVITY_MPS2 = 9.81

ROTOR_XY = np.array([[1.0, -1.0], [-1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]]) / math.sqrt(2.0)
"""(4, 2) body (x, y) of each rotor axis for a unit arm: front right, back right, back left, front left."""

ROTOR_SPIN = np.array([1.0, -1.0, 1.0, -1.0])
"""+1: rotor turns CCW seen from above (angular velocity +z body); -1: CW."""


def rotor_positions(arm_length: float) -> np.ndarray:
    """(4, 3) rotor hub positions in the body frame (m), rotors in the order 0..3 above."""
    return np.column_stack([ROTOR_XY * arm_length, np.zeros(4)])


def mixing_matrix(arm_length: float, kf: float, km: float) -> np.ndarray:
    """(4, 4) matrix A with [collective thrust N, torque x, y, z N m] = A @ (motor speeds rad/s)^2."""
    positions = rotor_positions(arm_length)
    return np.vstack(
        [
            kf * np.ones(4),
            kf * positions[:, 1],  # torque x = y * f
            -kf * positions[:, 0],  # torque y = -x * f
            -km * ROTOR_SPIN,  # reaction of each rotor's drag torque
        ]
    )


def hover_motor_speed(mass_kg: float, kf: float, gravity: float = GRAVITY_MPS2) -> float:
    """Rotor speed (rad/s) at which four equal rotors carry the weight: sqrt(m g / (4 kf))."""
    return math.sqrt(mass_kg * gravity / (4.0 * kf))


def motor_lag_factor(dt: float, time_constant: float) -> float:
    """The exact first-order-lag blend over ``dt`` with the command held: 1 - exp(-dt / tau)."""
    return 1.0 - math.exp(-dt / time_constant)


def motor_lag_step(speeds: np.ndarray, commands: np.ndarray, lag_factor: float) -> np.ndarray:
    """Advance rotor speeds toward held commands in place by one step (``lag_factor`` from motor_lag_factor)."""
    speeds += lag_factor * (commands - speeds)
    return speeds


@dataclass(frozen=True)
class QuadrotorModel:
    """The numbers of one quadrotor: rigid body, rotor coefficients and limits, with mixing built once."""

    mass_kg: float
    inertia_kg_m2: np.ndarray
    arm_length_m: float
    kf: float
    km: float
    motor_time_constant_s: float
    max_motor_speed_radps: float
    gravity_mps2: float = GRAVITY_MPS2

    def __post_init__(self) -> None:
        object.__setattr__(self, "inertia_kg_m2", np.asarray(self.inertia_kg_m2, dtype=float).reshape(3).copy())
        mix = mixing_matrix(self.arm_length_m, self.kf, self.km)
        object.__setattr__(self, "mix", mix)
        object.__setattr__(self, "unmix", np.linalg.inv(mix))
        object.__setattr__(self, "_unmix_rows", tuple(tuple(row) for row in self.unmix.tolist()))

    @classmethod
    def from_robot(cls, robot: Any, gravity_mps2: float = GRAVITY_MPS2) -> QuadrotorModel:
        """From a hw_config robot section (``mass_kg`` and its ``quadrotor`` parameters)."""
        q = robot.quadrotor
        if q is None:
            raise ValueError(f"robot {robot.name!r} (kind {robot.kind}) has no quadrotor parameters")
        return cls(
            mass_kg=robot.mass_kg,
            inertia_kg_m2=np.asarray(q.inertia_kg_m2, dtype=float),
            arm_length_m=q.arm_length_m,
            kf=q.kf,
            km=q.km,
            motor_time_constant_s=q.motor_time_constant_s,
            max_motor_speed_radps=q.max_motor_speed_radps,
            gravity_mps2=gravity_mps2,
        )

    @property
    def weight_n(self) -> float:
        return self.mass_kg * self.gravity_mps2

    @property
    def hover_motor_speed(self) -> float:
        return hover_motor_speed(self.mass_kg, self.kf, self.gravity_mps2)

    @property
    def max_thrust_n(self) -> float:
        return 4.0 * self.kf * self.max_motor_speed_radps**2

    def wrench(self, motor_speeds: np.ndarray) -> tuple[float, np.ndarray]:
        """(collective thrust N, body torques N m (3,)) produced by rotor speeds (rad/s)."""
        w = self.mix @ np.square(motor_speeds)
        return float(w[0]), w[1:]

    def motor_speeds(self, thrust: float, torques: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Rotor speeds (rad/s) for a thrust and body torques, within [0, max_motor_speed].

        When the exact solution needs a rotor below zero or above its limit, the collective part
        is shifted first (the torques, which keep the attitude, have priority over the thrust),
        then what still does not fit is clipped.
        """
        tx, ty, tz = torques.tolist() if isinstance(torques, np.ndarray) else torques
        speeds = self.motor_speed_values(float(thrust), tx, ty, tz)
        if out is None:
            return np.array(speeds)
        out[:] = speeds
        return out

    def motor_speed_values(self, thrust: float, tx: float, ty: float, tz: float) -> list[float]:
        """:meth:`motor_speeds` on floats (the cascade's hot path: numpy's per-call overhead dominates 4-vectors)."""
        squared = [r0 * thrust + r1 * tx + r2 * ty + r3 * tz for r0, r1, r2, r3 in self._unmix_rows]
        limit = self.max_motor_speed_radps**2
        low, high = min(squared), max(squared)
        if high - low <= limit and not math.isnan(sum(squared)):  # numpy's min and max would be NaN: no shift
            if high > limit:
                shift = high - limit
                squared = [s - shift for s in squared]
            elif low < 0.0:
                squared = [s - low for s in squared]
        sqrt = math.sqrt
        return [0.0 if s < 0.0 else sqrt(limit if s > limit else s) for s in squared]  # a NaN stays NaN
