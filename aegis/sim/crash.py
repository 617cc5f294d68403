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
    x, y = float(orientation[0]), float(orientation[1])
    norm2 = float(orientation @ orientation)
    up_z = 1.0 - 2.0 * (x * x + y * y) / norm2 if norm2 > 0.0 else 1.0
    return math.acos(max(-1.0, min(1.0, up_z)))


def crash_reason(
    params: CrashParams,
    position: np.ndarray,
    orientation: np.ndarray,
    velocity: np.ndarray,
    geofence: Any = None,
    touching_ground: bool = False,
) -> str | None:
    """Why this true state is a crash (see the module doc), or None. ``geofence`` has ``min_m``/``max_m`` (or None)."""
    if not (np.all(np.isfinite(position)) and np.all(np.isfinite(orientation)) and np.all(np.isfinite(velocity))):
        return "non-finite state"
    tilt = tilt_rad(orientation)
    if tilt > params.tilt_limit_rad:
        return f"flipped: tilt {math.degrees(tilt):.0f} deg > {math.degrees(params.tilt_limit_rad):.0f} deg"
    speed = float(np.linalg.norm(velocity))
    if touching_ground and speed > params.ground_speed_mps:
        return f"hit the ground at {speed:.2f} m/s (> {params.ground_speed_mps:g} m/s)"
    margin = params.world_margin_m
    if geofence is not None:
        low = np.asarray(geofence.min_m, dtype=float) - margin
        high = np.asarray(geofence.max_m, dtype=float) + margin
    else:
        extent = params.world_half_extent_m
        low = np.array([-extent, -extent, -margin])
        high = np.array([extent, extent, np.inf])
    low[2] = min(low[2], -margin)  # below the ground by the margin, whatever the geofence's floor
    if np.any(position < low) or np.any(position > high):
        where = ", ".join(f"{v:.2f}" for v in position)
        return f"left the world at ({where}) m"
    return None
