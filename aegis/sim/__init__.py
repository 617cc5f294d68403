"""PyBullet simulation: the worlds (quadrotor, ground robot), scenario obstacles and sensors the sim bridges drive.

Worlds open their PyBullet client through :func:`connect`. PyBullet's C code writes to the
process's file descriptors directly: its start-up banner goes to stderr (harmless), but some
warnings (a URDF link without inertia, per link) go to stdout, where they would mix with a
command's output; :func:`stdout_to_devnull` silences such a call.
"""

from __future__ import annotations

import ctypes
import os
import sys
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """Send file descriptor 1 (C's stdout too, flushed on the way out) to /dev/null for the duration."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
            try:
                yield
            finally:
                ctypes.CDLL(None).fflush(None)  # what C buffered meanwhile goes to /dev/null too
    finally:
        os.dup2(saved, 1)
        os.close(saved)


@dataclass
class OpenedClient:
    """A PyBullet client opened for a world: its id, its ground plane's body id (or None), and how to close it."""

    client: int
    plane_id: int | None
    close: Callable[[], Any]


def world_time_step(robot: Any, section: str, physics_rate_hz: float) -> float:
    """The physics step (s) of a world built for ``robot``; ValueError if the robot has no ``section``
    parameters (``quadrotor``, ``diff_drive``) or the rate is not > 0."""
    if getattr(robot, section) is None:
        raise ValueError(f"robot {robot.name!r} (kind {robot.kind}) has no {section} parameters")
    if not physics_rate_hz > 0:
        raise ValueError(f"physics_rate_hz must be > 0, got {physics_rate_hz}")
    return 1.0 / physics_rate_hz


def open_world(
    owner: object, dt: float, gravity_mps2: float, ground_plane: bool, gui: bool, **engine_parameters: Any
) -> OpenedClient:
    """Open a client for ``owner`` (closed when it is garbage-collected, or by ``close()``): fixed step ``dt``,
    gravity along -z, deterministic contact pairs, an optional ground plane at z = 0 (visible only in the GUI)."""
    if gui and sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise RuntimeError("the PyBullet GUI needs a display (DISPLAY is not set); run without gui")
    import pybullet

    client = connect(gui)
    finalizer = weakref.finalize(owner, _disconnect, client)
    pybullet.setGravity(0.0, 0.0, -gravity_mps2, physicsClientId=client)
    pybullet.setPhysicsEngineParameter(
        fixedTimeStep=dt, numSubSteps=0, deterministicOverlappingPairs=1, physicsClientId=client, **engine_parameters
    )
    plane_id = None
    if ground_plane:
        plane = pybullet.createCollisionShape(pybullet.GEOM_PLANE, physicsClientId=client)
        visual = -1
        if gui:  # DIRECT has nothing to draw (and PyBullet warns that a plane has no default visual)
            visual = pybullet.createVisualShape(pybullet.GEOM_PLANE, rgbaColor=[0.85, 0.85, 0.8, 1.0], physicsClientId=client)
        plane_id = pybullet.createMultiBody(0.0, plane, visual, physicsClientId=client)
    return OpenedClient(client, plane_id, finalizer)


def _disconnect(client: int) -> None:
    import pybullet

    try:
        pybullet.disconnect(physicsClientId=client)
    except pybullet.error:  # already disconnected
        pass


def connect(gui: bool = False) -> int:
    """Open a PyBullet client (DIRECT, or GUI); returns its id, raising RuntimeError if PyBullet refuses."""
    import pybullet

    client = pybullet.connect(pybullet.GUI if gui else pybullet.DIRECT)
    if client < 0:
        raise RuntimeError("PyBullet could not open a GUI (one per process, and it needs a display); run without gui")
    return client


class BodyStateViews:
    """Read-only views of a simulated body's state after its last step, shared by the worlds (the crash judge reads them).

    A world keeps ``steps``, ``dt``, ``_position``, ``_orientation`` (x, y, z, w) and ``_velocity_world``
    (world frame, SI units) up to date; the arrays change with the next step: read, do not keep.
    """

    steps: int
    dt: float
    _position: Any
    _orientation: Any
    _velocity_world: Any

    @property
    def time_s(self) -> float:
        return self.steps * self.dt

    @property
    def position(self) -> Any:
        """The body's origin (a quadrotor's centre of mass, a ground robot's base frame), world frame (m)."""
        return self._position

    @property
    def orientation(self) -> Any:
        """The body's attitude, quaternion (x, y, z, w)."""
        return self._orientation

    @property
    def velocity_world(self) -> Any:
        """The body's velocity, world frame (m/s)."""
        return self._velocity_world
