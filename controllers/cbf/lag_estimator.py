"""Fits the plant's actuator lag and dead time in flight, on the horizontal axes, from the filter's commands and the IMU.

The filter's lag model (:class:`~aegis.controllers.cbf.acceleration_model.AccelerationModel` and the third-order rows
of :class:`~aegis.controllers.cbf.double_integrator.DoubleIntegratorModel`) is declared for the nominal plant. A plant
with slower motors or more actuation latency realises the commands later than declared; the filter's predictions then
run ahead of the robot and its barriers can be overshot (docs/campaigns.md: clutter 1706 under perturbed dynamics).

Every ``update_period_s`` this estimator fits, over the last ``window_s`` of measured accelerations, the first-order lag
and dead time whose response to the commands sent best matches them, one for all ``axes`` (a quadrotor's horizontal
axes share its motors, latencies and attitude loop; a joint fit sees twice the data). The candidates are a grid around
the declared ones (``LAG_FACTORS`` times the declared lag, the declared dead time plus ``DELAY_OFFSETS_S``), each
simulated on a ``GRID_S`` time grid (a zero-order hold of the commands, the lag discretised exactly, one
``scipy.signal.lfilter`` per lag for all dead times; :meth:`LagEstimator.update` runs one lag a tick, so that no tick
carries a whole fit: docs/safety-filter-and-mpc.md has the filter's step with and without it), a constant per window
removed from the residual (the bias: the observer's business). A window counts only when an axis's measured acceleration moved by ``min_motion_mps2`` (standard
deviation: a hovering drone says nothing about its lag, and the last estimate is held) and the best fit explains
``MIN_FIT_QUALITY`` of its variance; a fit that does not beat the declared model by ``MIN_IMPROVEMENT`` counts as the
declared one. The estimate (:attr:`LagEstimator.lag`, :attr:`LagEstimator.delay`) is the median of the last
``FITS_KEPT`` fits.

What it is for: telling how far the plant is from the declared model (the quadrotor filter's ``fit_actuator_lag``
reports it in the run's summary). Modelling the larger of declared and fitted in flight was tried and not taken
(docs/campaigns.md; that code was not kept): on 150 perturbed-dynamics episodes it kept the same lowest h (clutter
1706 comes to its gap 1.45 s after take-off, the first usable fit is at 1.25 s) and lost three successes to caution.

Pure: every time comes from the caller; no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from scipy.signal import lfilter

LAG_FACTORS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5)
"""The candidate lags, times the declared one."""
DELAY_OFFSETS_S = tuple(round(-0.02 + 0.005 * k, 3) for k in range(17))
"""The candidate dead times, added to the declared one (s; -20 ms to +60 ms by 5 ms; negative results clipped to 0)."""
GRID_S = 0.005
"""The time step on which the candidates are simulated (s); dead times are rounded to it."""
LEAD_S = 1.0
"""Commands kept before the window (s): the candidates start from the command then acting, realised, and by the
window's start that assumption has decayed by exp(-LEAD_S / lag)."""
MIN_FIT_QUALITY = 0.9
"""A window counts only when its best fit explains this fraction of the measured acceleration's variance (R^2): the
take-off's first second (ground effect, the hover thrust still learning the mass) fits at 0.8 and points anywhere."""
MIN_IMPROVEMENT = 0.1
"""A fit replaces the declared model on a window when its residual is this fraction below the declared model's."""
FITS_KEPT = 3
"""The estimate is the median of this many last fits."""


