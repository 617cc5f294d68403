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

import math
from collections import deque
from collections.abc import Sequence

import numpy as np

HISTORY_S = 1.0
"""How far back commands and modelled accelerations are kept (s): more than any latency worth filtering."""


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
        self._commands: deque[tuple[float, np.ndarray]] = deque()  # (time it was sent, u); axis i acts delay[i] later
        self._history: deque[tuple[float, np.ndarray]] = deque()  # (time, modelled acceleration)
        self.time: float | None = None
        self.acceleration = np.zeros(3)
        self.bias = np.zeros(3)
        self.residual = np.zeros(3)
        self.filtered_residual = np.zeros(3)
        self._observed_stamp: float | None = None

    def commanded(self, now: float, command: np.ndarray) -> None:
        """The filter sent ``command`` at ``now``: axis i acts from ``now + actuator_delay_s[i]``."""
        self._commands.append((now, np.array(command, dtype=float)))

    def advance(self, now: float) -> None:
        """Run the model up to ``now`` (call once per tick, before observe and predict)."""
        if self.time is None:
            self.time = now
        elif now > self.time:
            _, _, self.acceleration = self._propagate(self.time, now, np.zeros(3), np.zeros(3), self.acceleration)
            self.time = now
        self._history.append((now, self.acceleration.copy()))
        while len(self._history) > 1 and self._history[1][0] <= now - HISTORY_S:
            self._history.popleft()
        while len(self._commands) > 1 and self._commands[1][0] + float(self.delay.min()) <= now - HISTORY_S:
            self._commands.popleft()

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
        return bool(np.any(np.abs(self.bias) >= self.max_bias_mps2 * (1.0 - 1e-9))) and self.max_bias_mps2 > 0.0

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
        if not self._history:
            return self.acceleration.copy()
        base_time, base = self._history[0]
        for t, a in self._history:
            if t > time:
                break
            base_time, base = t, a
        if time <= base_time:
            return base.copy()
        return self._propagate(base_time, time, np.zeros(3), np.zeros(3), base)[2]

    def _command_at(self, time: float) -> np.ndarray:
        """The command acting at ``time`` on each axis (zero before the first reaches it)."""
        acting = np.zeros(3)
        for t, u in self._commands:
            arrived = t + self.delay <= time + 1e-12
            if not arrived.any():
                break
            acting = np.where(arrived, u, acting)
        return acting

    def _propagate(self, start: float, end: float, p: np.ndarray, v: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p, v, a) at ``end`` from ``start``, exactly, over each interval of constant command (plus the bias)."""
        p, v, a = p.copy(), v.copy(), a.copy()
        tau = self.lag
        t = start
        switches = sorted({float(t + d) for t, _ in self._commands for d in self.delay if start < t + d < end})
        for boundary in [*switches, end]:
            span = boundary - t
            if span <= 0.0:
                continue
            target = self._command_at(t) + self.bias
            decay = np.exp(-span / tau)
            gap = a - target
            p += v * span + 0.5 * target * span * span + gap * tau * (span - tau * (1.0 - decay))
            v += target * span + gap * tau * (1.0 - decay)
            a = target + gap * decay
            t = boundary
        return p, v, a
