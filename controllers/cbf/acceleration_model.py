"""What the safety filter believes the robot's acceleration is: its own commands through the plant's lag, plus an estimated bias.

The filter commands an acceleration ``u``; the robot's inner loops and motors realise it late
(``actuator_delay_s`` per axis: the inner loop's dead time plus any actuation latency) and slowly (a
first-order lag of ``lag_s`` per axis), and off by a bias
``d`` (mass, thrust and drag coefficients unlike the nominal ones): ``tau a' = u(t - L) + d - a``.
:class:`AccelerationModel` keeps that model running over the filter's own past commands, and

- **predicts** the robot's position, velocity and acceleration from a measurement taken at ``stamp``
  (odometry arrives late: its age is read from its stamp) to the instant the command computed now
  starts to act (``now + actuator_delay_s``), over the commands already on their way;
- **estimates the bias** from a measured acceleration (an IMU's specific force turned into the world
  frame): the residual between measured and modelled acceleration at the measurement's stamp is
  integrated with time constant ``observer_time_constant_s`` into ``bias`` (a disturbance observer),
  clipped to ``max_bias_mps2`` per axis; ``residual`` is the last residual, ``filtered_residual`` the
  residual low-passed with the observer's time constant, which the filter reports and warns on.

Pure: every time comes from the caller; no clock, no I/O. Exact integration of the lag and the
double integrator over each interval of constant command, per axis.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import numpy as np

HISTORY_S = 1.0
"""How far back commands and modelled accelerations are kept (s): more than any latency worth filtering."""
_COMPACT_AFTER = 256
"""Dropped entries at the head of the kept lists before they are compacted (amortised O(1) per tick)."""


class AccelerationModel:
    """The lagged, biased acceleration the filter's commands produce (module doc)."""

    def __init__(
        self,
        lag_s: float | Sequence[float],
        actuator_delay_s: float | Sequence[float] = 0.0,
        observer_time_constant_s: float = 0.5,
        max_bias_mps2: float = 3.0,
    ) -> None:
        lag = np.broadcast_to(np.asarray(lag_s, dtype=float), (3,)).copy()
        if not (np.all(lag > 0) and np.all(np.isfinite(lag))):
            raise ValueError(f"lag_s must be finite and > 0 per axis, got {lag_s}")
        delay = np.broadcast_to(np.asarray(actuator_delay_s, dtype=float), (3,)).copy()
        if not (np.all(delay >= 0) and np.all(np.isfinite(delay))):
            raise ValueError(f"actuator_delay_s must be finite and >= 0 per axis, got {actuator_delay_s}")
        if not (max_bias_mps2 >= 0 and math.isfinite(max_bias_mps2)):
            raise ValueError(f"max_bias_mps2 must be finite and >= 0, got {max_bias_mps2}")
        if not (observer_time_constant_s > 0 and math.isfinite(observer_time_constant_s)):
            raise ValueError(f"observer_time_constant_s must be finite and > 0, got {observer_time_constant_s}")
        self.lag = lag
        self.delay = delay
        self.observer_time_constant_s = float(observer_time_constant_s)
        self.max_bias_mps2 = float(max_bias_mps2)
        self.reset()

    def reset(self) -> None:
        """No command given, acceleration and bias zero."""
        # The commands kept, oldest first, from index _first on (older ones are dropped by moving _first; the lists are
        # compacted now and then): when each was sent, its value, and per axis when it starts acting (sent + delay).
        self._sent: list[float] = []
        self._values: list[list[float]] = []
        self._arrivals: tuple[list[float], list[float], list[float]] = ([], [], [])
        self._first = 0
        # The modelled acceleration at each tick's time, oldest first, from index _history_first on.
        self._history_times: list[float] = []
        self._history: list[np.ndarray] = []
        self._history_first = 0
        self.time: float | None = None
        self.acceleration = np.zeros(3)
        self.bias = np.zeros(3)
        self.residual = np.zeros(3)
        self.filtered_residual = np.zeros(3)
        self._observed_stamp: float | None = None

    def commanded(self, now: float, command: np.ndarray) -> None:
        """The filter sent ``command`` at ``now``: axis i acts from ``now + actuator_delay_s[i]``."""
        self._sent.append(now)
        self._values.append(np.array(command, dtype=float).tolist())
        for arrivals, arrival in zip(self._arrivals, (now + self.delay).tolist()):
            arrivals.append(arrival)

    def advance(self, now: float) -> None:
        """Run the model up to ``now`` (call once per tick, before observe and predict; ``now`` never decreases)."""
        if self.time is None:
            self.time = now
        elif now > self.time:
            _, _, self.acceleration = self._propagate(self.time, now, np.zeros(3), np.zeros(3), self.acceleration)
            self.time = now
        self._history_times.append(now)
        self._history.append(self.acceleration.copy())
        oldest = now - HISTORY_S
        times, first = self._history_times, self._history_first
        while len(times) - first > 1 and times[first + 1] <= oldest:
            first += 1
        if first > _COMPACT_AFTER and 2 * first > len(times):
            del times[:first], self._history[:first]
            first = 0
        self._history_first = first
        sent, first, earliest_delay = self._sent, self._first, float(self.delay.min())
        while len(sent) - first > 1 and sent[first + 1] + earliest_delay <= oldest:
            first += 1
        if first > _COMPACT_AFTER and 2 * first > len(sent):
            del sent[:first], self._values[:first]
            for arrivals in self._arrivals:
                del arrivals[:first]
            first = 0
        self._first = first

    def observe(self, measured: np.ndarray, stamp: float) -> None:
        """A measured world-frame acceleration (gravity removed) taken at ``stamp``: update the bias (once per stamp)."""
        if self._observed_stamp is not None and stamp <= self._observed_stamp:
            return
        previous, self._observed_stamp = self._observed_stamp, stamp
        self.residual = np.asarray(measured, dtype=float) - self._modelled_at(stamp)
        step = 0.0 if previous is None else min(stamp - previous, self.observer_time_constant_s)
        gain = step / self.observer_time_constant_s
        self.bias = np.clip(self.bias + gain * self.residual, -self.max_bias_mps2, self.max_bias_mps2)
        self.filtered_residual += gain * (self.residual - self.filtered_residual)

    @property
    def bias_saturated(self) -> bool:
        """Whether the bias estimate sits at its bound: the plant is further from the model than declared."""
        bound = self.max_bias_mps2 * (1.0 - 1e-9)
        return any(abs(b) >= bound for b in self.bias.tolist()) and self.max_bias_mps2 > 0.0

    def predict(self, position: np.ndarray, velocity: np.ndarray, stamp: float, now: float) -> np.ndarray:
        """[p, v, a, bias] (12) at ``now + max(actuator_delay_s)`` from position and velocity measured at ``stamp``.

        The horizon is the longest dead time: the command computed now acts on no axis before it (an
        axis with a shorter one is then predicted as if this tick's command reached it that late: an
        error the bound ``model_error_mps2`` covers, and small for the Crazyflie's 55 ms / 0).
        """
        target = now + float(self.delay.max())
        start = min(stamp, now)
        p, v, a = self._propagate(start, target, np.asarray(position, dtype=float), np.asarray(velocity, dtype=float), self._modelled_at(start))
        return np.concatenate([p, v, a, self.bias])

    def _modelled_at(self, time: float) -> np.ndarray:
        """The modelled acceleration at ``time``: the last recorded at or before it, run forward to it."""
        first = self._history_first
        if len(self._history_times) == first:
            return self.acceleration.copy()
        index = max(first, bisect.bisect_right(self._history_times, time, first) - 1)
        base_time, base = self._history_times[index], self._history[index]
        if time <= base_time:
            return base.copy()
        return self._propagate(base_time, time, np.zeros(3), np.zeros(3), base)[2]

    def _propagate(self, start: float, end: float, p: np.ndarray, v: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p, v, a) at ``end`` from ``start``, exactly, over each interval of constant command (plus the bias).

        Per interval of constant command u and axis: a -> target + (a - target) d with target = u + bias and
        d = exp(-span / tau), and p, v by the exact integrals. Plain floats, each operation in the order the
        former array expressions took (so the numbers are the same bits; tests/test_acceleration_model.py holds
        that reference), the decays from one ``np.exp`` call (``math.exp`` differs in the last bit). The
        axes are independent, so each runs over all the intervals in turn (axis-major: fewer lookups per step).
        The commands acting are found by a pointer per axis that walks forward: linear in the intervals, which
        number about (longest dead time) x (command rate) for a prediction.
        """
        first = self._first
        switches = set()
        for arrivals in self._arrivals:  # each axis's arrival times are sorted: the ones strictly inside (start, end)
            low = bisect.bisect_right(arrivals, start, first)
            switches.update(arrivals[low : bisect.bisect_left(arrivals, end, low)])
        t, intervals, spans = start, [], []
        for boundary in [*sorted(switches), end]:
            span = boundary - t
            if span <= 0.0:
                continue
            intervals.append(t)
            spans.append(span)
            t = boundary
        p, v, a = p.tolist(), v.tolist(), a.tolist()
        if spans:
            values, limits = self._values, [t + 1e-12 for t in intervals]
            decays = np.exp(-np.array(spans)[:, None] / self.lag).T.tolist()  # decay = exp(-span / tau), per axis and interval
            for i, (arrivals, tau_i, bias_i, decay) in enumerate(zip(self._arrivals, self.lag.tolist(), self.bias.tolist(), decays)):
                # the axes are independent: each runs over the intervals with its own pointer to the first command not
                # arrived by the interval's start (+1e-12): the one before acts
                k, count = bisect.bisect_right(arrivals, limits[0], first), len(arrivals)
                p_i, v_i, a_i = p[i], v[i], a[i]
                for limit, span, decay_i in zip(limits, spans, decay):
                    while k < count and arrivals[k] <= limit:
                        k += 1
                    target = (values[k - 1][i] if k > first else 0.0) + bias_i  # target = command_at(t) + bias
                    gap = a_i - target  # gap = a - target
                    gap_tau, rise = gap * tau_i, 1.0 - decay_i
                    p_i += v_i * span + 0.5 * target * span * span + gap_tau * (span - tau_i * rise)
                    v_i += target * span + gap_tau * rise
                    a_i = target + gap * decay_i
                p[i], v[i], a[i] = p_i, v_i, a_i
        return np.array(p), np.array(v), np.array(a)
