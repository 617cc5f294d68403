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

Pure: every time comes from the caller; no clock, no I/O. Exact, in closed form: per axis the plant
is linear (a lag, then a double integrator) and the command is piecewise constant, so the state at
the end of a span is the free response of the state at its start plus, for every change of command
on the way, that change times the plant's step response over the time left (superposition). A
prediction over the dead time (about 60 commands in flight at 1 kHz) is a dozen array operations on
(axes x commands) arrays, whatever the rate and however irregular the ticks; the short spans (the
model's own advance, the acceleration at a measurement's stamp) are a few floats per axis.
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
_INITIAL_CAPACITY = 1024
"""Commands the array store holds before it first grows (it doubles when full and nothing can be dropped)."""


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
        # built once: the per-axis constants as floats (the short spans) and as columns (the predictions' arrays)
        self._axes = tuple(zip(range(3), lag.tolist(), delay.tolist()))
        self._lags = tuple(lag.tolist())
        self._delay_column, self._minus_inverse_lag = delay[:, None].copy(), -1.0 / lag[:, None]
        self._work = np.empty((3, 3, 64))  # the predictions' scratch: (r, r^2, q) per axis and command in flight
        self._longest_delay, self._shortest_delay = float(delay.max()), float(delay.min())
        self.reset()

    def reset(self) -> None:
        """No command given, acceleration and bias zero."""
        # The commands kept, oldest first, from index _first on (older ones are dropped by moving _first; the store is
        # compacted now and then): when each was sent (a list, for bisection) and its value, as rows of a list (the
        # short spans' floats) and as columns of an array (the predictions': one contiguous row per axis, as the
        # predictions' scratch has it), which also holds the send times.
        self._sent: list[float] = []
        self._values: list[list[float]] = []
        self._sent_array = np.zeros(_INITIAL_CAPACITY)
        self._value_array = np.zeros((3, _INITIAL_CAPACITY))
        self._first = 0
        # The modelled acceleration at each tick's time, oldest first, from index _history_first on.
        self._history_times: list[float] = []
        self._history: list[list[float]] = []
        self._history_first = 0
        self.time: float | None = None
        self._acceleration = [0.0, 0.0, 0.0]
        self.bias = np.zeros(3)
        self.residual = np.zeros(3)
        self.filtered_residual = np.zeros(3)
        self._observed_stamp: float | None = None

    @property
    def acceleration(self) -> np.ndarray:
        """The modelled acceleration (m/s^2, world x, y, z) at :attr:`time`, without the bias's part yet to come."""
        return np.array(self._acceleration)

    def commanded(self, now: float, command: np.ndarray) -> None:
        """The filter sent ``command`` at ``now``: axis i acts from ``now + actuator_delay_s[i]``."""
        count = len(self._sent)
        if count == len(self._sent_array):
            self._grow()
        values = np.array(command, dtype=float).tolist()
        self._sent.append(now)
        self._values.append(values)
        self._sent_array[count] = now
        self._value_array[:, count] = values

    def _grow(self) -> None:
        """Double the array store (full, with nothing left to drop)."""
        sent, values = self._sent_array, self._value_array
        self._sent_array = np.zeros(2 * len(sent))
        self._value_array = np.zeros((3, 2 * len(sent)))
        self._sent_array[: len(sent)] = sent
        self._value_array[:, : len(sent)] = values

    def advance(self, now: float) -> None:
        """Run the model up to ``now`` (call once per tick, before observe and predict; ``now`` never decreases)."""
        if self.time is None:
            self.time = now
        elif now > self.time:
            self._acceleration = self._accelerations(self.time, now, self._acceleration)
            self.time = now
        self._history_times.append(now)
        self._history.append(self._acceleration)
        oldest = now - HISTORY_S
        times, first = self._history_times, self._history_first
        while len(times) - first > 1 and times[first + 1] <= oldest:
            first += 1
        if first > _COMPACT_AFTER and 2 * first > len(times):
            del times[:first], self._history[:first]
            first = 0
        self._history_first = first
        sent, first, earliest_delay = self._sent, self._first, self._shortest_delay
        while len(sent) - first > 1 and sent[first + 1] + earliest_delay <= oldest:
            first += 1
        if first > _COMPACT_AFTER and 2 * first > len(sent):
            kept = len(sent) - first
            self._sent_array[:kept] = self._sent_array[first : len(sent)]  # numpy copies overlapping slices safely
            self._value_array[:, :kept] = self._value_array[:, first : len(sent)]
            del sent[:first], self._values[:first]
            first = 0
        self._first = first

    def observe(self, measured: np.ndarray, stamp: float) -> None:
        """A measured world-frame acceleration (gravity removed) taken at ``stamp``: update the bias (once per stamp)."""
        if self._observed_stamp is not None and stamp <= self._observed_stamp:
            return
        previous, self._observed_stamp = self._observed_stamp, stamp
        residual = [m - a for m, a in zip(_floats(measured), self._modelled_at(stamp))]
        step = 0.0 if previous is None else min(stamp - previous, self.observer_time_constant_s)
        gain = step / self.observer_time_constant_s
        bound = self.max_bias_mps2
        bias = [b + gain * r for b, r in zip(self.bias.tolist(), residual)]
        self.residual = np.array(residual)
        self.bias = np.array([-bound if b < -bound else bound if b > bound else b for b in bias])  # np.clip on floats
        self.filtered_residual = np.array([f + gain * (r - f) for f, r in zip(self.filtered_residual.tolist(), residual)])

    def observes(self, stamp: float) -> bool:
        """Whether :meth:`observe` at ``stamp`` would update the bias (a newer stamp than the last observed): a caller can
        skip computing a measurement that would be ignored."""
        return self._observed_stamp is None or stamp > self._observed_stamp

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
        start = min(stamp, now)
        return self._propagate(start, now + self._longest_delay, position, velocity, self._modelled_at(start))

    def _modelled_at(self, time: float) -> list[float]:
        """The modelled acceleration at ``time``: the last recorded at or before it, run forward to it."""
        first = self._history_first
        if len(self._history_times) == first:
            return list(self._acceleration)
        index = max(first, bisect.bisect_right(self._history_times, time, first) - 1)
        base_time, base = self._history_times[index], self._history[index]
        if time <= base_time:
            return list(base)
        return self._accelerations(base_time, time, base)

    def _accelerations(self, start: float, end: float, a: list[float]) -> list[float]:
        """The acceleration alone at ``end`` from ``a`` at ``start``, in floats: a short span (one tick, or to a stamp).

        Per axis: a = target + (a0 - target) exp(-span / tau) with the command acting at ``start`` (plus the bias), and
        each command arriving on the way adds its change times the lag's step response, 1 - exp(-time left / tau).
        """
        span = end - start
        sent, values, first = self._sent, self._values, self._first
        out = []
        for (i, tau, delay), a_i, bias_i in zip(self._axes, a, self.bias.tolist()):
            lo = bisect.bisect_right(sent, start - delay, first)
            hi = bisect.bisect_left(sent, end - delay, lo)
            command = values[lo - 1][i] if lo > first else 0.0
            target = command + bias_i
            a_i = target + (a_i - target) * math.exp(-span / tau)
            for k in range(lo, hi):
                left = end - (sent[k] + delay)
                left = span if left > span else 0.0 if left < 0.0 else left
                change, command = values[k][i] - command, values[k][i]
                a_i -= change * math.expm1(-left / tau)
            out.append(a_i)
        return out

    def _propagate(self, start: float, end: float, position: Sequence[float], velocity: Sequence[float], a: Sequence[float]) -> np.ndarray:
        """[p, v, a, bias] at ``end`` from p, v, a at ``start``, exactly (superposition of step responses, module doc).

        With ``target`` the command acting at ``start`` plus the bias, each axis first runs as one interval of
        constant ``target`` (``gap = a - target``, ``rise = 1 - exp(-span / tau)``):
        ``p += v span + target span^2 / 2 + gap tau (span - tau rise)``, ``v += target span + gap tau rise``,
        ``a = target + gap (1 - rise)``. Then every command arriving in (start, end) adds its change ``c`` times the
        step response over the time left ``r`` after its arrival (clipped into [0, span], so that a command already
        arrived at ``start`` or not due before ``end`` adds nothing new), with ``q = exp(-r / tau) - 1``:
        ``a -= c q``, ``v += c (r + tau q)``, ``p += c (r^2 / 2 - tau (r + tau q))``. Only three sums over the
        commands are needed per axis, sum(c r), sum(c r^2) and sum(c q): one array operation each for all axes and
        commands at once; the rest is a few floats per axis.
        """
        span = end - start
        position, velocity, a = _floats(position), _floats(velocity), _floats(a)
        if not span > 0.0:
            return np.array(position + velocity + a + self.bias.tolist())
        sent, first = self._sent, self._first
        lo = bisect.bisect_right(sent, start - self._longest_delay, first)
        hi = bisect.bisect_left(sent, end - self._shortest_delay, lo)
        acting = self._values[lo - 1] if lo > first else (0.0, 0.0, 0.0)
        sums = None
        if hi > lo:
            count = hi - lo
            if count > self._work.shape[2]:
                self._work = np.empty((3, 3, 2 * count))
            work = self._work[:, :, :count]
            left = work[0]  # per axis and command: the time left after its arrival
            np.subtract(end - self._delay_column, self._sent_array[lo:hi], out=left)
            if sent[hi - 1] + self._longest_delay >= end:  # a command not due before the end on some axis
                np.maximum(left, 0.0, out=left)
            if sent[lo] + self._shortest_delay <= start:  # a command already arrived at the start on some axis
                np.minimum(left, span, out=left)
            np.multiply(left, left, out=work[1])
            np.multiply(left, self._minus_inverse_lag, out=work[2])
            np.expm1(work[2], out=work[2])
            values = self._value_array
            before = values[:, lo - 1 : hi - 1] if lo > first else np.hstack((np.zeros((3, 1)), values[:, lo : hi - 1]))
            changes = values[:, lo:hi] - before  # per axis and command, contiguous: the product below runs on plain rows
            sums = (work * changes).sum(axis=2).tolist()
        out_p, out_v, out_a = [], [], []
        for i, (p_i, v_i, a_i, tau, command, bias_i) in enumerate(zip(position, velocity, a, self._lags, acting, self.bias.tolist())):
            target = command + bias_i
            gap = a_i - target
            rise = -math.expm1(-span / tau)
            gap_tau = gap * tau
            p_i += v_i * span + 0.5 * target * span * span + gap_tau * (span - tau * rise)
            v_i += target * span + gap_tau * rise
            a_i = target + gap * (1.0 - rise)
            if sums is not None:
                moved = sums[0][i] + tau * sums[2][i]
                a_i -= sums[2][i]
                v_i += moved
                p_i += 0.5 * sums[1][i] - tau * moved
            out_p.append(p_i)
            out_v.append(v_i)
            out_a.append(a_i)
        return np.array(out_p + out_v + out_a + self.bias.tolist())


def _floats(vector: Sequence[float] | np.ndarray) -> list[float]:
    """A 3-vector's entries as a list of Python floats."""
    return vector.tolist() if isinstance(vector, np.ndarray) else [float(x) for x in vector]
