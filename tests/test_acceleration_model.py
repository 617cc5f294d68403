"""The safety filter's acceleration model, fast path against the plain reference: the same numbers to 1e-12 at every rate, and bounded work.

:class:`Reference` is the model as first written (a scan over every kept command for each
interval, integrated interval by interval in array arithmetic): slow (its cost grows with the command
rate times the history kept), obviously right. The model computes the same exact solution in closed
form (superposition of step responses), so the two differ by rounding only: 1e-12 absolute on
states of order 1-10 is a few hundred ulps, far below anything a run could show.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from aegis.controllers.cbf.acceleration_model import HISTORY_S, AccelerationModel


class Reference:
    """The former AccelerationModel's advance / observe / predict, verbatim in its arithmetic."""

    def __init__(self, lag, delay, tau_observer=0.5, max_bias=3.0):
        self.lag = np.broadcast_to(np.asarray(lag, dtype=float), (3,)).copy()
        self.delay = np.broadcast_to(np.asarray(delay, dtype=float), (3,)).copy()
        self.tau_observer, self.max_bias = tau_observer, max_bias
        self.commands, self.history = deque(), deque()
        self.time, self.acceleration, self.bias, self.stamp = None, np.zeros(3), np.zeros(3), None

    def commanded(self, now, command):
        self.commands.append((now, np.array(command, dtype=float)))

    def advance(self, now):
        if self.time is None:
            self.time = now
        elif now > self.time:
            _, _, self.acceleration = self.propagate(self.time, now, np.zeros(3), np.zeros(3), self.acceleration)
            self.time = now
        self.history.append((now, self.acceleration.copy()))
        while len(self.history) > 1 and self.history[1][0] <= now - HISTORY_S:
            self.history.popleft()
        while len(self.commands) > 1 and self.commands[1][0] + float(self.delay.min()) <= now - HISTORY_S:
            self.commands.popleft()

    def observe(self, measured, stamp):
        if self.stamp is not None and stamp <= self.stamp:
            return
        previous, self.stamp = self.stamp, stamp
        residual = np.asarray(measured, dtype=float) - self.modelled_at(stamp)
        gain = (0.0 if previous is None else min(stamp - previous, self.tau_observer)) / self.tau_observer
        self.bias = np.clip(self.bias + gain * residual, -self.max_bias, self.max_bias)

    def predict(self, position, velocity, stamp, now):
        start = min(stamp, now)
        p, v, a = self.propagate(start, now + float(self.delay.max()), np.asarray(position, dtype=float), np.asarray(velocity, dtype=float), self.modelled_at(start))
        return np.concatenate([p, v, a, self.bias])

    def modelled_at(self, time):
        if not self.history:
            return self.acceleration.copy()
        base_time, base = self.history[0]
        for t, a in self.history:
            if t > time:
                break
            base_time, base = t, a
        return base.copy() if time <= base_time else self.propagate(base_time, time, np.zeros(3), np.zeros(3), base)[2]

    def command_at(self, time):
        acting = np.zeros(3)
        for t, u in self.commands:
            arrived = t + self.delay <= time + 1e-12
            if not arrived.any():
                break
            acting = np.where(arrived, u, acting)
        return acting

    def propagate(self, start, end, p, v, a):
        p, v, a = p.copy(), v.copy(), a.copy()
        tau, t = self.lag, start
        switches = sorted({float(t + d) for t, _ in self.commands for d in self.delay if start < t + d < end})
        for boundary in [*switches, end]:
            span = boundary - t
            if span <= 0.0:
                continue
            target = self.command_at(t) + self.bias
            decay = np.exp(-span / tau)
            gap = a - target
            p += v * span + 0.5 * target * span * span + gap * tau * (span - tau * (1.0 - decay))
            v += target * span + gap * tau * (1.0 - decay)
            a = target + gap * decay
            t = boundary
        return p, v, a


def fly(model, rate_hz: float, seconds: float, seed: int) -> list[np.ndarray]:
    """A filter's calls at ``rate_hz`` with jittered ticks, late odometry and random commands; every prediction."""
    rng = np.random.default_rng(seed)
    predictions = []
    for k in range(round(rate_hz * seconds)):
        now = k / rate_hz + rng.uniform(0.0, 0.3 / rate_hz)
        model.advance(now)
        stamp = now - rng.uniform(0.0, 0.012)
        model.observe(rng.normal(size=3), stamp)
        predictions.append(model.predict(rng.normal(size=3), rng.normal(size=3), stamp, now))
        model.commanded(now, rng.normal(size=3) * 4.0)
    return predictions


@pytest.mark.parametrize(
    ("rate_hz", "seconds", "lag", "delay"),
    [
        (48.0, 3.0, (0.14, 0.14, 0.04), (0.055, 0.055, 0.0)),  # the shipped quadrotor filter, past HISTORY_S (dropping)
        (240.0, 0.4, (0.1, 0.2, 0.3), (0.01, 0.02, 0.03)),
        (1000.0, 0.12, (0.14, 0.14, 0.04), (0.055, 0.055, 0.0)),  # over 50 commands in flight per prediction
        (100.0, 6.0, (0.14, 0.14, 0.04), (0.055, 0.055, 0.0)),  # long enough for the kept lists to be compacted
        (20.0, 6.0, 0.05, 0.0),  # no dead time
    ],
)
def test_the_model_gives_the_reference_s_numbers(rate_hz: float, seconds: float, lag, delay) -> None:
    fast = fly(AccelerationModel(lag, delay, 0.5, 3.0), rate_hz, seconds, seed=int(rate_hz))
    reference = fly(Reference(lag, delay, 0.5, 3.0), rate_hz, seconds, seed=int(rate_hz))
    assert len(fast) == len(reference)
    for k, (a, b) in enumerate(zip(fast, reference)):
        assert np.allclose(a, b, rtol=0.0, atol=1e-12), f"tick {k}: {a} != {b} (largest difference {np.abs(a - b).max():.3g})"


def test_a_store_that_grows_and_compacts_gives_the_same_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command store starting at 4 rows: it doubles several times and is compacted, while the predictions stay the reference's."""
    from aegis.controllers.cbf import acceleration_model

    monkeypatch.setattr(acceleration_model, "_INITIAL_CAPACITY", 4)
    lag, delay = (0.14, 0.14, 0.04), (0.055, 0.055, 0.0)
    model = AccelerationModel(lag, delay, 0.5, 3.0)
    fast = fly(model, 100.0, 6.0, seed=5)
    reference = fly(Reference(lag, delay, 0.5, 3.0), 100.0, 6.0, seed=5)
    assert len(model._sent_array) > 4
    for k, (a, b) in enumerate(zip(fast, reference)):
        assert np.allclose(a, b, rtol=0.0, atol=1e-12), f"tick {k}: {a} != {b}"


def test_what_is_kept_stays_bounded_by_the_history() -> None:
    """At 1 kHz for 3 s, the kept commands and accelerations are about HISTORY_S of them, not the whole run."""
    model = AccelerationModel((0.14, 0.14, 0.04), (0.055, 0.055, 0.0))
    for k in range(3000):
        model.advance(k / 1000)
        model.commanded(k / 1000, np.ones(3))
    live = len(model._sent) - model._first
    assert 1000 <= live <= 1002
    assert len(model._sent) <= 1000 + 2 * 1000  # dropped entries are compacted away
