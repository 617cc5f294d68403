"""The quadrotor plant's firmware failsafe on a lost command link (aegis.sim.link_loss): hold, level, motors off; a command takes over.

Real PyBullet (DIRECT); each run is a couple of simulated seconds of the bridge alone, commanded
by hand: a command is sent once at t = 0 and then nothing (what a killed stack leaves).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pybullet")

from aegis.config import load_config  # noqa: E402
from aegis.launch_plan import make_plan  # noqa: E402
from aegis.msgs import MotorSpeeds  # noqa: E402
from aegis.node import EndRun, Received  # noqa: E402
from aegis.nodes.quadrotor_sim_bridge import QuadrotorSimBridgeParams, SimBridge  # noqa: E402
from aegis.nodes.sim_bridge import COMMAND_TIMEOUT_S  # noqa: E402
from aegis.runs.evaluation import run_episode  # noqa: E402
from aegis.sim.crash import tilt_rad  # noqa: E402

RATE_HZ = 240
REPO = Path(__file__).resolve().parents[2]


def bridge(**failsafe: object) -> SimBridge:
    sim = SimBridge("sim", QuadrotorSimBridgeParams(initial_position_m=(0.0, 0.0, 1.0), initial_motors="hover", failsafe=failsafe))
    sim.reset(0)
    return sim


def sent_once(sim: SimBridge, factor: tuple[float, float, float, float] = (1.03, 0.97, 1.03, 0.97)) -> MotorSpeeds:
    """A command with a yaw torque in it (rotors 1 and 3 faster): flown blindly it spins the body; sent at t = 0 only."""
    return MotorSpeeds(stamp=0.0, velocities=sim.world.model.hover_motor_speed * np.asarray(factor))


def as_received(command: MotorSpeeds, now: float) -> Received:
    age = now - command.stamp
    return Received(command, age, age > COMMAND_TIMEOUT_S)


def test_without_commands_the_plant_levels_and_holds_then_cuts_the_motors_at_the_configured_time() -> None:
    sim = bridge(shutdown_after_s=1.0)
    command = sent_once(sim)
    phases, heights, tilts, yaw_rates = {}, {}, {}, {}
    try:
        with pytest.raises(EndRun, match="crash: hit the ground"):  # after the cut it falls from 1 m
            for tick in range(2 * RATE_HZ):
                now = tick / RATE_HZ
                truth = sim.step(now, {"command": as_received(command, now)})["truth"]
                phases[tick], heights[tick] = sim.failsafe_phase, truth.position[2]
                tilts[tick], yaw_rates[tick] = tilt_rad(truth.orientation), truth.angular_velocity[2]
                if tick == 12:  # 50 ms: the command is fresh and flies as sent
                    np.testing.assert_allclose(sim._failsafe._hold.command, command.velocities)
        assert phases[24] == "command" and phases[25] == "level"  # stale past 0.1 s: the failsafe takes over
        last_level = max(t for t, p in phases.items() if p == "level")
        assert last_level == RATE_HZ  # 1.0 s after the last command: motors off at the next tick
        assert phases[RATE_HZ + 1] == "off" and sim.command_timeouts == 1 and sim.metrics()["failsafe_takeovers"] == 1
        level = range(int(0.5 * RATE_HZ), RATE_HZ + 1)  # settled
        assert max(tilts[t] for t in level) < math.radians(1.0)  # level
        assert max(abs(yaw_rates[t]) for t in level) < 0.05  # the command's yaw torque is gone: it no longer spins
        assert all(abs(heights[t] - 1.0) < 0.05 for t in level)  # on the last (near hover) thrust: it holds its height
        assert sim.world.motor_speeds.max() < 1.0  # cut, and spun down
    finally:
        sim.close()


def test_a_resumed_command_takes_over_from_the_failsafe_at_once() -> None:
    sim = bridge()
    first, resumed = sent_once(sim), None
    try:
        for tick in range(RATE_HZ):
            now = tick / RATE_HZ
            if tick == int(0.6 * RATE_HZ):  # the link is back
                resumed = MotorSpeeds(stamp=now, velocities=np.full(4, 0.98 * sim.world.model.hover_motor_speed))
            received = as_received(resumed if resumed is not None else first, now)
            if resumed is not None:
                received = Received(resumed, 0.0, False)  # fresh every tick from now on
            sim.step(now, {"command": received})
            if tick == int(0.6 * RATE_HZ) - 1:
                assert sim.failsafe_phase == "level"
            if resumed is not None:
                assert sim.failsafe_phase == "command"
                np.testing.assert_allclose(sim._failsafe._hold.command, resumed.velocities)
        assert sim.command_timeouts == 0 and sim.metrics()["failsafe_takeovers"] == 1
    finally:
        sim.close()


def test_a_controlled_descent_lands_softly_and_stops_the_motors_on_the_ground() -> None:
    sim = bridge(descent_mps=0.3, shutdown_after_s=10.0)
    command = sent_once(sim, (1.0, 1.0, 1.0, 1.0))
    try:
        for tick in range(6 * RATE_HZ):  # 1 m at 0.3 m/s: about 3.5 s
            now = tick / RATE_HZ
            sim.step(now, {"command": as_received(command, now)})  # a hard touch-down would raise EndRun (a crash)
            if sim.failsafe_phase == "off":
                break
        assert sim.failsafe_phase == "off" and sim.crashes == 0 and sim.command_timeouts == 1
        assert 2.5 < now < 5.0 and sim.world.position[2] < 0.1
    finally:
        sim.close()


def test_the_shutdown_must_come_after_the_command_goes_stale() -> None:
    with pytest.raises(ValueError, match="shutdown_after_s"):
        bridge(shutdown_after_s=0.05)


def test_a_silent_link_in_closed_loop_is_a_fall_only_after_the_shutdown_timeout() -> None:
    # nobody publishes the bridge's command: the default failsafe levels and holds on the initial hover thrust for 2 s,
    # then stops the motors, and the drone falls 1 m (compare tests/sim/test_truth.py: the bare watchdog falls at once)
    config = REPO / "hw_configs" / "quadrotor_cascade_sim.yaml"  # the sim bridge's default failsafe: a stock Crazyflie's
    plan = make_plan(load_config(config, ["scenario=quadrotor_hover", "nodes.sim.topics.command=/nobody"]))
    row = run_episode(plan, 0, 0, 4.0)
    assert row["crashes"] == 1 and row["crash_reason"].startswith("hit the ground at")
    assert 2.4 < row["crash_time_s"] < 2.55  # 2.0 s, then free fall from 1 m: 2.0 + sqrt(2 / 9.81) = 2.45 s
    assert row["failsafe_takeover_s"] == [pytest.approx(0.1, abs=0.01)] and row["failsafe_shutdown_s"] == [pytest.approx(2.0, abs=0.01)]


def test_a_silent_link_with_the_shipped_quadrotors_controlled_descent_is_a_soft_landing() -> None:
    # quadrotor_sim.yaml states its failsafe: descend at 0.3 m/s, motors off on touch-down
    config = REPO / "hw_configs" / "quadrotor_sim.yaml"
    plan = make_plan(load_config(config, ["scenario=quadrotor_hover", "nodes.sim.topics.command=/nobody"]))
    row = run_episode(plan, 0, 0, 6.0)
    assert row["crashes"] == 0 and row["command_timeouts"] == 1 and row["failsafe_takeovers"] == 1
    (landed,) = row["failsafe_shutdown_s"]
    assert 2.5 < landed < 4.0  # 0.1 s, then 1 m at 0.3 m/s down to where the airframe touches
