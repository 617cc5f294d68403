"""Stability margins of the quadrotor's attitude loop: how much motor lag and latency the inner loop tolerates.

One tilt axis of the cascade (aegis.controllers.quadrotor_cascade), linearised about hover: the
attitude P (rate command ``ka`` per rad of tilt error) around the body-rate P (angular
acceleration ``kr`` per rad/s of rate error, times the inertia the cascade inverts), acting
through the rotors' first-order lag ``tau`` and a pure delay. Broken at the actuator, the loop is

    L(s) = kr (s + ka) / s^2 * 1 / (tau s + 1) * exp(-s T)

with ``T`` the total delay: sensing latency + actuation latency + one physics step (a command acts
from the next step) + half the controller's sample period (the zero-order hold). The margins are
read off its frequency response: the crossover, the phase margin there, the gain margin where the
phase crosses -180 degrees, and the delay margin (the extra delay that would remove the phase
margin: PM / crossover).

This is the model the defaults were chosen with (CascadeGains' docstring) and what
tests/test_attitude_margins.py holds them to; `python -m aegis.controllers.attitude_margins` prints
the table for the shipped gains over the perturbations of the shipped dynamics sets. The closed-loop
tests under perturbed dynamics are the check that the linearisation tells the truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_FREQUENCIES = np.logspace(-1, 3.5, 60000)


@dataclass(frozen=True)
class LoopMargins:
    """Crossover (rad/s), phase margin (deg), gain margin (dB, inf when the phase never reaches -180), delay margin (s)."""

    crossover_radps: float
    phase_margin_deg: float
    gain_margin_db: float
    delay_margin_s: float


def attitude_loop_margins(
    attitude_kp: float,
    rate_kp: float,
    motor_time_constant_s: float,
    control_rate_hz: float,
    physics_rate_hz: float = 240.0,
    latency_s: float = 0.0,
) -> LoopMargins:
    """The margins of one tilt axis (module doc); ``latency_s`` is sensing plus actuation latency."""
    if not (attitude_kp >= 0 and rate_kp > 0 and motor_time_constant_s >= 0 and control_rate_hz > 0 and physics_rate_hz > 0 and latency_s >= 0):
        raise ValueError("gains, rates, time constant and latency must be >= 0 (rate_kp and the rates > 0)")
    delay = latency_s + 1.0 / physics_rate_hz + 0.5 / control_rate_hz
    s = 1j * _FREQUENCIES
    loop = rate_kp * (s + attitude_kp) / s**2 / (motor_time_constant_s * s + 1.0) * np.exp(-s * delay)
    magnitude, phase = np.abs(loop), np.unwrap(np.angle(loop))
    above = magnitude >= 1.0
    crossing = int(np.flatnonzero(above[:-1] & ~above[1:])[0])
    crossover = float(_FREQUENCIES[crossing])
    phase_margin = 180.0 + math.degrees(float(phase[crossing]))
    below = np.flatnonzero((phase[:-1] > -math.pi) & (phase[1:] <= -math.pi))
    gain_margin = -20.0 * math.log10(float(magnitude[below[0]])) if below.size else math.inf
    return LoopMargins(crossover, phase_margin, gain_margin, math.radians(phase_margin) / crossover)


def margins_table(
    attitude_kp: float, rate_kp: float, motor_time_constant_s: float, control_rate_hz: float, physics_rate_hz: float = 240.0
) -> list[tuple[str, LoopMargins]]:
    """The margins at nominal and under the shipped dynamics sets' motor and latency perturbations."""
    cases = (
        ("nominal", 1.0, 0.0),
        ("slow_motors (tau x2)", 2.0, 0.0),
        ("latency_10ms (10 ms sensing + 10 ms actuation)", 1.0, 0.02),
        ("slow_motors + latency_10ms", 2.0, 0.02),
    )
    return [
        (name, attitude_loop_margins(attitude_kp, rate_kp, motor_time_constant_s * scale, control_rate_hz, physics_rate_hz, latency))
        for name, scale, latency in cases
    ]


def main() -> None:
    """Print the table for the shipped Crazyflie gains and rates."""
    from aegis.config import CRAZYFLIE_2X
    from aegis.controllers.quadrotor_cascade import CascadeGains

    gains = CascadeGains()
    tau = CRAZYFLIE_2X.quadrotor.motor_time_constant_s
    print(f"attitude loop (tilt axis), attitude_kp {gains.attitude_kp[0]:g}, rate_kp {gains.rate_kp[0]:g}, at 240 Hz, motor tau {tau * 1e3:g} ms")
    print(f"{'case':<50} {'crossover':>10} {'phase margin':>13} {'gain margin':>12} {'delay margin':>13}")
    for name, m in margins_table(gains.attitude_kp[0], gains.rate_kp[0], tau, 240.0):
        print(f"{name:<50} {m.crossover_radps:>6.1f} rad/s {m.phase_margin_deg:>9.1f} deg {m.gain_margin_db:>9.1f} dB {m.delay_margin_s * 1e3:>10.1f} ms")


if __name__ == "__main__":
    main()
