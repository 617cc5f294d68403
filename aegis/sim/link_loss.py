"""A simulated quadrotor's firmware failsafe on a lost command link: hold, then level on the last thrust, then motors off.

A flight controller does not drop out of the sky the moment its commands stop. The Crazyflie's
firmware (bitcraze/crazyflie-firmware: ``src/modules/interface/commander.h`` defines
``COMMANDER_WDT_TIMEOUT_STABILIZE`` = 500 ms and ``COMMANDER_WDT_TIMEOUT_SHUTDOWN`` = 2000 ms;
``commanderGetSetpoint`` in ``src/modules/src/commander.c`` applies them, and the supervisor's
``SUPERVISOR_CB_COMMANDER_WDT_TIMEOUT`` condition stops the motors) holds the last setpoint, then
levels (roll and pitch setpoints 0, yaw rate 0, "Z as it is": in thrust mode the last thrust), and
past the shutdown timeout sends the null setpoint: motors off.

aegis's plant takes rotor speeds, not an attitude setpoint: the attitude loop runs in the stack.
Holding stale rotor speeds would fly on blindly with whatever torques they carried, so the plant
holds them only up to its command port's staleness bound (0.1 s, ``COMMAND_TIMEOUT_S``), then
does what the firmware does after its stabilise timeout: its own attitude loop
(aegis.controllers.quadrotor_cascade, on the plant's true attitude and rates: the firmware's
estimate) turns the body level, keeping the heading it has (yaw rate 0), at the collective thrust of
the last command (``descent_mps`` None, the stock firmware's: the body keeps drifting as it was
moving). With ``descent_mps`` set it flies a velocity loop instead (the cascade's, on the plant's
own velocity: firmware with a flow or position deck, or PX4's land failsafe): horizontal speed to
zero and the vertical to ``-descent_mps``, holding the altitude at 0, and stopping the motors on
touch-down otherwise (a controlled landing). ``shutdown_after_s`` after the last command the
motors stop, whatever the phase. A fresh command takes over at once. ``mode: cut`` is the bare
watchdog instead: motors off as soon as the command is stale.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from aegis.controllers.quadrotor_cascade import CascadeGains, QuadrotorCascade
from aegis.controllers.quadrotor_model import QuadrotorModel
from aegis.node import NodeParams, Received
from aegis.sim.command_hold import CommandHold

Phase = Literal["command", "level", "off"]


class LinkLossParams(NodeParams):
    """What the simulated flight controller does when rotor commands stop coming (aegis.sim.link_loss)."""

    mode: Literal["level", "cut"] = Field(
        "level",
        description="level: once the command is stale, level on the last thrust (or the descent below) until shutdown_after_s, "
        "as a Crazyflie's commander watchdog does; cut: motors off as soon as it is stale",
    )
    shutdown_after_s: Annotated[float, Field(gt=0)] = Field(
        2.0, description="level: the motors stop this long after the last fresh command (the Crazyflie's COMMANDER_WDT_TIMEOUT_SHUTDOWN, 2 s)"
    )
    descent_mps: Annotated[float, Field(ge=0, le=1.0)] | None = Field(
        None,
        description="level: none keeps the last command's collective thrust and lets the body drift (the stock firmware's); "
        "a number flies a velocity loop on the plant's own velocity: horizontal speed to 0 and the vertical to -descent_mps, "
        "which holds the altitude at 0 and lands at > 0 (motors off on touch-down; at most 1; keep it below "
        "crash.ground_speed_mps) (m/s)",
    )


class LinkLossFailsafe:
    """One quadrotor's rotor speeds under the failsafe: the command while fresh, then level, then off (module doc).

    ``update`` returns the speeds to apply; ``phase`` says which of ``command``, ``level``, ``off``
    they are; ``takeover_times_s`` says when levelling began, ``shutdown_times_s`` when the motors
    stopped, and ``timeouts`` counts those stops (``CommandHold.timeouts``'s meaning, with ``mode: cut`` too).
    """

    def __init__(self, params: LinkLossParams, model: QuadrotorModel, dt: float, stale_after_s: float, owner: str) -> None:
        if params.mode == "level" and params.shutdown_after_s <= stale_after_s:
            raise ValueError(f"{owner}: failsafe.shutdown_after_s ({params.shutdown_after_s:g} s) must exceed the command's "
                             f"staleness bound ({stale_after_s:g} s)")  # fmt: skip
        self.params = params
        self.model = model
        self.stale_after_s = stale_after_s
        self._hold = CommandHold(4, stale_after_s, owner)
        self._cascade = QuadrotorCascade(model, CascadeGains(), dt)
        self.phase: Phase = "command"
        self.takeover_times_s: list[float] = []
        """When each levelling began (the ``now`` of its first tick)."""
        self.shutdown_times_s: list[float] = []
        """When the motors stopped for want of a command (the time-out or a touch-down)."""
        self._thrust = 0.0
        self._level = np.array([0.0, 0.0, 0.0, 1.0])
        self._velocity = np.zeros(3)
        self._off = np.zeros(4)

    @property
    def timeouts(self) -> int:
        return self._hold.timeouts

    @property
    def takeovers(self) -> int:
        return len(self.takeover_times_s)

    def start(self, speeds: float) -> None:
        """At reset: the initial rotor speeds count as a command given at t = 0."""
        self._hold.start(speeds)
        self.phase = "command"
        self.takeover_times_s.clear()
        self.shutdown_times_s.clear()

    def update(
        self, now: float, received: Received | None, orientation: np.ndarray, body_rates: np.ndarray, velocity_world: np.ndarray,
        on_ground: bool,
    ) -> np.ndarray:
        """The rotor speeds at ``now`` from the command ``received`` (None: none) and the body's state."""
        hold = self._hold
        if self.params.mode == "cut":
            return hold.update(now, received)
        if received is not None and not received.stale:
            self.phase = "command"
            return hold.update(now, received)
        silent_s = hold.silent_s(now)
        if silent_s <= self.stale_after_s:
            return hold.command  # held, as while fresh
        if silent_s > self.params.shutdown_after_s or self.phase == "off":
            return self._stop(now)
        if self.phase == "command":
            self.phase = "level"
            self.takeover_times_s.append(now)
            self._cascade.reset()
            self._thrust = self.model.wrench(hold.command)[0]  # the last command's collective thrust
        x, y, z, w = orientation.tolist()  # level at the heading it has now: roll and pitch to 0, yaw rate to 0
        yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
        self._level[2], self._level[3] = math.sin(0.5 * yaw), math.cos(0.5 * yaw)
        descent = self.params.descent_mps
        if descent is None:  # the stock firmware: level, the last thrust
            return self._cascade.compute_attitude(orientation, body_rates, self._level, self._thrust)
        if descent > 0.0 and on_ground:
            return self._stop(now)  # landed
        self._velocity[2] = -descent  # a controlled descent: horizontal speed to zero, vertical to -descent
        return self._cascade.compute_velocity(velocity_world, orientation, body_rates, self._velocity, None, yaw)

    def _stop(self, now: float) -> np.ndarray:
        if self.phase != "off":
            self.shutdown_times_s.append(now)
        self.phase = "off"
        self._hold.cut()
        return self._off
