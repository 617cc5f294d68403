"""How a simulated robot's actuators take commands: a fresh command is held, a stale one is cut to zero once (counted).

Every sim bridge applies its commands through a :class:`CommandHold` per robot, so the rule is the
same for a Husky's wheels, a quadrotor's rotors and each robot of a swarm.
"""

from __future__ import annotations

import numpy as np

from aegis.node import Received


class CommandHold:
    """One robot's actuator speeds: held while fresh; once older than ``timeout_s`` (or none came), zero, counted in ``timeouts``."""

    def __init__(self, size: int, timeout_s: float, owner: str) -> None:
        self.size = size
        self.timeout_s = timeout_s
        self.owner = owner
        self.command = np.zeros(size)
        self._time = 0.0
        self._cut = False
        self.timeouts = 0

    def start(self, speeds: float) -> None:
        """At reset: the initial actuator speeds count as a command given at t = 0."""
        self.command[:] = speeds
        self._time = 0.0
        self._cut = False
        self.timeouts = 0

    def update(self, now: float, received: Received | None) -> np.ndarray:
        """The speeds to apply at ``now``: a fresh command's (non-finite ones count as zero), or held, or cut past the timeout.

        A command for another number of actuators is a wiring error and raises ValueError.
        """
        if received is not None and not received.stale:
            velocities = received.msg.velocities
            if velocities.shape != (self.size,):
                raise ValueError(
                    f"{self.owner}: {type(received.msg).__name__} for {velocities.size} actuators {received.msg.names}, "
                    f"this robot has {self.size}"
                )
            self.command[:] = np.where(np.isfinite(velocities), velocities, 0.0)
            self._time = now - received.age_s
            self._cut = False
        elif now - self._time > self.timeout_s and not self._cut:
            self.command[:] = 0.0
            self._cut = True
            self.timeouts += 1
        return self.command

    def silent_s(self, now: float) -> float:
        """How long before ``now`` the last fresh command was given (the initial speeds count as one at t = 0)."""
        return now - self._time

    def cut(self) -> None:
        """Zero the speeds now and count it, as a timeout does (a firmware failsafe's shutdown: aegis.sim.link_loss)."""
        if not self._cut:
            self.command[:] = 0.0
            self._cut = True
            self.timeouts += 1
