"""Scenario obstacles in a PyBullet client: static bodies whose shapes match the scenario's distance functions.

Every world (quadrotor, ground robot) spawns its scenario's obstacles through this module, so the
shapes that collide in PyBullet are exactly the ones aegis.scenario measures clearance to:
spheres of the given diameter, z-aligned cylinders (diameter, height) and yaw-rotated boxes
(extents), all Marker.scale semantics. Every call carries the client id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pybullet

from aegis.scenario import ObstacleSpec, yaw_quaternion

_COLOURS = {"sphere": (0.85, 0.33, 0.1, 1.0), "cylinder": (0.2, 0.45, 0.8, 1.0), "box": (0.45, 0.45, 0.45, 1.0)}


@dataclass(frozen=True)
class SpawnedObstacles:
    """The PyBullet body ids of a scenario's obstacles, in scenario order, in one client, and the (shape, size) of each."""

    client: int
    body_ids: tuple[int, ...]
    shapes: tuple[tuple[str, tuple[float, float, float]], ...] = ()

    def touching(self, body_id: int) -> frozenset[int]:
        """Indices (scenario order) of the obstacles ``body_id`` is in contact with after the last step."""
        contacts = pybullet.getContactPoints(bodyA=body_id, physicsClientId=self.client)  # one call, all contacts
        if not contacts:
            return frozenset()
        touched = {contact[2] for contact in contacts}  # bodyUniqueIdB
        return frozenset(index for index, obstacle_id in enumerate(self.body_ids) if obstacle_id in touched)

    def fits(self, obstacles: Sequence[ObstacleSpec]) -> bool:
        """Whether these bodies can be moved to ``obstacles``: same count, and the same shape and size in order."""
        return self.shapes == _shapes(obstacles)

    def remove(self) -> None:
        """Take the bodies out of the world (a layout drawn anew with other shapes replaces them)."""
        for body_id in self.body_ids:
            pybullet.removeBody(body_id, physicsClientId=self.client)

    def move(self, obstacles: Sequence[ObstacleSpec]) -> None:
        """Put the bodies where ``obstacles`` (same count and order, e.g. jittered copies) say."""
        for body_id, obstacle in zip(self.body_ids, obstacles, strict=True):
            pybullet.resetBasePositionAndOrientation(
                body_id, list(obstacle.position), list(yaw_quaternion(obstacle.yaw_rad)), physicsClientId=self.client
            )


def spawn_obstacles(client: int, obstacles: Sequence[ObstacleSpec], visual: bool = False) -> SpawnedObstacles:
    """Create one static (mass 0) body per obstacle; ``visual`` adds coloured shapes for the GUI."""
    body_ids = []
    for obstacle in obstacles:
        collision = _shape(client, obstacle, pybullet.createCollisionShape)
        visual_shape = -1
        if visual:
            visual_shape = _shape(client, obstacle, pybullet.createVisualShape, rgbaColor=_COLOURS[obstacle.shape])
        body_ids.append(
            pybullet.createMultiBody(
                baseMass=0.0,
                baseCollisionShapeIndex=collision,
                baseVisualShapeIndex=visual_shape,
                basePosition=list(obstacle.position),
                baseOrientation=list(yaw_quaternion(obstacle.yaw_rad)),
                physicsClientId=client,
            )
        )
    return SpawnedObstacles(client, tuple(body_ids), _shapes(obstacles))


def _shapes(obstacles: Sequence[ObstacleSpec]) -> tuple[tuple[str, tuple[float, float, float]], ...]:
    return tuple((o.shape, tuple(o.size)) for o in obstacles)


def _shape(client: int, obstacle: ObstacleSpec, create, **extra) -> int:
    sx, sy, sz = obstacle.size
    if obstacle.shape == "sphere":
        return create(pybullet.GEOM_SPHERE, radius=sx / 2.0, physicsClientId=client, **extra)
    if obstacle.shape == "cylinder":
        # createCollisionShape takes `height`, createVisualShape `length` (PyBullet's own naming).
        height = {"height": sz} if create is pybullet.createCollisionShape else {"length": sz}
        return create(pybullet.GEOM_CYLINDER, radius=sx / 2.0, physicsClientId=client, **height, **extra)
    return create(pybullet.GEOM_BOX, halfExtents=[sx / 2.0, sy / 2.0, sz / 2.0], physicsClientId=client, **extra)
