"""The quadrotor's inner loop keeps its margins under the shipped motor and latency perturbations (aegis.controllers.attitude_margins)."""

from __future__ import annotations

import math

import pytest

from aegis.config import CRAZYFLIE_2X
from aegis.controllers.attitude_margins import attitude_loop_margins, margins_table
from aegis.controllers.quadrotor_cascade import CascadeGains
from aegis.nodes.quadrotor_chain import QuadrotorAttitudeController

TAU = CRAZYFLIE_2X.quadrotor.motor_time_constant_s


def test_shipped_gains_keep_margin_at_the_edge_of_the_shipped_dynamics():
    gains = CascadeGains()
    table = dict(margins_table(gains.attitude_kp[0], gains.rate_kp[0], TAU, QuadrotorAttitudeController.default_rate_hz))
    nominal, worst = table["nominal"], table["slow_motors + latency_10ms"]
    assert nominal.phase_margin_deg > 40 and nominal.gain_margin_db > 15
    assert worst.phase_margin_deg > 10 and worst.gain_margin_db > 4
    assert worst.delay_margin_s > 0.015  # 15 ms more delay than the 20 ms of latency_10ms before it oscillates


def test_the_former_gains_at_48_hz_had_no_margin_left():
    """What the change fixed: 20 / 7 at 48 Hz is unstable with slow motors and 10 + 10 ms (the check can fail)."""
    former = attitude_loop_margins(7.0, 20.0, 2 * TAU, control_rate_hz=48.0, latency_s=0.02)
    assert former.phase_margin_deg < 0


def test_more_delay_means_less_margin_and_pure_delay_margin_matches_phase():
    fast = attitude_loop_margins(5.0, 16.0, TAU, 240.0)
    slow = attitude_loop_margins(5.0, 16.0, TAU, 240.0, latency_s=0.01)
    assert slow.phase_margin_deg < fast.phase_margin_deg
    assert fast.crossover_radps == pytest.approx(slow.crossover_radps, rel=1e-3)  # delay changes phase, not gain
    # adding exactly the delay margin drives the phase margin to zero
    edge = attitude_loop_margins(5.0, 16.0, TAU, 240.0, latency_s=fast.delay_margin_s)
    assert abs(edge.phase_margin_deg) < 0.5


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        attitude_loop_margins(5.0, 0.0, TAU, 240.0)
    with pytest.raises(ValueError):
        attitude_loop_margins(5.0, 16.0, TAU, 240.0, latency_s=-1.0)
    assert math.isfinite(attitude_loop_margins(5.0, 16.0, TAU, 240.0).gain_margin_db)
