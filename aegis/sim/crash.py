"""Crash detection from the simulator's ground truth: a flip, a hard ground contact, a non-finite state, leaving the world.

A collision with an obstacle is counted by the bridge and the run goes on; a crash ends it (the
bridge raises :class:`~aegis.node.EndRun`): whatever the controllers would do next, the robot
is lost. :func:`crash_reason` looks at the TRUE state after a physics step, never at what the
sensors published, and says why it is a crash, or None:

- ``non-finite state``: a NaN or infinite position, attitude or velocity (the physics blew up);
- ``flipped``: the body's up axis is more than ``tilt_limit_rad`` from world up;
- ``hit the ground``: the body touches the ground plane faster than ``ground_speed_mps`` (a
  take-off or a landing touches it slowly; a quadrotor that falls or dives does not). Only robots
  that fly are judged on it: a ground robot touches the ground all the time;
- ``left the world``: farther than ``world_margin_m`` outside the scenario's geofence (or outside
  +-``world_half_extent_m`` without one), or more than ``world_margin_m`` below the ground.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from aegis.node import NodeParams

_Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class CrashParams(NodeParams):
    """When the sim bridge calls a run a crash (and ends it); see aegis.sim.crash."""

    tilt_limit_rad: Annotated[float, Field(gt=0, le=math.pi)] = Field(
        1.4, description="flipped beyond this angle between body up and world up (rad; 1.4 = 80 degrees)"
    )
    ground_speed_mps: _Positive = Field(
        0.5, description="a flying robot touching the ground faster than this has crashed (m/s); slower is a take-off or landing"
    )
    world_margin_m: _Positive = Field(
        2.0, description="left the world: this far outside the scenario's geofence, or below the ground (m)"
    )
    world_half_extent_m: _Positive = Field(
        100.0, description="left the world without a scenario geofence: beyond +-this along x or y (m)"
    )


def tilt_rad(orientation: np.ndarray) -> float:
    """Angle between the body's up axis and world up, from a quaternion (x, y, z, w)."""
    x, y, z, w = (float(v) for v in orientation)
    norm2 = x * x + y * y + z * z + w * w
    up_z = 1.0 - 2.0 * (x * x + y * y) / norm2 if norm2 > 0.0 else 1.0
    return math.acos(max(-1.0, min(1.0, up_z)))


class CrashJudge:
    """:func:`crash_reason` with its bounds worked out once (the bridge asks after every physics step)."""

    def __init__(self, params: CrashParams, geofence: Any = None) -> None:
        self.params = params
        margin = params.world_margin_m
        if geofence is not None:
            low = [float(v) - margin for v in geofence.min_m]
            high = [float(v) + margin for v in geofence.max_m]
        else:
            extent = params.world_half_extent_m
            low, high = [-extent, -extent, -margin], [extent, extent, math.inf]
        low[2] = min(low[2], -margin)  # below the ground by the margin, whatever the geofence's floor
        self._bounds = tuple(zip(low, high))
        self._cos_tilt = math.cos(params.tilt_limit_rad)
        self._ground_speed2 = params.ground_speed_mps**2

    def __call__(self, position: np.ndarray, orientation: np.ndarray, velocity: np.ndarray, touching_ground: bool = False) -> str | None:
        """Why this true state is a crash (see the module doc), or None."""
        numbers = (*position.tolist(), *orientation.tolist(), *velocity.tolist())
        if not all(map(math.isfinite, numbers)):
            return "non-finite state"
        px, py, pz, qx, qy, qz, qw, vx, vy, vz = numbers
        norm2 = qx * qx + qy * qy + qz * qz + qw * qw
        up_z = 1.0 - 2.0 * (qx * qx + qy * qy) / norm2 if norm2 > 0.0 else 1.0
        if up_z < self._cos_tilt:
            tilt = math.degrees(math.acos(max(-1.0, min(1.0, up_z))))
            return f"flipped: tilt {tilt:.0f} deg > {math.degrees(self.params.tilt_limit_rad):.0f} deg"
        speed2 = vx * vx + vy * vy + vz * vz
        if touching_ground and speed2 > self._ground_speed2:
            return f"hit the ground at {math.sqrt(speed2):.2f} m/s (> {self.params.ground_speed_mps:g} m/s)"
        for value, (low, high) in zip((px, py, pz), self._bounds):
            if not low <= value <= high:
                return f"left the world at ({px:.2f}, {py:.2f}, {pz:.2f}) m"
        return None


def crash_reason(
    params: CrashParams,
    position: np.ndarray,
    orientation: np.ndarray,
    velocity: np.ndarray,
    geofence: Any = None,
    touching_ground: bool = False,
) -> str | None:
    """Why this true state is a crash (see the module doc), or None. ``geofence`` has ``min_m``/``max_m`` (or None)."""
    return CrashJudge(params, geofence)(np.asarray(position), np.asarray(orientation), np.asarray(velocity), touching_ground)