class LagEstimator:
    """The lag and dead time fitted in flight (module doc): :attr:`lag` and :attr:`delay` per axis, the declared ones
    until a window says otherwise (an axis not among ``axes`` keeps its declared values)."""

    def __init__(
        self,
        declared_lag_s: Sequence[float],
        declared_delay_s: float | Sequence[float],
        axes: Sequence[int] = (0, 1),
        window_s: float = 1.0,
        update_period_s: float = 0.25,
        min_motion_mps2: float = 0.3,
    ) -> None:
        self.declared_lag = np.broadcast_to(np.asarray(declared_lag_s, dtype=float), (3,)).copy()
        self.declared_delay = np.broadcast_to(np.asarray(declared_delay_s, dtype=float), (3,)).copy()
        if not (np.all(self.declared_lag > 0) and np.all(np.isfinite(self.declared_lag))):
            raise ValueError(f"declared_lag_s must be finite and > 0 per axis, got {declared_lag_s}")
        if not (np.all(self.declared_delay >= 0) and np.all(np.isfinite(self.declared_delay))):
            raise ValueError(f"declared_delay_s must be finite and >= 0 per axis, got {declared_delay_s}")
        for name, value in (("window_s", window_s), ("update_period_s", update_period_s), ("min_motion_mps2", min_motion_mps2)):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be finite and > 0, got {value}")
        if not set(axes) <= {0, 1, 2} or not axes:
            raise ValueError(f"axes must be some of 0, 1, 2 (world x, y, z), got {tuple(axes)}")
        self.axes = tuple(axes)
        self.window_s = float(window_s)
        self.update_period_s = float(update_period_s)
        self.min_motion_mps2 = float(min_motion_mps2)
        self.reset()

    def reset(self) -> None:
        """Nothing seen: the declared lag and dead time."""
        self._command_times: list[float] = []
        self._commands: list[list[float]] = []
        self._sample_times: list[float] = []
        self._samples: list[list[float]] = []
        self._fits: list[tuple[float, float]] = []  # (lag factor, dead-time offset), the last FITS_KEPT
        self._next_fit: float | None = None
        self._fitting: Iterator[None] | None = None  # the fit under way, a step a tick
        self.lag = self.declared_lag.copy()
        self.delay = self.declared_delay.copy()
        self.fits = 0
        """Windows fitted so far (on any axis)."""

    def commanded(self, now: float, command: Sequence[float]) -> None:
        """The filter sent ``command`` (world-frame acceleration, m/s^2) at ``now``."""
        self._command_times.append(float(now))
        self._commands.append([float(c) for c in command])

    def measured(self, stamp: float, acceleration: Sequence[float]) -> None:
        """A measured world-frame acceleration (gravity removed) taken at ``stamp`` (stamps increase)."""
        if self._sample_times and stamp <= self._sample_times[-1]:
            return
        self._sample_times.append(float(stamp))
        self._samples.append([float(a) for a in acceleration])

    def update(self, now: float) -> None:
        """Call once per tick: starts a fit when one is due (every ``update_period_s``) and runs one step of it (one
        candidate lag, all dead times: a tick's work stays a fraction of a millisecond)."""
        if self._fitting is None:
            if self._next_fit is None:
                self._next_fit = now + self.window_s
            if now < self._next_fit:
                return
            self._next_fit = now + self.update_period_s
            self._drop_before(now - self.window_s - LEAD_S - float(self.declared_delay.max()) - DELAY_OFFSETS_S[-1])
            self._fitting = self._fit(now)
        try:
            next(self._fitting)
            return
        except StopIteration as finished:
            self._fitting = None
            fit = finished.value
        if fit is None:
            return
        self.fits += 1
        self._fits.append(fit)
        del self._fits[:-FITS_KEPT]
        factor = float(np.median([factor for factor, _ in self._fits]))
        offset = float(np.median([offset for _, offset in self._fits]))
        for axis in self.axes:
            self.lag[axis] = self.declared_lag[axis] * factor
            self.delay[axis] = max(0.0, self.declared_delay[axis] + offset)

    def _drop_before(self, oldest: float) -> None:
        """Forget commands and samples older than ``oldest`` (keeping the command then acting)."""
        times = self._command_times
        first = 0
        while first + 1 < len(times) and times[first + 1] <= oldest:
            first += 1
        del times[:first], self._commands[:first]
        first = 0
        while first < len(self._sample_times) and self._sample_times[first] < oldest:
            first += 1
        del self._sample_times[:first], self._samples[:first]

    def _fit(self, now: float) -> Iterator[None]:
        """The (lag factor, dead-time offset) that best explains the window ending at ``now`` on the axes that moved, or
        None (the generator's return value); it yields after each candidate lag (:meth:`update` runs one step a tick)."""
        sample_times = np.asarray(self._sample_times)
        in_window = sample_times >= now - self.window_s
        if in_window.sum() < 8 or len(self._command_times) < 2:
            return None
        stamps = sample_times[in_window]
        samples = np.asarray(self._samples)[in_window]
        moved = [axis for axis in self.axes if samples[:, axis].std() >= self.min_motion_mps2]
        if not moved:
            return None
        origin = self._command_times[0]
        grid = np.arange(origin, stamps[-1] + GRID_S, GRID_S)
        at_sample = np.clip(np.round((stamps - origin) / GRID_S).astype(int), 0, len(grid) - 1)
        command_times = np.asarray(self._command_times)
        commands = np.asarray(self._commands)
        held = {}  # per axis and dead time: the command acting on the plant at each grid time
        for axis in moved:
            delays = np.maximum(0.0, float(self.declared_delay[axis]) + np.asarray(DELAY_OFFSETS_S))
            acting = np.searchsorted(command_times, (grid[None, :] - delays[:, None]).ravel(), side="right") - 1
            held[axis] = commands[np.maximum(acting, 0), axis].reshape(len(delays), len(grid))
        squared = np.zeros((len(LAG_FACTORS), len(DELAY_OFFSETS_S)))  # per candidate: the squared residual, summed over axes
        for column, factor in enumerate(LAG_FACTORS):
            for axis in moved:
                rise = -math.expm1(-GRID_S / (float(self.declared_lag[axis]) * factor))  # tau a' = u - a, exact over a held step
                modelled, _ = lfilter([0.0, rise], [1.0, rise - 1.0], held[axis], axis=1, zi=held[axis][:, :1])  # starting realised
                residual = samples[None, :, axis] - modelled[:, at_sample]
                residual -= residual.mean(axis=1, keepdims=True)  # the bias: the observer's business
                squared[column] += np.sum(residual * residual, axis=1)
            yield
        column, row = np.unravel_index(int(np.argmin(squared)), squared.shape)
        variance = sum(float(samples[:, axis].var()) for axis in moved) * len(stamps)  # what "no model" leaves
        if 1.0 - squared[column, row] / variance < MIN_FIT_QUALITY:
            return None
        if math.sqrt(squared[column, row]) > (1.0 - MIN_IMPROVEMENT) * math.sqrt(squared[LAG_FACTORS.index(1.0), DELAY_OFFSETS_S.index(0.0)]):
            return 1.0, 0.0
        return LAG_FACTORS[column], DELAY_OFFSETS_S[row]
