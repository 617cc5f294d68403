"""A recorded run as time series on the bag's own tick grid: actuator commands, IMU, odometry and each sensor's latency.

The identification (aegis.sysid.quadrotor, aegis.sysid.diff_drive) needs signals sampled at one
rate and aligned in time. A bag records every message at its log time (when it was published)
with a header stamp (when it was measured); a sensor's latency is the difference, measured here
per message. Measurements are put on the grid at their stamps (when they were true), commands from the first
tick after their log times (when they were given), each held until the next (zero-order hold).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aegis.runs.bag import BagError, bag_info, read_bag


class SysidError(ValueError):
    """A bag that cannot be identified from (a topic missing, too short, no excitation); the message says which and why."""


@dataclass(frozen=True)
class Series:
    """Aligned signals on the grid ``time_s`` (one row per tick ``dt_s``); measurement rows are NaN before the first one."""

    time_s: np.ndarray
    dt_s: float
    command: np.ndarray  # actuator speed commands (rad/s), held
    sensing_latency_s: float  # median of log time - stamp over the measurement topic
    gyro: np.ndarray  # body rates (rad/s), FLU
    accel: np.ndarray  # specific force (m/s^2), FLU; NaN without an IMU
    velocity_body: np.ndarray  # odometry linear velocity (m/s), body frame
    yaw_rate: np.ndarray  # odometry angular velocity about body z (rad/s)
    has_imu: bool
    wheels: np.ndarray | None = None  # wheel encoder speeds (rad/s), when a wheel topic is recorded


def read_series(
    bag: str | Path, command_topic: str, imu_topic: str | None, odom_topic: str = "/odom", wheels_topic: str | None = None
) -> Series:
    """The bag's commands, IMU or wheel encoders (when recorded) and odometry on the tick grid; SysidError naming a missing topic.

    The sensing latency is measured on the IMU, else the wheel encoders, else the odometry.
    """
    try:
        recorded = {t["topic"] for t in bag_info(bag)["topics"]}
    except BagError as exc:
        raise SysidError(str(exc)) from None
    for topic in (command_topic, odom_topic):
        if topic not in recorded:
            raise SysidError(f"{bag}: no {topic} in the bag (recorded: {', '.join(sorted(recorded))})")
    has_imu = imu_topic is not None and imu_topic in recorded
    has_wheels = wheels_topic is not None and wheels_topic in recorded
    topics = [command_topic, odom_topic] + ([imu_topic] if has_imu else []) + ([wheels_topic] if has_wheels else [])
    commands: list[tuple[float, np.ndarray]] = []
    odom: list[tuple[float, np.ndarray]] = []
    imu: list[tuple[float, np.ndarray]] = []
    wheels: list[tuple[float, np.ndarray]] = []
    delays: list[float] = []
    measured_topic = imu_topic if has_imu else wheels_topic if has_wheels else odom_topic
    for t_ns, topic, msg in read_bag(bag, topics):
        log_s = t_ns * 1e-9
        if topic == command_topic:
            commands.append((log_s, np.asarray(msg.velocities, dtype=float)))
        elif topic == odom_topic:
            odom.append((msg.stamp, np.concatenate([msg.linear_velocity, msg.angular_velocity])))
        elif topic == wheels_topic:
            wheels.append((msg.stamp, np.asarray(msg.velocities, dtype=float)))
        else:
            imu.append((msg.stamp, np.concatenate([msg.angular_velocity, msg.linear_acceleration])))
        if topic == measured_topic:
            delays.append(log_s - msg.stamp)
    if len(commands) < 50 or len(odom) < 50:
        raise SysidError(f"{bag}: too short to identify from ({len(commands)} commands on {command_topic}, {len(odom)} on {odom_topic})")
    stamps = np.array([s for s, _ in (imu if has_imu else wheels if has_wheels else odom)])
    step = float(np.median(np.diff(stamps)))
    if not step > 0.0:
        raise SysidError(f"{bag}: {measured_topic} stamps do not advance")
    dt = (stamps[-1] - stamps[0]) / round((stamps[-1] - stamps[0]) / step)  # over the whole run: no drift along the grid
    before = int(np.ceil(max(0.0, stamps[0] - commands[0][0]) / dt - 1e-6))
    after = int(round((max(commands[-1][0], stamps[-1]) - stamps[0]) / dt))
    grid = stamps[0] + dt * np.arange(-before, after + 1)
    command = _held(commands, grid)
    odometry = _at(odom, grid, dt)
    sensed = _at(imu, grid, dt) if has_imu else np.full((grid.size, 6), np.nan)
    gyro = sensed[:, 0:3] if has_imu else odometry[:, 3:6]
    return Series(
        time_s=grid, dt_s=dt, command=command, sensing_latency_s=float(np.median(delays)), gyro=gyro,
        accel=sensed[:, 3:6], velocity_body=odometry[:, 0:3], yaw_rate=odometry[:, 5], has_imu=has_imu,
        wheels=_at(wheels, grid, dt) if has_wheels else None,
    )


def _held(samples: list[tuple[float, np.ndarray]], grid: np.ndarray) -> np.ndarray:
    """Each grid time's latest command given strictly before it (the first one before any).

    A command given at a tick's time acts from the next tick (that tick's actuators were already
    set: in aegis' lockstep run the plant steps first), and so does one given between ticks: every
    command acts from the first tick after it.
    """
    times = np.array([t for t, _ in samples])
    values = np.array([v for _, v in samples])
    index = np.searchsorted(times, grid - 1e-7, side="left") - 1
    return values[np.clip(index, 0, len(values) - 1)]


def _at(samples: list[tuple[float, np.ndarray]], grid: np.ndarray, dt: float) -> np.ndarray:
    """Each sample in the grid row of its stamp (to the nearest tick); rows without one are NaN."""
    out = np.full((grid.size, samples[0][1].size), np.nan)
    rows = np.round((np.array([t for t, _ in samples]) - grid[0]) / dt).astype(int)
    keep = (rows >= 0) & (rows < grid.size)
    out[rows[keep]] = np.array([v for _, v in samples])[keep]
    return out
