"""Scenario disturbances as pure functions of time: the wind velocity (mean plus seeded gusts) and impulse forces.

Gusts are a sum of sinusoids per axis with frequencies drawn log-uniformly up to the
bandwidth and random phases, all from the seed (a scenario may add a wind profile: knots, linear
between, as an adversarial search writes them): the same (wind, seed, t) gives the same
velocity in any process, at any step size, and each axis has standard deviation
``gust_std_mps`` over time.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from aegis.scenario.schema import Impulse, Wind

GUST_COMPONENTS = 16
"""Sinusoids per axis in the gust field."""
_LOWEST_GUST_FRACTION = 0.02
"""The lowest gust frequency, as a fraction of the bandwidth."""


@lru_cache(maxsize=16)
def _gust_components(seed: int, bandwidth_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Angular frequencies and phases, each (3, GUST_COMPONENTS), read-only."""
    rng = np.random.default_rng([seed, 0x67757374])  # a stream of its own ("gust"), apart from other uses of the seed
    low = np.log(_LOWEST_GUST_FRACTION * bandwidth_hz)
    omega = 2.0 * np.pi * np.exp(rng.uniform(low, np.log(bandwidth_hz), size=(3, GUST_COMPONENTS)))
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(3, GUST_COMPONENTS))
    omega.setflags(write=False)
    phase.setflags(write=False)
    return omega, phase


def wind_at(wind: Wind, t: float, seed: int) -> np.ndarray:
    """Wind velocity (m/s, world frame) at time ``t`` for this seed: mean, profile and gusts."""
    mean = np.array(wind.velocity_mps, dtype=float)
    if wind.profile_mps:
        mean += profile_at(wind.profile_mps, wind.profile_period_s, t)
    if wind.gust_std_mps == 0.0:
        return mean
    omega, phase = _gust_components(seed, wind.gust_bandwidth_hz)
    amplitude = wind.gust_std_mps * np.sqrt(2.0 / GUST_COMPONENTS)  # each sinusoid has variance amplitude^2 / 2
    return mean + amplitude * np.sin(omega * t + phase).sum(axis=1)


def profile_at(knots: Sequence[Sequence[float]], period_s: float, t: float) -> np.ndarray:
    """A wind profile's velocity at ``t``: knots every ``period_s`` from 0, linear between, the first before and the last after."""
    knots = np.asarray(knots, dtype=float).reshape(-1, 3)
    times = np.arange(len(knots)) * period_s
    return np.array([np.interp(t, times, knots[:, axis]) for axis in range(3)])


def impulse_force_at(impulses: Sequence[Impulse], t: float) -> np.ndarray:
    """Sum of the impulse forces (N, world frame) active at time ``t``."""
    force = np.zeros(3)
    for impulse in impulses:
        if impulse.time_s <= t < impulse.time_s + impulse.duration_s:
            force += impulse.force_n
    return force
