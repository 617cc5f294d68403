"""A PyBullet world with several quadrotors in one client: one physics step moves them all, and they can collide.

Every body is a :class:`aegis.sim.pybullet_world.QuadrotorBody` (the same physics as the one-robot
world, step for step); :meth:`SwarmWorld.step` applies each body's rotor forces, steps the client
once, and reads every body back. The bodies' collision boxes touch like any other PyBullet bodies:
robots that meet bump, tumble and fall as they would.

Separation is measured between centres of mass, every physics step, for every pair:
:meth:`SwarmWorld.pair_distances`. Two robots "collide" when their bounding spheres (``body_radius_m``
about each centre: the airframe and propellers) overlap, i.e. their centres come closer than
twice that radius.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pybullet

from aegis.config import RobotConfig
from aegis.controllers.quadrotor_model import QuadrotorModel
from aegis.sim import open_world, world_time_step
from aegis.sim.pybullet_world import QuadrotorBody, QuadrotorState


class SwarmWorld:
    """A PyBullet client with an optional ground plane and ``count`` quadrotors built from ``robot`` (kind quadrotor)."""

    def __init__(
        self,
        robot: RobotConfig,
        count: int,
        physics_rate_hz: float = 240.0,
        gravity_mps2: float = 9.81,
        ground_plane: bool = True,
        gui: bool = False,
    ) -> None:
        self.dt = world_time_step(robot, "quadrotor", physics_rate_hz)
        if count < 1:
            raise ValueError(f"a swarm needs at least one robot, got {count}")
        opened = open_world(self, self.dt, float(gravity_mps2), ground_plane, gui)
        self.client, self.plane_id, self._finalizer = opened.client, opened.plane_id, opened.close
        self.bodies = tuple(QuadrotorBody(self.client, robot, self.dt, gravity_mps2, ground_plane) for _ in range(count))
        self._pairs = [(i, j) for i in range(count) for j in range(i + 1, count)]
        self._positions = np.zeros((count, 3))

    @property
    def body_radius_m(self) -> float:
        """Radius of a sphere about each centre of mass that holds the airframe and propellers."""
        return self.bodies[0].body_radius_m

    @property
    def model(self) -> QuadrotorModel:
        """The bodies' model (they are built from one robot)."""
        return self.bodies[0].model

    def place(self, positions: Sequence[np.ndarray], yaws: Sequence[float], motor_speeds: Sequence[float]) -> None:
        """Put every body at rest at its position and heading, rotors at its speed (one entry per body)."""
        for body, position, yaw, speed in zip(self.bodies, positions, yaws, motor_speeds, strict=True):
            body.reset(position, yaw, speed)

    def set_scales(self, mass: float = 1.0, inertia: float = 1.0, motor_constant: float = 1.0, friction: float = 1.0) -> None:
        """Scale every body's mass, inertia and rotor constants from the nominal ones (see QuadrotorBody.set_scales)."""
        for body in self.bodies:
            body.set_scales(mass, inertia, motor_constant, friction)

    def step(
        self,
        motor_commands: Sequence[np.ndarray],
        wind_world: np.ndarray | None = None,
        external_force_world: np.ndarray | None = None,
    ) -> None:
        """Advance one physics step, each body with its own rotor commands (rad/s), all in the same wind and push."""
        for body, commands in zip(self.bodies, motor_commands, strict=True):
            body.apply(commands, wind_world, external_force_world)
        pybullet.stepSimulation(physicsClientId=self.client)
        for body in self.bodies:
            body.advanced()

    def states(self) -> list[QuadrotorState]:
        """Every body's state after the last step, in body order."""
        return [body.state() for body in self.bodies]

    def pair_distances(self) -> list[tuple[int, int, float]]:
        """(i, j, distance between centres of mass in m) for every pair i < j, after the last step."""
        positions = self._positions
        for index, body in enumerate(self.bodies):
            positions[index] = body.position
        return [(i, j, float(np.linalg.norm(positions[i] - positions[j]))) for i, j in self._pairs]

    def close(self) -> None:
        """Disconnect the PyBullet client (also done when the world is garbage-collected)."""
        self._finalizer()
